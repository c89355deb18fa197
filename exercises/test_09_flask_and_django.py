"""Grader for exercise 09: ``python -m pytest exercises/test_09_flask_and_django.py``.

Tests are named after the tasks in ``exercises/09_flask_and_django.py``. The Flask app is
read through a real server by an independent SSE client (sseclient-py); the Django view is
called as Django's handler would call it, and its stream read piece by piece.
"""

import json

import django
import pytest
import requests
import sseclient
from django.conf import settings
from django.test import RequestFactory
from grading import Happened, RowSource, serve_exercise, tutor

from streamlib import call_app
from streamlib.sse import parse_events

EXERCISE = "09_flask_and_django"
# The section each task's hint sends a learner to when no test says more.
TASK_SECTIONS = {
    1: "lesson 09, 'Flask'",
    2: "lesson 09, 'Flask'",
    3: "lesson 09, 'Django'",
}
LOG = [("1", "first"), ("2", "second"), ("3", "third")]
ROWS = [{"id": n, "name": f"row {n}"} for n in range(1, 6)]

if not settings.configured:  # the least Django needs to build a request and a response
    settings.configure()
    django.setup()


def read_events(exercise, last_event_id=None):
    """The Flask app's answer to ``GET /events`` and its events, read in-process."""
    headers = {} if last_event_id is None else {"Last-Event-ID": last_event_id}
    app = exercise.make_flask_app(LOG)
    response = call_app(app, "/events", headers=headers, forbid_hop_by_hop=False)
    return response, [(e.id, e.data) for e in parse_events([response.read()])]


def test_task1_streams_the_log_with_event_stream_headers(exercise):
    response, events = read_events(exercise)
    content_type = (response.header("Content-Type") or "").split(";")[0]
    cache = response.header("Cache-Control")
    assert (response.status, content_type, cache, events) == (
        "200 OK",
        "text/event-stream",
        "no-cache",
        LOG,
    ), tutor(
        "make_flask_app(log) and GET /events",
        Happened(
            f"{response.status}, Content-Type {content_type}, Cache-Control {cache}, events"
            f" {events}"
        ),
        f"200 OK, Content-Type text/event-stream, Cache-Control no-cache, events {LOG}",
        "Task 1 and lesson 09, 'Flask': return Response(generator) with the headers; each"
        " event is format_event(data, id=id).",
    )


def test_task1_an_independent_client_reads_it_over_a_real_server(exercise):
    with (
        serve_exercise(exercise.make_flask_app(LOG)) as url,
        requests.get(url + "/events", stream=True, timeout=5) as response,
    ):
        events = [(e.id, e.data) for e in sseclient.SSEClient(response).events()]
    assert events == LOG, tutor(
        "make_flask_app(log) on a real server, read by sseclient-py",
        events,
        repr(LOG),
        "Task 1 and lesson 09, 'Flask'.",
    )


@pytest.mark.parametrize(
    ("last_event_id", "expected"),
    [("1", LOG[1:]), ("2", LOG[2:]), ("3", []), ("99", LOG), ("abc", LOG), ("", LOG)],
)
def test_task2_resumes_after_the_last_event_id(exercise, last_event_id, expected):
    try:
        response, events = read_events(exercise, last_event_id)
    except NotImplementedError:
        raise
    except RuntimeError as error:
        raise AssertionError(
            tutor(
                f"make_flask_app(log) and GET /events with Last-Event-ID: {last_event_id!r}",
                Happened(f"reading the body raised RuntimeError: {error}"),
                "the events after that id",
                "Task 2 and lesson 04, 'Reconnection': the generator runs after the view has"
                " returned, when Flask has ended the request context; read the header in"
                " the view, or wrap the generator in stream_with_context.",
            )
        ) from None
    assert (response.status, events) == ("200 OK", expected), tutor(
        f"make_flask_app(log) and GET /events with Last-Event-ID: {last_event_id!r}",
        Happened(f"{response.status}, events {events}"),
        f"200 OK, events {expected}",
        "Task 2 and lesson 09, 'Flask': send the events after the one the header names; anything"
        " else gets the"
        " whole log, never an error.",
    )


def export(exercise, source: RowSource):
    """The view's response to ``GET /export``, as Django's handler would get it."""
    return exercise.make_export_view(source)(RequestFactory().get("/export"))


def test_task3_streams_ndjson_one_row_a_line(exercise):
    response = export(exercise, RowSource(ROWS))
    try:
        body = b"".join(response)
    finally:
        response.close()
    lines = body.decode().splitlines()
    content_type = response.headers.get("Content-Type")
    assert (content_type, [json.loads(line) for line in lines]) == (
        "application/x-ndjson",
        ROWS,
    ), tutor(
        "make_export_view(open_rows) and read the whole answer",
        Happened(f"Content-Type {content_type}, body {body[:200]!r}"),
        "Content-Type application/x-ndjson, one JSON object per line",
        "Task 3 and lesson 05, 'NDJSON': json.dumps(row) and a newline per row.",
    )


def test_task3_sends_the_first_row_before_reading_the_rest(exercise):
    source = RowSource(ROWS)
    response = export(exercise, source)
    try:
        streaming = response.streaming
        first = next(iter(response)) if streaming else response.content
        pulled = [cursor.pulled for cursor in source.opened]
    finally:
        response.close()
    assert streaming and b'"id": 1' in first and max(pulled) <= 2, tutor(
        "make_export_view(open_rows) and read its first piece",
        Happened(
            f"a {'streaming' if streaming else 'whole'} response whose first piece came once"
            f" the cursor had given {max(pulled, default=0)} rows"
        ),
        "a StreamingHttpResponse whose first row leaves before the rest are read",
        "Task 3 and lesson 09, 'Django': an HttpResponse joins its content first; a"
        " StreamingHttpResponse sends what its generator yields, as it comes.",
    )


def test_task3_opens_the_cursor_only_when_the_stream_starts(exercise):
    source = RowSource(ROWS)
    response = export(exercise, source)
    opened_before_reading = len(source.opened)
    response.close()  # the client left before the first byte
    leaked = [cursor for cursor in source.opened if not cursor.closed]
    assert opened_before_reading == 0 and not leaked, tutor(
        "make_export_view(open_rows), then closed the response unread",
        Happened(
            f"{opened_before_reading} cursor(s) opened by the view itself, {len(leaked)} left open"
        ),
        "no cursor opened until the stream starts, so none left open",
        "Task 3 and lesson 01, 'A generator is lazy': call open_rows() inside the generator,"
        " which runs only when the server asks for the first piece.",
    )


def test_task3_closes_the_cursor_when_the_client_leaves_early(exercise):
    source = RowSource(ROWS)
    response = export(exercise, source)
    next(iter(response))
    response.close()  # what the server does when a write fails: the client has gone
    closed = [cursor.closed for cursor in source.opened]
    assert closed == [True], tutor(
        "make_export_view(open_rows), read one row, then closed the response",
        Happened(f"the cursors' closed flags were {closed}"),
        "the one cursor closed",
        "Task 3 and lesson 01, 'close()': a finally around the loop closes the cursor,"
        " however the stream ends; Django's close() reaches your generator.",
    )
