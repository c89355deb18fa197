"""Lesson 04: Server-Sent Events. A clock a browser can follow, lose, and catch up with.

**The format** (``streamlib.sse``; the WHATWG spec, "Server-sent events"). A response of
type ``text/event-stream`` whose body is events: ``field: value`` lines and a blank line
that dispatches them. ``data:`` carries the payload (several ``data:`` lines are joined with
newlines), ``event:`` a type, ``id:`` an id, ``retry:`` the reconnection delay in ms, and a
line starting with ``:`` is a comment. A browser reads it with ``new EventSource(url)``. A
line ends at CR, LF or CRLF and nowhere else (the spec's ``end-of-line``), so a multi-line
``data`` is split at those three: Python's ``str.splitlines`` is the wrong tool, as it also
breaks at U+2028, U+2029, U+0085, form feed and more, which JSON strings may hold unescaped,
and ``"a\u2028b"`` would reach the browser as ``"a\nb"``.

**Reconnection.** When the connection drops, the browser waits ``retry`` ms and connects
again, sending the last id it saw as the ``Last-Event-ID`` header. The server resumes after
it. Here each event's id is its number on the clock (event n is due at n x interval seconds
since 1970), so missed events can be recomputed, even by a server that restarted in between,
and the replay is bounded: at most ``REPLAY_LIMIT`` events back. A ``Last-Event-ID`` that is
not a number, lies in the future, or is too old starts a fresh stream; never an error. The
clock is ``streamlib.clock``: ``first_event_id`` picks where to start, ``clock_events``
yields each event when due.

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
ends. gunicorn does; plain werkzeug (3.1.9) skipped it when a client reset the connection
right after the last event, so the course's werkzeug runs with ``lab.devserver``, and a
test resets five clients after ``[DONE]`` and counts five streams closed.

**From another origin.** A page served elsewhere (a front end on ``localhost:5173``) may
open ``new EventSource("http://127.0.0.1:8000/events")`` only if the answer says so:
``Access-Control-Allow-Origin`` naming that page's origin, or ``*``; with
``withCredentials``, the exact origin and ``Access-Control-Allow-Credentials: true`` (Fetch
standard, "CORS check"). EventSource never sends a preflight, not even when it reconnects
with ``Last-Event-ID`` (not a "safelisted" header): Chromium's ``event_source.cc`` asks its
loader to prevent one (``CorsPreflightPolicy::kPreventPreflight``), and whatwg/fetch issue
568 and pull request 1788 report Firefox and Safari doing the same; a test and notebook 04
show Chromium's requests. So what ``--cors http://localhost:5173`` changes for an
EventSource is the ``Access-Control-Allow-Origin`` on its answers; the preflight it also
answers (``Last-Event-ID`` allowed) is for ``fetch``-based readers such as lesson 06's
page. Without the flag the course sends neither (``streamlib.origins``).

Try it (``python lessons/04_server_sent_events.py``, or ``python -m lessons``)::

    curl -N 'http://127.0.0.1:8000/events?count=5&interval=1'
    curl -N 'http://127.0.0.1:8000/events?interval=5&heartbeat=1'   # heartbeats between
    curl -N -H 'Last-Event-ID: 1' 'http://127.0.0.1:8000/events?count=3'  # too old: fresh

Then open http://127.0.0.1:8000/demo/events, stop and restart the server, and watch the page
reconnect and catch up. Notebook: ``notebooks/04_server_sent_events.ipynb``. Exercise:
``exercises/04_server_sent_events.py``.
"""

import time
from collections.abc import Callable
from typing import Any

from lab import serve
from lessons.cli import run_lesson
from lessons.routes import Lesson, Route, send_text
from streamlib.clock import (  # noqa: F401 (the lesson's clock, in the library)
    REPLAY_LIMIT,
    clock_event,
    clock_events,
    clock_stream,
    first_event_id,
    serve_clock,
)
from streamlib.sse import SSE_HEADERS, format_event

# The clock itself, and its resumption from Last-Event-ID, are the library's:
# streamlib.clock (first_event_id, clock_events, clock_stream, serve_clock).
serve_events = serve_clock


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


def cross_origin_requests(page: Any, reconnections: int = 2) -> list[tuple[str, str, str]]:
    """What a browser sends for an EventSource opened by another origin's page.

    Serves a page on one port and a short event stream on another (two ports of one host
    are two origins), opens the page in ``page`` (a Playwright page: a real browser) and
    lets its EventSource reconnect ``reconnections`` times. Each connection gets one event
    with an id and ``retry: 100``, then ends, so the browser reconnects with
    ``Last-Event-ID``. Returns each request the stream's server got: method, ``Origin``,
    ``Last-Event-ID``. No ``OPTIONS`` among them: the browser sends no preflight, though
    ``Last-Event-ID`` is not a CORS-safelisted header.

    The stream allows the one page it serves, by name: echoing whatever ``Origin`` comes
    would let every site read it.
    """
    got: list[tuple[str, str, str]] = []
    allowed = {"origin": ""}  # the page's origin, known once its server listens

    def stream(environ: dict, start_response: Callable) -> list[bytes]:
        origin = environ.get("HTTP_ORIGIN", "")
        got.append((environ["REQUEST_METHOD"], origin, environ.get("HTTP_LAST_EVENT_ID", "")))
        start_response("200 OK", [*SSE_HEADERS, ("Access-Control-Allow-Origin", allowed["origin"])])
        return [format_event("hello", id=str(len(got)), retry=100)]

    with serve(stream) as stream_url:

        def other_site(environ: dict, start_response: Callable) -> list[bytes]:
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [f'<script>new EventSource("{stream_url}/events");</script>'.encode()]

        with serve(other_site) as page_url:
            allowed["origin"] = page_url
            page.goto(page_url)
            deadline = time.monotonic() + 10
            while len(got) <= reconnections and time.monotonic() < deadline:
                time.sleep(0.05)
            page.goto("about:blank")  # closes the EventSource
    return got[: reconnections + 1]


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
