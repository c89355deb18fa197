"""Lesson 09: the same streams in Flask and Django, and what each framework adds or breaks.

Flask and Django apps are WSGI apps, so everything in lessons 01 to 08 holds inside them:
a generator is the body, the server sends each piece it yields, and the server's
``close()`` is how the generator learns that its client left. What a framework changes is
the response object around the generator, and what runs between the view and the server.
This lesson mounts a Flask app (``lessons/flask_streams.py``) at ``/flask/`` and a Django
project (``lessons/django_streams.py``) at ``/django/``, with werkzeug's
``DispatcherMiddleware``, which moves the prefix from ``PATH_INFO`` to ``SCRIPT_NAME`` as
PEP 3333 says a mounted app expects. Both serve lesson 04's clock, lesson 02's files,
lesson 06's chat completions and lesson 03's ticks, each view a few lines around the
lesson's own generator; the course's clients read them exactly as they read the originals.

**Flask.** ``Response(generator)`` streams, and ``flask run`` is werkzeug's dev server,
so lessons 01 to 04 hold as they are. Flask pops the request context when the view
returns, before the body is sent, so a generator that reads ``request`` (or ``session``,
``g``) inside fails with "Working outside of request context"; ``stream_with_context``
keeps it (``/flask/greetings``). Simpler still: read what the stream needs before
returning, as the other views do, which also lets a bad parameter be a 400. Flask has no
way to ask whether the client is still there: the failed write closes the generator, as in
lesson 04, and lesson 06's socket watch (``streamlib.disconnect``) notices sooner; both
work unchanged inside Flask, which hands the server's environ through. A generator that
yields only empty pieces never learns it (pallets/flask#4385): an empty piece is never
written, so no write fails. ``send_file`` answers ranges and preconditions itself
(werkzeug's) and, like Django's ``FileResponse``, hands a whole file to the server's
``wsgi.file_wrapper`` (a range is not: werkzeug wraps it in its ``_RangeWrapper``, and the
Django view reads it with the course's ``iter_file``, so neither uses sendfile);
``send_from_directory`` would follow a symlink out of the folder, so the view checks the
name with ``resolve_under`` first.

Sixteen requests at a file server's edges (``FILE_REQUESTS``; the notebook draws the
table, a test keeps it true) get lesson 02's answers from Django's view. Flask's
``send_file`` answers four of them otherwise, and parts from RFC 9110 three times: the
malformed ``Range`` is the RFC's choice to make (section 14.2: a server "MAY ignore or
reject" an invalid ranges-specifier). A failed ``If-Match`` is a 412 there too
(werkzeug 3.1's ``make_conditional``); only ``If-Unmodified-Since`` is not checked:

=====================================  ==========================  ======================
request                                lesson 02 and Django        Flask's ``send_file``
=====================================  ==========================  ======================
``Range: bytes=-100000`` (a suffix     206, the whole file         416
longer than the file)                  (section 14.1.2)
``Range: bytes=0-1,3-4``               200, the whole file (a      416
                                       server may ignore Range)
``Range: bytes=abc`` (malformed)       200 (section 14.2: ignore   416 (section 14.2:
                                       an invalid Range)           reject it; allowed)
``If-Unmodified-Since`` long ago       412                         200: not checked
=====================================  ==========================  ======================

**Django.** ``StreamingHttpResponse(generator)`` streams; an ``HttpResponse`` would join
every piece first. ``FileResponse`` hands the file to the server's ``wsgi.file_wrapper``
(``sendfile`` under gunicorn's sync worker) but answers no ``Range`` and no precondition:
the view asks Django's ``get_conditional_response`` (304, 412) and the course's
``requested_range`` (206, 416). Middleware sits between the view and the server:
``GZipMiddleware`` compresses a stream without flushing, so events wait in the compressor
(``/django/events-gzip``, with ``curl --compressed``), as lesson 07's naive gzip did. Held
writes also hide the client's leaving, since no write fails: the hostile-input tests
found that stream outliving its clients, so its view now watches the socket itself
(``django_streams.until_gone``). ``runserver`` streams too, without chunks: a response
with no length gets ``Connection: close`` and its body ends when the connection does
(``python -m lessons.django_streams runserver 8002``; a test reads it raw). Two more
middleware habits, each tested: ``ConditionalGetMiddleware`` adds no ETag to a stream (it
would have to read the body to hash it; a stream that carries its own ETag or
Last-Modified still gets its 304s, ``django/middleware/http.py``, 5.2), and a middleware
written for whole responses that reads ``response.content`` raises on a stream.

**Where ASGI differs.** ``lessons/asgi_clock.py`` serves the same clock from Starlette under
uvicorn, beside the course (``uvicorn lessons.asgi_clock:app --port 8001``): an async
generator on one event loop, the same bytes. The difference a test measures: when a client
leaves a quiet stream (a heartbeat a second), uvicorn answers the app's waiting
``receive()`` at once with an ``http.disconnect`` message (ASGI spec, "Disconnect -
receive event"), and Starlette, which keeps one waiting while it streams, cancels the
generator, closed in milliseconds
with nothing written; a WSGI stream closes at its second heartbeat, one to two seconds
later, because the first write after the close still succeeds (lesson 04). Starlette
(1.10) listens for that message because uvicorn (0.55) says it speaks ASGI spec version
2.3; to a server of version 2.4 or later it learns from a failed send instead, as WSGI
does (``starlette/responses.py``). Django under ASGI drains a plain generator before it
sends a byte: ``StreamingHttpResponse.__aiter__`` runs ``sync_to_async(list)`` over it
(``django/http/response.py``, 5.2), with a warning that it "must consume synchronous
iterators". So a finite stream arrives all at once at its end, and an endless one sends
nothing at all (``django_streams.asgi_application``; a test and the notebook show both).
Under ASGI, give Django an async generator.

At fan-out it goes the other way (``bench/results``, lesson 09: one process on one core
each, in interleaved rounds with Node). With its pure-Python parts (asyncio's
loop, the h11 parser) the ASGI clock's p99 was 3.9 times Node's at 1,000 clients, 116 µs per
event per client; with the C parts ``pip install uvicorn[standard]`` brings (uvloop,
httptools), 2.9 times and 85 µs, level with one gevent worker on a timer per stream (2.7
times, 81 µs). At 5,000 clients neither uvicorn served every client (4,159 and 4,228 got
every event; p99 1.7 and 1.2 s), where one gevent worker on lesson 07's shared ticker
served all of them, and all 10,000, within 1.6 to 1.7 times Node's. So leave WSGI for what
ASGI gives, a disconnect heard without a write and async libraries in the handler, not for
more streams per core. What the frameworks themselves cost is small (the same bench): a
streamed piece takes 1.5 (Flask) and 1.7 (Django) times plain WSGI's 1 µs, nothing beside
a 15 µs network write; a request, about 350 to 380 µs more.

Try it (``python lessons/09_flask_and_django.py``, or ``python -m lessons``)::

    curl -N 'http://127.0.0.1:8000/flask/events?count=3'
    curl -N 'http://127.0.0.1:8000/django/events?count=3'
    curl -N --compressed 'http://127.0.0.1:8000/django/events-gzip?count=3'  # all at the end
    curl -N 'http://127.0.0.1:8000/flask/greetings?name=Ada'     # read while streaming
    curl -D - -r 0-99 -o part http://127.0.0.1:8000/django/files/tone.wav  # 206; 100 bytes to part

Both are ordinary projects besides: ``flask --app lessons.flask_streams run`` serves the
Flask app alone.
"""

import importlib
from collections.abc import Callable, Iterable

from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from lessons.cli import run_lesson
from lessons.routes import Lesson, Route
from streamlib import call_app


def imported_at_first_request(module: str, name: str) -> Callable:
    """The WSGI app ``module.name``, imported when its first request comes.

    Importing Django and Flask takes a noticeable part of a start (measure it with
    ``python -X importtime``), which every start of the course (and of each gunicorn
    worker) would pay for routes it may never serve.
    """
    app = None

    def first_use(environ: dict, start_response: Callable) -> Iterable[bytes]:
        nonlocal app
        if app is None:  # two first requests at once both import: Python imports once
            app = getattr(importlib.import_module(module), name)
        return app(environ, start_response)

    return first_use


# The course's router sends only /flask/... and /django/... here; the prefix picks the app.
frameworks = DispatcherMiddleware(
    NotFound(),
    {
        "/flask": imported_at_first_request("lessons.flask_streams", "app"),
        "/django": imported_at_first_request("lessons.django_streams", "application"),
    },
)
CHAT_BODY = (
    b'{"model": "fake", "stream": true, "messages": [{"role": "user", "content": "Why stream?"}]}'
)


# Requests that probe a file server's edges (lesson 02), with {etag} and {date} filled in
# from the server's own answer to a plain GET: what each framework answers is compared with
# lesson 02 by file_statuses() (the notebook draws the table, a test keeps it true).
FILE_REQUESTS = [
    ("GET", {}),
    ("HEAD", {}),
    ("a range: bytes=0-4", {"Range": "bytes=0-4"}),
    ("the last 5 bytes: bytes=-5", {"Range": "bytes=-5"}),
    ("a suffix longer than the file", {"Range": "bytes=-100000"}),
    ("two ranges", {"Range": "bytes=0-1,3-4"}),
    ("a range past the end", {"Range": "bytes=100000-"}),
    ("a malformed range", {"Range": "bytes=abc"}),
    ("If-None-Match: its ETag", {"If-None-Match": "{etag}"}),
    ("If-Modified-Since: its date", {"If-Modified-Since": "{date}"}),
    ("If-Match: another ETag", {"If-Match": '"other"'}),
    ("If-Match: its ETag, weak", {"If-Match": "W/{etag}"}),
    ("If-Unmodified-Since: long ago", {"If-Unmodified-Since": "Sun, 06 Nov 1994 08:49:37 GMT"}),
    ("If-Match: another, If-None-Match: its", {"If-Match": '"x"', "If-None-Match": "{etag}"}),
    ("If-Range: another ETag", {"Range": "bytes=0-4", "If-Range": '"other"'}),
    ("If-Range: its ETag", {"Range": "bytes=0-4", "If-Range": "{etag}"}),
]


def file_statuses(app: Callable, path: str) -> dict[str, str]:
    """The status ``app`` answers to each of :data:`FILE_REQUESTS` for ``path``, such as
    ``{"GET": "200", "a range: bytes=0-4": "206 bytes 0-4/13", ...}``: a 206 or 416 with
    its ``Content-Range``."""
    plain = call_app(app, path)
    plain.read()
    own = {"etag": plain.header("ETag") or "", "date": plain.header("Last-Modified") or ""}
    statuses = {}
    for what, headers in FILE_REQUESTS:
        method = "HEAD" if what == "HEAD" else "GET"
        filled = {name: value.format(**own) for name, value in headers.items()}
        response = call_app(app, path, method=method, headers=filled)
        response.read()
        status, content_range = response.status[:3], response.header("Content-Range")
        statuses[what] = f"{status} {content_range}" if content_range else status
    return statuses


def framework_routes(prefix: str, name: str) -> tuple[Route, ...]:
    """The routes that ``prefix`` (``/flask`` or ``/django``) serves, for the index."""
    return (
        Route(
            f"{prefix}/events",
            frameworks,
            f"lesson 04's SSE clock in {name}: count, interval, heartbeat, retry",
            f"{prefix}/events?count=5&interval=1",
            limits="endless on purpose without count; with count, 600 s at most",
        ),
        Route(
            f"{prefix}/files/<path:name>",
            frameworks,
            f"lesson 02's files with {name}'s own file response: ranges, 304, 412",
            f"{prefix}/files/hello.txt",
        ),
        Route(
            f"{prefix}/v1/chat/completions",
            frameworks,
            f"lesson 06's chat completions in {name} (POST a JSON body)",
            f"{prefix}/v1/chat/completions?latency=0.05",
            methods=("POST",),
            example_body=CHAT_BODY,
            limits="request bodies up to 1 MiB (413 above), in OpenAI's error shape",
        ),
        Route(
            f"{prefix}/ticks",
            frameworks,
            f"lesson 03's ticks in {name}",
            f"{prefix}/ticks?count=5&interval=0.5",
        ),
    )


LESSON = Lesson(
    number=9,
    slug="flask_and_django",
    title="Flask and Django",
    summary=(
        "The course's streams inside Flask and Django: Response and stream_with_context,"
        " StreamingHttpResponse and FileResponse, the middleware that holds a stream back,"
        " and where each framework's file serving differs from lesson 02's."
    ),
    routes=(
        *framework_routes("/flask", "Flask"),
        Route(
            "/flask/greetings",
            frameworks,
            "greetings whose generator reads the request: stream_with_context",
            "/flask/greetings?name=Ada&count=3",
            free_text=("name",),
        ),
        *framework_routes("/django", "Django"),
        Route(
            "/django/events-gzip",
            frameworks,
            "the clock through Django's gzip middleware: events held until the end",
            "/django/events-gzip?count=3&interval=0.5",
            curl_flags="--compressed",
        ),
    ),
)

if __name__ == "__main__":
    run_lesson(LESSON)
