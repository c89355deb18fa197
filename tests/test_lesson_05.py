"""Lesson 05, chunked JSON: NDJSON and streamed arrays, written and read row by row."""

import json
import time
import tracemalloc

import ijson
import pytest
import requests

from lab import observe, trace_memory
from lessons import load_lesson, spawn_course
from streamlib import call_app
from streamlib.json_stream import iter_json_array, iter_ndjson, parse_json_array, parse_ndjson

lesson = load_lesson("05")
MiB = 1024 * 1024


@pytest.mark.parametrize("rows", [[], [1], [{"a": 1}, [2], "three", None, 4.5, True]])
def test_both_formats_carry_the_rows_exactly(rows):
    array = b"".join(iter_json_array(rows))
    ndjson = b"".join(iter_ndjson(rows))
    assert json.loads(array) == rows
    assert [json.loads(line) for line in ndjson.splitlines()] == rows
    assert ndjson.count(b"\n") == len(rows) and (not rows or ndjson.endswith(b"\n"))


def test_newlines_inside_strings_never_break_an_ndjson_row():
    rows = [{"text": "two\nlines\r\nand\u2028more"}]
    (line,) = b"".join(iter_ndjson(rows)).splitlines(keepends=True)
    assert json.loads(line) == rows[0]


def failing(n: int):
    yield from ({"n": i} for i in range(n))
    raise RuntimeError("source broke")


def test_an_ndjson_failure_becomes_a_last_error_row(caplog):
    rows = list(parse_ndjson(iter_ndjson(failing(2))))
    assert rows == [{"n": 0}, {"n": 1}, {"error": "RuntimeError: source broke"}]
    assert "Traceback" in caplog.text, "a real failure is logged whole, traceback and all"
    (error_row,) = parse_ndjson(iter_ndjson([object()]))
    assert error_row["error"].startswith(
        "TypeError: Object of type object is not JSON serializable"
    )


def test_an_array_failure_leaves_the_array_unclosed_so_no_parser_accepts_it():
    body = b"".join(iter_json_array(failing(2)))
    assert body == b'[{"n":0},{"n":1}'
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)
    parsed = parse_json_array([body])
    assert [next(parsed), next(parsed)] == [{"n": 0}, {"n": 1}]
    with pytest.raises(ijson.IncompleteJSONError):
        next(parsed)


@pytest.mark.parametrize("stream", [iter_ndjson, iter_json_array])
def test_closing_a_stream_closes_its_rows(stream):
    closed = []

    def rows():
        try:
            yield from range(100)
        finally:
            closed.append(True)

    body = stream(rows())
    next(body)
    next(body)
    body.close()
    assert closed == [True]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_parse_ndjson_joins_rows_split_across_chunks(size):
    data = b"".join(iter_ndjson([{"n": n, "s": "é" * n} for n in range(20)])) + b"\n\n"
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    assert list(parse_ndjson(chunks)) == [{"n": n, "s": "é" * n} for n in range(20)]
    assert list(parse_ndjson([b'{"a":1}\n{"b":2}'])) == [{"a": 1}, {"b": 2}]


def test_rows_are_made_lazily_with_a_wait_between_them():
    waits = []
    rows = lesson.make_rows(3, 0.5, sleep=waits.append)
    assert next(rows)["n"] == 0 and waits == []
    assert [row["n"] for row in rows] == [1, 2] and waits == [0.5, 0.5]
    with pytest.raises(RuntimeError, match="row 1"):
        list(lesson.make_rows(3, 0.0, fail_at=1))


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/ndjson", "application/x-ndjson"), ("/json-array", "application/json")],
)
def test_the_routes_say_what_they_send(course_app, path, content_type):
    response = call_app(course_app, f"{path}?count=3")
    body = response.read()
    assert response.header("Content-Type") == content_type
    assert response.header("Content-Length") is None
    expected = list(lesson.make_rows(3, 0.0))
    rows = json.loads(body) if path == "/json-array" else list(parse_ndjson([body]))
    assert rows == expected


def test_fail_at_shows_each_format_s_way_of_failing(course_app, caplog):
    ndjson = call_app(course_app, "/ndjson?count=5&fail_at=2").read()
    assert list(parse_ndjson([ndjson]))[-1] == {
        "error": "PlannedFailure: the data source failed at row 2"
    }
    array = call_app(course_app, "/json-array?count=5&fail_at=2").read()
    assert array.startswith(b"[{") and not array.endswith(b"]")
    assert [record.getMessage() for record in caplog.records] == PLANNED_LOG
    assert "Traceback" not in caplog.text


# What the server logs for the two failures fail_at=2 asks for: a line each, no traceback.
PLANNED_LOG = [
    "lesson 05: NDJSON stream failed: the data source failed at row 2, on purpose (fail_at)",
    "lesson 05: JSON array stream failed; ending it unclosed: the data source failed at row 2,"
    " on purpose (fail_at)",
]


@pytest.mark.live
@pytest.mark.parametrize(
    "flags",
    [(), ("--server", "gunicorn", "--worker-class", "gthread")],
    ids=["werkzeug", "gunicorn"],
)
def test_a_failure_on_purpose_is_one_line_in_the_server_s_log(flags):
    """The server's own log, as the learner's terminal shows it: a line per failure."""
    with spawn_course(*flags) as server:
        for path in ["/ndjson", "/json-array"]:
            requests.get(f"{server.url}{path}?count=5&fail_at=2", timeout=10).raise_for_status()
    lines = server.log().splitlines()
    assert [line for line in lines if "on purpose" in line] == PLANNED_LOG
    assert "Traceback" not in server.log()


@pytest.mark.live
@pytest.mark.parametrize(
    ("path", "parse"), [("/ndjson", parse_ndjson), ("/json-array", parse_json_array)]
)
def test_a_client_uses_rows_while_the_rest_is_still_coming(live_url, path, parse):
    start = time.perf_counter()
    arrivals = []
    with requests.get(f"{live_url}{path}?count=5&delay=0.2", stream=True, timeout=10) as r:
        for row in parse(r.iter_content(chunk_size=None)):
            arrivals.append((row["n"], time.perf_counter() - start))
    assert [n for n, _ in arrivals] == [0, 1, 2, 3, 4]
    # The last row cannot come before 0.8 s (four waits of 0.2 s); the first was in hand
    # long before that, while the server was still making the rest.
    assert arrivals[-1][1] >= 0.8
    assert arrivals[0][1] < arrivals[-1][1] - 0.4


@pytest.mark.live
def test_200_000_ndjson_rows_leave_the_server_and_the_client_flat(tmp_path):
    """A body of 10 MB: buffered, it would cost more than 8 MiB on either side (the
    benchmark streams a million rows; tracemalloc would make that slow here)."""
    count = 200_000
    with spawn_course() as server:
        observe(server.url + "/ndjson?count=10")
        with trace_memory(server.pids()) as memory:
            tracemalloc.start()
            try:
                with requests.get(f"{server.url}/ndjson?count={count}", stream=True) as r:
                    last = None
                    for row in parse_ndjson(r.iter_content(chunk_size=64 * 1024)):
                        last = row
                _, client_peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    assert last == {"n": count - 1, "square": (count - 1) ** 2, "label": f"row {count - 1}"}
    assert memory.growth_bytes < 8 * MiB, f"server grew {memory.growth_bytes / MiB:.1f} MiB"
    assert client_peak < 2 * MiB, f"client peaked at {client_peak / MiB:.1f} MiB"
