"""Each route's cost is bounded, and the inputs that once made 500s get a one-line 4xx.

The cases come from issue 11's list, each observed as a 500 or an unbounded cost before
the fix. Property-based tests (``test_hostile_input.py``) cover the same ground broadly;
these name each case, so a regression says which one.
"""

import json
import os
import threading

import pytest

from lessons import load_lesson, load_lessons
from lessons.course import build_app
from streamlib import StreamStats, call_app

CHAT = "/v1/chat/completions?latency=0&rate=10000"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "hello.txt").write_text("hello\n")
    (tmp_path / "loop-a").symlink_to(tmp_path / "loop-b")
    (tmp_path / "loop-b").symlink_to(tmp_path / "loop-a")
    (tmp_path / "passwd").symlink_to("/etc/passwd")
    return tmp_path


@pytest.fixture
def app(folder):
    return build_app(load_lessons(), StreamStats(), settings={"course.files": str(folder)})


def answer(app, path, method="GET", headers=None, body=b""):
    response = call_app(app, path, method, headers or {}, body)
    return response.status_code, response.read()


@pytest.mark.parametrize(
    "path",
    ["/files/" + "a" * 300, "/files-buffered/" + "a" * 300, "/files/loop-a", "/files/passwd"],
    ids=["long-name", "long-name-buffered", "symlink-loop", "symlink-out"],
)
def test_files_that_cannot_be_served_are_a_404(app, path):
    status, body = answer(app, path)
    assert status == 404 and body.count(b"\n") == 1 and len(body) < 300


def test_the_listing_shows_only_what_files_serves(app):
    status, body = answer(app, "/files/")
    assert status == 200 and body.split() == [b"6", b"hello.txt"]


def test_files_without_its_slash_redirects_with_a_location(app):
    response = call_app(app, "/files?x=1")
    response.read()
    assert (response.status_code, response.header("Location")) == (308, "/files/?x=1")


def test_a_long_demo_video_name_is_a_400(app):
    assert answer(app, "/demo/video?name=" + "a" * 300)[0] == 400


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"[" * 50_000, b"nested too deeply"),
        (b'{"model": "m", "max_tokens": ' + b"9" * 5000 + b"}", b"4300 digits"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "\\ud800"}]}', b"surrogate"),
        (b"\xff{}", b"not UTF-8"),
    ],
    ids=["deep", "huge-int", "lone-surrogate", "not-utf8"],
)
def test_hostile_chat_bodies_are_a_400_in_openai_s_shape(app, body, says):
    status, answer_body = answer(app, CHAT, "POST", JSON, body)
    error = json.loads(answer_body)["error"]
    assert status == 400 and error["type"] == "invalid_request_error"
    assert says in error["message"].encode()


def test_include_usage_must_be_a_boolean(app):
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    body["stream_options"] = {"include_usage": "no"}
    status, answer_body = answer(app, CHAT, "POST", JSON, json.dumps(body).encode())
    error = json.loads(answer_body)["error"]
    assert status == 400 and error["param"] == "stream_options.include_usage"


def test_a_chat_body_over_1_mib_is_a_413_in_openai_s_shape(app):
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 2**21}]})
    status, answer_body = answer(app, CHAT, "POST", JSON, body.encode())
    assert status == 413 and "over 1048576 bytes" in json.loads(answer_body)["error"]["message"]


def test_a_broadcast_body_over_64_kib_is_a_413(app):
    body = json.dumps({"text": "x" * 70_000}).encode()
    status, answer_body = answer(app, "/broadcast", "POST", JSON, body)
    assert status == 413 and answer_body.startswith(b"413 Request Entity Too Large: the body")


def test_a_chat_that_would_outlast_600_s_with_its_latency_is_refused(app):
    status, body = answer(app, "/chat?latency=10&rate=1&length=595")
    assert status == 400 and b"after 10 s would take 604 s" in body
    path = "/v1/chat/completions?latency=10&rate=1&length=595"
    status, body = answer(app, path, "POST", JSON, b"{}")
    assert status == 400 and "would take 604 s" in json.loads(body)["error"]["message"]


@pytest.mark.parametrize("path", ["/json-array?count=1000001", "/ndjson?count=1000001"])
def test_json_streams_stop_at_a_million_rows(app, path):
    assert answer(app, path)[0] == 400


def test_a_buffered_body_is_capped_at_256_mib(app):
    status, body = answer(app, "/buffered?size=268435457&piece=1048576")
    assert status == 400 and b"/streamed takes up to" in body


def test_buffered_bodies_share_a_budget_and_the_rest_get_a_503():
    buffered = load_lesson("01")
    stats_app = build_app(load_lessons(), StreamStats())
    release = threading.Event()
    inside = threading.Event()
    real_build = buffered.build_pieces

    def held_build(*args):
        if not inside.is_set():  # the first build waits to be released; the others do not
            inside.set()
            release.wait(10)
        return real_build(*args)

    buffered.build_pieces = held_build  # a build that takes a while, holding its budget
    budget, buffered.BUFFER_BUDGET = buffered.BUFFER_BUDGET, 1_000_000  # small, to be quick
    try:
        big = threading.Thread(target=answer, args=(stats_app, "/buffered?size=800000"))
        big.start()
        assert inside.wait(10)
        response = call_app(stats_app, "/buffered?size=800000")
        response.read()
        assert response.status_code == 503 and response.header("Retry-After") == "1"
        small = call_app(stats_app, "/buffered?size=1000")  # what fits still goes through
        assert small.status_code == 200 and len(small.read()) == 1000
    finally:
        release.set()
        big.join(10)
        buffered.build_pieces = real_build
        buffered.BUFFER_BUDGET = budget
    assert buffered._buffering["bytes"] == 0  # every reservation given back


def test_sse_ids_of_5000_digits_start_fresh(app):
    for path in ["/events?count=1&interval=0.01", "/gzip-events?mode=skip&count=1&interval=0.01"]:
        status, body = answer(app, path, headers={"Last-Event-ID": "9" * 5000})
        assert status == 200 and b"data:" in body


def test_no_symlink_leaves_the_folder_in_the_listing_even_to_a_readable_file(folder, app):
    assert os.path.exists(folder / "passwd")  # the link works, and still is not listed
    assert b"passwd" not in answer(app, "/files/")[1]


def test_the_media_demo_plays_what_the_folder_has(folder, app):
    status, body = answer(app, "/demo/video")
    assert status == 404 and b"has no audio or video file" in body  # hello.txt only
    (folder / "clip one.mp4").write_bytes(b"\0" * 100)
    (folder / "song.wav").write_bytes(b"\0" * 100)
    status, body = answer(app, "/demo/video")
    page = body.decode()
    assert status == 200 and "<video" in page and 'src="/files/clip%20one.mp4"' in page
    assert '<a href="?name=song.wav">song.wav</a>' in page
