"""Lesson 11: uploads stored in pieces, refused early, resumed after cuts, watched live."""

import base64
import contextlib
import hashlib
import io
import json
import random
import re
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from conftest import WRITE_SERVER_KINDS
from real_programs import course_on_a_small_disk, need
from urllib3 import encode_multipart_formdata

from lab import peak_rss_bytes, reset_peak_rss, serve
from lab.browser import wait_until
from lab.nginx import spawn_nginx
from lab.observe import before_the_body
from lessons import load_lesson, load_lessons, spawn_course
from lessons.course import build_app
from streamlib import StreamStats, call_app, make_environ
from streamlib.sse import parse_events

lesson = load_lesson("11")
production = load_lesson("07")
CAP = 1024 * 1024


@pytest.fixture
def folder(tmp_path) -> Path:
    return tmp_path / "uploads"


@pytest.fixture
def app(folder):
    settings = {"course.uploads": str(folder), "course.max_upload": CAP}
    return build_app(load_lessons(), StreamStats(), settings)


def ask(app, path: str, method: str = "GET", headers: dict | None = None, body: bytes = b""):
    """Call the course in-process, PEP 3333 checked, and read the whole answer."""
    response = call_app(app, path, method, headers, body)
    response.content = response.read()
    return response


def leftovers(folder: Path) -> list[str]:
    """Hidden files left in the upload folder: temporary or partial uploads."""
    return sorted(path.name for path in folder.glob(".*"))


def digest_header(data: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ":"


# -- PUT ---------------------------------------------------------------------------------------


def test_put_stores_the_body_and_answers_its_sha256(app, folder):
    data = random.Random(1).randbytes(300_000)
    first = ask(app, "/uploads/data.bin", "PUT", body=data)
    again = ask(app, "/uploads/data.bin", "PUT", body=data[:10])
    assert first.status == "201 Created" and again.status == "200 OK"
    assert json.loads(first.content)["sha256"] == hashlib.sha256(data).hexdigest()
    assert json.loads(again.content)["size"] == 10
    assert (folder / "data.bin").read_bytes() == data[:10] and leftovers(folder) == []


def test_the_printed_put_says_what_a_repeat_answers():
    """The lesson prints ``curl -T``, which a learner runs more than once: its comment must
    hold for the second run too (the test above: 201, then 200 when it replaces the file)."""
    (line,) = [line for line in lesson.__doc__.splitlines() if "curl -T README.md" in line]
    comment = line.partition("  # ")[2]
    assert "201" in comment and "200 if replaced" in comment, comment


@pytest.mark.parametrize(
    "name", [".env", "-rf", "a b", "é.txt", "x" * 129, "%2e%2e", "con:x", "a%00b"]
)
def test_put_refuses_names_that_are_not_plain_file_names(app, folder, name):
    response = ask(app, f"/uploads/{name}", "PUT", body=b"x")
    assert response.status.startswith("400") and b"name:" in response.content
    assert not folder.exists() or list(folder.iterdir()) == []


def test_put_over_the_cap_is_refused_before_a_byte_is_read(app, folder):
    response = ask(app, "/uploads/big.bin", "PUT", body=b"x" * (CAP + 1))
    assert response.status.startswith("413") and not (folder / "big.bin").exists()
    assert leftovers(folder) == []


def test_a_body_that_stops_early_leaves_the_old_file_and_no_part(app, folder):
    ask(app, "/uploads/kept.txt", "PUT", body=b"old")
    response = ask(app, "/uploads/kept.txt", "PUT", {"Content-Length": "100"}, b"new but")
    assert response.status.startswith("400") and b"stopped after 7 of 100" in response.content
    assert (folder / "kept.txt").read_bytes() == b"old" and leftovers(folder) == []


def test_content_digest_is_checked_before_the_file_takes_its_place(app, folder):
    ask(app, "/uploads/d.txt", "PUT", body=b"old")
    wrong = ask(app, "/uploads/d.txt", "PUT", {"Content-Digest": digest_header(b"x")}, b"new")
    assert wrong.status.startswith("400") and b"SHA-256" in wrong.content
    assert (folder / "d.txt").read_bytes() == b"old" and leftovers(folder) == []
    right = ask(app, "/uploads/d.txt", "PUT", {"Content-Digest": digest_header(b"new")}, b"new")
    assert right.status == "200 OK" and (folder / "d.txt").read_bytes() == b"new"
    garbled = ask(app, "/uploads/d.txt", "PUT", {"Content-Digest": "sha-256=:abc:"}, b"x")
    assert garbled.status.startswith("400")


# -- Resumable: create, HEAD, PATCH, DELETE (the IETF draft, -05) --------------------------------

PATCH = {"Content-Type": "application/partial-upload"}


def start(app, name: str = "r.bin", body: bytes = b"", complete: bool = False, **headers: str):
    """Create a resumable upload of ``name``; return the answer (its Location says where)."""
    sent = {"Upload-Complete": "?1" if complete else "?0", "Content-Length": str(len(body))}
    return ask(app, f"/uploads/{name}", "POST", {**sent, **headers}, body)


def patch(app, at: str, offset: int, complete: bool, body: bytes, **headers: str):
    sent = {**PATCH, "Upload-Offset": str(offset), "Upload-Complete": "?1" if complete else "?0"}
    return ask(app, at, "PATCH", {**sent, **headers}, body)


class Arriving(io.RawIOBase):
    """A chunked request body that hands out ``pieces`` one per read, as they come."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self.pieces = pieces

    def read(self, size: int = -1) -> bytes:
        return next(self.pieces, b"")


def ask_as_it_comes(app, path: str, headers: dict, pieces: Iterator[bytes]) -> tuple[str, bytes]:
    """PATCH ``path`` with a chunked body made of ``pieces`` as the app reads them."""
    environ = make_environ(path, "PATCH", headers)
    environ["wsgi.input"], environ["wsgi.input_terminated"] = Arriving(pieces), True
    answered = []
    body = app(environ, lambda status, headers, exc_info=None: answered.append(status))
    return answered[-1], b"".join(body)


def partials(folder: Path) -> list[bytes]:
    """The bytes held by every unfinished upload in the folder."""
    return [path.read_bytes() for path in sorted(folder.glob(".upload-*.partial"))]


def test_an_upload_is_created_then_appended_to_until_complete(app, folder):
    created = start(app, "r.bin", b"hello ", **{"Upload-Length": "11"})
    at = created.header("Location")
    assert created.status == "201 Created" and at.startswith("/resumable/")
    assert (created.header("Upload-Offset"), created.header("Upload-Complete")) == ("6", "?0")
    asked = ask(app, at, "HEAD")
    assert (asked.header("Upload-Offset"), asked.header("Upload-Length")) == ("6", "11")
    assert asked.header("Cache-Control") == "no-store"
    limit = re.fullmatch(r"max-size=(\d+), expires=(\d+)", asked.header("Upload-Limit"))
    assert int(limit[1]) == CAP and 86390 <= int(limit[2]) <= 86400  # a day, less the test
    assert not (folder / "r.bin").exists()  # not served as if whole
    last = patch(app, at, 6, True, b"world")
    # draft -05 section 6: the answer that completes carries the final offset; tus-js-client
    # fails every upload whose last answer lacks it ("invalid or missing offset value")
    assert last.status == "201 Created" and last.header("Upload-Offset") == "11"
    assert last.header("Upload-Complete") == "?1"
    assert json.loads(last.content)["sha256"] == hashlib.sha256(b"hello world").hexdigest()
    assert (folder / "r.bin").read_bytes() == b"hello world" and partials(folder) == []


def test_a_complete_upload_keeps_its_offset_and_refuses_more(app, folder):
    """Issue 28, item 10: an empty PATCH at the final offset after completion answered 409
    with Upload-Offset: 0. An offset never goes back, and a finished upload is a 400."""
    at = start(app, "done.txt", b"all of it", complete=True).header("Location")
    again = patch(app, at, 9, True, b"")
    problem = json.loads(again.content)
    assert again.status.startswith("400") and problem["type"].endswith("#completed-upload")
    assert (again.header("Upload-Offset"), again.header("Upload-Complete")) == ("9", "?1")
    asked = ask(app, at, "HEAD")
    assert (asked.header("Upload-Offset"), asked.header("Upload-Complete")) == ("9", "?1")
    assert asked.header("Upload-Length") == "9"  # tus-js-client: offset == length, done
    assert (folder / "done.txt").read_bytes() == b"all of it"


def test_an_append_at_the_wrong_offset_is_a_409_that_says_where_to_resume(app, folder):
    at = start(app, "r.bin", b"12345").header("Location")
    for offset in (3, 6):
        refused = patch(app, at, offset, False, b"x")
        problem = json.loads(refused.content)
        assert refused.status.startswith("409") and refused.header("Upload-Offset") == "5"
        assert problem["expected-offset"] == 5 and problem["provided-offset"] == offset
        assert problem["type"].endswith("#mismatching-upload-offset")
    assert partials(folder) == [b"12345"]


@pytest.mark.parametrize(
    "path", ["/resumable/" + "0" * 32, "/resumable/nothex", "/resumable/" + "a" * 33]
)
def test_an_upload_that_is_not_there_is_a_404(app, path):
    assert ask(app, path, "HEAD").status.startswith("404")
    assert patch(app, path, 0, True, b"x").status.startswith("404")


def test_a_newer_append_takes_the_upload_from_an_older_one_that_is_still_reading(app, folder):
    """Issue 28, item 9: a connection that died silently. The server still waits on the old
    append while the client asks HEAD and appends again; the old one's later bytes (still
    in the network's buffers) must not land after the new ones."""
    at = start(app, "r.bin", b"").header("Location")
    taken_over = {}

    def old_body() -> Iterator[bytes]:
        yield b"A" * 10
        asked = ask(app, at, "HEAD")  # meanwhile, the client asks and appends again
        offset = int(asked.header("Upload-Offset"))
        taken_over["new"] = patch(app, at, offset, True, b"B" * 5)
        yield b"late bytes of the dead connection"

    headers = {**PATCH, "Upload-Offset": "0", "Upload-Complete": "?1"}
    status, content = ask_as_it_comes(app, at, headers, old_body())
    assert taken_over["new"].status == "201 Created", taken_over["new"].content
    assert status.startswith("409") and b"newer request" in content
    assert (folder / "r.bin").read_bytes() == b"A" * 10 + b"B" * 5


def test_a_cancelled_upload_is_gone_and_an_append_to_it_writes_nothing(app, folder):
    at = start(app, "r.bin", b"123").header("Location")
    assert ask(app, at, "DELETE").status == "204 No Content"
    assert ask(app, at, "HEAD").status.startswith("404")
    assert patch(app, at, 3, True, b"456").status.startswith("404")
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "application/octet-stream"},
        {"Upload-Offset": "-1"},
        {"Upload-Offset": "1e3"},
        {"Upload-Offset": "9" * 30},
        {"Upload-Complete": "true"},
        {"Upload-Complete": ""},
    ],
)
def test_a_malformed_append_is_a_4xx_and_stores_nothing(app, folder, headers):
    at = start(app).header("Location")
    response = patch(app, at, 0, False, b"x", **headers)
    assert 400 <= response.status_code < 500 and partials(folder) == [b""]


@pytest.mark.parametrize(
    "method, headers",
    [
        ("HEAD", {"Upload-Offset": "0"}),
        ("HEAD", {"Upload-Length": "3"}),
        ("DELETE", {"Upload-Complete": "?0"}),
    ],
)
def test_the_draft_forbids_offset_headers_on_head_and_delete(app, method, headers):
    at = start(app).header("Location")
    assert ask(app, at, method, headers).status.startswith("400")


def test_a_new_upload_over_the_cap_is_refused_and_leaves_nothing(app, folder):
    assert start(app, "r.bin", b"x" * (CAP + 1)).status.startswith("413")
    assert start(app, "r.bin", **{"Upload-Length": str(CAP + 1)}).status.startswith("413")
    assert list(folder.iterdir()) == []


def test_the_cap_counts_what_an_upload_already_holds(app, folder):
    at = start(app, "r.bin", b"x" * (CAP - 10)).header("Location")
    assert patch(app, at, CAP - 10, True, b"y" * 11).status.startswith("413")
    assert partials(folder)[0] == b"x" * (CAP - 10)
    assert patch(app, at, CAP - 10, True, b"y" * 10).status == "201 Created"


def test_bytes_past_the_declared_length_are_refused_and_not_stored(app, folder):
    at = start(app, "r.bin", b"abc", **{"Upload-Length": "5"}).header("Location")
    over = patch(app, at, 3, True, b"defg")
    assert over.status.startswith("400")
    asked = ask(app, at, "HEAD")
    assert asked.header("Upload-Offset") in ("3", "5") and not (folder / "r.bin").exists()


def test_an_upload_started_at_the_collection_is_named_by_its_content_disposition(app, folder):
    named = ask(
        app,
        "/uploads",
        "POST",
        {
            "Upload-Complete": "?1",
            "Content-Disposition": 'attachment; filename="photo.jpg"',
            "Content-Length": "3",
        },
        b"jpg",
    )
    unnamed = ask(app, "/uploads", "POST", {"Upload-Complete": "?1", "Content-Length": "1"}, b"x")
    assert named.status == "201 Created" and (folder / "photo.jpg").read_bytes() == b"jpg"
    made_up = json.loads(unnamed.content)["name"]
    assert re.fullmatch(r"upload-[0-9a-f]{8}\.bin", made_up) and (folder / made_up).exists()


def test_options_says_the_limits_of_an_upload_made_here(app):
    answer = ask(app, "/uploads/x.bin", "OPTIONS")
    assert answer.status == "204 No Content"
    assert answer.header("Upload-Limit") == f"max-size={CAP}, expires=86400"


# -- POST: the browser's form ------------------------------------------------------------------


def form(*files: tuple[str, bytes], **fields: str) -> tuple[dict, bytes]:
    parts = [("file", (name, data, "application/octet-stream")) for name, data in files]
    body, content_type = encode_multipart_formdata(parts + list(fields.items()))
    return {"Content-Type": content_type}, body


def test_a_form_post_stores_each_file_under_its_plain_name(app, folder):
    headers, body = form(("a.txt", b"alpha"), ("../../b.txt", b"beta"), note="hi")
    response = ask(app, "/uploads?id=x1", "POST", headers, body)
    stored = json.loads(response.content)["files"]
    assert response.status == "201 Created"
    assert [(f["name"], f["size"]) for f in stored] == [("a.txt", 5), ("b.txt", 4)]
    assert (folder / "b.txt").read_bytes() == b"beta" and leftovers(folder) == []


@pytest.mark.parametrize(
    "files, status",
    [
        ([], "400"),  # no file field
        ([("...", b"x")], "400"),  # no plain name left
        ([("big.bin", b"x" * (CAP + 1))], "413"),
    ],
)
def test_a_form_that_cannot_be_stored_leaves_nothing_behind(app, folder, files, status):
    headers, body = form(*files)
    response = ask(app, "/uploads", "POST", headers, body)
    assert response.status.startswith(status)
    assert not folder.exists() or list(folder.iterdir()) == []


def test_progress_events_follow_the_count_and_end_with_done():
    progress = lesson.Progress(total=30)
    events = lesson.progress_events(progress, every=0.001)
    seen = [next(events)]
    progress.received = 10
    seen.append(next(events))
    progress.received, progress.done = 30, True
    seen += list(events)
    parsed = list(parse_events(seen))
    assert [(e.event, json.loads(e.data)["received"]) for e in parsed] == [
        ("progress", 0),
        ("progress", 10),
        ("done", 30),
    ]


def test_progress_gives_up_on_an_upload_that_never_comes():
    events = lesson.progress_events(lesson.Progress(), every=0.001, give_up=0.05)
    assert len(list(events)) == 1  # the first count, then silence, then the end


@pytest.mark.parametrize("query", ["", "?id=", "?id=a%20b", "?id=" + "x" * 65])
def test_progress_needs_a_plain_id(app, query):
    assert ask(app, f"/upload-progress{query}").status.startswith("400")


# -- Live: Expect 100-continue, chunked bodies, and cuts -------------------------------------


def exchange(url: str, head: bytes, body: bytes = b"") -> bytes:
    """What came before the body and after it, with a ``|`` between."""
    early, rest = before_the_body(url, head, body)
    return early + b"|" + rest


def put_head(name: str, length: int) -> bytes:
    return (
        f"PUT /uploads/{name} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n"
        "Expect: 100-continue\r\nConnection: close\r\n\r\n"
    ).encode()


def test_an_offset_past_the_largest_upload_is_a_409_that_says_the_offset(app):
    """It was a 413 saying "at most -999998926258175 bytes here"."""
    at = start(app, "far.bin", b"abc").header("Location")
    answer = patch(app, at, 999_999_999_999_999, False, b"x")
    assert answer.status.startswith("409") and answer.header("Upload-Offset") == "3"


def test_an_append_overtaken_by_a_newer_request_ends_in_a_409_with_the_offset(app):
    """Draft -05 section 6: a failed append to an active upload still says the offset."""
    at = start(app, "over.bin", b"abc").header("Location")
    answers = []

    def pieces() -> Iterator[bytes]:
        yield b"de"
        answers.append(ask(app, at, "HEAD"))  # the client's retry: it takes the upload over
        yield b"fg"

    headers = {**PATCH, "Upload-Offset": "3", "Upload-Complete": "?0"}
    environ = make_environ(at, "PATCH", headers)
    environ["wsgi.input"], environ["wsgi.input_terminated"] = Arriving(pieces()), True
    seen = []
    body = b"".join(
        app(environ, lambda status, headers, exc_info=None: seen.append((status, dict(headers))))
    )
    status, answered = seen[-1]
    assert answers[0].header("Upload-Offset") == "5"
    assert status.startswith("409") and answered["Upload-Offset"] == "5"
    assert json.loads(body)["title"].startswith("a newer request took this upload over")


def test_an_upload_nobody_touched_for_its_expiry_is_gone(folder):
    settings = {"course.uploads": str(folder), "course.max_upload": CAP, "course.upload_expiry": 1}
    app = build_app(load_lessons(), StreamStats(), settings)
    at = start(app, "old.bin", b"abc").header("Location")
    time.sleep(1.2)
    assert ask(app, at, "HEAD").status.startswith("404")
    assert patch(app, at, 3, True, b"d").status.startswith("404")
    start(app, "new.bin", b"x")  # a new upload sweeps the expired one's files
    assert not list(folder.glob(f".upload-{at.rsplit('/', 1)[1]}.*"))


def test_an_upload_whose_bytes_are_gone_is_a_404_not_a_500(app, folder):
    """A crash between the final rename and the state's write leaves a state with no bytes."""
    at = start(app, "gone.bin", b"abc").header("Location")
    (folder / f".upload-{at.rsplit('/', 1)[1]}.partial").unlink()
    assert ask(app, at, "HEAD").status.startswith("404")


@pytest.fixture
def live(app) -> Iterator[str]:
    with serve(app) as url:
        yield url


def test_the_course_says_continue_only_when_the_app_reads_the_body(live, folder):
    taken = exchange(live, put_head("ok.bin", 5), b"hello")
    refused = exchange(live, put_head("big.bin", CAP + 1), b"x" * 1000)
    assert taken.startswith(b"HTTP/1.1 100 Continue\r\n\r\n|HTTP/1.1 201")
    assert taken.count(b"100 Continue") == 1  # werkzeug alone sends two
    assert refused.startswith(b"HTTP/1.1 413") and b"100 Continue" not in refused
    assert (folder / "ok.bin").read_bytes() == b"hello" and not (folder / "big.bin").exists()


def start_head(version: str, *headers: str) -> bytes:
    """The head of a POST that starts a resumable upload of five bytes."""
    lines = [f"POST /uploads/early.bin HTTP/{version}", "Host: 127.0.0.1", *headers]
    lines += ["Upload-Complete: ?1", "Content-Length: 5", "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_the_dev_server_says_where_an_upload_lives_before_reading_its_body(live, folder):
    """Draft -05 section 4: a ``104 Upload Resumption Supported`` with the ``Location``,
    so that even the first request of an upload can be resumed if it drops. Only to a
    client that sent the draft's interop version, and never to HTTP/1.0."""
    asked = exchange(live, start_head("1.1", "Upload-Draft-Interop-Version: 6"), b"hello")
    early, _, final = asked.partition(b"|")
    assert early.startswith(b"HTTP/1.1 104 Upload Resumption Supported\r\n")
    location = re.search(rb"\r\nLocation: (/resumable/[0-9a-f]{32})\r\n", early)[1]
    assert b"\r\nUpload-Draft-Interop-Version: 6\r\n" in early
    assert final.startswith(b"HTTP/1.1 201") and b"Location: " + location in final
    assert (folder / "early.bin").read_bytes() == b"hello"
    for head in (start_head("1.1"), start_head("1.0", "Upload-Draft-Interop-Version: 6")):
        assert b" 104 " not in exchange(live, head, b"hello")


def test_a_chunked_creation_hears_where_its_upload_lives_too(live, folder):
    """The 104 went only to a creation with a Content-Length: a chunked one, whose body
    is the most likely to be long, heard nothing until the end."""
    head = start_head("1.1", "Upload-Draft-Interop-Version: 6").replace(
        b"Content-Length: 5", b"Transfer-Encoding: chunked"
    )
    early, _, final = exchange(live, head, b"5\r\nhello\r\n0\r\n\r\n").partition(b"|")
    assert early.startswith(b"HTTP/1.1 104 Upload Resumption Supported\r\n")
    assert final.startswith(b"HTTP/1.1 201") and (folder / "early.bin").read_bytes() == b"hello"


def test_a_chunked_body_from_requests_is_stored_whole(live, folder):
    pieces = [random.Random(n).randbytes(50_000) for n in range(5)]
    answer = requests.put(live + "/uploads/c.bin", data=iter(pieces), timeout=10)
    assert answer.status_code == 201 and (folder / "c.bin").read_bytes() == b"".join(pieces)


def cut_patch(url: str, at: str, data: bytes, rng: random.Random, reset: bool) -> None:
    """Start appending the rest of ``data`` where the server stands, send part of it, and
    cut the connection: with a FIN, or a reset that may also drop bytes already sent."""
    held = requests.head(url + at, timeout=5).headers["Upload-Offset"]
    rest = data[int(held) :]
    head = (
        f"PATCH {at} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/partial-upload\r\nUpload-Offset: {held}\r\n"
        f"Upload-Complete: ?1\r\nContent-Length: {len(rest)}\r\n\r\n"
    ).encode()
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.sendall(head + rest[: rng.randrange(len(rest))])
    if reset:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_upload_cut_at_random_points_resumes_with_no_byte_lost_or_doubled(
    live, folder, tmp_path, seed
):
    rng = random.Random(seed)
    data = rng.randbytes(CAP - 1000)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    at = requests.post(live + "/uploads/resumed.bin", headers={"Upload-Complete": "?0"}).headers
    for cut in range(5):
        cut_patch(live, at["Location"], data, rng, reset=cut % 2 == 1)
    upload_url = live + at["Location"]
    stored = lesson.resume_upload(live + "/uploads/resumed.bin", source, upload_url)
    assert stored["sha256"] == hashlib.sha256(data).hexdigest()
    assert (folder / "resumed.bin").read_bytes() == data and partials(folder) == []


# -- Real servers: who hands the app the body as it comes ---------------------------------


@pytest.mark.live
@pytest.mark.parametrize("worker_class", ["sync", "gthread", "gevent"])
def test_gunicorn_says_continue_at_once_and_passes_a_slow_body_as_it_comes(tmp_path, worker_class):
    flags = ("--server", "gunicorn", "--worker-class", worker_class, "--max-upload", "1M")
    with spawn_course(*flags, "--uploads", str(tmp_path)) as course:
        refused = exchange(course.url, put_head("big.bin", CAP + 1), b"x" * 1000)
        timeline = lesson.slow_upload(course.url + "/uploads/slow.bin", pieces=6, gap=0.15)
    assert refused.startswith(b"HTTP/1.1 100 Continue\r\n\r\n") and b"HTTP/1.1 413" in refused
    assert timeline["size"] == 6 * 64 * 1024
    assert timeline["first_byte_after"] < 0.3 < 0.6 < timeline["last_byte_after"]


@pytest.mark.live
def test_nginx_hands_the_app_a_slow_body_only_when_told_not_to_buffer_it(tmp_path):
    need("nginx", "nginx-light")
    found = {}
    with spawn_course("--uploads", str(tmp_path)) as course:
        for buffered in (True, False):
            location = production.nginx_location(
                course.url, http11=True, request_buffering=buffered, max_body="2m"
            )
            with spawn_nginx(location) as nginx:
                found[buffered] = lesson.slow_upload(nginx.url + "/uploads/s.bin", 6, 0.15)
                too_big = requests.put(nginx.url + "/uploads/b.bin", data=b"x" * 3_000_000)
            assert too_big.status_code == 413 and "nginx" in too_big.text
    assert found[True]["called_after"] > 0.6  # the whole body first, then the app
    assert found[False]["called_after"] < 0.3 and found[False]["last_byte_after"] > 0.6


def peak_growth(server, send) -> int:
    """How far the server's peak memory rose while ``send()`` ran, in bytes."""
    assert reset_peak_rss(server.pid)
    before = peak_rss_bytes(server.pid)
    send()
    return peak_rss_bytes(server.pid) - before


@pytest.mark.live
def test_a_256_mib_put_keeps_memory_flat_where_reading_it_whole_costs_its_size(tmp_path):
    mib = 1024 * 1024
    with spawn_course("--uploads", str(tmp_path)) as course:
        requests.get(course.url + "/stats", timeout=5)  # everything imported, warmed up
        answers = []

        def put(path: str, pieces: int) -> None:
            body = io.BytesIO(bytes(range(256)) * 4096 * pieces)  # with a Content-Length
            answers.append(requests.put(course.url + path, data=body, timeout=120))

        streamed = peak_growth(course, lambda: put("/uploads/big.bin", 256))
        buffered = peak_growth(course, lambda: put("/uploads-buffered/b.bin", 64))
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json()["size"] == 256 * mib
    assert streamed < 16 * mib and buffered > 0.9 * 64 * mib, (streamed, buffered)


@pytest.mark.browser
@pytest.mark.live
def test_chromium_uploads_256_mib_and_the_server_reports_progress_as_it_comes(tmp_path):
    from real_programs import chromium_page

    source = tmp_path / "video.bin"
    with source.open("wb") as file:
        for n in range(256):
            file.write(random.Random(n).randbytes(1024 * 1024))
    uploads = tmp_path / "uploads"
    with spawn_course("--uploads", str(uploads)) as course, chromium_page() as page:
        requests.get(course.url + "/stats", timeout=5)
        assert reset_peak_rss(course.pid)
        before = peak_rss_bytes(course.pid)
        page.goto(course.url + "/demo/upload")
        page.set_input_files("#file", str(source))
        page.click("#send")
        wait_until(page, "window.uploadResult !== undefined", timeout=120_000)
        result = page.evaluate("window.uploadResult")
        progress = page.evaluate("window.serverProgress")
        growth = peak_rss_bytes(course.pid) - before
    stored = json.loads(result["body"])["files"][0]
    assert result["status"] == 201 and stored["name"] == "video.bin"
    assert stored["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    partway = [p["received"] for p in progress if 0 < p["received"] < source.stat().st_size]
    assert len(set(partway)) >= 3, progress  # the bar moved while the body was arriving
    assert growth < 16 * 1024 * 1024, growth
    assert leftovers(uploads) == []


def test_delete_removes_a_stored_file_and_nothing_else(app, folder):
    ask(app, "/uploads/d.bin", "PUT", body=b"whole")
    at = start(app, "d.bin", b"part").header("Location")
    assert ask(app, "/uploads/d.bin", "DELETE").status == "204 No Content"
    assert ask(app, "/uploads/d.bin", "DELETE").status.startswith("404")
    assert ask(app, at, "HEAD").header("Upload-Offset") == "4"  # its own address cancels it


# -- A hostile neighbour: a folder or a link where a file goes ----------------------------------


@pytest.mark.parametrize(
    "method, path, headers",
    [
        ("PUT", "/uploads/taken", {}),
        ("PUT", "/uploads-buffered/taken", {}),
        ("DELETE", "/uploads/taken", {}),
        ("POST", "/uploads/taken", {"Upload-Complete": "?1"}),
    ],
)
def test_a_folder_where_a_file_goes_is_a_409_and_stays(app, folder, method, path, headers):
    """Issue 28, item 3: each of these answered 500 (IsADirectoryError)."""
    (folder / "taken").mkdir(parents=True)
    answer = ask(app, path, method, headers, b"" if method == "DELETE" else b"data")
    assert answer.status.startswith("409") and b"folder" in answer.content
    assert (folder / "taken").is_dir() and leftovers(folder) == []


def test_a_form_with_a_folder_or_a_bad_name_among_its_files_stores_none_of_them(app, folder):
    """Issue 28, item 4: a form whose second file was named '..' got a 400, yet the first
    file was stored."""
    (folder / "taken").mkdir(parents=True)
    for second in ("..", "taken"):
        headers, body = form(("first.txt", b"one"), (second, b"two"))
        answer = ask(app, "/uploads", "POST", headers, body)
        assert answer.status_code in (400, 409)
        assert not (folder / "first.txt").exists() and leftovers(folder) == []


def test_an_upload_never_writes_through_a_link_to_a_file_outside(app, folder, tmp_path):
    """Issue 28, item 5: PUT /uploads-buffered/link_out wrote the body into the file the
    link pointed to, outside the upload folder."""
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"not yours")
    folder.mkdir(parents=True)
    (folder / "link_out").symlink_to(outside)
    for method, path in [("PUT", "/uploads-buffered/link_out"), ("PUT", "/uploads/link_out")]:
        assert ask(app, path, method, body=b"overwritten").status.startswith("409")
    assert start(app, "link_out", b"x", complete=True).status.startswith("409")
    assert ask(app, "/uploads/link_out", "DELETE").status.startswith("409")
    assert outside.read_bytes() == b"not yours" and (folder / "link_out").is_symlink()


def test_a_link_put_in_place_of_an_unfinished_upload_is_not_followed(app, folder, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"not yours")
    at = start(app, "r.bin", b"12").header("Location")
    (data,) = folder.glob(".upload-*.partial")
    data.unlink()
    data.symlink_to(outside)
    assert ask(app, at, "HEAD").status.startswith("404")  # not the outside file's size
    assert patch(app, at, 0, True, b"overwritten").status_code in (404, 409)
    (state,) = folder.glob(".upload-*.json")
    state.unlink()
    state.symlink_to(outside)
    assert ask(app, at, "HEAD").status.startswith("404")
    assert outside.read_bytes() == b"not yours"


# -- A full disk: a clear 507, never half a file, expired uploads reclaimed --------------------

SMALL_DISK = 1024 * 1024  # a tmpfs of 256 pages


@pytest.fixture(params=list(WRITE_SERVER_KINDS))
def small_disk(request, tmp_path) -> Iterator[tuple[str, Path]]:
    """The course on each server the tests run, storing uploads on a 1 MiB tmpfs of its own
    (issue 28, item 2: every route answered 500, the buffered one left half a file), with
    uploads that expire after 2 s where the test asks (``@pytest.mark.quick_expiry``)."""
    expiry = "2" if request.node.get_closest_marker("quick_expiry") else "60"
    flags = (*WRITE_SERVER_KINDS[request.param], "--upload-expiry", expiry)
    with course_on_a_small_disk(tmp_path / "small", SMALL_DISK, *flags) as (server, folder):
        yield server.url, folder


def visible(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if not path.name.startswith("."))


@pytest.mark.live
def test_a_full_disk_is_a_507_on_every_route_and_leaves_no_file_half_written(small_disk):
    url, folder = small_disk
    assert requests.put(url + "/uploads/first.bin", data=b"1" * 700_000).status_code == 201
    data = b"2" * 700_000
    declared = requests.put(url + "/uploads/second.bin", data=data)  # refused before a byte
    buffered = requests.put(url + "/uploads-buffered/second.bin", data=data)
    chunked = requests.put(url + "/uploads/second.bin", data=iter([data[:350_000]] * 2))
    headers, body = form(("second.bin", data))
    formed = requests.post(url + "/uploads", headers=headers, data=body)
    for answer in (declared, buffered, chunked, formed):
        assert answer.status_code == 507, answer.text
    assert visible(folder) == ["first.bin"] and leftovers(folder) == []
    assert (folder / "first.bin").read_bytes() == b"1" * 700_000


@pytest.mark.live
def test_a_full_disk_mid_append_keeps_what_was_written_and_the_upload_resumes(small_disk):
    url, folder = small_disk
    at = (
        url
        + requests.post(url + "/uploads/r.bin", headers={"Upload-Complete": "?0"}).headers[
            "Location"
        ]
    )
    requests.put(url + "/uploads/filler.bin", data=b"f" * 600_000).raise_for_status()
    data = random.Random(5).randbytes(700_000)
    headers = {**PATCH, "Upload-Offset": "0", "Upload-Complete": "?1"}
    full = requests.patch(at, data=iter([data[:350_000], data[350_000:]]), headers=headers)
    assert full.status_code == 507, full.text
    held = int(requests.head(at).headers["Upload-Offset"])
    assert 0 < held < len(data) and partials(folder) == [data[:held]]
    requests.delete(url + "/uploads/filler.bin").raise_for_status()
    headers = {**PATCH, "Upload-Offset": str(held), "Upload-Complete": "?1"}
    assert requests.patch(at, data=data[held:], headers=headers).status_code == 201
    assert (folder / "r.bin").read_bytes() == data


@pytest.mark.live
@pytest.mark.quick_expiry
def test_abandoned_uploads_expire_and_make_room_for_new_ones(small_disk):
    """Three abandoned partial uploads filled the disk, and every later upload was a 500.
    Now they are reclaimed once expired (here after 2 s), before "disk full" is said."""
    url, folder = small_disk
    for number in range(3):
        made = requests.post(
            f"{url}/uploads/abandoned{number}.bin",
            headers={"Upload-Complete": "?0"},
            data=b"a" * 300_000,
        )
        assert made.status_code == 201
    assert requests.put(url + "/uploads/new.bin", data=b"n" * 200_000).status_code == 507
    time.sleep(2.5)
    assert requests.put(url + "/uploads/new.bin", data=b"n" * 200_000).status_code == 201
    assert partials(folder) == [] and visible(folder) == ["new.bin"]


@pytest.mark.live
def test_trickling_uploads_take_every_gthread_thread_unless_nginx_holds_them(tmp_path):
    """A per-read timeout cannot stop a client that sends a byte every half second: each
    byte restarts it. Sixteen such uploads hold all eight threads of a gthread worker, and
    the index is not answered; through nginx, which reads a body whole before passing it
    on, the worker never sees them."""
    need("nginx", "nginx-light")
    flags = ("--server", "gunicorn", "--worker-class", "gthread", "--threads", "8")
    answered = {}
    with spawn_course(*flags, "--uploads", str(tmp_path)) as course:
        location = production.nginx_location(course.url, http11=True, max_body="2m")
        with spawn_nginx(location) as nginx:
            for front, url in (("gunicorn alone", course.url), ("nginx in front", nginx.url)):
                with trickling_uploads(url, count=16):
                    answered[front] = pages_answered(url, count=4, within=2.0)
    assert answered == {"gunicorn alone": 0, "nginx in front": 4}


@contextlib.contextmanager
def trickling_uploads(url: str, count: int) -> Iterator[None]:
    """``count`` PUTs of 1,000 bytes that send one byte every 0.4 s while the block runs."""
    host, port = url.removeprefix("http://").split(":")
    head = b"PUT /uploads/t.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n"
    socks = [socket.create_connection((host, int(port)), timeout=5) for _ in range(count)]
    stop = threading.Event()

    def trickle() -> None:
        for sock in socks:
            sock.sendall(head)
        while not stop.wait(0.4):
            for sock in socks:
                with contextlib.suppress(OSError):
                    sock.sendall(b"x")

    trickler = threading.Thread(target=trickle)
    trickler.start()
    time.sleep(1.0)  # every upload has begun
    try:
        yield
    finally:
        stop.set()
        trickler.join()
        for sock in socks:
            sock.close()


def pages_answered(url: str, count: int, within: float) -> int:
    """How many of ``count`` requests for the index, sent at once, are answered in time."""

    def ask_index(_: int) -> bool:
        try:
            return requests.get(url + "/", timeout=within).status_code == 200
        except requests.RequestException:
            return False

    with ThreadPoolExecutor(count) as pool:
        return sum(pool.map(ask_index, range(count)))


def page_faults(pid: int) -> int:
    """The minor page faults process ``pid`` has taken so far (``/proc/PID/stat``, field 10)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])


@pytest.mark.live
def test_glibcs_heap_settings_spare_a_gunicorn_worker_its_page_faults(tmp_path):
    """Lesson 11, 'Where the time goes': gunicorn's body reader makes a ~1 MiB buffer at every
    read, which glibc hands back to the kernel at its defaults, so that every read faults its
    pages in afresh; ``lessons.cli.GLIBC_HEAP`` keeps them in the heap. Counted, not timed:
    64 MiB read 64 KiB at a time by a sync worker."""
    import sys

    from lab import free_port, gunicorn_args, spawn_server
    from lessons.cli import GLIBC_HEAP

    body = random.Random(11).randbytes(1024 * 1024) * 64
    counted = {}
    for name, heap in (("default", {}), ("course", GLIBC_HEAP)):
        port = free_port()
        app = gunicorn_args("lessons.wsgi:app", bind=f"127.0.0.1:{port}", worker_class="sync")
        env = {**heap, "STREAMLIB_UPLOADS": str(tmp_path / name)}
        with spawn_server([sys.executable, "-m", "gunicorn", *app], port, env=env) as server:
            warm = requests.put(f"{server.url}/uploads/warm.bin", data=b"x" * 1000, timeout=10)
            before = {pid: page_faults(pid) for pid in server.pids()}
            answer = requests.put(f"{server.url}/uploads/{name}.bin?piece=65536", data=body)
            counted[name] = sum(page_faults(pid) - was for pid, was in before.items())
        assert warm.status_code == 201 and answer.status_code == 201
    # 64 MiB in 4 KiB pages is 16,384: at glibc's defaults the worker faults in several
    # times the body; with the course's settings, a small fraction of it
    assert counted["default"] > 16_384 > 10 * counted["course"], counted
