"""Grader for exercise 04: ``python -m pytest exercises/test_04_server_sent_events.py``.

Tests are named after the tasks in ``exercises/04_server_sent_events.py``. The format
vectors follow the WHATWG spec's rules; the stream is read back by an independent
client (sseclient-py) over a real server.
"""

import pytest
import requests
import sseclient
from grading import tutor

from streamlib import call_app, serve
from streamlib.sse import parse_events

EXERCISE = "04_server_sent_events"

VECTORS = [
    (("hello",), {}, b"data: hello\n\n"),
    (("",), {}, b"data: \n\n"),
    (("a\nb",), {}, b"data: a\ndata: b\n\n"),
    (("a\r\nb",), {}, b"data: a\ndata: b\n\n"),
    (("a\rb",), {}, b"data: a\ndata: b\n\n"),
    (("ends with a newline\n",), {}, b"data: ends with a newline\ndata: \n\n"),
    (("x",), {"event": "tick"}, b"event: tick\ndata: x\n\n"),
    (("x",), {"id": "42"}, b"id: 42\ndata: x\n\n"),
    (("x",), {"event": "tick", "id": "42"}, b"event: tick\nid: 42\ndata: x\n\n"),
    (("é ✓",), {}, "data: é ✓\n\n".encode()),
]


@pytest.mark.parametrize(("args", "kwargs", "expected"), VECTORS)
def test_task1_format_event_writes_the_spec_format(exercise, args, kwargs, expected):
    got = exercise.format_event(*args, **kwargs)
    called = ", ".join([repr(args[0])] + [f"{k}={v!r}" for k, v in kwargs.items()])
    assert got == expected, tutor(
        f"format_event({called})",
        got,
        repr(expected),
        "Task 1: event and id lines first, then one 'data: ' line per line of data (split"
        " at \\r\\n, \\r and \\n), each ending in \\n, then one more \\n.",
    )


@pytest.mark.parametrize(
    "kwargs", [{"id": "a\nb"}, {"id": "a\rb"}, {"id": "a\x00b"}, {"event": "a\nb"}]
)
def test_task1_an_id_or_event_that_would_break_the_stream_is_refused(exercise, kwargs):
    try:
        got = exercise.format_event("x", **kwargs)
    except ValueError:
        return
    raise AssertionError(
        tutor(
            f"format_event('x', **{kwargs!r})",
            got,
            "a ValueError",
            "Task 1: a CR or LF in an id would end the line early and inject a field.",
        )
    )


def test_task1_what_you_write_a_parser_reads_back(exercise):
    written = exercise.format_event("line one\nline two", event="note", id="7")
    (event,) = parse_events([written])
    assert (event.data, event.event, event.id) == ("line one\nline two", "note", "7")


LOG = [("1", "first"), ("2", "second\nwith two lines"), ("3", "third")]


def read_events(exercise, last_event_id=None):
    headers = {} if last_event_id is None else {"Last-Event-ID": last_event_id}
    response = call_app(exercise.make_events_app(LOG), headers=headers)
    return response, [(e.id, e.data) for e in parse_events([response.read()])]


def test_task2_streams_the_log_with_event_stream_headers(exercise):
    response, events = read_events(exercise)
    content_type, cache = response.header("Content-Type"), response.header("Cache-Control")
    assert (response.status, content_type, cache) == (
        "200 OK",
        "text/event-stream",
        "no-cache",
    ), tutor(
        "make_events_app(log) and looked at the status and headers",
        f"{response.status}, Content-Type {content_type}, Cache-Control {cache}",
        "200 OK, Content-Type text/event-stream, Cache-Control no-cache",
        "Task 2 and lesson 04, 'Headers'.",
    )
    assert events == LOG, tutor("make_events_app(log) and parsed the body", events, LOG, "Task 2.")


@pytest.mark.parametrize(
    ("last_event_id", "expected"),
    [("1", LOG[1:]), ("2", LOG[2:]), ("3", []), ("99", LOG), ("abc", LOG), ("", LOG)],
)
def test_task3_resumes_after_the_last_event_id(exercise, last_event_id, expected):
    response, events = read_events(exercise, last_event_id)
    assert (response.status_code, events) == (200, expected), tutor(
        f"make_events_app(log) with Last-Event-ID: {last_event_id!r}",
        f"{response.status}, events {events}",
        f"200 OK, events {expected}",
        "Task 3: the header is environ['HTTP_LAST_EVENT_ID']; send the events after the one"
        " it names; anything else gets the whole log, never an error.",
    )


def test_task3_an_independent_client_resumes_over_a_real_server(exercise):
    headers = {"Last-Event-ID": "1"}
    with (
        serve(exercise.make_events_app(LOG)) as url,
        requests.get(url, headers=headers, stream=True, timeout=5) as r,
    ):
        events = [(e.id, e.data) for e in sseclient.SSEClient(r).events()]
    assert events == LOG[1:], tutor(
        "make_events_app(log) on a real server, read by sseclient-py with Last-Event-ID: 1",
        events,
        LOG[1:],
        "Tasks 1 to 3.",
    )
