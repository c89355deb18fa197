"""Exercise 09: the same streams in Flask and in Django.

Read first: lesson 09, 'Flask' and 'Django' (the page ``/lessons/9``); the formats are
lesson 04, 'The format', and lesson 05, 'NDJSON'.

Task 1. ``make_flask_app(log)``: a Flask app whose ``GET /events`` streams the events in
        ``log`` (a list of ``(id, data)`` pairs, oldest first) as Server-Sent Events, with
        ``Content-Type: text/event-stream`` and ``Cache-Control: no-cache``.
        ``streamlib.sse.format_event(data, id=id)`` writes one event.
Task 2. Resume: a request whose ``Last-Event-ID`` header names an event in ``log`` gets
        only the events after it; any other value, the whole log. Flask ends the request
        context when the view returns, before the body is sent: read the header in the
        view, or keep the context for the generator (``stream_with_context``).
Task 3. ``make_export_view(open_rows)``: a Django view that streams the rows of
        ``open_rows()`` (a cursor: an iterable of dicts with a ``close()``) as NDJSON, one
        ``json.dumps(row)`` and a newline per row, ``Content-Type: application/x-ndjson``.
        Each row leaves as it is read (a ``StreamingHttpResponse``, not an
        ``HttpResponse``, which joins everything first), and the cursor is opened only when
        the stream starts and closed however it ends.

Grade your work:   python -m pytest exercises/test_09_flask_and_django.py
"""

import json
from collections.abc import Callable, Iterable, Iterator

from django.http import HttpRequest, StreamingHttpResponse
from flask import Flask, Response, request

from streamlib.sse import format_event


def make_flask_app(log: list[tuple[str, str]]) -> Flask:
    """Return a Flask app streaming ``log``'s events at ``/events``, resumable."""
    app = Flask(__name__)

    @app.get("/events")
    def events() -> Response:
        last_event_id = request.headers.get("Last-Event-ID")  # Task 2: read in the view
        ids = [event_id for event_id, _ in log]
        start = ids.index(last_event_id) + 1 if last_event_id in ids else 0
        body = (format_event(data, id=event_id) for event_id, data in log[start:])
        return Response(
            body, content_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    return app


def make_export_view(open_rows: Callable[[], Iterable[dict]]) -> Callable:
    """Return a Django view streaming the rows of ``open_rows()`` as NDJSON."""

    def lines() -> Iterator[bytes]:
        rows = open_rows()  # Task 3: opened when the stream starts, not before
        try:
            for row in rows:
                yield (json.dumps(row) + "\n").encode()
        finally:
            rows.close()  # however the stream ends: done, or closed by the server

    def export(request: HttpRequest) -> StreamingHttpResponse:
        return StreamingHttpResponse(lines(), content_type="application/x-ndjson")

    return export
