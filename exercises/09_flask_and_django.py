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

from collections.abc import Callable, Iterable


def make_flask_app(log: list[tuple[str, str]]):
    """Return a Flask app streaming ``log``'s events at ``/events``, resumable."""
    raise NotImplementedError("Exercise 09: write make_flask_app (Tasks 1 and 2)")


def make_export_view(open_rows: Callable[[], Iterable[dict]]) -> Callable:
    """Return a Django view streaming the rows of ``open_rows()`` as NDJSON."""
    raise NotImplementedError("Exercise 09: write make_export_view (Task 3)")
