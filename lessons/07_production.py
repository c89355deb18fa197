"""Lesson 07: streaming in production. Worker classes, timeouts, proxies, shutdown.

A stream that works on the dev server can starve, be killed or be held back in production.
Each failure below is measured by the tests and the notebook, with its fix; the numbers at
scale are in ``bench/results/README.md``.

**One flag.** ``python -m lessons --server gunicorn`` serves the course under gunicorn,
the production server, with the gevent worker (why: below). It prints the plain command
it becomes (the two glibc settings first: lesson 11, 'Where the time goes')::

    MALLOC_MMAP_THRESHOLD_=4194304 MALLOC_TRIM_THRESHOLD_=33554432 \\
    gunicorn --bind 127.0.0.1:8000 --worker-class gevent --workers 1 \\
        --worker-connections 1000 --timeout 30 --graceful-timeout 3 \\
        --no-control-socket lessons.wsgi:app

(``--no-control-socket``: gunicorn 25.1.0 and later open a control socket at one fixed
path, which a second server on the same machine would collide with; the option came with
it, ``config.py``'s ``versionadded:: 25.1.0``.)

**Worker classes.** A stream holds whatever serves it for as long as it lasts.

- ``sync``: one request at a time per worker process. A stream occupies its worker: the
  next client waits, with no answer at all, until the stream ends. Worse, a sync worker
  tells the arbiter it is alive only *between* requests, so a stream longer than
  ``--timeout`` (30 s) gets the worker killed mid-stream ("WORKER TIMEOUT" in the log).
  Fine for short requests; wrong for streams.
- ``gthread``: a pool of ``--threads`` threads per worker; a stream holds one thread. The
  worker's main loop checks in with the arbiter whatever the threads do, so streams may
  last as long as they like. It holds ``threads`` streams at once; more clients queue,
  connected but unanswered, and ``--worker-connections`` (1000) caps the connections.
- ``gevent``: a greenlet per connection, switched whenever one waits on the network or a
  sleep, so one worker holds thousands of streams (5,000 in the benchmark). Two catches.
  It caps connections at ``--worker-connections`` (1000 by default: the 1001st waits).
  And the worker patches ``time.sleep``, sockets and locks when it starts, so code that
  took hold of the originals before, for example ``sleep=time.sleep`` as a default
  argument in a module imported by ``--preload``, blocks every stream in the worker. Let
  gunicorn import the app after the patch (no ``--preload``), as ``lessons.wsgi:app`` does.

**Slow clients.** A server must read a request before it answers it, and a client decides
how fast it sends. One that sends its headers, or its body, one byte a second
("slowloris", ``lab.slow_clients``) holds whatever reads for it. Measured by the
tests with 12 such clients (one byte a second) and one normal ``GET /``:

+---------------------------------+---------------------+----------------------------------+
| server                          | slow headers        | slow bodies                      |
+=================================+=====================+==================================+
| gunicorn gthread, 8 threads     | nobody answered     | nobody answered                  |
+---------------------------------+---------------------+----------------------------------+
| gunicorn gevent                 | answered; the slow  | answered                         |
|                                 | ones dropped at 2 s |                                  |
+---------------------------------+---------------------+----------------------------------+
| werkzeug (the course's handler) | answered; dropped   | answered; a 400 at the deadline  |
|                                 | at the 10 s limit   |                                  |
+---------------------------------+---------------------+----------------------------------+
| nginx in front of gthread       | answered; closed at | answered; nginx holds them, and  |
| (``client_header_timeout 2s``)  | 2 s with no answer  | only whole bodies reach gunicorn |
|                                 | (a 408 in its log)  |                                  |
+---------------------------------+---------------------+----------------------------------+

A thread that waits on a slow client is a thread lost: gthread starves once the slow
clients outnumber its threads (the sync worker after one). gevent waits on all of them in
one loop, and gives up on unfinished headers after ``--keep-alive`` (2 s). The fix that
works for every worker class is a proxy that reads the whole request before it passes it
on, as nginx does by default (``proxy_request_buffering on``), with
``client_header_timeout`` and ``client_body_timeout`` to drop clients that stall
(``nginx_location(..., client_timeout="10s")``). Note that ``client_body_timeout`` is per
read, so a byte a second keeps a body alive: nginx holds it, cheaply, in its event loop.
A body that stops dead, its connection open, is held for ever by gthread and gevent:
gunicorn bounds no wait of the app's own body reads (27.0.1; only its drain of a body the
app left unread is bounded). The course's upload routes give each wait
``--body-timeout`` seconds, 10, then answer 408 (lesson 11; a test on every server:
the connection closed 2.0 s into a 2 s timeout on gthread, gevent and the fan-out worker).

**A worker's memory over a long day.** A worker that has served a few hundred requests
holds more than one that has just started (here 43 MiB, then 76 after the first pass of
tests/test_soak.py's 450 hostile requests: imports done, caches filled, the allocator's
arenas grown) and, from then on, should hold about the same: 78 MiB after the second pass,
78.3 after the third, 78.7 after the fifth. What grows with the number of requests is a
leak, even a bounded one: the broadcast room (lesson 08) kept its last 1,000 messages and
an encoding cache of 4,096, whatever their length, and 1,000 messages of 10,000
characters took a gevent worker 125 MiB further each time. ``tracemalloc``, comparing
snapshots taken between passes, named the two lines that held them (the JSON text of each
message, and its encoded event, 117 KiB apiece); ``malloc_trim`` gave back 6 MiB of 245,
so it was not the allocator keeping freed memory. Now the room holds at most a million
characters and caches 64 events; the soak test holds a worker to 6 MiB of growth from the
first pass to the third. gunicorn's ``--max-requests`` (restart a worker after that many)
hides a leak rather than fixes it, and ends the streams it holds.

**Which worker class by default.** The course's ``--server gunicorn`` uses gevent: its
routes are streams, and gevent holds thousands of them in one worker (gthread holds
``--threads``), shrugs off slow clients, and checks in with the arbiter while streams run.
What it costs, measured: no ``sendfile(2)`` (gevent's cooperative ``socket.sendfile`` reads
8 KiB and sends it, ``_sendfile_use_send`` in gevent's ``_socket3.py``: 32,768 reads for
256 MiB, against a handful with gthread or sync, so lesson 02's files go through Python),
and CPU-bound work in a handler stalls every stream of the worker. Behind nginx, serving
files, or running CPU-heavy handlers, gthread is the safer choice: ``--worker-class
gthread``.

**Where the microseconds go.** Every client's event is due at the same instant, so each
tick is a burst: the worker sends the event to its streams one after another, and the last
waits for all the others. The p99 is about the clients times what one event to one client
costs. Measured against Node with the tutorial's pattern (a timer per connection, the same
bytes), one core each, taking turns (``bench/results``, lesson 07): at 5,000 clients Node's
p99 was 153 ms and one gevent worker's 411 ms; at 10,000 the worker no longer kept up
(8,233 of its clients got every event; Node served all). ``bench.microseconds`` times
each step of one event to one client on its own (µs, on the same machine):

=============================================  =====
wake the stream: its own timer (lesson 04)     10.3
wake it: one ``threading.Condition``           19.2
wake it: one shared ``threading.Event``         6.8
... the same, waiting with a timeout           12.8
encode the event for this stream                7.3
take it from a cache, encoded once              0.31
a wrapper around the body, per chunk            0.15
gunicorn's chunked write, gevent's sendall     25.2
... of which the kernel's ``send``             14.8
=============================================  =====

What an app can take off, ``/shared-events`` takes: lesson 04's clock with one
``streamlib.ticker.Ticker`` that wakes every stream of the process with one event, each
event encoded once (``functools.lru_cache``), and no timeout on the wait. That last one is
easy to miss: ``event.wait(heartbeat)`` starts and stops a timer for every stream at every
event, and it cost as much as the wake-up itself (a sampling profiler, ``py-spy``, found 8%
of the worker's samples in gevent's ``Timeout``). A tick comes every second, so a heartbeat
of a second or more never comes due and the wait needs none. With the same bytes, ids and
heartbeats: 41 to 46 µs per event per client against lesson 04's 72 to 95, every one of
10,000 clients served, and a p99 1.4 to 1.9 times Node's at 1,000, 5,000 and 10,000 clients
(lesson 04's clock: 2.2 to 3.5 times, and 18% of its clients not served at 10,000). Lesson
08's broadcast does the same: one event, each batch encoded once for every client it wakes,
and a pulse once a second instead of a timeout per follower. Copy that into an app whose
streams send the same events. The rest belongs to the server: a greenlet switch into each
stream and out again, and the write path, where gevent's ``sendall`` also asks the kernel
for the socket's buffer size before every write (``strace -c -p`` on the worker: one
``getsockopt`` per ``sendto``). Memory per connection is above Node's from 5,000 clients on
(18.2 KiB against 13.3 at 10,000, below it at 1,000; ``tracemalloc`` in the worker puts 2.2
KiB of it in each greenlet's saved stack, 0.8 in the greenlet, and less than 1 in the
course's own objects). It is not CPython: ``bench.one_loop``, one loop that sends each
event to every socket with no WSGI, beat Node (p99 0.55 times Node's at 5,000 clients,
memory per connection 0.55 times).

**Fan-out in the server.** So the last step belongs to the server, and PEP 3333 shows the
way: ``wsgi.file_wrapper``. An app that returns the server's file wrapper says "this body
is a file", and a server that knows the type sends it with ``sendfile`` instead of
iterating it. ``streamlib.fanout.SharedStream`` says "from this point on, this body is what
the audience is sent": the generator yields this client's own bytes (the hello, the events
it missed), then yields the ``Audience`` itself. ``streamlib.fanout_worker`` is gunicorn's
gevent worker plus that one case (``--worker-class fanout``): it writes the bytes before
the marker, then hands the socket to the audience and ends the connection's greenlet. Each
tick, the ticker's ``on_tick`` sends the event once, and the audience writes it to every
member's socket in one loop: no greenlet, timer or generator step per client, and per
client only a descriptor and a watcher for what it sends. Any other server iterates:
the marker is skipped and the same generator goes on sending the same bytes itself, so the
route works everywhere, and the tests compare the two. Each event goes out as one chunk,
framed once for every member, on a connection that closes when the member leaves; a
member that stops reading is dropped once 256 KiB wait for it (an SSE client reconnects
and catches up with ``Last-Event-ID``). Measured beside Node, one core
each, taking turns in three rounds (``bench/results``, lesson 07): at 5,000 and 10,000
clients a p99 of 0.60 and 0.59 times Node's (89 and 190 ms against 153 and 318), every
client served in every round, 2.2 to 2.4 KiB per connection against Node's 16.9 and 13.3,
and 17 to 18 µs of CPU per event per client against Node's 28: close to ``bench.one_loop``
(p99 86 and 156 ms), in a quarter of its memory, as no greenlet waits per client. (Every
server's µs include its clients' TCP receive, which loopback runs on the sending core:
lesson 08, "The floor", measures that share.)

What to copy into your own app: encode an event once for everyone who gets it, wake every
stream from one shared tick, and never wait with a timeout per stream; those three need
nothing from the server. For tens of thousands of clients of one broadcast, the fan-out
worker's 240 lines (``streamlib/fanout_worker.py``) are the next step, and lesson 04's
clock stays as it is: the fast path lives in ``/shared-events`` only.

**Shutdown.** On SIGTERM (a deploy, a scale-down) gunicorn stops accepting, lets open
requests finish for ``--graceful-timeout`` seconds, then kills the workers. A stream never
finishes by itself, so every deploy waits the full time and then cuts every stream anyway:
set it short (a few seconds) and let clients come back. An SSE client reconnects by
itself, with the last id it saw as ``Last-Event-ID``; lesson 04's clock resumes from it,
so across the restart the client misses nothing and sees nothing twice.

**Proxies.** In production a proxy such as nginx stands in front of gunicorn: it speaks
HTTP/2 and TLS to the world and slow clients cannot tie up the workers. By default it
reads the response into its buffers first, which is what a proxy is for, and what a stream
cannot afford. Measured with nginx 1.22 in front of gunicorn (``/proxy-ticks``, 5 ticks
0.3 s apart; the notebook draws it):

============================================  ================  =======================
nginx, in front of gunicorn                   ticks              ``X-Accel-Buffering: no``
============================================  ================  =======================
``proxy_pass`` alone (HTTP/1.0 upstream)       held to the end    on time
``proxy_buffering off;``                       on time            on time
``proxy_http_version 1.1;``                    on time            on time
``proxy_http_version 1.1;`` + ``gzip on;``     held to the end    on time, still gzipped
============================================  ================  =======================

So: the app says ``X-Accel-Buffering: no`` on every stream (lesson 04 does), which nginx
honours per response and strips; and the proxy's config turns buffering off where it
proxies streams. The HTTP/1.1 row shows why that belongs in the config and not to luck:
nginx passed each upstream chunk on as it came, until a gzip filter was added in front.
(nginx 1.29.7, March 2026, and so 1.30 made HTTP/1.1 the upstream default, per its
CHANGES: there the first row reads like the third, by luck again.)
And mind ``proxy_read_timeout`` (60 s): nginx cuts a stream that is quiet for longer, which
is one more reason for heartbeats (measured with a 1 s timeout: a stream with an event
every 2 s is cut, the same stream with heartbeats is not). A config to copy
(``nginx_location(upstream, buffering=False, http11=True, read_timeout="1h")`` writes it)::

    location / {
        proxy_pass http://127.0.0.1:8000;
        proxy_set_header Host $http_host;  # the name and port the client asked for
        proxy_http_version 1.1;           # chunked from gunicorn (keep-alive needs more)
        proxy_set_header Connection "";
        proxy_buffering off;              # pass every piece on as it comes
        proxy_read_timeout 1h;            # longer than the longest silence
    }

**Compression buffers too.** Deflate keeps small inputs until it has a block's worth, so a
gzip middleware (``streamlib.compress``) sends nothing of a stream of small events until
the end. Tell it to skip ``text/event-stream``, or to flush after every piece:
``/gzip-events?mode=naive|skip|flush`` shows all three; ask with ``curl -N --compressed``,
as a browser asks (``Accept-Encoding: gzip``): plain curl asks for no compression, and then
nothing is held back, which hides the very thing to see. A piece the compressor keeps is no
write, so no failed write tells the app that its client left: ``streamlib.compress``
watches the socket itself after such a piece (``client_watch``), or an endless stream
behind it would outlive its client for ever.

**HTTP/2 and HTTP/3.** Streams work the same way for the app; the wire changes. HTTP/2
has no chunked encoding, and forbids ``Transfer-Encoding`` and every other
connection-specific header (RFC 9113 section 8.2.2: one more reason an app must not send
hop-by-hop headers). The body travels in DATA frames, and the last one is flagged
END_STREAM. Many responses share one connection, so the browser's limit of six HTTP/1.1
connections per host (Chromium's ``g_max_sockets_per_group``, lesson 10), which a
seventh ``EventSource`` tab runs into, is gone (RFC 9113 section 6.5.2 recommends that a
server allow at least 100 concurrent streams on a connection). HTTP/3 does the same over
QUIC, where a lost packet stalls only the stream it belongs to, not the whole connection
(RFC 9000 section 2.2; RFC 9114). gunicorn speaks HTTP/1.1 unless told otherwise (HTTP/2
is opt-in since 25.0): the proxy speaks HTTP/2 and 3 to the world and HTTP/1.1 to
gunicorn, so everything above still applies. The tests and the
notebook read ticks over HTTP/2 from nginx with ``curl --http2-prior-knowledge``: the same
ticks, on time, with no ``Transfer-Encoding`` in sight.

Try it (``python -m lessons --server gunicorn --worker-class sync``)::

    curl -N 'http://127.0.0.1:8000/ticks?count=20&interval=1' &
    curl -N 'http://127.0.0.1:8000/ticks?count=2'     # waits for the first stream to end

Notebook: ``notebooks/07_production.ipynb``. Exercise: ``exercises/07_production.py``
(a ``gunicorn.conf.py`` that holds 200 streams).
"""

import time
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache

from werkzeug.exceptions import BadRequest
from werkzeug.wrappers import Request

from lab.nginx import nginx_location  # noqa: F401 (lesson 07's config, made by lab.nginx)
from lessons.cli import run_lesson
from lessons.routes import Lesson, Route
from streamlib import float_param, int_param
from streamlib.clock import MAX_EVENTS, clock_event, first_event_id, serve_clock
from streamlib.compress import gzip_responses
from streamlib.fanout import Audience, SharedStream
from streamlib.params import check_duration
from streamlib.sse import SSE_HEADERS, event_stream
from streamlib.ticker import Ticker
from streamlib.timing import MAX_TICK_INTERVAL, MAX_TICKS, ticks


def serve_proxy_ticks(environ: dict, start_response: Callable) -> Iterator[bytes]:
    """``GET /proxy-ticks?count=5&interval=0.3&x_accel_buffering=no``: lesson 03's ticks.

    x_accel_buffering: ``no`` or ``yes`` sends that ``X-Accel-Buffering`` header, which
    tells nginx whether to buffer this one response; absent, no header (nginx's default).
    """
    args = Request(environ).args
    count = int_param(args, "count", 5, 0, MAX_TICKS)
    interval = float_param(args, "interval", 0.3, 0.0, MAX_TICK_INTERVAL)
    check_duration("interval", count, "ticks", interval)
    headers = [("Content-Type", "text/plain; charset=utf-8")]
    accel = args.get("x_accel_buffering")
    if accel is not None:
        if accel not in ("yes", "no"):
            raise BadRequest(f"x_accel_buffering: expected yes or no, got {accel!r}")
        headers.append(("X-Accel-Buffering", accel))
    start_response("200 OK", headers)
    return ticks(count, interval)


# One ticker for every stream of this process, and each event encoded once for all of them:
# the cache holds the last few, which is all that the streams of one tick ask for.
shared_clock_event = lru_cache(maxsize=64)(clock_event)
# Under streamlib.fanout_worker, the streams that have caught up are members of one audience,
# and the ticker sends each event to all of them in one loop.
CLOCK_AUDIENCE = Audience()


def send_to_the_audience(ticks: range) -> None:
    """The ticker's ``on_tick``: each new tick's event, encoded once, to every member."""
    for n in ticks:
        CLOCK_AUDIENCE.send(shared_clock_event(n, ONE_SECOND.interval))


ONE_SECOND = Ticker(interval=1.0, on_tick=send_to_the_audience)


def shared_clock_events(
    ticker: Ticker,
    first_id: int,
    count: int | None,
    heartbeat: float,
    audience: Audience | None = None,
) -> Iterator[bytes | Audience | None]:
    """Lesson 04's clock events from ``first_id``, each when ``ticker`` says it is due.

    The same events, ids and heartbeats (None after ``heartbeat`` s without a tick) as
    ``clock_events``, but no timer of its own: every stream waits on the one ticker, and
    gets bytes that the first stream to send them encoded.

    audience: the audience that ``ticker``'s ``on_tick`` sends each event to. Once the
        stream has caught up, it yields the audience: a server with the fan-out fast path
        (``streamlib.fanout``) takes the client over there, and any other goes on here.
    """
    last = None if count is None else first_id + count
    n = first_id
    # A tick comes every interval, so a heartbeat that long never comes due: then wait
    # with no timeout, as a timeout is a timer per stream per wait (bench.microseconds).
    timeout = heartbeat if heartbeat < ticker.interval else None
    with ticker.listening():
        while last is None or n < last:
            if n <= ticker.latest():  # due: at once (a resumed stream catches up here)
                yield shared_clock_event(n, ticker.interval)
                n += 1
            else:
                if audience is not None:
                    # caught up, between two ticks: the next tick's event is the audience's
                    yield audience
                    audience = None  # still iterated: this generator carries on itself
                if not ticker.wait_after(n - 1, timeout):
                    yield None


def serve_shared_events(environ: dict, start_response: Callable) -> Iterator[bytes]:
    """``GET /shared-events?count=&heartbeat=15&retry=1000``: the SSE clock, once a second,
    every stream of the process on one ticker. The parameters are ``/events``'."""
    args = Request(environ).args
    count = None  # endless, as /events without a count
    if args.get("count"):
        count = int_param(args, "count", -1, 0, MAX_EVENTS)
    heartbeat = float_param(args, "heartbeat", 15.0, 0.1, 300.0)
    retry = int_param(args, "retry", 1000, 0, 600_000)
    first = first_event_id(environ.get("HTTP_LAST_EVENT_ID"), time.time(), ONE_SECOND.interval)
    start_response("200 OK", SSE_HEADERS)
    if count is not None or heartbeat < ONE_SECOND.interval:  # a stream of its own
        return event_stream(shared_clock_events(ONE_SECOND, first, count, heartbeat), retry=retry)
    events = shared_clock_events(ONE_SECOND, first, count, heartbeat, CLOCK_AUDIENCE)
    return SharedStream(event_stream(events, retry=retry))


# Lesson 04's SSE clock behind the compression middleware, configured three ways.
GZIP_MODES = {
    "naive": gzip_responses(serve_clock),
    "skip": gzip_responses(serve_clock, skip_types=("text/event-stream",)),
    "flush": gzip_responses(serve_clock, sync_flush=True),
}


def serve_gzip_events(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """``GET /gzip-events?mode=naive|skip|flush&count=5&interval=1``: the SSE clock, gzipped.

    mode: ``naive`` compresses as most middleware does (events held until the end),
        ``skip`` leaves ``text/event-stream`` uncompressed, ``flush`` sync-flushes each
        event. The other parameters are ``/events``'. Send ``Accept-Encoding: gzip``.
    """
    mode = Request(environ).args.get("mode", "naive")
    if mode not in GZIP_MODES:
        raise BadRequest(f"mode: expected one of {', '.join(GZIP_MODES)}, got {mode!r}")
    return GZIP_MODES[mode](environ, start_response)


LESSON = Lesson(
    number=7,
    slug="production",
    title="Streaming in production",
    summary=(
        "The same streams under gunicorn's sync, gthread and gevent workers, behind a real"
        " nginx and a gzip middleware: who starves, who times out, who buffers, how a"
        " deploy cuts streams and clients resume, and the configuration that fixes each."
    ),
    routes=(
        Route(
            "/proxy-ticks",
            serve_proxy_ticks,
            "lesson 03's ticks, with x_accel_buffering=yes|no as a header for nginx",
            "/proxy-ticks?count=5&interval=0.3&x_accel_buffering=no",
        ),
        Route(
            "/gzip-events",
            serve_gzip_events,
            "the SSE clock through a gzip middleware: mode=naive|skip|flush",
            "/gzip-events?mode=naive&count=5&interval=1",
            limits="as /events: endless on purpose without count",
            curl_flags="--compressed",  # without it curl asks for no gzip, and nothing is held
        ),
        Route(
            "/shared-events",
            serve_shared_events,
            "the SSE clock at scale: once a second, one ticker for every stream",
            "/shared-events?count=3",
            limits="as /events: endless on purpose without count",
        ),
    ),
)

if __name__ == "__main__":
    run_lesson(LESSON)
