"""Lesson 09: the course's streams in Flask and Django read exactly like the WSGI originals,
and what each framework adds or breaks is shown, not told."""

import contextlib
import json
import socket
import sys
import time
import wsgiref.util
import zlib

import httpx
import pytest
import requests
import sseclient
from flask import Flask, Response, request, send_from_directory, stream_with_context
from httpx_sse import connect_sse

from lab import free_port, observe, serve, spawn_server
from lessons import load_lesson, load_lessons
from lessons.course import build_app
from streamlib import call_app
from streamlib.sse import parse_events

lesson = load_lesson("09")
FRAMEWORKS = ["/flask", "/django"]
MESSAGES = [{"role": "user", "content": "Why stream?"}]


def event_ids(events) -> list[int]:
    return [int(event.id) for event in events]


# -- the clock ---------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", FRAMEWORKS)
def test_the_clock_sends_lesson_04s_bytes_through_each_framework(course_app, prefix):
    """Same headers, same events (ids, due times, retry), as lesson 04's /events."""
    query = "?count=3&interval=0.05&retry=2500"
    ours = call_app(course_app, prefix + "/events" + query)
    original = call_app(course_app, "/events" + query)
    assert ours.status == original.status == "200 OK"
    assert ours.header("Content-Type") == "text/event-stream"
    assert ours.header("Cache-Control") == "no-cache"
    assert ours.header("X-Accel-Buffering") == "no"
    got, expected = list(parse_events([ours.read()])), list(parse_events([original.read()]))
    assert [e.data for e in got] == [json.dumps({"time": i * 50}) for i in event_ids(got)]
    assert len(got) == len(expected) == 3 and got[0].retry == expected[0].retry == 2500


@pytest.mark.parametrize("prefix", FRAMEWORKS)
def test_the_clock_resumes_after_last_event_id(course_app, prefix):
    now = int(time.time() / 0.05)
    response = call_app(
        course_app,
        prefix + "/events?count=3&interval=0.05",
        headers={"Last-Event-ID": str(now - 10)},
    )
    assert event_ids(parse_events([response.read()])) == [now - 9, now - 8, now - 7]


@pytest.mark.parametrize("prefix", FRAMEWORKS)
@pytest.mark.parametrize(
    ("query", "says"),
    [("count=-1", "count"), ("interval=abc", "interval"), ("heartbeat=1e999", "heartbeat")],
)
def test_a_bad_parameter_is_the_courses_plain_400_in_each_framework(
    course_app, prefix, query, says
):
    response = call_app(course_app, f"{prefix}/events?{query}")
    text = response.read().decode()
    assert response.status.startswith("400") and response.header("Content-Type").startswith(
        "text/plain"
    )
    assert text.startswith(f"400 Bad Request: {says}") and "<" not in text, text


@pytest.mark.live
@pytest.mark.parametrize("prefix", FRAMEWORKS)
def test_independent_sse_clients_read_each_frameworks_clock(live_url, prefix):
    url = f"{live_url}{prefix}/events?count=3&interval=0.1"
    with requests.get(url, stream=True, timeout=10) as response:
        by_sseclient = list(sseclient.SSEClient(response).events())
    with httpx.Client(timeout=10) as client, connect_sse(client, "GET", url) as source:
        by_httpx_sse = list(source.iter_sse())
    for received in (by_sseclient, by_httpx_sse):
        events = [event for event in received if event.data]  # not the retry-only first one
        ids = event_ids(events)
        assert len(ids) == 3 and ids == list(range(ids[0], ids[0] + 3))
        assert [json.loads(e.data)["time"] for e in events] == [i * 100 for i in ids]


def route_stats(stats, route: str) -> dict:
    return stats.snapshot()["routes"].get(route, {})


def wait_closed(stats, route: str) -> dict:
    """The route's counters once its streams are all closed (5 s at most)."""
    deadline = time.monotonic() + 5
    while route_stats(stats, route).get("open_streams") and time.monotonic() < deadline:
        time.sleep(0.05)
    return route_stats(stats, route)


@pytest.mark.live
@pytest.mark.parametrize("prefix", FRAMEWORKS)
def test_a_stream_left_by_its_client_is_closed_and_counted(live_url, stats, prefix):
    route = prefix + "/events"
    response = requests.get(f"{live_url}{route}?heartbeat=0.1", stream=True, timeout=10)
    next(response.iter_content(chunk_size=None))  # the hello comment: the stream is open
    assert route_stats(stats, route)["open_streams"] == 1
    response.close()
    entry = wait_closed(stats, route)
    assert entry["open_streams"] == 0 and entry["streams_closed"] == 1, entry


# -- ticks -------------------------------------------------------------------------------


@pytest.mark.live
@pytest.mark.parametrize("prefix", FRAMEWORKS)
def test_ticks_arrive_one_by_one_through_each_framework(live_url, prefix):
    started = time.monotonic()
    arrivals = []
    with requests.get(f"{live_url}{prefix}/ticks?count=3&interval=0.3", stream=True) as response:
        for piece in response.iter_content(chunk_size=None):
            arrivals.append((piece, time.monotonic() - started))
    assert b"".join(piece for piece, _ in arrivals) == b"tick 0\ntick 1\ntick 2\n"
    assert arrivals[0][1] < 0.25 and arrivals[-1][1] > 0.55, arrivals


# -- chat completions --------------------------------------------------------------------


# The official openai client reads both mounts: tests/test_lesson_06.py runs its tests
# against /flask/v1 and /django/v1 too.


@pytest.mark.live
@pytest.mark.parametrize("prefix", FRAMEWORKS)
def test_generation_stops_when_the_client_leaves(live_url, stats, prefix):
    route = prefix + "/v1/chat/completions"
    body = {"model": "fake", "stream": True, "messages": MESSAGES}
    query = "?latency=0&rate=50&length=1000"
    response = requests.post(live_url + route + query, json=body, stream=True, timeout=10)
    received = 0
    for event in parse_events(response.iter_content(chunk_size=None)):
        received += bool(json.loads(event.data)["choices"][0]["delta"].get("content"))
        if received == 5:
            break
    response.close()
    entry = wait_closed(stats, route)
    assert entry["open_streams"] == 0 and entry["generations_stopped"] == 1, entry
    assert entry["tokens_generated"] - received <= 2, entry


# -- files -------------------------------------------------------------------------------


def test_each_frameworks_file_answers_are_the_ones_the_lesson_tabulates(course_app):
    """Lesson 02 keeps RFC 9110; Django (FileResponse, its preconditions, the course's range
    pick) answers the same; Flask's send_file differs where the lesson says."""
    size = (load_lesson("02").sample_folder() / "hello.txt").stat().st_size
    whole, unsatisfiable = f"206 bytes 0-{size - 1}/{size}", f"416 bytes */{size}"
    rfc_9110 = {
        "GET": "200",
        "HEAD": "200",
        "a range: bytes=0-4": f"206 bytes 0-4/{size}",
        "the last 5 bytes: bytes=-5": f"206 bytes {size - 5}-{size - 1}/{size}",
        "a suffix longer than the file": whole,  # section 14.1.2: the entire representation
        "two ranges": "200",  # one may ignore Range; the course does for several
        "a range past the end": unsatisfiable,
        "a malformed range": "200",  # section 14.2: an invalid Range is ignored
        "If-None-Match: its ETag": "304",
        "If-Modified-Since: its date": "304",
        "If-Match: another ETag": "412",
        "If-Match: its ETag, weak": "412",  # If-Match compares strongly
        "If-Unmodified-Since: long ago": "412",
        "If-Match: another, If-None-Match: its": "412",  # If-Match is evaluated first
        "If-Range: another ETag": "200",
        "If-Range: its ETag": f"206 bytes 0-4/{size}",
    }
    assert lesson.file_statuses(course_app, "/files/hello.txt") == rfc_9110
    assert lesson.file_statuses(course_app, "/django/files/hello.txt") == rfc_9110
    flask = lesson.file_statuses(course_app, "/flask/files/hello.txt")
    assert {what: got for what, got in flask.items() if got != rfc_9110[what]} == {
        "a suffix longer than the file": unsatisfiable,
        "two ranges": unsatisfiable,
        "a malformed range": unsatisfiable,
        "If-Unmodified-Since: long ago": "200",
    }


SECRET = "the contents of a file outside the served folder"


@pytest.fixture
def served(tmp_path):
    """A served folder with a file, a hidden one, and a symlink that leads out of it."""
    (tmp_path / "secret.txt").write_text(SECRET)
    folder = tmp_path / "served"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    (folder / ".env").write_text("hidden")
    (folder / "out").symlink_to(tmp_path / "secret.txt")
    return folder


@pytest.mark.parametrize("prefix", FRAMEWORKS)
@pytest.mark.parametrize("name", ["out", ".env", "missing.txt", "..%2fsecret.txt", "%2e%2e/x"])
def test_only_the_served_folders_own_files_leave_it(stats, served, prefix, name):
    app = build_app(load_lessons(), stats, {"course.files": str(served)})
    assert call_app(app, f"{prefix}/files/a.txt").read() == b"a"
    response = call_app(app, f"{prefix}/files/{name}")
    body = response.read()
    assert response.status.startswith("404") and SECRET.encode() not in body, body
    assert body.startswith(b"404 Not Found") and b"<" not in body, body


def test_flasks_send_from_directory_alone_follows_a_symlink_out(served):
    """Why the Flask view checks the name itself before ``send_file``."""
    app = Flask("send_from_directory")

    @app.get("/<path:name>")
    def files(name):
        return send_from_directory(served, name)

    assert call_app(app, "/out").read() == SECRET.encode()


@pytest.mark.parametrize("prefix", FRAMEWORKS)
def test_each_framework_hands_a_whole_file_to_the_servers_file_wrapper(course_app, prefix):
    """Flask's ``send_file`` and Django's ``FileResponse`` give the server its
    ``wsgi.file_wrapper`` (sendfile under gunicorn); a range is read and sent by a
    generator instead (werkzeug's ``_RangeWrapper``, the lesson's ``requested_range``)."""
    environ_extra = {"wsgi.file_wrapper": wsgiref.util.FileWrapper}
    whole = call_app_with(course_app, f"{prefix}/files/hello.txt", {}, environ_extra)
    assert isinstance(whole.body, wsgiref.util.FileWrapper)
    part = call_app_with(
        course_app, f"{prefix}/files/hello.txt", {"Range": "bytes=0-4"}, environ_extra
    )
    assert part.status.startswith("206") and not isinstance(part.body, wsgiref.util.FileWrapper)
    assert whole.read()[:5] == part.read()


def call_app_with(app, path: str, headers: dict, environ_extra: dict):
    """``call_app`` with more keys in the environ (such as a server's file wrapper), and
    the body as the app returned it (no validator around it)."""

    def with_extra(environ, start_response):
        environ.update(environ_extra)
        return app(environ, start_response)

    return call_app(with_extra, path, headers=headers, validate=False)


# -- what each framework adds or breaks --------------------------------------------------


def test_flask_without_stream_with_context_loses_the_request_inside_the_generator():
    app = Flask("without")

    @app.get("/")
    def greet():
        def lines():
            yield f"hello {request.args['name']}\n".encode()  # the context is gone by now

        return Response(lines())

    with pytest.raises(RuntimeError, match="outside of request context"):
        call_app(app, "/?name=Ada").read()


def test_flask_with_stream_with_context_keeps_the_request(course_app):
    response = call_app(course_app, "/flask/greetings?name=Ada&count=2")
    assert response.read() == b"hello Ada (0)\nhello Ada (1)\n"


def test_the_wrapper_still_closes_the_generator_when_the_client_leaves():
    closed = []
    app = Flask("closing")

    @app.get("/")
    def endless():
        @stream_with_context
        def lines():
            try:
                while True:
                    yield request.path.encode()
            finally:
                closed.append(True)

        return Response(lines())

    response = call_app(app, "/")
    response.next_piece()
    response.close()  # what a server does when its write fails
    assert closed == [True]


@pytest.mark.live
def test_djangos_gzip_holds_the_events_until_the_stream_ends(live_url):
    """The same clock, plain and through ``gzip_page``: the plain one's body starts at once
    (the hello comment), the gzipped one's only when the stream ends."""
    firsts = {}
    for path in ("/django/events", "/django/events-gzip"):
        started = time.monotonic()
        with requests.get(
            f"{live_url}{path}?count=3&interval=0.4",
            headers={"Accept-Encoding": "gzip"},
            stream=True,
            timeout=10,
        ) as response:
            gunzip = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip's header
            seen = b""
            for piece in response.raw.stream(1024, decode_content=False):
                seen += gunzip.decompress(piece) if path.endswith("gzip") else piece
                if seen:  # the first bytes of the body, decompressed
                    break
            firsts[path] = time.monotonic() - started
    assert firsts["/django/events"] < 0.3 < firsts["/django/events-gzip"], firsts


@pytest.mark.live
def test_a_generator_of_empty_pieces_never_learns_that_its_client_left():
    """pallets/flask#4385: an empty piece is never written, so no write fails and nothing
    closes the generator; one byte per piece, and the first failed write does."""
    finished = {}
    app = Flask("empty_pieces")

    @app.get("/<kind>")
    def pieces(kind):
        piece = b"" if kind == "empty" else b"."

        def body():
            started = time.monotonic()
            try:
                while time.monotonic() - started < 2.0:  # bounded: it ends by itself at 2 s
                    yield piece
                    time.sleep(0.01)
            finally:
                finished[kind] = time.monotonic() - started

        return Response(body())

    with serve(app) as url:
        for kind in ("empty", "byte"):
            response = requests.get(f"{url}/{kind}", stream=True, timeout=5)
            if kind == "byte":
                next(response.iter_content(chunk_size=None))
            time.sleep(0.2)
            response.close()  # the client leaves
        deadline = time.monotonic() + 5
        while len(finished) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert finished["byte"] < 1.0, finished  # closed at a failed write, soon after leaving
    assert finished["empty"] >= 2.0, finished  # ran its whole course for nobody


@pytest.mark.browser
@pytest.mark.parametrize("prefix", FRAMEWORKS)
def test_chromiums_eventsource_follows_each_frameworks_clock(live_url, prefix):
    from real_programs import chromium_page

    with chromium_page() as page:
        page.goto(live_url + "/")  # the same origin as the stream
        ids = page.evaluate(
            """(url) => new Promise((resolve, reject) => {
                 const ids = [];
                 const source = new EventSource(url);
                 source.onmessage = (message) => {
                   ids.push(Number(message.lastEventId));
                   if (ids.length === 3) { source.close(); resolve(ids); }
                 };
                 setTimeout(() => reject(new Error("got " + ids)), 5000);
               })""",
            f"{prefix}/events?interval=0.1",
        )
    assert ids == list(range(ids[0], ids[0] + 3))


# -- where ASGI differs ------------------------------------------------------------------


@pytest.mark.live
def test_the_asgi_clock_sends_lesson_04s_events(asgi_server):
    url = asgi_server.url + "/events?count=3&interval=0.1&retry=2500"
    with requests.get(url, stream=True, timeout=10) as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        events = list(parse_events(response.iter_content(chunk_size=None)))
    ids = event_ids(events)
    assert ids == list(range(ids[0], ids[0] + 3)) and events[0].retry == 2500
    assert [json.loads(e.data)["time"] for e in events] == [i * 100 for i in ids]
    bad = requests.get(asgi_server.url + "/events?interval=abc", timeout=10)
    assert bad.status_code == 400 and bad.text.startswith("400 Bad Request: interval")
    rebound = requests.get(asgi_server.url + "/stats", headers={"Host": "evil.example"}, timeout=10)
    assert rebound.status_code == 403 and "'evil.example'" in rebound.text


def cleanup_after_leaving(url: str) -> tuple[float, float]:
    """Seconds from a client's leaving a quiet stream (``url``: heartbeats every second,
    no event for a minute) until the server's ``/stats`` shows it closed; and the seconds
    the client held the stream before it left."""
    base = url.split("/events")[0]
    began = time.monotonic()
    response = requests.get(url, stream=True, timeout=10)
    next(response.iter_content(chunk_size=None))  # the hello comment
    response.close()
    left = time.monotonic()
    while requests.get(base + "/stats", timeout=5).json()["open_streams"]:
        assert time.monotonic() - left < 5, "the stream outlived its client by 5 s"
        time.sleep(0.02)
    return time.monotonic() - left, left - began


@pytest.mark.live
def test_asgi_learns_at_once_that_its_client_left_wsgi_at_the_second_write(
    asgi_server, course_process
):
    quiet = "/events?interval=60&heartbeat=1"
    asgi, _ = cleanup_after_leaving(asgi_server.url + quiet)
    wsgi, held = cleanup_after_leaving(course_process.url + quiet)
    assert asgi < 0.5, f"uvicorn's http.disconnect: closed {asgi:.2f} s after the client left"
    # The first heartbeat after the close is written without error, the second fails. A
    # client slowed down past the first heartbeat (a loaded machine) closes with it unread,
    # which sends a reset at once: then the next heartbeat already fails.
    earliest = 0.9 if held < 0.8 else 0.0
    assert earliest < wsgi < 2.5, f"WSGI: closed {wsgi:.2f} s after the client left ({held=:.2f})"


@pytest.mark.live
def test_django_under_asgi_drains_a_plain_generator_before_it_sends_a_byte():
    """Issue 30: the lesson said Django pulls each piece through a thread; it runs
    ``sync_to_async(list)`` over the generator. Four ticks 0.25 s apart arrive together at
    the end, and a clock with an event due every 0.5 s sends its headers and then nothing
    while it runs (so an endless one would send nothing at all)."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "lessons.django_streams:asgi_application"]
    with spawn_server([*command, "--port", str(port)], port, ready_path="/ticks?count=0") as asgi:
        ticks = observe(asgi.url + "/ticks?count=4&interval=0.25")
        with socket.create_connection(("127.0.0.1", port), timeout=1.5) as sock:
            sock.sendall(b"GET /events?count=5&interval=0.5 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            received = b""
            with contextlib.suppress(TimeoutError):
                while data := sock.recv(65536):
                    received += data
    arrivals = [chunk.at for chunk in ticks.chunks]
    assert min(arrivals) > 0.7 and max(arrivals) - min(arrivals) < 0.05, arrivals  # at the end
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and body == b"", received[:300]


def test_django_warns_when_asgi_serves_a_stream_of_a_sync_iterator():
    """Under ASGI, Django drains a sync generator through a thread, then sends it."""
    import asyncio

    from django.core.handlers.asgi import ASGIHandler

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/ticks",
        "raw_path": b"/ticks",
        "query_string": b"count=2&interval=0",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent, requests_left = [], [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive():
        if requests_left:
            return requests_left.pop()
        await asyncio.Event().wait()  # the client stays: no disconnect while it streams

    async def send(message):
        sent.append(message)

    with pytest.warns(Warning, match="must consume synchronous iterators"):
        asyncio.run(ASGIHandler()(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert body == b"tick 0\ntick 1\n"


@pytest.mark.live
def test_djangos_runserver_streams_without_chunks_and_ends_the_body_at_close():
    import socket
    import sys

    from lab import free_port, spawn_server

    port = free_port()
    command = [sys.executable, "-m", "lessons.django_streams", "runserver", str(port)]
    with spawn_server([*command, "--noreload"], port, ready_path="/ticks?count=0") as server:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /ticks?count=3&interval=0.3 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            started, pieces = time.monotonic(), []
            while piece := sock.recv(65536):  # until the server closes
                pieces.append((piece, time.monotonic() - started))
        assert server.process.poll() is None
    head, _, body = b"".join(piece for piece, _ in pieces).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"Connection: close" in head
    assert b"Transfer-Encoding" not in head and body == b"tick 0\ntick 1\ntick 2\n"
    assert pieces[-1][1] - pieces[0][1] > 0.5, "the ticks came together, not as they were made"


def django_response_through(middleware_class, path: str):
    """What Django's ``middleware_class`` makes of a view's response to ``GET path``."""
    from django.test import RequestFactory
    from django.urls import resolve

    request = RequestFactory().get(path)
    view = resolve(request.path).func
    return middleware_class(lambda request: view(request))(request)


def test_djangos_conditional_get_middleware_leaves_a_stream_alone():
    from django.middleware.http import ConditionalGetMiddleware

    response = django_response_through(ConditionalGetMiddleware, "/ticks?count=2&interval=0")
    assert response.streaming and not response.has_header("ETag")  # no body read to hash
    assert b"".join(response) == b"tick 0\ntick 1\n"


def test_a_django_middleware_that_reads_content_fails_on_a_stream():
    class LogsTheBody:  # a plausible logging middleware, written for whole responses
        def __init__(self, get_response):
            self.get_response = get_response

        def __call__(self, request):
            response = self.get_response(request)
            print(len(response.content))
            return response

    with pytest.raises(AttributeError, match="streaming_content"):
        django_response_through(LogsTheBody, "/ticks?count=2&interval=0")
