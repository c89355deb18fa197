"""Exercise 04: write Server-Sent Events, and a stream a client can resume.

Read first: lesson 04, 'The format', 'Reconnection' and 'Headers' (the page
``/lessons/4``), and lesson 01, 'A generator is lazy'; the WHATWG spec, "Server-sent
events", has the rest. Write the code yourself: the grader checks that it is not
``streamlib.sse``'s, which lesson 04 uses once you have written your own.

Task 1. ``format_event(data, event=None, id=None)``: return the event as bytes. Optional
        ``event: NAME`` and ``id: ID`` lines, then one ``data: LINE`` line per line of
        ``data`` (split at ``\\r\\n``, ``\\r`` and ``\\n``: all three end a line in SSE), then
        a blank line. Write ``\\n`` as the line end. An ``id`` or ``event`` containing CR,
        LF or NUL cannot be sent: raise ``ValueError``.
Task 2. ``make_events_app(log)``: a WSGI app that streams the events in ``log`` (a list of
        ``(id, data)`` pairs, oldest first) with ``Content-Type: text/event-stream`` and
        ``Cache-Control: no-cache``, and no hop-by-hop header such as ``Connection``.
Task 3. Resume: when the request carries a ``Last-Event-ID`` header naming an event in
        ``log``, send only the events after it. Any other value (unknown, too old,
        garbage) gets the whole log: a bad id is never an error.

Grade your work:   python -m pytest exercises/test_04_server_sent_events.py
"""

from collections.abc import Callable


def format_event(data: str, event: str | None = None, id: str | None = None) -> bytes:
    """Return one SSE event: optional ``event`` and ``id`` lines, ``data`` lines, a blank line."""
    raise NotImplementedError("Exercise 04: write format_event (Task 1)")


def make_events_app(log: list[tuple[str, str]]) -> Callable:
    """Return a WSGI app streaming ``log``'s events, resumable with ``Last-Event-ID``."""
    raise NotImplementedError("Exercise 04: write make_events_app (Tasks 2 and 3)")
