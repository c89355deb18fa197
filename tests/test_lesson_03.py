"""Lesson 03, manual chunks: on schedule, one chunk per tick, the framing on the wire."""

import socket
import time
from urllib.parse import urlsplit

import pytest
import requests

from lab import observe
from lessons import load_lesson, spawn_course
from streamlib import FakeClock, call_app
from streamlib.timing import paced


def test_paced_beats_on_a_schedule_that_oversleeping_does_not_push_back():
    fake = FakeClock(oversleep=0.002)  # every sleep wakes 2 ms late
    beat_times = [fake.now for _ in paced(100, 0.5, fake.clock, fake.sleep)]
    lateness = [t - (1000.0 + n * 0.5) for n, t in enumerate(beat_times)]
    assert max(lateness) == pytest.approx(0.002), "beat 99 must be no later than beat 1"
    assert fake.sleeps[0] == pytest.approx(0.5) and fake.sleeps[1] == pytest.approx(0.498)


def test_paced_skips_sleeping_when_it_is_already_late():
    fake = FakeClock()
    beats = paced(3, 0.5, fake.clock, fake.sleep)
    next(beats)
    fake.now += 10  # the consumer was slow: every deadline has passed
    assert list(beats) == [1, 2] and fake.sleeps == []


def test_ticks_are_lines_and_the_first_comes_at_once():
    fake = FakeClock()
    ticks = load_lesson("03").ticks(3, 0.5, fake.clock, fake.sleep)
    assert next(ticks) == b"tick 0\n" and fake.sleeps == []
    assert list(ticks) == [b"tick 1\n", b"tick 2\n"]


def test_a_long_stream_is_refused_with_a_400(course_app):
    response = call_app(course_app, "/ticks?count=10000&interval=1")
    assert response.status_code == 400
    assert response.read().startswith(b"400 Bad Request: interval: 10000 ticks 1 s apart")


def raw_get(url: str, target: str, version: str) -> tuple[bytes, bytes]:
    """Send one request as raw bytes; return (head, body) as they came off the socket."""
    address = urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(
            f"GET {target} HTTP/{version}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return head, body


FRAMED = b"7\r\ntick 0\n\r\n7\r\ntick 1\n\r\n7\r\ntick 2\n\r\n0\r\n\r\n"


@pytest.fixture(scope="module", params=["werkzeug", "gunicorn"])
def server(request):
    flags = (
        ("--server", "gunicorn", "--worker-class", "gthread") if request.param == "gunicorn" else ()
    )
    with spawn_course(*flags) as process:
        process.kind = request.param
        yield process


@pytest.mark.live
def test_http_1_1_frames_each_tick_as_one_chunk(server):
    head, body = raw_get(server.url, "/ticks?count=3&interval=0.05", "1.1")
    assert b"\r\nTransfer-Encoding: chunked" in head
    assert body == FRAMED


@pytest.mark.live
def test_http_1_0_gets_no_chunks_from_either_server(server):
    # RFC 9112 section 6.1: no Transfer-Encoding for an HTTP/1.0 request. gunicorn obeys,
    # and so does the course's werkzeug, through lab.devserver (plain werkzeug 3.1
    # chunks anyway: tests/test_devserver.py shows it).
    head, body = raw_get(server.url, "/ticks?count=3&interval=0.05", "1.0")
    assert head.startswith(b"HTTP/1.0 200") and b"chunked" not in head
    assert body == b"tick 0\ntick 1\ntick 2\n"


@pytest.mark.live
def test_each_tick_arrives_alone_and_never_early(server):
    interval, count = 0.1, 6
    seen = observe(f"{server.url}/ticks?count={count}&interval={interval}")
    assert [chunk.size for chunk in seen.chunks] == [7] * count, "one read per tick"
    for n, chunk in enumerate(seen.chunks):
        # The generator's clock starts after the request arrived, so tick n cannot arrive
        # before n intervals have passed: a lower bound no machine's speed can break.
        assert chunk.at >= n * interval - 0.001, f"tick {n} came at {chunk.at:.3f} s"


@pytest.mark.live
def test_a_client_that_leaves_closes_the_stream(server):
    url = f"{server.url}/ticks?count=1000&interval=0.05"
    with requests.get(url, stream=True, timeout=5) as response:
        assert response.raw.read1(100).startswith(b"tick 0")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        routes = requests.get(server.url + "/stats", timeout=5).json()["routes"]
        if routes.get("/ticks", {}).get("open_streams") == 0:
            break
        time.sleep(0.05)
    assert routes["/ticks"]["open_streams"] == 0, routes
