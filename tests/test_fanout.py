"""streamlib.fanout and its gunicorn worker: one loop sends a broadcast to every socket."""

import contextlib
import os
import signal
import socket
import time

import gevent
import pytest
import requests

from lessons import load_lesson, spawn_course
from streamlib import call_app
from streamlib.broadcast import AUDIENCE_HEARTBEAT
from streamlib.fanout import Audience, SharedStream
from streamlib.fanout_worker import MAX_BEHIND, Member, chunked

clock_event = load_lesson("04_server_sent_events").clock_event
fan_out = load_lesson("08_fan_out")
HELLO = b": connected\nretry: 1000\n\n"


def eventually(condition, seconds: float = 5.0) -> bool:
    """Whether ``condition()`` comes true within ``seconds`` (asked every 50 ms)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# -- Any server: the marker is skipped and the generator goes on ---------------------------


def test_any_server_gets_the_generators_own_bytes_past_the_audience():
    audience = Audience()
    closed = []

    def body():
        try:
            yield b"mine\n"
            yield audience
            yield b"everyone's\n"
        finally:
            closed.append(True)

    stream = SharedStream(body())
    assert list(stream) == [b"mine\n", b"everyone's\n"]
    stream.close()
    assert closed == [True]


def test_the_endless_shared_clock_on_an_ordinary_server_is_lesson_04s(course_app):
    response = call_app(course_app, "/shared-events")  # wsgiref.validate checks every piece
    try:
        hello, first, second = (response.next_piece() for _ in range(3))
    finally:
        response.close()
    n = int(first.split(b"\n")[0].removeprefix(b"id: "))
    assert hello == HELLO and (first, second) == (clock_event(n, 1.0), clock_event(n + 1, 1.0))


# -- A member: writes without waiting, keeps order, leaves when too far behind ----------------


@pytest.fixture
def connection():
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # the kernel holds little
    theirs.settimeout(5)
    yield ours, theirs
    ours.close()
    theirs.close()


def joined(ours: socket.socket, head: bytes) -> tuple[Member, Audience, list[bool]]:
    """A member on a copy of ``ours`` that joined a fresh audience with ``head``, and the
    list its leaving appends to."""
    left: list[bool] = []
    member = Member(os.dup(ours.fileno()), lambda: left.append(True))
    audience = Audience()
    member.join(audience, head)
    return member, audience, left


def test_a_member_that_cannot_write_now_keeps_the_bytes_in_order(connection):
    ours, theirs = connection
    member, audience, left = joined(ours, b"head\n")
    pieces = [bytes([65 + n % 26]) * 50_000 for n in range(4)]  # less than MAX_BEHIND
    for piece in pieces:
        audience.send(piece)
    assert member.waiting  # the kernel's buffer is full: the rest waits in the member
    received = bytearray()
    expected = b"head\n" + b"".join(chunked(piece) for piece in pieces)  # each one chunk
    deadline = time.monotonic() + 5
    while len(received) < len(expected) and time.monotonic() < deadline:
        received += theirs.recv(65536)
        gevent.sleep(0.001)  # the loop runs the member's write watcher
    assert bytes(received) == expected and not member.waiting and not left


def test_a_member_that_falls_too_far_behind_is_dropped_and_its_body_closed(connection):
    ours, _ = connection
    member, audience, left = joined(ours, b"")
    piece = b"x" * 4096
    for _ in range(MAX_BEHIND // len(piece) * 4):  # nobody reads: the kernel, then the member
        audience.send(piece)
    assert left == [True] and not audience.members and member.audience is None


def test_a_client_that_half_closes_still_gets_its_events_and_one_that_left_is_dropped(
    connection,
):
    ours, theirs = connection
    _, audience, left = joined(ours, b"hello")
    assert theirs.recv(5) == b"hello"
    theirs.shutdown(socket.SHUT_WR)  # "I will send nothing more", and reads on
    gevent.sleep(0.05)  # the loop sees the end of what the client sends
    audience.send(b"event")
    assert theirs.recv(100) == chunked(b"event") and not left
    theirs.close()  # now gone: the next write fails
    audience.send(b"event")
    assert left == [True] and not audience.members


def test_a_client_that_keeps_sending_is_read_once_and_still_gets_its_events(connection):
    ours, theirs = connection
    _, audience, left = joined(ours, b"")
    theirs.setblocking(False)
    sent, piece = 0, b"x" * 65536
    for _ in range(300):  # up to 19 MiB, if the member went on reading and dropping it
        with contextlib.suppress(BlockingIOError):  # the kernel's buffers are full
            sent += theirs.send(piece)
        gevent.sleep(0.001)  # the loop runs the member's read watcher
    assert sent < 4 * 1024 * 1024, f"{sent} bytes taken: the member keeps reading"
    audience.send(b"event")
    theirs.setblocking(True)
    assert theirs.recv(100) == chunked(b"event") and not left


# -- Under gunicorn: the fan-out worker ------------------------------------------------------


def read_for(response: requests.Response, seconds: float) -> list[tuple[bytes, float]]:
    """The chunks ``response`` brings within ``seconds``, each with when it came."""
    pieces = []
    deadline = time.time() + seconds
    for piece in response.iter_content(None):  # as the lesson's Listener reads
        pieces.append((piece, time.time()))
        if time.time() > deadline:
            break
    return pieces


def events_in(pieces: list[tuple[bytes, float]]) -> list[tuple[int, bytes, float]]:
    """(id, the event's bytes, when its last byte came) for each clock event in ``pieces``."""
    events, buffer = [], b""
    for piece, at in pieces:
        buffer += piece
        while b"\n\n" in buffer:
            event, buffer = buffer.split(b"\n\n", 1)
            if event.startswith(b"id: "):
                events.append((int(event[4:].split(b"\n")[0]), event + b"\n\n", at))
    return events


@pytest.fixture(scope="module")
def fanout_server():
    """The course under gunicorn with one fan-out worker, shared by this module's tests."""
    with spawn_course("--server", "gunicorn", "--worker-class", "fanout") as server:
        yield server


@pytest.mark.live
def test_the_fanout_worker_sends_every_member_each_event_once_on_time(fanout_server):
    url = fanout_server.url + "/shared-events"
    resumed_from = int(time.time()) - 3
    with (
        requests.get(url, stream=True, timeout=5) as fresh,
        requests.get(
            url, stream=True, timeout=5, headers={"Last-Event-ID": str(resumed_from)}
        ) as resumed,
    ):
        for response in (fresh, resumed):
            assert response.headers["Transfer-Encoding"] == "chunked"
            assert response.headers["Connection"] == "close"  # the member's, to the end
            assert response.headers["Content-Type"].startswith("text/event-stream")
        fresh_events = events_in(read_for(fresh, 2.5))
        resumed_events = events_in(read_for(resumed, 0.5))
    for events in (fresh_events, resumed_events):
        ids = [n for n, _, _ in events]
        assert ids == list(range(ids[0], ids[0] + len(ids)))  # none lost, none twice
        assert all(sent == clock_event(n, 1.0) for n, sent, _ in events)
    assert resumed_events[0][0] == resumed_from + 1  # the missed ones first
    assert len(fresh_events) >= 2
    for n, _, arrived in fresh_events:
        assert n <= arrived < n + 0.5  # due at n s since the epoch: never early, soon after


def shared_events_stats(url: str) -> dict:
    """``/shared-events``' entry in the server's ``/stats`` (empty before its first stream)."""
    return requests.get(url + "/stats", timeout=5).json()["routes"].get("/shared-events", {})


@pytest.mark.live
def test_a_member_that_leaves_is_a_closed_stream_in_stats(fanout_server):
    url = fanout_server.url
    before = shared_events_stats(url)
    open_before, closed_before = before.get("open_streams", 0), before.get("streams_closed", 0)
    with requests.get(url + "/shared-events", stream=True, timeout=5) as response:
        assert next(response.iter_content(None)).startswith(b": connected")
        assert shared_events_stats(url)["open_streams"] == open_before + 1
    # gone: noticed at the next write that fails (a tick a second)
    assert eventually(lambda: shared_events_stats(url)["streams_closed"] == closed_before + 1)
    assert shared_events_stats(url)["open_streams"] == open_before
    # a stream of its own (count=) goes gunicorn's usual way, and ends
    with requests.get(url + "/shared-events?count=1", timeout=5) as counted:
        assert counted.content.startswith(HELLO) and counted.content.endswith(b"}\n\n")


@pytest.mark.live
def test_on_sigterm_members_are_cut_at_once_not_after_the_graceful_timeout():
    flags = ("--server", "gunicorn", "--worker-class", "fanout", "--graceful-timeout", "20")
    with spawn_course(*flags) as server:
        with requests.get(server.url + "/shared-events", stream=True, timeout=30) as response:
            pieces = response.iter_content(None)
            assert next(pieces).startswith(b": connected")
            signalled = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            with pytest.raises(requests.exceptions.ChunkedEncodingError):
                for _ in pieces:  # events until the worker exits: cut, no last chunk
                    pass
            cut_after = time.monotonic() - signalled
        server.process.wait(timeout=30)
    assert cut_after < 5, cut_after  # the worker's next check-in, not 20 s


@pytest.mark.live
def test_an_http_1_0_client_is_a_member_too_with_the_bytes_as_they_are(fanout_server):
    """lab.load.crowd, the benchmark's client, asks in HTTP/1.0: no chunks for it."""
    host, port = fanout_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as client:
        client.sendall(b"GET /shared-events HTTP/1.0\r\nHost: " + host.encode() + b"\r\n\r\n")
        received = b""
        while received.count(b"id: ") < 2:
            received += client.recv(65536)
    head, body = received.split(b"\r\n\r\n", 1)
    assert b"Connection: close" in head and b"Transfer-Encoding" not in head
    assert b"Server:" not in head  # the fan-out worker's head: gunicorn's own names itself
    events = events_in([(body, 0.0)])
    assert body.startswith(HELLO) and events[1][0] == events[0][0] + 1
    assert all(sent == clock_event(n, 1.0) for n, sent, _ in events)


def post(url: str, text: str) -> requests.Response:
    """``POST /broadcast``: one message to the room."""
    return requests.post(url + "/broadcast", json={"text": text}, timeout=10)


@pytest.mark.live
def test_through_redis_every_member_of_a_room_gets_every_message_once(redis_url):
    texts = [f"m{n}" for n in range(10)]
    flags = ("--server", "gunicorn", "--worker-class", "fanout", "--workers", "2")
    with spawn_course(*flags, "--redis", redis_url) as server:
        clients = [fan_out.Listener(server.url, heartbeat=AUDIENCE_HEARTBEAT) for _ in range(4)]
        assert all(client.connected.wait(5) for client in clients)
        for text in texts[:5]:
            assert post(server.url, text).status_code == 201
        assert eventually(lambda: all(len(c.texts) == 5 for c in clients))
        resumed = fan_out.Listener(
            server.url, last_id=clients[0].ids[2], heartbeat=AUDIENCE_HEARTBEAT
        )
        assert resumed.connected.wait(5)
        for text in texts[5:]:
            assert post(server.url, text).status_code == 201
        everyone = [*clients, resumed]
        assert eventually(lambda: all(c.texts[-1:] == texts[-1:] for c in everyone))
        for client in everyone:
            client.close()
    assert all(c.texts == texts for c in clients), [len(c.texts) for c in clients]
    assert resumed.texts == texts[3:]  # what it missed, then live: none lost, none twice
