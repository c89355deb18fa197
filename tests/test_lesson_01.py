"""Lesson 01, buffered vs streamed: same bytes, but different first byte and memory.

The timing tests rest on lower bounds that sleeping guarantees (a buffered body cannot
leave before its last piece is built), never on how fast this machine is, plus one upper
bound with a margin of 20x. Memory is measured on a child server process.
"""

import pytest

from lab import observe, trace_memory
from streamlib import call_app

MiB = 1024 * 1024


def test_both_routes_send_the_same_bytes(course_app):
    query = "?size=100000&piece=1000"
    buffered = call_app(course_app, "/buffered" + query)
    streamed = call_app(course_app, "/streamed" + query)
    buffered_body, streamed_body = buffered.read(), streamed.read()
    assert buffered_body == streamed_body
    assert len(buffered_body) == 100000
    assert buffered.header("Content-Length") == "100000"
    assert streamed.header("Content-Length") is None


def test_the_body_is_lines_of_64_bytes_that_say_where_each_piece_starts(lesson01):
    body = b"".join(lesson01.build_pieces(3 * 128, 128, 0.0))
    lines = body.splitlines(keepends=True)
    assert {len(line) for line in lines} == {64}
    assert lines[2].startswith(b"piece 1 starts at byte 128 ")
    assert lines[1] == b"." * 63 + b"\n"


@pytest.mark.parametrize(
    ("size", "piece", "sizes"),
    [(0, 10, []), (5, 10, [5]), (10, 10, [10]), (25, 10, [10, 10, 5]), (1, 1, [1])],
)
def test_pieces_add_up_to_the_size(lesson01, size, piece, sizes):
    assert [len(p) for p in lesson01.build_pieces(size, piece, 0.0)] == sizes


def test_the_generator_waits_only_between_pieces_and_only_when_asked(lesson01):
    waits = []
    pieces = lesson01.build_pieces(30, 10, 0.5, sleep=waits.append)
    assert waits == [], "a generator does nothing until the first piece is asked for"
    next(pieces)
    assert waits == [], "the first piece must not wait"
    list(pieces)
    assert waits == [0.5, 0.5]


def test_too_many_pieces_or_too_long_a_stream_is_a_400(course_app):
    for query, says in [
        ("size=1073741824&piece=1", "piece: 1073741824 bytes in pieces of 1 makes"),
        ("size=100000&piece=1&delay=0.01", "delay: 100000 pieces 0.01 s apart would take"),
    ]:
        response = call_app(course_app, f"/streamed?{query}")
        body = response.read().decode()
        assert response.status_code == 400
        assert body.startswith(f"400 Bad Request: {says}"), body


@pytest.mark.live
def test_buffered_waits_for_the_whole_body_and_streamed_does_not(live_url):
    # 20 pieces, 0.05 s apart: the last piece is built 0.95 s after the request.
    query = "?size=20000&piece=1000&delay=0.05"
    buffered = observe(live_url + "/buffered" + query)
    streamed = observe(live_url + "/streamed" + query)
    assert buffered.total_bytes == streamed.total_bytes == 20000
    assert buffered.ttfb >= 0.95, "buffered cannot send before the last piece is built"
    assert streamed.ttfb < 0.95 / 20, "streamed should send its first piece at once"
    assert streamed.total_time >= 0.95
    assert len(streamed.chunks) >= 10, "the pieces should arrive separately"


@pytest.mark.live
def test_server_memory_is_flat_when_streamed_and_grows_with_the_body_when_buffered(
    course_process,
):
    size = 64 * MiB
    growth = {}
    for route in ["streamed", "buffered"]:
        observe(f"{course_process.url}/{route}?size=1000")  # warm up the code path
        with trace_memory(course_process.pids()) as memory:
            seen = observe(f"{course_process.url}/{route}?size={size}&piece=65536")
        assert seen.total_bytes == size
        growth[route] = memory.growth_bytes
    assert growth["streamed"] < 8 * MiB, growth
    assert growth["buffered"] >= size, growth
