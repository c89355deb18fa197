"""No input makes a 500, and every stream is closed: property-based tests (Hypothesis).

Hypothesis generates requests for every route of the course's Route table: query values
(huge numbers, negative, garbage, any Unicode), headers (Range, If-*, Last-Event-ID,
Content-Type), bodies (JSON of any shape and depth, any bytes) and, on live servers, raw
request bytes. Whatever comes, the answer is never a 5xx, the server keeps answering, and
``/stats`` shows every stream closed again.

Example counts are bounded so the suite keeps to its time. Under CI, Hypothesis's own
``ci`` profile derandomizes the run and prints the blob that reproduces a failure
(``@reproduce_failure``); elsewhere ``--hypothesis-seed=N`` repeats a run.
"""

import hashlib
import json
import random
import socket
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import SERVER_KINDS, WRITE_SERVER_KINDS
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lessons import load_lessons, spawn_course
from lessons.course import build_app
from streamlib import StreamStats, call_app

ROUTES = [route for lesson in load_lessons() for route in lesson.routes]
COURSE = build_app(load_lessons(), StreamStats())
TIMING = {"delay", "interval", "latency", "heartbeat"}

HEADER_NAMES = [
    *("Range", "If-Range", "If-Match", "If-None-Match", "If-Modified-Since"),
    *("If-Unmodified-Since", "Last-Event-ID", "Content-Type", "Accept-Encoding"),
    *("Host", "Origin", "Sec-Fetch-Site", "Access-Control-Request-Method"),
    "Access-Control-Request-Headers",
    *("Upload-Offset", "Upload-Complete", "Content-Digest", "Expect"),
]
# Digit strings past int64, some past CPython's 4,300-digit limit for int() (str(int) would
# refuse to make those, so they are built as text).
huge = st.one_of(
    st.text(alphabet="0123456789", min_size=19, max_size=40),
    st.sampled_from([310, 4000, 4301, 6000]).map(lambda digits: "9" * digits),
)
numbers = st.one_of(
    huge,  # twice: the largest numbers found the most bugs
    st.integers(-(10**9), 10**9).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    huge,
    st.sampled_from(["", "-0", "1e999", "nan", "0x10", "1_000", "٣", " 1", "1 "]),
)
# Waits (interval, delay, latency, heartbeat) are either quick or invalid: a valid long one
# would hold a stream (and a test) for minutes, and a stream learns that its client left
# only at its next write, so /stats could not be back to zero in seconds.
quick_numbers = st.sampled_from(["0", "0.001", "0.01"])
bad_numbers = st.one_of(
    huge,
    st.integers(max_value=-1).map(str),
    st.sampled_from(["", "nan", "1e999", "-0.5", "abc", "٣", "1_000"]),
)
texts = st.text(max_size=300)


def parameters_of(route) -> list[str]:
    """The query parameters a route reads (its example's), and one it does not."""
    from urllib.parse import parse_qsl, urlsplit

    named = [name for name, _ in parse_qsl(urlsplit(route.example).query)]
    return sorted({*named, *route.free_text, "unknown"})


@st.composite
def queries(draw, route) -> dict[str, str]:
    names = draw(st.lists(st.sampled_from(parameters_of(route)), max_size=4, unique=True))
    query = {}
    for name in names:
        if name in TIMING:
            query[name] = draw(st.one_of(quick_numbers, bad_numbers))
        else:
            query[name] = draw(st.one_of(numbers, numbers, texts))
    return query


@st.composite
def requests_for(draw, routes) -> tuple:
    route = draw(st.sampled_from(routes))
    return route, draw(queries(route))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
chat_shaped = st.fixed_dictionaries(
    {
        "model": st.one_of(st.just("fake"), json_values),
        "messages": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {"role": st.sampled_from(["user", "system", 1]), "content": texts}
                ),
                max_size=3,
            ),
            json_values,
        ),
    },
    optional={
        "stream": st.one_of(st.booleans(), json_values),
        "max_tokens": st.one_of(st.integers(), json_values),
        "stream_options": st.one_of(
            st.fixed_dictionaries({"include_usage": json_values}), json_values
        ),
        "text": texts,
    },
)
bodies = st.one_of(
    chat_shaped.map(lambda value: json.dumps(value).encode()),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=300),
    st.integers(1, 60_000).map(lambda depth: b"[" * depth),
    st.just(b'{"text": "\\ud800"}'),
    huge.map(lambda digits: b'{"model": "m", "max_tokens": %s}' % digits.encode()),
)
headers = st.dictionaries(
    st.sampled_from(HEADER_NAMES),
    st.one_of(
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=80),
        st.sampled_from(["bytes=0-4", "bytes=-0", "bytes=99999999999999999999-", "*", 'W/"x"']),
        st.sampled_from(["evil.example", "localhost:8000", "[::1]", "null", "cross-site"]),
        st.sampled_from(["http://evil.example", "http://localhost:5173", "POST", "last-event-id"]),
        huge,
    ),
    max_size=3,
)
names = st.one_of(
    st.sampled_from(["hello.txt", "tone.wav", "../etc/passwd", "a" * 300, "%00", "x/" * 200]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40),
)


def path_of(route, name: str) -> str:
    from urllib.parse import quote

    return route.path.replace("<path:name>", quote(name, safe="/")).replace("<name>", quote(name))


def body_pieces(response, at_most: int = 1) -> None:
    """Pull the first piece of the body, as a client that leaves early; then close it.

    One piece: the endless room would wait a heartbeat (up to 300 s) for the next.
    """
    try:
        for _ in range(at_most):
            response.next_piece()
    except StopIteration:
        pass
    finally:
        response.close()


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    request=requests_for(ROUTES),
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH"]),
    request_headers=headers,
    body=bodies,
    name=names,
)
def test_no_request_makes_a_500_in_process(request, method, request_headers, body, name):
    from urllib.parse import urlencode

    route, query = request
    stats = StreamStats()
    with tempfile.TemporaryDirectory() as uploads:  # lesson 11 stores what is PUT
        app = build_app(load_lessons(), stats, {"course.uploads": uploads})
        path = path_of(route, name) + ("?" + urlencode(query) if query else "")
        sent_body = body if method in ("POST", "PUT", "PATCH") else b""
        response = call_app(app, path, method, request_headers, sent_body)
        body_pieces(response)
    assert response.status_code < 500, (response.status_code, path, request_headers)
    assert stats.snapshot()["open_streams"] == 0, stats.snapshot()
    assert_guarded(response)


def assert_guarded(response) -> None:
    """Issue 29: every answer forbids sniffing; a page carries a policy that lists its own
    scripts only and lets no other site frame it; anything else either the same framing
    rule or, for a served file, a sandbox."""
    headers = {name.lower(): value for name, value in response.headers}
    assert headers.get("x-content-type-options") == "nosniff", response.headers
    policy = headers.get("content-security-policy", "")
    if headers.get("content-type", "").startswith("text/html"):
        assert "default-src 'none'" in policy and "script-src " in policy, policy
        assert "frame-ancestors 'self'" in policy, policy
    else:
        assert "frame-ancestors 'self'" in policy or policy == "sandbox", policy


PAGES = ["/", "/inspect", "/lessons/{n}", "/demo/events", "/demo/chat", "/demo/video"]
PAGES += ["/demo/many", "/demo/upload", "/demo/broadcast", "/nowhere", "/files/{n}"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    page=st.sampled_from(PAGES),
    number=st.one_of(st.integers(-1, 12).map(str), texts),
    query=st.dictionaries(
        st.sampled_from(["path", "path2", "method", "body", "n", "name", "rate"]),
        st.one_of(texts, st.sampled_from(["/ticks", "POST", "GET", "/broadcast"])),
        max_size=4,
    ),
    method=st.sampled_from(["GET", "HEAD", "POST"]),
)
def test_every_page_and_error_carries_the_headers_that_keep_other_sites_out(
    page, number, query, method
):
    """The index, the inspector, the lesson pages, the demos and the error pages, asked
    with any query: never a 5xx, and every answer guarded (:func:`assert_guarded`)."""
    from urllib.parse import quote, urlencode

    path = page.replace("{n}", quote(number, safe=""))
    response = call_app(COURSE, path + "?" + urlencode(query), method, {"Host": "127.0.0.1"})
    body_pieces(response)
    assert response.status_code < 500
    assert_guarded(response)


# The values that broke the course before, tried on every parameter of every route (a table,
# so that none of them depends on what Hypothesis happens to draw).
HOSTILE_VALUES = ["9" * 4301, "9" * 400, "-1", "nan", "1e999", "", "abc", "٣", "\x00", "a" * 300]
HOSTILE_HEADERS = [
    {"Last-Event-ID": "9" * 5000},
    {"Last-Event-ID": "0-99999999999999999999"},
    {"Range": "bytes=99999999999999999999999-"},
    {"If-Modified-Since": "Mon, 01 Jan 99999 00:00:00 GMT"},
    {"If-Match": "W/" + "x" * 5000},
]
HOSTILE_BODIES = [
    b"[" * 50_000,
    b'{"model": "m", "max_tokens": ' + b"9" * 5000 + b"}",
    b'{"model": "m", "messages": [{"role": "user", "content": "\\ud800"}]}',
    b"\xff\xfe",
]


@pytest.mark.parametrize("route", ROUTES, ids=[route.path for route in ROUTES])
def test_every_parameter_of_every_route_refuses_hostile_values(route):
    from urllib.parse import urlencode

    uploads = tempfile.mkdtemp()  # lesson 11 stores what is PUT; removed by the OS's tmp
    app = build_app(load_lessons(), stats := StreamStats(), {"course.uploads": uploads})
    base = path_of(route, "hello.txt")
    asked = [
        (method, f"{base}?{urlencode({name: value})}", {}, b"")
        for name in parameters_of(route)
        for value in HOSTILE_VALUES
        for method in route.methods
    ]
    asked += [(method, base, h, b"") for h in HOSTILE_HEADERS for method in route.methods]
    asked += [("POST", base, {"Content-Type": "application/json"}, b) for b in HOSTILE_BODIES]
    for method, path, request_headers, body in asked:
        response = call_app(app, path, method, request_headers, body)
        body_pieces(response)
        assert response.status_code < 500, (method, path[:80], request_headers.keys(), body[:30])
    assert stats.snapshot()["open_streams"] == 0


# Raw bytes a hostile client sends: broken request lines, broken chunked bodies, lies in
# Content-Length, absurd headers. The server must answer 4xx or close, and stay up.
RAW_REQUESTS = [
    b"GET /ticks HTTP/1.1\r\nHost: 127.0.0.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    b"POST /broadcast HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n5\r\n{}\r\n0\r\n\r\n",
    b"POST /broadcast HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n",
    b"POST /broadcast HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Length: 99999999999999999999999\r\n\r\n",
    b"GET /\x00 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"\xff\xfe\r\n\r\n",
    b"GET /files/..%2f..%2fetc%2fpasswd HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    # Uploads (lesson 11): a body both chunked and with a length (request smuggling), broken
    # chunks, a length far past the cap behind Expect, and an append that lies about itself.
    b"PUT /uploads/s.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"PUT /uploads/s.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"fffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
    b"PUT /uploads/s.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
    b"Content-Length: 99999999999999\r\n\r\n",
    b"PATCH /uploads/s.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/partial-upload"
    b"\r\nUpload-Offset: 0\r\nUpload-Complete: ?1\r\nContent-Length: 100\r\n\r\nshort",
    b"POST /uploads HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
    b"boundary=x\r\nContent-Length: 30\r\n\r\n--x\r\nContent-Disposition: form",
]


def send_raw(url: str, raw: bytes) -> bytes:
    host, port = url.split("://")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        try:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may close before it has read everything: that is an answer too
        received = b""
        try:
            while data := sock.recv(65536):
                received += data
        except (ConnectionResetError, TimeoutError):
            pass
        return received


def status_of(answer: bytes) -> int | None:
    parts = answer.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


@pytest.fixture(scope="module", params=list(SERVER_KINDS))
def server(request, tmp_path_factory):
    uploads = str(tmp_path_factory.mktemp("uploads"))
    with spawn_course(*SERVER_KINDS[request.param], "--uploads", uploads) as process:
        yield process


def stats_of(url: str) -> dict:
    import requests

    return requests.get(url + "/stats", timeout=10).json()


def settled(url: str, seconds: float = 25.0) -> dict:
    """``/stats`` once every stream is closed again (or as it is when time runs out).

    A stream learns that its client left when a write fails, and the first write after the
    client's close may still succeed: up to two heartbeats, 10 s each by default (lesson
    04), so 25 s. Ten were too few for ``/upload-progress`` under gthread, once."""
    deadline = time.monotonic() + seconds
    while (snapshot := stats_of(url))["open_streams"] and time.monotonic() < deadline:
        time.sleep(0.1)
    return snapshot


@pytest.mark.live
@pytest.mark.parametrize("raw", RAW_REQUESTS, ids=range(len(RAW_REQUESTS)))
def test_raw_hostile_requests_get_a_4xx_or_a_close(server, raw):
    status = status_of(send_raw(server.url, raw))
    assert status is None or status < 500, status
    assert settled(server.url)["open_streams"] == 0


@pytest.mark.live
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    request=requests_for([r for r in ROUTES if r.path != "/broadcast"]),
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH"]),
    request_headers=headers,
    body=bodies,
    name=names,
)
def test_no_request_makes_a_500_on_a_live_server(
    server, request, method, request_headers, body, name
):
    route, query = request
    path = path_of(route, name)
    data = body if method != "GET" else None
    status = first_status(method, server.url + path, query, request_headers, data)
    assert status is None or status < 500, (status, path, query, request_headers)
    assert settled(server.url)["open_streams"] == 0


def first_status(method: str, url: str, query: dict, headers: dict, data: bytes | None):
    """The status of a request whose client reads the first piece of the body and leaves;
    None if ``requests`` itself refused to send such a header (nothing reached the server)."""
    import requests

    try:
        with requests.request(
            method, url, params=query, headers=headers, data=data, stream=True, timeout=15
        ) as response:
            next(response.raw.stream(1024, decode_content=False), b"")
            return response.status_code
    except requests.exceptions.InvalidHeader:
        return None


CLOCK = next(route for route in ROUTES if route.path == "/events")


@pytest.mark.live
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(query=queries(CLOCK), request_headers=headers, path=st.sampled_from(["/events", "/x"]))
def test_the_asgi_clock_under_uvicorn_refuses_what_the_course_refuses(
    asgi_server, query, request_headers, path
):
    """Lesson 09's Starlette clock checks its parameters, ``Last-Event-ID`` and ``Host``
    with the course's own code: never a 5xx, and every stream closed again."""
    status = first_status("GET", asgi_server.url + path, query, request_headers, None)
    assert status is None or status < 500, (status, path, query, request_headers)
    assert settled(asgi_server.url)["open_streams"] == 0


# -- The write path, interleaved (lesson 11; issue 28) -----------------------------------------
#
# Hypothesis drives every write route from several threads at once: PUTs, resumable uploads
# started, appended to at the right offset and the wrong ones, asked, cancelled, files
# deleted, on a few names, one of which is a symbolic link to a file outside the upload
# folder and one a folder. After each batch of concurrent requests, nothing is a 5xx, the
# file outside is as it was, each unfinished upload holds exactly bytes its appends sent at
# the offsets they named, each finished one is such bytes, and each stored file is a body
# some request had accepted.

NAMES = ["a.bin", "b.bin", "link.bin", "dir.bin"]
PIECE = 64 * 1024  # the course's: a longer body may be cut between two pieces

payloads = st.tuples(st.integers(0, 2**16), st.sampled_from([0, 1, 17, 300, 70_000])).map(
    lambda seed_size: random.Random(seed_size[0]).randbytes(seed_size[1])
)
paces = st.sampled_from([0.0, 0.0, 0.02])  # seconds between a body's three parts: 0 is at once
write_steps = st.one_of(
    st.tuples(st.just("put"), st.sampled_from(NAMES), payloads),
    st.tuples(st.just("start"), st.sampled_from(NAMES), payloads, st.booleans()),
    st.tuples(st.just("head"), st.integers(0, 3)),
    st.tuples(
        st.just("append"),
        st.integers(0, 3),
        st.sampled_from(["held", "behind", "ahead", "zero"]),
        payloads,
        st.booleans(),
        paces,
    ),
    # what a client does after a drop: HEAD (at once, or while others still send), then
    # append at the offset it was told
    st.tuples(
        st.just("resume"),
        st.integers(0, 3),
        payloads,
        st.booleans(),
        paces,
        st.sampled_from([0, 0.03]),
    ),
    st.tuples(st.just("cancel"), st.integers(0, 3)),
    st.tuples(st.just("delete"), st.sampled_from(NAMES)),
)


def sent_at(body: bytes, pace: float) -> bytes | Iterator[bytes]:
    """``body`` whole, or as a chunked body in three parts ``pace`` seconds apart."""
    if not pace:
        return body

    def parts() -> Iterator[bytes]:
        third = len(body) // 3 + 1
        for start in range(0, len(body), third):
            yield body[start : start + third]
            time.sleep(pace)

    return parts()


@dataclass
class UploadSeen:
    """What the test knows of one resumable upload: its address, the file it becomes,
    every append sent that may have written (offset, body), and what finished it."""

    at: str
    name: str
    writes: list[tuple[int, bytes]] = field(default_factory=list)
    accepted: list[tuple[int, bytes]] = field(default_factory=list)
    finished: dict | None = None


@pytest.fixture(scope="module", params=list(WRITE_SERVER_KINDS))
def write_server(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("writes")
    folder = root / "uploads"
    folder.mkdir()
    outside = root / "outside.txt"
    outside.write_bytes(b"a file outside the upload folder")
    (folder / "link.bin").symlink_to(outside)
    (folder / "dir.bin").mkdir()
    flags = (*WRITE_SERVER_KINDS[request.param], "--uploads", str(folder), "--max-upload", "1M")
    with spawn_course(*flags) as process:
        yield process.url, folder, outside


def explains(content: bytes, writes: list[tuple[int, bytes]]) -> bool:
    """Whether ``content`` is, from its first byte, a run of appends that each wrote a
    prefix of its body at the very offset it named, the next one taking over where it
    stopped (a request overtaken, cut, or past a declared length writes a prefix)."""
    starts = {offset for offset, body in writes if body}

    def from_(position: int) -> bool:
        if position == len(content):
            return True
        for offset, body in writes:
            if offset != position or not body:
                continue
            common = shared_prefix(body, content[position:])
            ends = {start for start in starts if position < start <= position + common}
            if position + common == len(content):
                ends.add(len(content))
            if any(from_(end) for end in ends):
                return True
        return False

    return from_(0)


def shared_prefix(first: bytes, second: bytes) -> int:
    """How many leading bytes ``first`` and ``second`` have in common."""
    length = min(len(first), len(second))
    if first[:length] == second[:length]:
        return length
    return next(n for n in range(length) if first[n] != second[n])


def some_explanation_hashes_to(size: int, sha256: str, writes: list[tuple[int, bytes]]) -> bool:
    """Whether some run of ``writes`` (as :func:`explains` reads them) of ``size`` bytes
    has the SHA-256 a finished upload answered."""
    starts = {offset for offset, body in writes if body}

    def runs(position: int, made: bytes) -> Iterator[bytes]:
        if position == size:
            yield made
            return
        for offset, body in writes:
            if offset != position or not body:
                continue
            reach = min(position + len(body), size)
            ends = {start for start in starts if position < start <= reach}
            if reach == size:
                ends.add(size)
            for end in ends:
                yield from runs(end, made + body[: end - position])

    return any(hashlib.sha256(run).hexdigest() == sha256 for run in runs(0, b""))


def partial_bytes(folder: Path, upload: UploadSeen) -> bytes | None:
    path = folder / f".upload-{upload.at.rsplit('/', 1)[1]}.partial"
    return path.read_bytes() if path.exists() else None


@pytest.mark.live
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(batches=st.lists(st.lists(write_steps, min_size=2, max_size=4), min_size=3, max_size=8))
# The race the lock is for, always tried: an append still sending (three parts, 0.05 s
# apart) while its client, believing it lost, asks HEAD and appends again.
@example(
    batches=[
        [("start", "a.bin", b"", False), ("put", "b.bin", b"b")],
        [
            ("append", 0, "held", bytes(range(256)) + bytes(44), True, 0.05),
            ("resume", 0, b"the client's second try", True, 0.0, 0.07),
        ],
    ]
)
def test_interleaved_writes_never_corrupt_an_upload_or_touch_anything_outside(
    write_server, batches
):
    import requests

    url, folder, outside = write_server
    uploads: list[UploadSeen] = []
    stored: dict[str, set[str]] = {name: set() for name in NAMES}  # SHA-256s a file may have
    for name in ("a.bin", "b.bin"):
        if (folder / name).exists():
            stored[name].add(hashlib.sha256((folder / name).read_bytes()).hexdigest())

    def run(step: tuple, held_now: dict[int, int]) -> int:
        kind = step[0]
        if kind == "put":
            _, name, body = step
            answer = requests.put(f"{url}/uploads/{name}", data=body, timeout=30)
            if answer.status_code in (200, 201):
                stored[name].add(hashlib.sha256(body).hexdigest())
        elif kind == "start":
            _, name, body, complete = step
            headers = {"Upload-Complete": "?1" if complete else "?0"}
            answer = requests.post(f"{url}/uploads/{name}", data=body, headers=headers, timeout=30)
            if "Location" in answer.headers:
                seen = UploadSeen(answer.headers["Location"], name, [(0, body)])
                if answer.status_code == 201:
                    seen.accepted.append((0, body))
                    if complete:
                        seen.finished = answer.json()
                        stored[name].add(seen.finished["sha256"])
                uploads.append(seen)
        elif not uploads:
            return 200
        elif kind == "head":
            answer = requests.head(url + uploads[step[1] % len(uploads)].at, timeout=30)
        elif kind in ("append", "resume"):
            if kind == "append":
                _, which, where, body, complete, pace = step
                held = held_now.get(which % len(uploads), 0)
                offset = {"held": held, "behind": max(held - 1, 0), "ahead": held + 1}
                at = offset.get(where, 0)
            else:
                _, which, body, complete, pace, wait = step
                time.sleep(wait)
                asked = requests.head(url + uploads[which % len(uploads)].at, timeout=30)
                if asked.status_code != 204:
                    return asked.status_code
                at = int(asked.headers["Upload-Offset"])
            seen = uploads[which % len(uploads)]
            headers = {
                "Content-Type": "application/partial-upload",
                "Upload-Offset": str(at),
                "Upload-Complete": "?1" if complete else "?0",
            }
            seen.writes.append((at, body))
            sent = sent_at(body, pace)
            answer = requests.patch(url + seen.at, data=sent, headers=headers, timeout=30)
            if answer.status_code == 201:
                seen.accepted.append((at, body))
                if answer.headers.get("Upload-Complete") == "?1":
                    seen.finished = answer.json()
                    stored[seen.name].add(seen.finished["sha256"])
        elif kind == "cancel":
            answer = requests.delete(url + uploads[step[1] % len(uploads)].at, timeout=30)
        else:
            answer = requests.delete(f"{url}/uploads/{step[1]}", timeout=30)
        return answer.status_code

    for batch in batches:
        held_now = {
            number: len(partial_bytes(folder, seen) or b"") for number, seen in enumerate(uploads)
        }
        with ThreadPoolExecutor(len(batch)) as pool:
            statuses = list(pool.map(run, batch, [held_now] * len(batch)))
        assert all(status < 500 for status in statuses), (statuses, batch)
        assert outside.read_bytes() == b"a file outside the upload folder"
        assert (folder / "link.bin").is_symlink() and (folder / "dir.bin").is_dir()
        for seen in uploads:
            content = partial_bytes(folder, seen)
            if content is not None:
                assert explains(content, seen.writes), (seen, len(content))
                for offset, body in seen.accepted:
                    assert content[offset : offset + len(body)] == body
            if seen.finished is not None:
                done = seen.finished
                assert some_explanation_hashes_to(done["size"], done["sha256"], seen.writes)
        for name in ("a.bin", "b.bin"):
            if (folder / name).exists():
                digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
                assert digest in stored[name], f"{name} holds bytes no request had accepted"
        stray = [p.name for p in folder.iterdir() if p.name.endswith(".part")]
        assert stray == [], stray
