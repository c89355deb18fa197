"""Grader for exercise 01: ``python -m pytest exercises/test_01_buffered_vs_streamed.py``.

Tests are named after the tasks in ``exercises/01_buffered_vs_streamed.py``.
"""

import threading
import tracemalloc

import requests
from grading import Happened, RowSource, serve_exercise, tutor

from streamlib import call_app

EXERCISE = "01_buffered_vs_streamed"
# The section each task's hint sends a learner to when no test says more.
TASK_SECTIONS = {
    1: "lesson 01, 'Streamed'",
    2: "lesson 01, 'A generator is lazy'",
    3: "lesson 01, 'close()'",
}
ROWS = [f"row {n}: {'x' * 24}\n".encode() for n in range(5)]
REPORT = b"report\n" + b"".join(ROWS) + b"total: 5 rows\n"
CALL = "streamed_report(open_rows), then pulled the body piece by piece as a server does"


def read_until(response, wanted: bytes) -> bytes:
    """Pull pieces until ``wanted`` has arrived (or the body ends); return what came."""
    received = b""
    while wanted not in received:
        try:
            received += response.next_piece()
        except StopIteration:
            break
    return received


def test_task1_sends_the_same_report(exercise):
    got = call_app(exercise.streamed_report(RowSource(ROWS))).read()
    assert got == REPORT, tutor(
        "streamed_report(open_rows) and read the whole body",
        got,
        f"the same bytes as buffered_report: {REPORT!r}",
        "Task 1 and lesson 01, 'Streamed': yield b'report\\n', then each row, then the 'total: N"
        " rows' line.",
    )


def test_task1_sends_the_first_row_before_reading_the_next(exercise):
    source = RowSource(ROWS)
    response = call_app(exercise.streamed_report(source))
    try:
        received = read_until(response, ROWS[0])
        pulled = [cursor.pulled for cursor in source.opened]
    finally:
        response.close()
    assert ROWS[0] in received and pulled and max(pulled) <= 2, tutor(
        CALL,
        Happened(
            f"the first row came after the cursor had given {max(pulled, default=0)} rows"
            if ROWS[0] in received
            else f"the body so far, {received!r}, had no row yet"
        ),
        "the first row to leave as soon as the cursor gave it, with at most one more row read",
        "Task 1 and lesson 01, 'Streamed': a generator yields each piece as it is made;"
        " the buffered app reads every row before it returns.",
    )


def test_task1_never_holds_the_whole_report(exercise):
    big_row = b"y" * 4095 + b"\n"
    source = RowSource([big_row] * 4000)  # a 16 MiB report; the list holds one row 4000 times
    tracemalloc.start()  # before the call: a buffered app builds its body inside it
    response = None
    try:
        response = call_app(exercise.streamed_report(source))
        size = 0
        try:
            while True:
                size += len(response.next_piece())
        except StopIteration:
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        if response is not None:
            response.close()
    assert size > 16_000_000, f"the report was {size} bytes; expected over 16 MB"
    assert peak < 2**20, tutor(
        "streamed_report with 4000 rows of 4 KiB and read it, measuring memory",
        Happened(f"a peak of {peak / 2**20:.1f} MiB for a {size / 2**20:.0f} MiB report"),
        "under 1 MiB: a stream holds one row at a time",
        "Task 1 and lesson 01, 'Buffered': b''.join or a list of all the rows holds the"
        " whole body; yield each row instead.",
    )


def test_task2_headers_say_plain_text_and_no_length(exercise):
    response = call_app(exercise.streamed_report(RowSource(ROWS)))
    try:
        response.next_piece()
    finally:
        response.close()
    content_type, length = response.header("Content-Type"), response.header("Content-Length")
    assert (response.status, content_type, length) == (
        "200 OK",
        "text/plain; charset=utf-8",
        None,
    ), tutor(
        "streamed_report and looked at the status and headers",
        Happened(f"{response.status}, Content-Type {content_type}, Content-Length {length}"),
        "200 OK, Content-Type 'text/plain; charset=utf-8' and no Content-Length",
        "Task 2 and lesson 01, 'Content-Length': a stream does not know its length yet;"
        " the server frames the body (chunked encoding) instead.",
    )


def test_task2_calls_start_response_before_returning_the_body(exercise):
    response = call_app(exercise.streamed_report(RowSource(ROWS)))
    status = response.status  # set only if start_response ran before the app returned
    response.close()
    assert status is not None, tutor(
        "streamed_report(open_rows)(environ, start_response), then looked before reading the body",
        Happened("start_response had not been called yet"),
        "start_response called before the app returns its body",
        "Task 2 and lesson 01, 'A generator is lazy': an app that is itself a generator"
        " function runs nothing, start_response included, until the server asks for the first"
        " piece, when it is too late to answer a bad request with a 400.",
    )


def test_task3_closes_the_cursor_after_the_last_row(exercise):
    source = RowSource(ROWS)
    call_app(exercise.streamed_report(source)).read()
    states = [(cursor.exhausted, cursor.closed) for cursor in source.opened]
    assert states == [(True, True)], tutor(
        "streamed_report, read the whole body and looked at the cursors it opened",
        Happened(f"(read to the end, closed) = {states}"),
        "one cursor, read to the end and closed: [(True, True)]",
        "Task 3 and lesson 01, 'close()': open the cursor once, and close it in a finally.",
    )


def test_task3_closes_the_cursor_when_the_client_leaves_early(exercise):
    source = RowSource(ROWS)
    response = call_app(exercise.streamed_report(source))
    read_until(response, ROWS[0])
    response.close()  # what the server does when the client hangs up mid-stream
    closed = [cursor.closed for cursor in source.opened]
    assert closed == [True], tutor(
        f"{CALL}; after the first row the server called close()",
        Happened(f"cursors closed: {closed}"),
        "the one cursor closed: [True]",
        "Task 3 and lesson 01, 'close()': close() raises GeneratorExit at the paused"
        " yield; a try/finally around the loop runs then.",
    )


def test_task3_leaves_nothing_open_when_closed_before_the_first_piece(exercise):
    source = RowSource(ROWS)
    call_app(exercise.streamed_report(source)).close()
    left_open = [cursor for cursor in source.opened if not cursor.closed]
    assert not left_open, tutor(
        "streamed_report, then close() on the body before reading anything",
        Happened(f"{len(left_open)} of the {len(source.opened)} cursors opened stayed open"),
        "no cursor left open",
        "Task 3 and lesson 01, 'close()': what runs of a generator that is closed before its"
        " first next()? Notebook 01 tries it with a cursor.",
    )


def test_task1_a_real_client_gets_the_first_row_while_the_rest_is_pending(exercise):
    gate = threading.Event()  # the cursor waits here after its first row
    source = RowSource(ROWS, gate=gate, gate_after=1)
    received, trouble = b"", ""
    try:
        with serve_exercise(exercise.streamed_report(source)) as url:
            try:
                with requests.get(url, stream=True, timeout=5) as r:
                    while ROWS[0] not in received:
                        piece = r.raw.read1(65536)
                        if not piece:
                            break
                        received += piece
                    gate.set()
                    received += r.raw.read()
            except requests.RequestException as error:
                trouble = f", and then the client gave up ({type(error).__name__})"
    finally:
        gate.set()
    assert received == REPORT, tutor(
        "streamed_report on a real server; the cursor waits after its first row until"
        " the client has that row",
        Happened(f"{len(received)} bytes arrived, {received[:60]!r}...{trouble}"),
        f"the first row to arrive while the rest waited, then the whole report {REPORT!r}",
        "Task 1 and lesson 01, 'Buffered': if the app reads every row before returning, the"
        " server can send nothing until the cursor is done, and here it never is.",
    )
