"""Lesson 02, streaming a file: ranges, conditional requests, HEAD, safety, memory.

The HTTP cases run against both servers the course uses: werkzeug's dev server (no
``wsgi.file_wrapper``: the generator streams) and gunicorn (the wrapper: sendfile).
"""

import os
import socket
from pathlib import Path
from urllib.parse import urlsplit
from wsgiref.util import FileWrapper

import pytest
import requests

from lab import observe, serve, trace_memory
from lab.browser import wait_until
from lessons import load_lesson, load_lessons, spawn_course
from lessons.course import build_app
from streamlib import StreamStats, call_app, make_environ

MiB = 1024 * 1024
HELLO = b"Hello, ranges! 0123456789\n"
SECRET = b"TOP-SECRET-MARKER outside the served folder\n"


@pytest.fixture(scope="module")
def public(tmp_path_factory) -> Path:
    """A served folder with a secret file beside it and symlinks that try to reach it."""
    root = tmp_path_factory.mktemp("lesson02")
    (root / "secret.txt").write_bytes(SECRET)
    folder = root / "public"
    folder.mkdir()
    (folder / "hello.txt").write_bytes(HELLO)
    (folder / "empty.txt").write_bytes(b"")
    (folder / "sub").mkdir()
    (folder / "sub" / "nested.txt").write_bytes(b"nested\n")
    (folder / ".hidden").write_bytes(SECRET)
    (folder / "link-out.txt").symlink_to(root / "secret.txt")
    (folder / "linkdir").symlink_to(root)
    (folder / "link-in.txt").symlink_to(folder / "hello.txt")
    return folder


@pytest.fixture(scope="module", params=["werkzeug", "gunicorn"])
def server_url(request, public):
    if request.param == "werkzeug":
        with serve(build_app(load_lessons(), settings={"course.files": str(public)})) as url:
            yield url
    else:
        with spawn_course(
            "--files", str(public), "--server", "gunicorn", "--worker-class", "gthread"
        ) as server:
            yield server.url


def get(url: str, **headers: str) -> requests.Response:
    return requests.get(url, headers={k.replace("_", "-"): v for k, v in headers.items()})


def test_a_whole_file_with_its_validators(server_url):
    r = get(server_url + "/files/hello.txt")
    assert (r.status_code, r.content) == (200, HELLO)
    assert r.headers["Content-Length"] == str(len(HELLO))
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert r.headers["Accept-Ranges"] == "bytes"
    assert r.headers["ETag"].startswith('"') and r.headers["Last-Modified"].endswith("GMT")


@pytest.mark.parametrize(
    ("header", "status", "content_range", "body"),
    [
        ("bytes=0-4", 206, "bytes 0-4/26", HELLO[0:5]),
        ("bytes=7-", 206, "bytes 7-25/26", HELLO[7:]),
        ("bytes=-6", 206, "bytes 20-25/26", HELLO[-6:]),
        ("bytes=-5000", 206, "bytes 0-25/26", HELLO),  # a suffix longer than the file: all
        ("bytes=20-5000", 206, "bytes 20-25/26", HELLO[20:]),  # an end past the end: cut
        ("bytes=25-25", 206, "bytes 25-25/26", HELLO[25:]),
        ("bytes=26-", 416, "bytes */26", None),
        ("bytes=1000-2000", 416, "bytes */26", None),
        ("bytes=abc", 200, None, HELLO),  # malformed: ignored
        ("bytes=5-3", 200, None, HELLO),
        ("items=0-4", 200, None, HELLO),  # not bytes: ignored
        ("bytes=0-1,4-5", 200, None, HELLO),  # several ranges: the whole file, once
    ],
)
def test_ranges(server_url, header, status, content_range, body):
    r = get(server_url + "/files/hello.txt", Range=header)
    assert r.status_code == status
    assert r.headers.get("Content-Range") == content_range
    if body is not None:
        assert r.content == body
        assert r.headers["Content-Length"] == str(len(body))
    else:
        assert r.text.startswith("416 Requested Range Not Satisfiable: ")


def test_any_range_of_an_empty_file_is_unsatisfiable(server_url):
    r = get(server_url + "/files/empty.txt", Range="bytes=0-")
    assert (r.status_code, r.headers["Content-Range"]) == (416, "bytes */0")
    assert get(server_url + "/files/empty.txt").content == b""


def test_conditional_requests_answer_304_with_no_body(server_url):
    first = get(server_url + "/files/hello.txt")
    etag, last_modified = first.headers["ETag"], first.headers["Last-Modified"]
    for headers in [
        {"If-None-Match": etag},
        {"If-None-Match": f'"other", {etag}'},
        {"If-None-Match": "*"},
        {"If-Modified-Since": last_modified},
    ]:
        r = get(server_url + "/files/hello.txt", **headers)
        assert (r.status_code, r.content) == (304, b""), headers
        assert r.headers["ETag"] == etag
    assert get(server_url + "/files/hello.txt", If_None_Match='"other"').status_code == 200
    old = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert get(server_url + "/files/hello.txt", If_Modified_Since=old).status_code == 200


def test_if_range_resumes_only_the_same_version(server_url):
    first = get(server_url + "/files/hello.txt")
    etag, last_modified = first.headers["ETag"], first.headers["Last-Modified"]
    url = server_url + "/files/hello.txt"
    assert get(url, Range="bytes=0-4", If_Range=etag).status_code == 206
    assert get(url, Range="bytes=0-4", If_Range=last_modified).status_code == 206
    assert get(url, Range="bytes=0-4", If_Range='"stale"').status_code == 200
    assert get(url, Range="bytes=0-4", If_Range="W/" + etag).status_code == 200  # strong only
    old = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert get(url, Range="bytes=0-4", If_Range=old).status_code == 200


def test_head_sends_the_headers_of_get_and_no_body(server_url):
    r = requests.head(server_url + "/files/hello.txt", headers={"Range": "bytes=0-4"})
    assert r.status_code == 206
    assert r.headers["Content-Length"] == "5"
    assert r.raw.read() == b""


def test_the_listing_and_a_nested_file(server_url):
    listing = get(server_url + "/files/").text
    assert "hello.txt" in listing and "empty.txt" in listing and ".hidden" not in listing
    assert get(server_url + "/files/sub/nested.txt").content == b"nested\n"
    assert get(server_url + "/files/link-in.txt").content == HELLO  # a link that stays inside


def raw_get(url: str, target: bytes) -> tuple[int, bytes]:
    """Send ``GET target`` as-is over a socket (requests would normalise the path)."""
    address = urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(
            b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    status_line = received.split(b"\r\n", 1)[0]
    return int(status_line.split()[1]), received


TRAVERSALS = [
    b"/files/../secret.txt",
    b"/files/../../../../etc/passwd",
    b"/files/..%2fsecret.txt",
    b"/files/..%2F..%2F..%2Fetc%2Fpasswd",
    b"/files/%2e%2e/secret.txt",
    b"/files/%2e%2e%2fsecret.txt",
    b"/files/.%2e/secret.txt",
    b"/files/%252e%252e/secret.txt",
    b"/files/..%252fsecret.txt",
    b"/files/%2fetc%2fpasswd",
    b"/files//etc/passwd",
    b"/files/..\\secret.txt",
    b"/files/..%5csecret.txt",
    b"/files/hello.txt%00",
    b"/files/..%00/secret.txt",
    b"/files/sub/../../secret.txt",
    b"/files/./../secret.txt",
    b"/files/....//secret.txt",
    b"/files/%c0%ae%c0%ae/secret.txt",
    b"/files/..;/secret.txt",
    b"/files/link-out.txt",
    b"/files/linkdir/secret.txt",
    b"/files/linkdir/public/../secret.txt",
    b"/files/.hidden",
    b"/files/%2ehidden",
]


def test_no_path_escapes_the_served_folder(server_url):
    assert len(TRAVERSALS) >= 20
    for target in TRAVERSALS:
        status, received = raw_get(server_url, target)
        assert status in (400, 403, 404), f"{target!r} answered {status}"
        assert SECRET not in received and b"root:" not in received, f"{target!r} leaked"
    assert get(server_url + "/files/hello.txt").content == HELLO, "the server must live on"


def test_the_server_wrapper_reaches_the_server_unwrapped_and_is_counted(public):
    # gunicorn uses sendfile only if the body *is* its wsgi.file_wrapper: the course's
    # stream counting must not hide it. wsgiref's FileWrapper stands in for gunicorn's.
    stats = StreamStats()
    app = build_app(load_lessons(), stats, settings={"course.files": str(public)})
    environ_extra = {"wsgi.file_wrapper": FileWrapper}
    seen = {}

    def capture(environ, start_response):
        environ.update(environ_extra)
        body = app(environ, start_response)
        seen["body"] = body
        return body

    response = call_app(capture, "/files/hello.txt")
    assert response.read() == HELLO
    assert isinstance(seen["body"], FileWrapper)
    assert stats.snapshot()["routes"]["/files/<path:name>"]["streams_closed"] == 1
    ranged = call_app(capture, "/files/hello.txt", headers={"Range": "bytes=0-4"})
    assert ranged.read() == HELLO[:5]
    assert not isinstance(seen["body"], FileWrapper), "a range that stops early: the generator"


def test_head_never_opens_the_file_even_for_a_server_file_wrapper(public):
    opened = []

    class Wrapper(FileWrapper):
        def __init__(self, filelike, blksize=8192):
            opened.append(filelike.name)
            super().__init__(filelike, blksize)

    lesson = load_lesson("02")
    environ = make_environ("/files/hello.txt", "HEAD")
    environ.update({"wsgi.file_wrapper": Wrapper, "course.files": str(public)})
    environ["wsgiorg.routing_args"] = ((), {"name": "hello.txt"})
    body = lesson.serve_file(environ, lambda status, headers: None)
    assert list(body) == [] and opened == []


@pytest.fixture(scope="module")
def big_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("big")
    with open(folder / "big.bin", "wb") as file:
        block = os.urandom(MiB)
        for _ in range(256):
            file.write(block)
    return folder


@pytest.mark.live
@pytest.mark.parametrize("flags", [(), ("--server", "gunicorn", "--worker-class", "sync")])
def test_memory_stays_flat_streaming_256_mib_and_grows_buffered(big_folder, flags):
    size = 256 * MiB
    growth, seen_by = {}, {}  # seen_by: which processes were traced, and how, if it fails
    for route in ["files", "files-buffered"]:
        with spawn_course("--files", str(big_folder), *flags) as server:
            observe(f"{server.url}/{route}/big.bin", headers={"Range": "bytes=0-9"})
            with trace_memory(traced := server.pids()) as memory:
                seen = observe(f"{server.url}/{route}/big.bin", read_size=MiB)
            seen_by[route] = (server.pid, traced, server.pids(), memory.exact, len(memory.samples))
        assert seen.total_bytes == size
        growth[route] = memory.growth_bytes
    assert growth["files"] < 8 * MiB, (growth, seen_by)
    assert growth["files-buffered"] >= size, (growth, seen_by)


def read_syscalls(pid: int) -> int:
    """How many read-family system calls process ``pid`` has made (Linux's /proc/PID/io)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("syscr:"):
            return int(line.split()[1])
    raise LookupError("no syscr in /proc/PID/io")


@pytest.mark.live
@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux's /proc/PID/io")
@pytest.mark.parametrize(
    ("flags", "least_reads"),
    [
        (("--worker-class", "gthread"), None),
        (("--worker-class", "gthread", "--no-sendfile"), 4096),  # the course's 64 KiB chunks
        (("--worker-class", "sync"), None),
        # gevent's socket.sendfile reads and sends, 8 KiB at a time (_socket3.py,
        # _sendfile_use_send: blocksize = min(count, 8192)): 256 MiB in 32,768 reads
        (("--worker-class", "gevent"), 32768),
    ],
    ids=["gthread", "gthread-no-sendfile", "sync", "gevent"],
)
def test_gunicorn_sends_a_whole_file_with_sendfile_unless_told_not_to(
    big_folder, flags, least_reads
):
    # With sendfile the worker reads nothing itself: a handful of sendfile calls move the
    # 256 MiB. Without it, it reads the file 64 KiB at a time: 4096 reads. gunicorn's own
    # "sendfile" setting turns sendfile off when set to True, which this test once caught.
    # gevent's cooperative socket.sendfile falls back to read-and-send: no sendfile(2) there.
    with spawn_course("--files", str(big_folder), "--server", "gunicorn", *flags) as server:
        requests.get(server.url + "/files/big.bin", headers={"Range": "bytes=0-0"})
        (worker,) = server.pids()
        before = read_syscalls(worker)
        assert observe(server.url + "/files/big.bin", read_size=MiB).total_bytes == 256 * MiB
        reads = read_syscalls(worker) - before
    if least_reads is None:
        assert reads < 200, f"{reads} reads: gunicorn did not use sendfile"
    else:
        assert least_reads <= reads < least_reads * 1.1, f"{reads} reads, not {least_reads}"


@pytest.mark.browser
def test_chromium_seeks_the_demo_clip_with_range_requests(live_url):
    from real_programs import chromium_page

    with chromium_page() as page:
        seen = []
        page.on(
            "response",
            lambda r: seen.append((r.url, r.status, r.request.headers.get("range"))),
        )
        page.goto(live_url + "/demo/video")
        wait_until(page, "document.getElementById('player').readyState >= 1", timeout=20_000)
        middle = page.evaluate(
            """() => new Promise((resolve) => {
                const player = document.getElementById("player");
                player.addEventListener("seeked", () => resolve(player.currentTime), {once: true});
                player.currentTime = player.duration / 2;
            })"""
        )
        buffered = page.text_content("#buffered")
    clip = [(status, rng) for url, status, rng in seen if url.endswith("/files/tone.wav")]
    mid_file = [
        (status, rng)
        for status, rng in clip
        if rng and rng.startswith("bytes=") and int(rng[6:].split("-")[0] or 0) > 1_000_000
    ]
    assert middle == pytest.approx(300, abs=1), f"seeked to {middle} s"
    assert mid_file, f"no Range request into the middle of the clip: {clip}"
    assert all(status == 206 for status, _ in mid_file), mid_file
    # The page lists what the browser holds, e.g. "0-66 s, 299-305 s": a gap in between,
    # the part that was never downloaded.
    parts = [
        [float(x) for x in part.removesuffix(" s").split("-")] for part in buffered.split(", ")
    ]
    assert len(parts) >= 2 and parts[0][1] < 290 <= parts[-1][0], buffered
