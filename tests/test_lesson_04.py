"""Lesson 04, Server-Sent Events: the clock, resumption, three parsers, and goodbyes."""

import json
import math
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest
import requests
import sseclient
from httpx_sse import connect_sse

from lab.browser import wait_until
from lessons import load_lesson
from streamlib import FakeClock, call_app
from streamlib.sse import parse_events

lesson = load_lesson("04")


def ids(stream) -> list[int]:
    return [
        int(line[4:]) for line in b"".join(stream).decode().splitlines() if line.startswith("id: ")
    ]


def test_events_are_due_on_the_clock_and_carry_their_time():
    fake = FakeClock(start=100.2)
    events = list(lesson.clock_events(101, 3, 1.0, 15.0, fake.clock, fake.sleep))
    assert ids(events) == [101, 102, 103]
    assert fake.sleeps == pytest.approx([0.8, 1.0, 1.0])
    datas = [json.loads(e.data) for e in parse_events(events)]
    assert datas == [{"time": 101000}, {"time": 102000}, {"time": 103000}]


def test_a_long_wait_is_broken_by_heartbeats():
    fake = FakeClock(start=0.5)
    events = list(lesson.clock_events(1, 1, 5.0, 2.0, fake.clock, fake.sleep))
    # Event 1 is due at 5.0 s: 4.5 s of silence broken by two 2 s heartbeats.
    assert events[:2] == [None, None] and events[2].startswith(b"id: 1\n")
    assert fake.sleeps == pytest.approx([2.0, 2.0, 0.5])


def test_a_resumed_stream_sends_what_was_missed_at_once():
    fake = FakeClock(start=110.5)
    events = list(lesson.clock_events(106, 6, 1.0, 15.0, fake.clock, fake.sleep))
    assert ids(events) == [106, 107, 108, 109, 110, 111]
    assert fake.sleeps == pytest.approx([0.5]), "events 106-110 were already due"


NEXT = 10_001  # the next event due at 10,000.5 s with a 1 s interval


@pytest.mark.parametrize(
    ("last_event_id", "expected"),
    [
        (None, NEXT),
        ("10000", NEXT),
        ("9995", 9996),
        (str(NEXT - lesson.REPLAY_LIMIT - 1), NEXT - lesson.REPLAY_LIMIT),  # the oldest kept
        (str(NEXT - lesson.REPLAY_LIMIT - 2), NEXT),  # too old: fresh
        (str(NEXT), NEXT),  # in the future: fresh
        ("50000", NEXT),
        ("", NEXT),
        ("abc", NEXT),
        ("-5", NEXT),
        ("1e3", NEXT),
        ("٣", NEXT),
        ("9" * 400, NEXT),
    ],
)
def test_first_event_id_resumes_or_starts_fresh_never_fails(last_event_id, expected):
    assert lesson.first_event_id(last_event_id, 10_000.5, 1.0) == expected


def test_the_headers_flush_at_once_and_carry_no_hop_by_hop_header(course_app):
    response = call_app(course_app, "/events?count=2&interval=0.01&retry=2500")
    first = response.next_piece()
    response.close()
    assert first == b": connected\nretry: 2500\n\n"
    assert dict(response.headers) == {
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
        # what the course adds to every answer (lesson 02, "Only this machine's pages")
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; frame-ancestors 'self'",
    }


def dispatched(events):
    """The events a browser would dispatch. httpx-sse (0.4) also yields a message that has
    no data (our retry hint, and every heartbeat once an id was seen), where the spec says
    to dispatch nothing; a consumer of httpx-sse has to skip those."""
    return [event for event in events if event.data]


def parsed_three_ways(url: str) -> dict[str, list[tuple[str, str, str]]]:
    """The same stream, read by streamlib, sseclient-py and httpx-sse."""
    with requests.get(url, stream=True, timeout=10) as r:
        ours = [(e.event, e.id, e.data) for e in parse_events(r.iter_content(None))]
    with requests.get(url, stream=True, timeout=10) as r:
        theirs = [(e.event, e.id or "", e.data) for e in sseclient.SSEClient(r).events()]
    with httpx.Client(timeout=10) as client, connect_sse(client, "GET", url) as source:
        httpx_sse = [(e.event, e.id, e.data) for e in dispatched(source.iter_sse())]
    return {"streamlib": ours, "sseclient-py": theirs, "httpx-sse": httpx_sse}


@pytest.mark.live
def test_three_independent_parsers_read_the_same_events(live_url):
    # Heartbeats between the events: the parsers must skip comments alike.
    results = parsed_three_ways(live_url + "/events?count=4&interval=0.3&heartbeat=0.1")
    # Each read is a fresh connection, so compare shape and payload, not the ids.
    for name, events in results.items():
        assert len(events) == 4, (name, events)
        assert all(event == "message" and data.startswith('{"time": ') for event, _, data in events)
        numbers = [int(i) for _, i, _ in events]
        assert numbers == list(range(numbers[0], numbers[0] + 4)), (name, numbers)
        times = [json.loads(data)["time"] for _, _, data in events]
        assert times == [round(n * 0.3 * 1000) for n in numbers], name


@pytest.mark.live
def test_three_parsers_agree_on_a_resumed_stream_exactly(live_url):
    last = math.floor(time.time() / 0.05) - 20  # 20 events ago: all replayed at once
    url = live_url + "/events?count=5&interval=0.05"
    results = {}
    with requests.get(url, headers={"Last-Event-ID": str(last)}, stream=True, timeout=10) as r:
        results["streamlib"] = [(e.id, e.data) for e in parse_events(r.iter_content(None))]
    with requests.get(url, headers={"Last-Event-ID": str(last)}, stream=True, timeout=10) as r:
        results["sseclient-py"] = [(e.id, e.data) for e in sseclient.SSEClient(r).events()]
    headers = {"Last-Event-ID": str(last)}
    with httpx.Client(timeout=10) as c, connect_sse(c, "GET", url, headers=headers) as source:
        results["httpx-sse"] = [(e.id, e.data) for e in dispatched(source.iter_sse())]
    expected = [(str(n), json.dumps({"time": n * 50})) for n in range(last + 1, last + 6)]
    assert results == {name: expected for name in results}


@pytest.mark.live
@pytest.mark.parametrize("bad", ["abc", "-1", "99999999999999999999", "1", ""])
def test_a_bad_last_event_id_starts_a_fresh_stream(live_url, bad):
    started = time.time()
    with requests.get(
        live_url + "/events?count=1&interval=0.05", headers={"Last-Event-ID": bad}, stream=True
    ) as r:
        assert r.status_code == 200
        (event,) = parse_events(r.iter_content(None))
    assert int(event.id) >= math.floor(started / 0.05)


def open_streams(url: str) -> int:
    return (
        requests.get(url + "/stats", timeout=5)
        .json()["routes"]
        .get("/events", {})
        .get("open_streams", 0)
    )


@pytest.mark.live
def test_200_clients_leave_at_once_and_every_stream_is_closed_within_a_heartbeat(live_url):
    # Every stream writes at least every `heartbeat` seconds; after a client closes, the
    # server's first write still succeeds and the second fails. So every generator's
    # finally must have run within heartbeat + 1 s of the clients leaving.
    heartbeat = 0.25
    target = f"/events?interval=60&heartbeat={heartbeat}".encode()
    address = urlsplit(live_url)
    clients = []
    try:
        for _ in range(200):
            sock = socket.create_connection((address.hostname, address.port), timeout=10)
            sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            clients.append(sock)
        for sock in clients:
            received = b""
            while b": connected" not in received:
                received += sock.recv(4096)
        assert open_streams(live_url) == 200
    finally:
        for sock in clients:
            sock.close()
    left = time.monotonic()
    while open_streams(live_url) and time.monotonic() - left < 10:
        time.sleep(0.02)
    cleanup = time.monotonic() - left
    assert open_streams(live_url) == 0
    assert cleanup <= heartbeat + 1.0, f"the last stream closed {cleanup:.2f} s after its client"


def streamed_ids(page) -> list[int]:
    return [
        int(i)
        for i in page.eval_on_selector_all("li[data-streamed]", "els => els.map(e => e.dataset.id)")
    ]


@pytest.mark.browser
def test_chromium_follows_the_clock(live_url):
    from real_programs import chromium_page

    with chromium_page() as page:
        page.goto(live_url + "/demo/events?interval=0.1")
        wait_until(page, "document.querySelectorAll('li[data-streamed]').length >= 5")
        received = streamed_ids(page)
        state = page.text_content("#state")
    assert state == "open"
    assert received == list(range(received[0], received[0] + len(received)))


@pytest.mark.browser
def test_chromium_resumes_after_a_server_restart_with_no_gap_and_no_repeat():
    from real_programs import chromium_page

    from lab import free_port
    from lessons import spawn_course

    port = free_port()
    with chromium_page() as page:
        with spawn_course(port=port) as server:
            page.goto(server.url + "/demo/events?interval=0.1&retry=200")
            wait_until(page, "document.querySelectorAll('li[data-streamed]').length >= 5")
        before = streamed_ids(page)
        time.sleep(1.0)  # about ten events happen while no server runs
        with spawn_course(port=port):
            wait_until(
                page, "document.getElementById('reconnections').textContent === '1'", timeout=20_000
            )
            wanted = before[-1] + 15  # past the missed ones, into live events again
            wait_until(
                page,
                "[...document.querySelectorAll('li[data-streamed]')]"
                f".some(e => +e.dataset.id >= {wanted})",
                timeout=20_000,
            )
            received = streamed_ids(page)
    assert len(before) >= 5
    assert received == list(range(received[0], received[-1] + 1)), "a gap or a repeat"
    assert received[-1] >= wanted


@pytest.mark.browser
def test_chromium_reconnects_across_origins_with_last_event_id_and_no_preflight():
    """Lesson 04's claim, in a real browser: an EventSource opened by another origin's page
    sends ``Origin`` and, on reconnecting, ``Last-Event-ID``, and never an OPTIONS."""
    from real_programs import chromium_page

    with chromium_page() as page:
        got = lesson.cross_origin_requests(page, reconnections=2)
    methods = [method for method, _, _ in got]
    origins = {origin for _, origin, _ in got}
    assert methods == ["GET", "GET", "GET"], got
    assert len(origins) == 1 and origins.pop().startswith("http://127.0.0.1:")
    assert [last_id for _, _, last_id in got] == ["", "1", "2"]
