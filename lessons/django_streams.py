"""Lesson 09 in Django: the course's streams as a Django app (the lesson mounts it at /django/).

A whole Django project in one module: its settings, its URLs and its views. Each view is a
few lines around the same generator as the WSGI original; Django's part is the response.

- ``StreamingHttpResponse(generator)`` streams: the WSGI handler hands the response to the
  server as its iterable, and the server's ``close()`` reaches the generator when the
  client has gone. A plain ``HttpResponse`` would join every piece first.
- ``FileResponse`` is a streaming response that the handler gives to the server's
  ``wsgi.file_wrapper`` when there is one (gunicorn's sync worker: ``sendfile``). It
  answers no ``Range`` (a plain 200) and no conditional request by itself:
  ``get_conditional_response`` checks the preconditions (RFC 9110's order, 304 and 412),
  and the course's ``requested_range`` picks the one range to send.
- Middleware sees every response. ``GZipMiddleware`` (or ``@gzip_page``) compresses a
  streaming response too, but flushes nothing: the events wait in the compressor until
  enough have come to fill a block (``/django/events-gzip`` shows it). Middleware that reads
  ``response.content`` fails on a streaming response, and one that joins
  ``streaming_content`` buffers the whole stream. ``ConditionalGetMiddleware`` adds no
  ETag to a streaming response (one with its own ETag still gets its 304s).
- Errors: the course's parameter checks raise werkzeug's ``BadRequest``, which Django
  would turn into a 500; :func:`plain_errors` answers the course's one line of text.
- ``runserver`` (``python -m lessons.django_streams runserver 8002``) streams too, but
  with no chunked framing: a response without a length gets ``Connection: close`` and its
  body ends when the connection does, as in HTTP/1.0.
"""

import functools
import sys
from collections.abc import Callable, Generator, Iterator
from datetime import UTC, datetime

import django
from django.conf import settings
from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    StreamingHttpResponse,
)
from django.urls import path
from django.utils.cache import get_conditional_response
from django.utils.http import http_date
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import require_POST, require_safe
from werkzeug.exceptions import HTTPException

from lessons.chat import completion_answer
from lessons.folders import served_folder
from lessons.routes import plain_error
from streamlib.clock import clock_stream
from streamlib.disconnect import client_watch
from streamlib.files import UNTRUSTED_FILE_HEADERS, iter_file, media_type
from streamlib.paths import resolve_under
from streamlib.ranges import requested_range
from streamlib.sse import SSE_HEADERS
from streamlib.timing import ticks_for

if not settings.configured:
    settings.configure(
        ROOT_URLCONF=__name__,
        # The course answers only its own Host names before any route sees the request
        # (lesson 02, "Only this machine's pages"), so Django need not check them again.
        ALLOWED_HOSTS=["*"],
        MIDDLEWARE=[],
        USE_TZ=True,
        SECRET_KEY="lesson 09: no sessions, no signing",
    )
    django.setup(set_prefix=False)

View = Callable[..., HttpResponseBase]


def plain_errors(view: View) -> View:
    """Answer the course's checks (werkzeug's ``HTTPException``) with one line of text."""

    @functools.wraps(view)
    def checked(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponseBase:
        try:
            return view(request, *args, **kwargs)
        except HTTPException as error:
            text, headers = plain_error(error)
            response = HttpResponse(
                text, status=error.code, content_type="text/plain; charset=utf-8"
            )
            for name, value in headers:
                response[name] = value
            return response

    return checked


@require_safe
@plain_errors
def events(request: HttpRequest) -> StreamingHttpResponse:
    """Lesson 04's SSE clock: ids, heartbeats, resumed after ``Last-Event-ID``."""
    body = clock_stream(request.GET, request.headers.get("Last-Event-ID"))
    return StreamingHttpResponse(body, headers=dict(SSE_HEADERS))


@require_safe
@plain_errors
def events_watched(request: HttpRequest) -> StreamingHttpResponse:
    """The clock, ended by the view itself once the client has gone (see below)."""
    body = clock_stream(request.GET, request.headers.get("Last-Event-ID"))
    watched = until_gone(body, client_watch(request.environ))
    return StreamingHttpResponse(watched, headers=dict(SSE_HEADERS))


def until_gone(pieces: Generator[bytes], gone: Callable[[], bool]) -> Iterator[bytes]:
    """``pieces`` until the client has gone. A layer that holds the pieces back (gzip)
    writes nothing for a while, so no write fails to tell the stream that its client left;
    then the stream must look for itself (lesson 06, ``streamlib.disconnect``)."""
    try:
        for piece in pieces:
            if gone():
                return
            yield piece
    finally:
        pieces.close()


# The clock through Django's gzip middleware: curl --compressed shows the events late.
events_gzip = gzip_page(events_watched)


@require_safe
@plain_errors
def files(request: HttpRequest, name: str) -> HttpResponseBase:
    """Lesson 02's files with ``FileResponse``: ranges, conditional requests, HEAD."""
    found = resolve_under(served_folder(request.environ), name)
    if found is None:
        raise Http404("no such file")
    stat = found.stat()
    etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
    modified = int(stat.st_mtime)
    validators = HttpResponse(headers={"ETag": etag, "Last-Modified": http_date(modified)})
    checked = get_conditional_response(request, etag, modified, validators)
    if checked is not validators:  # a 304 (with the validators, for the cache) or a 412
        return checked
    when = datetime.fromtimestamp(modified, UTC)
    byte_range = requested_range(request.environ, stat.st_size, etag, when)  # 416 raises
    if byte_range is None:
        response: HttpResponseBase = FileResponse(open(found, "rb"))  # noqa: SIM115
    else:
        start, stop = byte_range
        response = StreamingHttpResponse(
            iter_file(found, start, stop - start),
            status=206,
            content_type=media_type(found),
        )
        response["Content-Range"] = f"bytes {start}-{stop - 1}/{stat.st_size}"
        response["Content-Length"] = str(stop - start)
    response["ETag"] = etag
    response["Last-Modified"] = http_date(modified)
    response["Accept-Ranges"] = "bytes"
    for name, value in UNTRUSTED_FILE_HEADERS:  # a served file never runs as the course
        response[name] = value
    return response


@require_POST
def completions(request: HttpRequest) -> HttpResponseBase:
    """Lesson 06's OpenAI-compatible endpoint, streamed or whole."""
    answer = completion_answer(request.environ, "/django/v1/chat/completions")
    status, headers = int(answer.status[:3]), dict(answer.headers)
    if isinstance(answer.body, list):  # whole: its length is known
        return HttpResponse(b"".join(answer.body), status=status, headers=headers)
    return StreamingHttpResponse(answer.body, status=status, headers=headers)


@require_safe
@plain_errors
def ticks(request: HttpRequest) -> StreamingHttpResponse:
    """Lesson 03's ticks, one chunk each."""
    body = ticks_for(request.GET)
    return StreamingHttpResponse(body, content_type="text/plain; charset=utf-8")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 404 (``Http404``, or no URL matched) as the course's one line of text."""
    text = f"404 Not Found: nothing at {request.path}; the index at / lists every route\n"
    return HttpResponse(text, status=404, content_type="text/plain; charset=utf-8")


handler404 = not_found
urlpatterns = [
    path("events", events),
    path("events-gzip", events_gzip),
    path("files/<path:name>", files),
    path("v1/chat/completions", completions),
    path("ticks", ticks),
]

# The project's WSGI app, as a Django project's wsgi.py names it.
application = get_wsgi_application()
# The same project under ASGI, as its asgi.py would name it: ``uvicorn
# lessons.django_streams:asgi_application``. Lesson 09 shows what it does with these
# views' plain generators: drains each one whole before sending a byte.
asgi_application = get_asgi_application()

if __name__ == "__main__":  # a manage.py in one file: python -m lessons.django_streams runserver
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
