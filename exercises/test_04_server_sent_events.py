"""Grader for exercise 04: ``python -m pytest exercises/test_04_server_sent_events.py``.

Tests are named after the tasks in ``exercises/04_server_sent_events.py``. The format
vectors follow the WHATWG spec's rules; the stream is read back by an independent
client (sseclient-py) over a real server.
"""

from wsgiref.util import is_hop_by_hop

import pytest
import requests
import sseclient
from grading import Happened, require_own_work, serve_exercise, tutor

from streamlib import call_app
from streamlib.sse import parse_events

EXERCISE = "04_server_sent_events"
# The section each task's hint sends a learner to when no test says more.
TASK_SECTIONS = {
    1: "lesson 04, 'The format'",
    2: "lesson 04, 'Headers'",
    3: "lesson 04, 'Reconnection'",
}

VECTORS = {
    "one-line": (("hello",), {}, b"data: hello\n\n"),
    "empty": (("",), {}, b"data: \n\n"),
    "lf": (("a\nb",), {}, b"data: a\ndata: b\n\n"),
    "crlf": (("a\r\nb",), {}, b"data: a\ndata: b\n\n"),
    "cr": (("a\rb",), {}, b"data: a\ndata: b\n\n"),
    "ends-with-lf": (("ends with a newline\n",), {}, b"data: ends with a newline\ndata: \n\n"),
    "event": (("x",), {"event": "tick"}, b"event: tick\ndata: x\n\n"),
    "id": (("x",), {"id": "42"}, b"id: 42\ndata: x\n\n"),
    "event-and-id": (("x",), {"event": "tick", "id": "42"}, b"event: tick\nid: 42\ndata: x\n\n"),
    "utf-8": (("é ✓",), {}, "data: é ✓\n\n".encode()),
}
# Characters that str.splitlines breaks at and SSE does not: each stays inside its data line.
NOT_LINE_ENDS = {
    "U+2028": "\u2028",
    "U+2029": "\u2029",
    "U+0085": "\x85",
    "form-feed": "\x0c",
    "vertical-tab": "\x0b",
    "U+001E": "\x1e",
}


@pytest.mark.parametrize(("args", "kwargs", "expected"), VECTORS.values(), ids=list(VECTORS))
def test_task1_format_event_writes_the_spec_format(exercise, args, kwargs, expected):
    got = exercise.format_event(*args, **kwargs)
    called = ", ".join([repr(args[0])] + [f"{k}={v!r}" for k, v in kwargs.items()])
    assert got == expected, tutor(
        f"format_event({called})",
        got,
        repr(expected),
        "Task 1 and lesson 04, 'The format': event and id lines first, then one 'data: ' line"
        " per line of data (split at \\r\\n, \\r and \\n), each ending in \\n, then one more \\n.",
    )


@pytest.mark.parametrize("character", NOT_LINE_ENDS.values(), ids=list(NOT_LINE_ENDS))
def test_task1_only_cr_and_lf_end_a_line(exercise, character):
    data = f"a{character}b"
    got = exercise.format_event(data)
    expected = f"data: {data}\n\n".encode()
    assert got == expected, tutor(
        f"format_event({data!r})",
        got,
        f"{expected!r}: one data line, as SSE ends a line at CR and LF only",
        "Task 1 and lesson 04, 'The format': str.splitlines also breaks at this character;"
        " SSE does not.",
    )


def test_task1_format_event_is_your_own(exercise):
    from streamlib.sse import format_event as librarys

    exercise.format_event("x")  # the stub raises here: not started yet
    require_own_work(exercise.format_event, librarys, "lesson 04, 'The format'")


WHY_REFUSED = {
    "id-lf": "a line break in the id ends its line early: what follows becomes a field",
    "id-cr": "CR ends a line in SSE too: what follows the CR becomes a field",
    "id-nul": "the spec has a browser ignore an id containing NUL, so the client could"
    " never resume from it: refuse it rather than send an id that cannot work",
    "event-lf": "a line break in the event name ends its line early, the same as in an id",
}


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"id": "a\nb"}, "id-lf"),
        ({"id": "a\rb"}, "id-cr"),
        ({"id": "a\x00b"}, "id-nul"),
        ({"event": "a\nb"}, "event-lf"),
    ],
    ids=list(WHY_REFUSED),
)
def test_task1_an_id_or_event_that_would_break_the_stream_is_refused(exercise, kwargs, why):
    try:
        got = exercise.format_event("x", **kwargs)
    except ValueError:
        return
    ((name, value),) = kwargs.items()
    raise AssertionError(
        tutor(
            f"format_event('x', {name}={value!r})",
            got,
            "a ValueError",
            f"Task 1 and lesson 04, 'The format': {WHY_REFUSED[why]}.",
        )
    )


def test_task1_what_you_write_a_parser_reads_back(exercise):
    written = exercise.format_event("line one\nline two", event="note", id="7")
    read = [(e.data, e.event, e.id) for e in parse_events([written])]
    assert read == [("line one\nline two", "note", "7")], tutor(
        "format_event('line one\\nline two', event='note', id='7'), read back by a parser",
        read,
        "one event, [('line one\\nline two', 'note', '7')]: (data, event, id)",
        "Task 1 and lesson 04, 'The format': a parser joins the data lines with a newline.",
    )


LOG = [("1", "first"), ("2", "second\nwith two lines"), ("3", "third")]


def read_events(exercise, last_event_id=None):
    """The app's answer and its events. Hop-by-hop headers are Task 2's own test's to judge."""
    headers = {} if last_event_id is None else {"Last-Event-ID": last_event_id}
    app = exercise.make_events_app(LOG)
    response = call_app(app, headers=headers, forbid_hop_by_hop=False)
    return response, [(e.id, e.data) for e in parse_events([response.read()])]


def test_task2_sends_no_hop_by_hop_header(exercise):
    response, _ = read_events(exercise)
    sent = [name for name, _ in response.headers if is_hop_by_hop(name)]
    assert not sent, tutor(
        "make_events_app(log) and looked at its headers",
        Happened(f"it sent {', '.join(sent)}"),
        "no hop-by-hop header",
        "Task 2 and lesson 04, 'Headers': Connection, Keep-Alive and Transfer-Encoding"
        " describe one connection, which is the server's business; PEP 3333 forbids an app"
        " to send them, and HTTP/2 treats them as a malformed response.",
    )


def test_task2_calls_start_response_before_returning_the_stream(exercise):
    response = call_app(exercise.make_events_app(LOG), forbid_hop_by_hop=False)
    status = response.status  # set only if start_response ran before the app returned
    response.close()
    assert status is not None, tutor(
        "make_events_app(log)(environ, start_response), then looked before reading the body",
        Happened("start_response had not been called yet"),
        "start_response called before the app returns its iterable",
        "Task 2 and lesson 01, 'A generator is lazy': an app that is itself a generator"
        " function runs nothing, start_response included, until the server asks for the"
        " first piece; a bad request can then no longer get its 4xx. Call start_response in"
        " the app, then return a generator.",
    )


def test_task2_streams_the_log_with_event_stream_headers(exercise):
    response, events = read_events(exercise)
    content_type, cache = response.header("Content-Type"), response.header("Cache-Control")
    assert (response.status, content_type, cache) == (
        "200 OK",
        "text/event-stream",
        "no-cache",
    ), tutor(
        "make_events_app(log) and looked at the status and headers",
        Happened(f"{response.status}, Content-Type {content_type}, Cache-Control {cache}"),
        "200 OK, Content-Type text/event-stream, Cache-Control no-cache",
        "Task 2 and lesson 04, 'Headers'.",
    )
    assert events == LOG, tutor(
        "make_events_app(log) and parsed the body",
        events,
        LOG,
        "Task 2 and lesson 04, 'The format'.",
    )


@pytest.mark.parametrize(
    ("last_event_id", "expected"),
    [("1", LOG[1:]), ("2", LOG[2:]), ("3", []), ("99", LOG), ("abc", LOG), ("", LOG)],
)
def test_task3_resumes_after_the_last_event_id(exercise, last_event_id, expected):
    response, events = read_events(exercise, last_event_id)
    assert (response.status_code, events) == (200, expected), tutor(
        f"make_events_app(log) with Last-Event-ID: {last_event_id!r}",
        Happened(f"{response.status}, events {events}"),
        f"200 OK, events {expected}",
        "Task 3 and lesson 04, 'Reconnection': the header is environ['HTTP_LAST_EVENT_ID']; send"
        " the events after the one"
        " it names; anything else gets the whole log, never an error.",
    )


def test_task3_an_independent_client_resumes_over_a_real_server(exercise):
    headers = {"Last-Event-ID": "1"}
    with (
        serve_exercise(exercise.make_events_app(LOG)) as url,
        requests.get(url, headers=headers, stream=True, timeout=5) as r,
    ):
        events = [(e.id, e.data) for e in sseclient.SSEClient(r).events()]
    assert events == LOG[1:], tutor(
        "make_events_app(log) on a real server, read by sseclient-py with Last-Event-ID: 1",
        events,
        LOG[1:],
        "Tasks 1 to 3 and lesson 04, 'Reconnection'.",
    )
