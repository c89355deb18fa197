"""CPython's floor for fan-out: one loop writes each event to every client's socket.

Not WSGI, and not for the course's routes: a measuring stick. Under a WSGI server every
stream is a greenlet that must be woken, run through the server's write path and put to
sleep again, once per event. Here nothing runs per client but one ``send`` in a loop, so
what is left is what CPython and the kernel cost. Lesson 07's benchmark runs it beside
Node: if this keeps up with Node, the rest of the gap is the per-stream machinery, not
the language. It serves the course's clock (lesson 04's bytes, once a second) at any path,
or, given a Redis URL, lesson 08's broadcast: it reads the room's stream (``XREAD
BLOCK``) and sends what each read brings, encoded as ``/broadcast`` encodes it and joined,
to every client: the work of lesson 08's relay and nothing else.

    python -m bench.one_loop PORT [REDIS_URL]
"""

import socket
import sys
import time

from gevent import monkey

monkey.patch_all()

import gevent  # noqa: E402
from gevent.server import StreamServer  # noqa: E402

from lessons import load_lesson  # noqa: E402
from streamlib.broadcast import STREAM, Message, encode, newest_id  # noqa: E402

clock_event = load_lesson("04_server_sent_events").clock_event
HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Connection: close\r\n\r\n: connected\nretry: 1000\n\n"
)
clients: set = set()  # the kernel sockets under gevent's, to send without gevent's layers


def follow(sock, address) -> None:
    """Answer any request with the stream's head, then keep the socket until it closes."""
    if not sock.recv(65536):
        return
    # As gunicorn and Node set it. Without it, Nagle's algorithm holds a small write while
    # the last is unacknowledged and sends it when the ACK comes: on loopback that send runs
    # on the client's core, off this process's budget (tried under bench 08's load on
    # 2026-11-27: a fifth off the p99 at 5,000 clients, the fan-out worker's too).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(HEAD)
    clients.add(sock._sock)
    try:
        while sock.recv(65536):  # the client sends nothing more; this notices it leave
            pass
    finally:
        clients.discard(sock._sock)


def send_to_all(data: bytes) -> None:
    """Send ``data`` to every client: one ``send`` each, nothing else per client."""
    for client in list(clients):
        try:
            # A client that stopped reading would lose what does not fit: a real server
            # keeps it (one more thing the per-stream machinery is for).
            client.send(data)
        except OSError:
            clients.discard(client)


def tick() -> None:
    """Once a second, on the second: encode the event once, send it to every client."""
    while True:
        n = int(time.time()) + 1
        gevent.sleep(n - time.time())
        send_to_all(clock_event(n, 1.0))


def relay(redis_url: str) -> None:
    """Read the room's Redis Stream and send what each read brings to every client."""
    from redis import Redis

    redis = Redis.from_url(redis_url, decode_responses=True)
    last = newest_id(redis)
    while True:
        for _, entries in redis.xread({STREAM: last}, block=1000, count=1000):
            last = entries[-1][0]
            send_to_all(b"".join(encode(Message(at, fields["data"])) for at, fields in entries))


if __name__ == "__main__":
    if len(sys.argv) > 2:
        gevent.spawn(relay, sys.argv[2])
    else:
        gevent.spawn(tick)
    StreamServer(("127.0.0.1", int(sys.argv[1])), follow, backlog=4096).serve_forever()
