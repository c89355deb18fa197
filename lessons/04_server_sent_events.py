"""Lesson 04: Server-Sent Events. A clock a browser can follow, lose, and catch up with.

**The format** (``streamlib.sse``; the WHATWG spec, "Server-sent events"). A response of
type ``text/event-stream`` whose body is events: ``field: value`` lines and a blank line
that dispatches them. ``data:`` carries the payload (several ``data:`` lines are joined with
newlines), ``event:`` a type, ``id:`` an id, ``retry:`` the reconnection delay in ms, and a
line starting with ``:`` is a comment. A browser reads it with ``new EventSource(url)``.

**Reconnection.** When the connection drops, the browser waits ``retry`` ms and connects
again, sending the last id it saw as the ``Last-Event-ID`` header. The server resumes after
it. Here each event's id is its number on the clock (event n is due at n x interval seconds
since 1970), so missed events can be recomputed, even by a server that restarted in between,
and the replay is bounded: at most ``REPLAY_LIMIT`` events back. A ``Last-Event-ID`` that is
not a number, lies in the future, or is too old starts a fresh stream; never an error.

**Headers.** ``Content-Type: text/event-stream``; ``Cache-Control: no-cache`` (a cached
stream is a broken stream); ``X-Accel-Buffering: no`` (tells nginx not to buffer this one
response; lesson 07). And no ``Connection: keep-alive``: many Node examples set it (a habit
from HTTP/1.0, where a client had to ask for a persistent connection, and Node lets an app
set any header), but it is a hop-by-hop header, which PEP 3333 forbids an app to send.
Keeping the connection open is the WSGI server's job.

**Heartbeats and goodbyes.** Something is sent at once (a comment) so that the headers leave
now. When nothing happens for ``heartbeat`` seconds, a comment is sent: it keeps proxies from
closing a quiet connection, and it is how a WSGI app notices that its client left. The app
cannot see the socket close; it learns of it when a write fails. After a client closes
normally, the first write still succeeds (the kernel accepts it, the client answers with a
reset), and the second one fails. So a stream outlives its client by up to two writes: the
heartbeat interval bounds the cleanup time, and ``/stats`` shows it. (A layer that holds
writes back, such as the gzip middleware of lesson 07, must watch the socket itself.)

The failed write ends the stream, and the server calls its ``close()``,
which runs its ``finally``: PEP 3333 obliges every server to call it, however the response
ends. gunicorn does; plain werkzeug skipped it when a client reset the connection right
after the last event, so the course's werkzeug runs with ``streamlib.devserver``, and a
test resets five clients after ``[DONE]`` and counts five streams closed.

**From another origin.** A page served elsewhere (a front end on ``localhost:5173``) may
open ``new EventSource("http://127.0.0.1:8000/events")`` only if the answer says so:
``Access-Control-Allow-Origin`` naming that page's origin. EventSource sends no preflight
for a plain GET, but on reconnection it adds ``Last-Event-ID``, which is not a
"safelisted" header, so the browser asks first with an ``OPTIONS`` preflight. The course
sends neither answer unless started with ``--cors http://localhost:5173``; then it
allows that origin alone, ``Last-Event-ID`` included (``streamlib.origins``).

Try it (``python lessons/04_server_sent_events.py``, or ``python -m lessons``)::

    curl -N 'http://127.0.0.1:8000/events?count=5&interval=1'
    curl -N 'http://127.0.0.1:8000/events?interval=5&heartbeat=1'   # heartbeats between
    curl -N -H 'Last-Event-ID: 1' 'http://127.0.0.1:8000/events?count=3'  # too old: fresh

Then open http://127.0.0.1:8000/demo/events, stop and restart the server, and watch the page
reconnect and catch up. Notebook: ``notebooks/04_server_sent_events.ipynb``. Exercise:
``exercises/04_server_sent_events.py``.
"""

import json
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from typing import NamedTuple

from werkzeug.wrappers import Request

from lessons.cli import run_lesson
from lessons.course import Lesson, Route, send_text
from streamlib import float_param, int_param
from streamlib.sse import SSE_HEADERS, event_stream, format_event

REPLAY_LIMIT = 1000  # events: how far back a reconnecting client may resume
MAX_COUNT = 1_000_000
EVENT_ID = re.compile(r"[0-9]{1,18}")  # the clock's ids: ASCII digits, far fewer than 18


def first_event_id(last_event_id: str | None, now: float, interval: float) -> int:
    """The id of the first event to send: the one after ``last_event_id``, or the next due.

    last_event_id: the ``Last-Event-ID`` header, if the client sent one.
    now: the time, seconds since the epoch; interval: seconds between events.

    >>> first_event_id(None, 100.5, 1.0), first_event_id("98", 100.5, 1.0)
    (101, 99)
    >>> first_event_id("not a number", 100.5, 1.0), first_event_id("5000", 100.5, 1.0)
    (101, 101)
    >>> first_event_id("9" * 5000, 100.5, 1.0)  # not one of ours: int() would even refuse it
    101
    """
    due_next = math.ceil(now / interval)
    if last_event_id is None or not EVENT_ID.fullmatch(last_event_id):
        return due_next
    after = int(last_event_id) + 1
    if after > due_next or due_next - after > REPLAY_LIMIT:
        return due_next  # from the future, or too old to replay: start fresh
    return after


def clock_event(n: int, interval: float) -> bytes:
    """Event ``n`` of the clock: id n, and as data the time it is due, ``{"time": <ms>}``.

    >>> clock_event(3, 0.5)
    b'id: 3\\ndata: {"time": 1500}\\n\\n'
    """
    return format_event(json.dumps({"time": round(n * interval * 1000)}), id=str(n))


def clock_events(
    first_id: int,
    count: int | None,
    interval: float,
    heartbeat: float,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[bytes | None]:
    """Yield clock events from ``first_id``, each when due, and None after each idle heartbeat.

    Event n is due at n x interval seconds since the epoch; its id is n and its data
    ``{"time": <ms since the epoch>}``. Events already due (a resumed stream) come at once.

    first_id: the first event's number (see :func:`first_event_id`).
    count: how many events, or None for no end.
    interval: seconds between events; heartbeat: the longest silence, in seconds.
    clock, sleep: the wall clock and how to wait; tests pass fake ones.
    """
    last = None if count is None else first_id + count
    n = first_id
    while last is None or n < last:
        due = n * interval
        while (wait := due - clock()) > 0:
            if wait > heartbeat:
                sleep(heartbeat)
                yield None  # nothing for a heartbeat's length: event_stream sends a comment
            else:
                sleep(wait)
        yield clock_event(n, interval)
        n += 1


class ClockParams(NamedTuple):
    """What a request asks of the clock: how many events (None: no end), the seconds
    between them and between heartbeats, and the reconnection delay in ms."""

    count: int | None
    interval: float
    heartbeat: float
    retry: int


def clock_params(args: Mapping[str, str]) -> ClockParams:
    """The clock's parameters from a request's query ``args``, each checked: a bad one
    raises werkzeug's ``BadRequest``, saying what was wrong."""
    return ClockParams(
        count=int_param(args, "count", -1, 0, MAX_COUNT) if args.get("count") else None,
        interval=float_param(args, "interval", 1.0, 0.01, 3600.0),
        heartbeat=float_param(args, "heartbeat", 15.0, 0.1, 300.0),
        retry=int_param(args, "retry", 1000, 0, 600_000),
    )


def clock_stream(args: Mapping[str, str], last_event_id: str | None) -> Iterator[bytes]:
    """The SSE clock that a request's query ``args`` and ``Last-Event-ID`` header ask for.

    Every parameter is checked now, before the stream starts, so that a bad one is a 400
    while a status can still be sent. Any framework can serve what this returns: lesson 09
    does it in Flask and Django.
    """
    asked = clock_params(args)
    first = first_event_id(last_event_id, time.time(), asked.interval)
    events = clock_events(first, asked.count, asked.interval, asked.heartbeat)
    return event_stream(events, retry=asked.retry)


def serve_events(environ: dict, start_response: Callable) -> Iterator[bytes]:
    """``GET /events?count=&interval=1&heartbeat=15&retry=1000``: the SSE clock."""
    body = clock_stream(Request(environ).args, environ.get("HTTP_LAST_EVENT_ID"))
    start_response("200 OK", SSE_HEADERS)
    return body


DEMO_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>Lesson 04: an EventSource</title>
<style>body { font: 16px/1.5 system-ui, sans-serif; max-width: 50rem; margin: 2rem auto; }
#log { font-family: monospace; max-height: 60vh; overflow-y: auto; }</style>
</head>
<body>
<nav><a href="/">All lessons</a> ·
<a href="/#04_server_sent_events">Lesson 04: Server-Sent Events</a></nav>
<h1>An EventSource following the SSE clock</h1>
<p>State: <strong id="state">connecting</strong> &middot; reconnections:
<strong id="reconnections">0</strong> &middot; last event id: <strong id="last-id">none</strong></p>
<p>Stop the server and start it again: the browser reconnects by itself and sends the last id
it saw as <code>Last-Event-ID</code>; the server sends what was missed, and the ids below run
on with no gap and no repeat.</p>
<ol id="log"></ol>
<script>
const query = new URLSearchParams(location.search);
if (!query.has("interval")) query.set("interval", "1");
const source = new EventSource("/events?" + query);
const show = (id, text) => { document.getElementById(id).textContent = text; };
let opens = 0;
source.onopen = () => {
  opens += 1;
  show("state", "open");
  show("reconnections", String(opens - 1));
};
source.onerror = () => {
  show("state", source.readyState === EventSource.CONNECTING ? "reconnecting" : "closed");
};
source.onmessage = (message) => {
  const item = document.createElement("li");
  item.dataset.streamed = "";
  item.dataset.id = message.lastEventId;
  const time = new Date(JSON.parse(message.data).time).toLocaleTimeString(
    [], {hour: "2-digit", minute: "2-digit", second: "2-digit", fractionalSecondDigits: 3});
  item.textContent = "id " + message.lastEventId + ": " + time;
  document.getElementById("log").append(item);
  item.scrollIntoView({block: "end"});
  show("last-id", message.lastEventId);
};
</script>
</body>
</html>
"""


def demo_events(environ: dict, start_response: Callable) -> list[bytes]:
    """A page whose EventSource follows ``/events`` (its query string is passed on)."""
    return send_text(environ, start_response, "text/html", DEMO_PAGE)


LESSON = Lesson(
    number=4,
    slug="server_sent_events",
    title="Server-Sent Events",
    summary=(
        "An SSE clock: one event per interval with an id, a retry hint, heartbeat comments"
        " when idle, and resumption from Last-Event-ID after a reconnect, even across a"
        " server restart. A browser EventSource follows it on the demo page."
    ),
    routes=(
        Route(
            "/events",
            serve_events,
            "the SSE clock: count, interval, heartbeat (s), retry (ms)",
            "/events?count=5&interval=1",
            limits="endless on purpose without count; with count, 600 s at most",
        ),
        Route("/demo/events", demo_events, "an EventSource page", "", streams=False),
    ),
    demos=(("/demo/events", "follow the SSE clock in your browser"),),
)

if __name__ == "__main__":
    run_lesson(LESSON)
