"""Clients that send their request a byte at a time: the "slowloris" attack, on loopback.

A server must read a request's headers (and body) before it can answer. A client that
sends them one byte every few seconds keeps a connection, and whatever the server gave
it, busy for as long as it likes: a thread of a gthread worker, the one process of a sync
worker. Enough such clients and nobody else is answered. :func:`slow_clients` opens them;
:func:`answer_time` asks, as a normal client would, whether the server still answers.
Lesson 07 measures each worker class, and nginx in front, with them.
"""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from urllib.parse import urlsplit

import requests

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def slow_request(host: str, part: str) -> bytes:
    """The bytes a slow client sends: headers that never end (``part="headers"``), or
    complete headers announcing a body of 1 MB that then comes a byte at a time."""
    if part == "headers":
        return f"GET / HTTP/1.1\r\nHost: {host}\r\nX-Slow: ".encode() + b"a" * 10_000
    if part == "body":
        head = f"POST /broadcast HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        return (head + "Content-Length: 1000000\r\n\r\n").encode() + b" " * 1_000_000
    raise ValueError(f"part: expected 'headers' or 'body', got {part!r}")


@contextmanager
def slow_clients(
    url: str, count: int, *, part: str = "headers", gap: float = 1.0
) -> Iterator[list[socket.socket]]:
    """Keep ``count`` connections to ``url`` sending their request one byte per ``gap`` s.

    url: the server, on a loopback address (this is for one machine's tests).
    count: how many slow clients.
    part: ``"headers"`` trickles the headers; ``"body"`` sends whole headers, then
        trickles the body (the whole body part of a request comes at once, so the server
        starts the app, which then waits on its body).
    gap: seconds between two bytes of one client.

    Yields the sockets; on exit the clients stop and their connections close. A client
    whose connection the server closed stops sending (the server won against it).

    >>> with slow_clients("http://127.0.0.1:8000", 70):      # doctest: +SKIP
    ...     answer_time("http://127.0.0.1:8000/")           # None: nobody else is answered
    """
    address = urlsplit(url)
    if address.hostname not in LOOPBACK_HOSTS:
        raise ValueError(f"slow clients only go to loopback addresses, not {address.hostname}")
    request = slow_request(address.netloc, part)
    start = request.index(b"\r\n\r\n") + 4 if part == "body" else 0
    sockets = [socket.create_connection((address.hostname, address.port)) for _ in range(count)]
    for sock in sockets:
        sock.sendall(request[:start])  # the body's headers at once; a headers client: nothing
    stop = threading.Event()

    def trickle() -> None:
        sent = start
        while not stop.wait(gap) and sent < len(request):
            for sock in sockets:
                with suppress(OSError):  # closed by the server: it has stopped waiting for it
                    sock.send(request[sent : sent + 1])
            sent += 1

    thread = threading.Thread(target=trickle, name="slow clients", daemon=True)
    thread.start()
    try:
        yield sockets
    finally:
        stop.set()
        thread.join(timeout=gap + 5)
        for sock in sockets:
            sock.close()


def answer_time(url: str, timeout: float = 5.0) -> float | None:
    """Seconds until ``url`` answered a plain GET, or None if it did not within ``timeout``."""
    started = time.monotonic()
    try:
        requests.get(url, timeout=timeout)
    except requests.RequestException:
        return None
    return time.monotonic() - started


def closed_by_server(sockets: list[socket.socket]) -> int:
    """How many of the slow clients' connections the server has closed (it gave up on them)."""
    closed = 0
    for sock in sockets:
        sock.setblocking(False)
        try:
            closed += sock.recv(65536, socket.MSG_PEEK) == b""
        except BlockingIOError:
            pass  # open, nothing to read: the server is still waiting for the request
        except OSError:
            closed += 1  # reset by the server
        finally:
            sock.setblocking(True)
    return closed
