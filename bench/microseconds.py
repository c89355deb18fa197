"""Where the microseconds go: the cost of each step of sending one event to one client.

A gevent worker sends a tick's event to N clients by doing N times: wake the stream's
greenlet, get the event's bytes, pass them through the layers between the generator and
the server, and write them to the socket. Each step is timed here on its own, in one
process with gevent's patches in place, as under gunicorn's gevent worker: the best of
several rounds, per event per client. Run it alone: ``python -m bench.microseconds
[ROUNDS]`` prints the table as JSON lines (best of 5 rounds unless told; the notebook
takes 2); lesson 07's benchmark puts it in its report.
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from functools import lru_cache  # noqa: E402

import gevent  # noqa: E402
from gevent.event import Event  # noqa: E402
from gunicorn.util import write_chunk  # noqa: E402
from werkzeug.wsgi import ClosingIterator  # noqa: E402

from lessons import load_lesson  # noqa: E402
from streamlib.sse import event_stream  # noqa: E402
from streamlib.stats import StreamStats  # noqa: E402

CLIENTS = 1000
ROUNDS = 5
clock_event = load_lesson("04_server_sent_events").clock_event


def best_of(rounds: int, one_round: Callable[[], float]) -> float:
    """The least of ``rounds`` runs of ``one_round`` (each returns µs per event per client):
    the machine's other work only ever adds time."""
    return min(one_round() for _ in range(rounds))


PERIOD = 0.25  # s between ticks: far longer than waking every greenlet takes


def wake(clients: int, wait_for: Callable[[dict, int], None], ticks: int = 3) -> float:
    """µs per greenlet from a tick's due time until ``clients`` greenlets, each waiting
    with ``wait_for(tick, n)`` for tick n, have all woken; the best of ``ticks`` ticks.
    Tick n is due at ``tick["start"] + n * PERIOD``; the ``"event"`` and ``"condition"``
    of ``tick`` announce it."""
    woken = [0]
    tick = {"start": time.time(), "event": Event(), "condition": threading.Condition()}

    def stream() -> None:
        for n in range(1, ticks + 1):
            wait_for(tick, n)
            woken[0] += 1

    greenlets = [gevent.spawn(stream) for _ in range(clients)]
    best = float("inf")
    try:
        for n in range(1, ticks + 1):
            due, event = tick["start"] + n * PERIOD, tick["event"]
            gevent.sleep(max(0.0, due - time.time()))
            tick["event"] = Event()
            event.set()
            with tick["condition"]:
                tick["condition"].notify_all()
            while woken[0] < clients * n:
                gevent.sleep(0)
            best = min(best, (time.time() - due) / clients * 1e6)
    finally:
        gevent.killall(greenlets)
    return best


def a_timer_each(tick: dict, n: int) -> None:
    """Lesson 04's clock: a stream sleeps until its event is due, on a timer of its own."""
    gevent.sleep(max(0.0, tick["start"] + n * PERIOD - time.time()))


def a_condition(tick: dict, n: int) -> None:
    """Lesson 08's broadcast as it was: every stream waits on one ``threading.Condition``,
    and ``notify_all`` wakes them (a lock released per waiter)."""
    with tick["condition"]:
        tick["condition"].wait()


def one_shared_event(tick: dict, n: int) -> None:
    """A Ticker: every stream waits on the one event that the ticker sets when due."""
    tick["event"].wait()


def one_shared_event_with_a_timeout(tick: dict, n: int) -> None:
    """The same, waiting at most a heartbeat: ``wait(timeout)`` starts and stops a timer."""
    tick["event"].wait(15.0)


def per_call(function: Callable[[], object], calls: int = 20_000) -> float:
    """µs per call of ``function``."""
    start = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - start) / calls * 1e6


def per_chunk(make_body: Callable[[list[bytes]], object], chunks: int = 20_000) -> float:
    """µs per chunk that the server's loop (``for chunk in body``) takes through a body."""
    data = [b"x"] * chunks
    start = time.perf_counter()
    for _ in make_body(data):  # type: ignore[attr-defined]
        pass
    return (time.perf_counter() - start) / chunks * 1e6


def connected_pairs(count: int) -> list[tuple[socket.socket, socket.socket]]:
    """``count`` loopback TCP connections: (the server's end, the client's end)."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=count)
    pairs = []
    for _ in range(count):
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        pairs.append((server, client))
    listener.close()
    return pairs


def per_write(pairs: list, write: Callable[[socket.socket, bytes], object]) -> float:
    """µs per client to write one event to every connection, then the clients read it."""
    data = new_event()
    start = time.perf_counter()
    for server, _ in pairs:
        write(server, data)
    spent = (time.perf_counter() - start) / len(pairs) * 1e6
    for _, client in pairs:
        client.recv(65536)
    return spent


def measure(rounds: int = ROUNDS) -> list[tuple[str, str, float]]:
    """(step, how, µs per event per client) for every step and each way of doing it, the
    best of ``rounds``."""
    cached = lru_cache(maxsize=64)(clock_event)
    stats = StreamStats()
    pairs = connected_pairs(CLIENTS)

    def beyond_plain(make_body: Callable[[list[bytes]], object]) -> float:
        return max(0.0, per_chunk(make_body) - per_chunk(iter))  # what the layer adds

    steps: list[tuple[str, str, Callable[[], float]]] = [
        ("wake", "a timer per stream (lesson 04)", lambda: wake(CLIENTS, a_timer_each)),
        ("wake", "one threading.Condition, notify_all", lambda: wake(CLIENTS, a_condition)),
        ("wake", "one shared event (Ticker)", lambda: wake(CLIENTS, one_shared_event)),
        (
            "wake",
            "one shared event, waited with a timeout",
            lambda: wake(CLIENTS, one_shared_event_with_a_timeout),
        ),
        ("encode", "per stream: json.dumps + format_event", lambda: per_call(new_event)),
        ("encode", "once: an lru_cache hit", lambda: per_call(lambda: cached(N, 1.0))),
        ("layers", "werkzeug ClosingIterator", lambda: beyond_plain(closing)),
        ("layers", "StreamStats.track", lambda: beyond_plain(lambda d: stats.track("/", iter(d)))),
        ("layers", "event_stream (heartbeats)", lambda: beyond_plain(event_stream)),
        ("write", "gunicorn chunked write, gevent sendall", lambda: per_write(pairs, write_chunk)),
        ("write", "gevent socket.send", lambda: per_write(pairs, lambda s, d: s.send(d))),
        ("write", "the kernel's send alone", lambda: per_write(pairs, raw_send)),
    ]
    try:
        return [(step, how, best_of(rounds, one_round)) for step, how, one_round in steps]
    finally:
        for server, client in pairs:
            server.close()
            client.close()


N = 1_800_000_000  # an event number of these years


def new_event() -> bytes:
    return clock_event(N, 1.0)


def closing(data: list[bytes]) -> ClosingIterator:
    return ClosingIterator(iter(data))


def raw_send(sock: socket.socket, data: bytes) -> int:
    """The kernel's ``send``, under gevent's socket object (which would wait on EAGAIN)."""
    return sock._sock.send(data)  # type: ignore[attr-defined]


if __name__ == "__main__":
    for step, how, microseconds in measure(int(sys.argv[1]) if len(sys.argv) > 1 else ROUNDS):
        print(json.dumps({"step": step, "how": how, "us": round(microseconds, 2)}))
