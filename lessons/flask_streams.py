"""Lesson 09 in Flask: the course's streams as a Flask app (the lesson mounts it at /flask/).

Each view is a few lines around the same generator as the WSGI original: Flask's part is
the response object. Run it alone with ``flask --app lessons.flask_streams run``, or in
the course under ``/flask/`` (``python -m lessons``).

- ``Response(generator)`` streams: the server sends each piece the generator yields, and
  calls its ``close()``, through werkzeug's response, when a write fails: the second after
  the client's close (lesson 04).
- ``stream_with_context`` keeps the request context alive while the generator runs. Flask
  pops it when the view returns, which is *before* the body is sent, so a generator that
  reads ``request``, ``session`` or ``g`` fails with "Working outside of request context".
  The views here read everything they need before returning, which needs no wrapper;
  ``/greetings`` reads ``request`` inside its generator, so it needs one.
- ``send_file`` answers conditional and range requests itself (werkzeug's), but
  ``send_from_directory`` follows a symlink out of the folder: the view here checks the
  name with the course's ``resolve_under`` first, then hands the file to ``send_file``.
- Errors: the course's parameter checks raise werkzeug's ``BadRequest``, which Flask
  turns into an HTML page; :func:`plain_text_error` answers one line of text instead, as every
  other route of the course does.
"""

import time
from collections.abc import Iterator

from flask import Flask, Response, request, send_file, stream_with_context
from werkzeug.exceptions import HTTPException, NotFound

from lessons.chat import completion_answer
from lessons.folders import served_folder
from lessons.routes import plain_error
from streamlib import int_param
from streamlib.clock import clock_stream
from streamlib.files import UNTRUSTED_FILE_HEADERS
from streamlib.paths import resolve_under
from streamlib.sse import SSE_HEADERS
from streamlib.timing import ticks_for

app = Flask(__name__, static_folder=None)  # no static folder: every route is a stream


@app.errorhandler(HTTPException)
def plain_text_error(error: HTTPException) -> Response:
    """Any HTTP error as one line of text, ``400 Bad Request: count: ...``, not a page."""
    text, headers = plain_error(error)
    return Response(text, error.code, headers, content_type="text/plain; charset=utf-8")


@app.get("/events")
def events() -> Response:
    """Lesson 04's SSE clock: ids, heartbeats, resumed after ``Last-Event-ID``."""
    body = clock_stream(request.args, request.headers.get("Last-Event-ID"))
    return Response(body, headers=SSE_HEADERS)


@app.get("/greetings")
def greetings() -> Response:
    """``?name=you&count=3``: greetings whose generator reads ``request`` as it streams.

    That takes ``stream_with_context``: without it, the generator's first look at
    ``request`` raises, as the request context is gone once the view has returned.
    """
    count = int_param(request.args, "count", 3, 0, 100)

    @stream_with_context
    def lines() -> Iterator[bytes]:
        for n in range(count):
            yield f"hello {request.args.get('name', 'you')} ({n})\n".encode()
            time.sleep(0.05)

    return Response(lines(), content_type="text/plain; charset=utf-8")


@app.get("/files/<path:name>")
def files(name: str) -> Response:
    """Lesson 02's files with Flask's ``send_file``: ranges, conditional requests, HEAD."""
    path = resolve_under(served_folder(request.environ), name)
    if path is None:
        raise NotFound()
    response = send_file(path, conditional=True)
    response.headers.extend(UNTRUSTED_FILE_HEADERS)  # a served file never runs as the course
    return response


@app.post("/v1/chat/completions")
def completions() -> Response:
    """Lesson 06's OpenAI-compatible endpoint, streamed or whole."""
    answer = completion_answer(request.environ, "/flask/v1/chat/completions")
    return Response(answer.body, status=answer.status, headers=answer.headers)


@app.get("/ticks")
def ticks() -> Response:
    """Lesson 03's ticks, one chunk each."""
    return Response(ticks_for(request.args), content_type="text/plain; charset=utf-8")
