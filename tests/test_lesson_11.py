"""Lesson 11: uploads stored in pieces, refused early, resumed after cuts, watched live."""

import base64
import fcntl
import hashlib
import io
import json
import random
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from real_programs import need
from urllib3 import encode_multipart_formdata

from lessons import load_lesson, load_lessons, spawn_course
from lessons.course import build_app
from streamlib import StreamStats, call_app, peak_rss_bytes, reset_peak_rss, serve
from streamlib.nginx import spawn_nginx
from streamlib.observe import before_the_body
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


# -- HEAD and PATCH ----------------------------------------------------------------------------

PATCH = {"Content-Type": "application/partial-upload"}


def patch(app, name: str, offset: int, complete: bool, body: bytes, **headers: str):
    sent = {**PATCH, "Upload-Offset": str(offset), "Upload-Complete": "?1" if complete else "?0"}
    return ask(app, f"/uploads/{name}", "PATCH", {**sent, **headers}, body)


def test_head_and_patch_resume_an_upload_piece_by_piece(app, folder):
    assert ask(app, "/uploads/r.bin", "HEAD").status.startswith("404")
    first = patch(app, "r.bin", 0, False, b"hello ")
    assert first.status == "204 No Content" and first.header("Upload-Offset") == "6"
    asked = ask(app, "/uploads/r.bin", "HEAD")
    assert (asked.header("Upload-Offset"), asked.header("Upload-Complete")) == ("6", "?0")
    assert not (folder / "r.bin").exists()  # not served as if whole
    last = patch(app, "r.bin", 6, True, b"world")
    assert last.status == "201 Created"
    assert json.loads(last.content)["sha256"] == hashlib.sha256(b"hello world").hexdigest()
    done = ask(app, "/uploads/r.bin", "HEAD")
    assert (done.header("Upload-Offset"), done.header("Upload-Complete")) == ("11", "?1")
    assert leftovers(folder) == []


def test_an_append_at_the_wrong_offset_is_a_409_that_says_where_to_resume(app, folder):
    patch(app, "r.bin", 0, False, b"12345")
    for offset in (3, 6):
        refused = patch(app, "r.bin", offset, False, b"x")
        problem = json.loads(refused.content)
        assert refused.status.startswith("409") and refused.header("Upload-Offset") == "5"
        assert problem["expected-offset"] == 5 and problem["provided-offset"] == offset
        assert problem["type"].endswith("#mismatching-upload-offset")
    assert (folder / ".r.bin.partial").read_bytes() == b"12345"
    assert patch(app, "new.bin", 7, False, b"x").status.startswith("409")
    assert leftovers(folder) == [".r.bin.partial"]  # nothing made for new.bin


def test_an_append_while_another_holds_the_upload_is_a_409(app, folder):
    patch(app, "r.bin", 0, False, b"12345")
    with (folder / ".r.bin.partial").open("ab") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        refused = patch(app, "r.bin", 5, True, b"678")
    assert refused.status.startswith("409") and b"another request" in refused.content
    assert patch(app, "r.bin", 5, True, b"678").status == "201 Created"


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
    response = patch(app, "r.bin", 0, False, b"x", **headers)
    assert 400 <= response.status_code < 500 and not folder.joinpath(".r.bin.partial").exists()


def test_a_new_upload_over_the_cap_is_refused_and_leaves_nothing(app, folder):
    refused = patch(app, "r.bin", 0, False, b"x" * (CAP + 1))
    assert refused.status.startswith("413")
    assert ask(app, "/uploads/r.bin", "HEAD").status.startswith("404")
    assert leftovers(folder) == []


def test_the_cap_counts_what_an_upload_already_holds(app, folder):
    assert patch(app, "r.bin", 0, False, b"x" * (CAP - 10)).status_code == 204
    over = patch(app, "r.bin", CAP - 10, True, b"y" * 11)
    assert over.status.startswith("413")
    assert (folder / ".r.bin.partial").stat().st_size == CAP - 10
    assert patch(app, "r.bin", CAP - 10, True, b"y" * 10).status == "201 Created"


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


def test_a_chunked_body_from_requests_is_stored_whole(live, folder):
    pieces = [random.Random(n).randbytes(50_000) for n in range(5)]
    answer = requests.put(live + "/uploads/c.bin", data=iter(pieces), timeout=10)
    assert answer.status_code == 201 and (folder / "c.bin").read_bytes() == b"".join(pieces)


def cut_patch(url: str, name: str, data: bytes, rng: random.Random, reset: bool) -> None:
    """Start appending the rest of ``data`` where the server stands, send part of it, and
    cut the connection: with a FIN, or a reset that may also drop bytes already sent."""
    held = requests.head(f"{url}/uploads/{name}", timeout=5).headers.get("Upload-Offset", "0")
    rest = data[int(held) :]
    head = (
        f"PATCH /uploads/{name} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
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
    for cut in range(5):
        cut_patch(live, "resumed.bin", data, rng, reset=cut % 2 == 1)
    stored = lesson.resume_upload(live + "/uploads/resumed.bin", source)
    assert stored["sha256"] == hashlib.sha256(data).hexdigest()
    assert (folder / "resumed.bin").read_bytes() == data and leftovers(folder) == []


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
        page.wait_for_function("window.uploadResult !== undefined", timeout=120_000)
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


def test_delete_removes_the_file_and_an_unfinished_upload_but_not_under_an_append(app, folder):
    ask(app, "/uploads/d.bin", "PUT", body=b"whole")
    patch(app, "d.bin", 0, False, b"part")
    with (folder / ".d.bin.partial").open("ab") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert ask(app, "/uploads/d.bin", "DELETE").status.startswith("409")
    assert ask(app, "/uploads/d.bin", "DELETE").status == "204 No Content"
    assert list(folder.iterdir()) == []
    assert ask(app, "/uploads/d.bin", "DELETE").status.startswith("404")
