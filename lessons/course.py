"""The course server: every lesson's routes behind one WSGI app, plus ``/``, ``/stats``,
a page per lesson (``/lessons/NN``, :mod:`lessons.pages`) and the stream inspector
(``/inspect``, :mod:`lessons.inspector`).

Each lesson describes itself with a :class:`Lesson` holding its :class:`Route` objects;
:func:`build_app` mounts them with werkzeug's routing and adds what every route needs:

- clear plain-text 400/404/405 answers, and a bare 500 if a bug slips through (the
  traceback goes to the server's log, never to the client);
- ``HEAD`` answered with headers only (werkzeug's dev server leaves that to the app);
- every streamed response counted by :class:`streamlib.StreamStats` for ``/stats``.
"""

import json
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil
from werkzeug.exceptions import (
    BadRequest,
    Forbidden,
    HTTPException,
    InternalServerError,
    MethodNotAllowed,
    NotFound,
)
from werkzeug.routing import Map, RequestRedirect, Rule

from lessons.index_page import render_index
from lessons.inspector import inspector_page
from lessons.pages import page_routes
from lessons.routes import Lesson, WSGIApp, send_text
from streamlib import StreamStats
from streamlib.origins import (
    cors_headers,
    cross_site_refusal,
    host_refusal,
    malformed_host,
)

MAX_DESCRIPTION = 200  # characters of an error's one-line description
logger = logging.getLogger("lessons")


def build_app(
    lessons: Sequence[Lesson],
    stats: StreamStats | None = None,
    settings: Mapping[str, Any] | None = None,
) -> WSGIApp:
    """Return one WSGI app serving the routes of ``lessons``, ``/``, ``/stats``, the
    lessons' pages and the stream inspector.

    lessons: the lessons to mount (``lessons.load_lessons()`` gives them all).
    stats: where to count streams; a fresh :class:`StreamStats` when omitted.
    settings: the course's settings, put in every request's environ for the lessons to
        read: ``"course.files"`` is the folder that ``/files/`` serves (lesson 02),
        ``"course.redis"`` the URL of the Redis broker (lesson 08). Two more shape who
        may talk to the server (``streamlib.origins``): ``"course.allow_hosts"``, host
        names to answer besides the loopback ones, and ``"course.cors"``, origins whose
        pages may read answers and post.

    Every request's ``Host`` must be a host (400 otherwise) naming this server (403
    otherwise), and a POST from
    another site's page is a 403 too: a server on 127.0.0.1 is within reach of every
    page the learner's browser opens (lesson 02, "Only this machine's pages").
    """
    settings = dict(settings or {})
    allowed_hosts = tuple(settings.get("course.allow_hosts", ()))
    trusted_origins = tuple(settings.get("course.cors", ()))
    stats = stats or StreamStats()
    routes = {route.path: route for lesson in lessons for route in lesson.routes}
    pages = {**page_routes(lessons), "/inspect": inspector_page}  # the course's own pages
    # merge_slashes=False: werkzeug would redirect "/files//etc/passwd" to a tidier URL;
    # a path like that is refused instead (404), never rewritten.
    url_map = Map(
        [Rule("/", endpoint="/"), Rule("/stats", endpoint="/stats")]
        + [Rule(path, endpoint=path, methods=("GET",)) for path in pages]
        + [Rule(path, endpoint=path, methods=route.methods) for path, route in routes.items()],
        merge_slashes=False,
    )

    def course_app(environ: dict, start_response: Callable) -> Any:
        start_response = _guarded(start_response)
        try:
            if problem := malformed_host(environ):
                raise BadRequest(problem)
            if refusal := host_refusal(environ, allowed_hosts):  # before any route runs
                raise Forbidden(refusal)
            if cors := cors_headers(environ, trusted_origins):  # only for a --cors origin
                if environ["REQUEST_METHOD"] == "OPTIONS":
                    return _preflight(start_response, cors)
                start_response = _adding(cors, start_response)
            if refusal := cross_site_refusal(environ, trusted_origins):
                raise Forbidden(refusal)
            endpoint, arguments = url_map.bind_to_environ(environ).match()
            if endpoint == "/":
                return send_text(
                    environ, start_response, "text/html", render_index(lessons, environ)
                )
            if endpoint == "/stats":
                return send_text(environ, start_response, "application/json", _stats_json(stats))
            if endpoint in pages:
                environ["wsgiorg.routing_args"] = ((), arguments)
                return pages[endpoint](environ, start_response)
            environ.update(settings)
            environ["wsgiorg.routing_args"] = ((), arguments)
            environ["course.stats"] = stats  # for lessons that count more than streams
            body = routes[endpoint].app(environ, start_response)
        except HTTPException as error:
            return _send_error(environ, start_response, error)
        except Exception:
            logger.exception("error in %s %s", environ["REQUEST_METHOD"], environ["PATH_INFO"])
            return _send_error(environ, start_response, InternalServerError())
        if environ["REQUEST_METHOD"] == "HEAD":
            if hasattr(body, "close"):
                body.close()
            return []
        if routes[endpoint].streams_for(environ["REQUEST_METHOD"]):
            return stats.track(endpoint, body, environ)
        return body

    return course_app


def _preflight(start_response: Callable, cors: list[tuple[str, str]]) -> list[bytes]:
    """Answer a trusted origin's CORS preflight: it may POST JSON and resume streams."""
    start_response(
        "204 No Content",
        [
            *cors,
            ("Access-Control-Allow-Methods", "GET, POST"),
            ("Access-Control-Allow-Headers", "Content-Type, Last-Event-ID"),
            ("Access-Control-Max-Age", "600"),
        ],
    )
    return []


# What every answer that says nothing of its own carries: no content-type sniffing, and a
# policy under which, shown as a page (an error, JSON, a stream), it loads nothing and
# no other site may frame it. Pages set their own (lessons.html_page.page_headers), and
# files their sandbox (streamlib.files.UNTRUSTED_FILE_HEADERS).
DEFAULT_POLICY = "default-src 'none'; frame-ancestors 'self'"


def _guarded(start_response: Callable) -> Callable:
    """``start_response`` that adds ``nosniff`` and :data:`DEFAULT_POLICY` to an answer
    that has none of its own."""

    def start_guarded(status: str, response_headers: list, exc_info: Any = None) -> Any:
        names = {name.lower() for name, _ in response_headers}
        extra = [] if "x-content-type-options" in names else [("X-Content-Type-Options", "nosniff")]
        if "content-security-policy" not in names:
            extra.append(("Content-Security-Policy", DEFAULT_POLICY))
        return start_response(status, [*response_headers, *extra], exc_info)

    return start_guarded


def _adding(headers: list[tuple[str, str]], start_response: Callable) -> Callable:
    """``start_response`` with ``headers`` added to every answer."""

    def start_with_headers(status: str, response_headers: list, exc_info: Any = None) -> Any:
        return start_response(status, [*response_headers, *headers], exc_info)

    return start_with_headers


def _stats_json(stats: StreamStats) -> str:
    process = psutil.Process()
    return json.dumps(
        {**stats.snapshot(), "pid": os.getpid(), "rss_bytes": process.memory_info().rss}
    )


def _send_error(environ: dict, start_response: Callable, error: HTTPException) -> list[bytes]:
    """Answer with ``error`` as one line of plain text, e.g. ``400 Bad Request: size: ...``.

    Called inside ``except``: passing ``exc_info`` lets us replace a status that the app
    had already given to ``start_response`` (allowed until the headers are sent).
    """
    method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
    extra_headers = []
    if isinstance(error, RequestRedirect):  # /files -> /files/: werkzeug's strict slashes
        target = urlsplit(error.new_url)  # absolute, from the Host header: keep the path only
        location = urlunsplit(("", "", target.path, target.query, ""))
        extra_headers.append(("Location", location))
        description = f"the address is {location}"
    elif isinstance(error, NotFound) and error.description == NotFound.description:
        description = f"nothing at {path}; the index at / lists every route"
    elif isinstance(error, MethodNotAllowed):
        error.valid_methods = sorted(error.valid_methods or [])  # werkzeug's order varies
        allowed = ", ".join(error.valid_methods)
        description = f"{method} is not allowed on {path}; use {allowed}"
    elif isinstance(error, InternalServerError):
        description = "the server hit a bug; its log says more"
    else:
        description = error.description or ""
    if len(description) > MAX_DESCRIPTION:  # it may quote the request: keep the answer short
        description = description[:MAX_DESCRIPTION] + "..."
    body = f"{error.code} {error.name}: {description}\n".encode()
    headers = [(k, v) for k, v in error.get_headers(environ) if k.lower() != "content-type"]
    headers += [
        *extra_headers,
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
    ]
    start_response(f"{error.code} {error.name}", headers, sys.exc_info())
    return [] if method == "HEAD" else [body]
