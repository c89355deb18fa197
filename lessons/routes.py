"""What a lesson is made of, and the small answers every page and route sends: the leaf
of the course's wiring, which the course server, its pages and every lesson import, and
which imports none of them.

- :class:`Route` and :class:`Lesson`: how each lesson describes itself (the course server
  mounts them, the index and the lesson pages list them).
- :func:`send_text`: a small answer built whole, a page with its security headers.
- :func:`plain_error`: an HTTP error as one line of text, for a framework's handler.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.exceptions import HTTPException

from lessons.html_page import page_headers

WSGIApp = Callable[..., Any]


@dataclass(frozen=True)
class Route:
    """One HTTP route of a lesson.

    path: a werkzeug rule such as ``/streamed`` or ``/files/<path:name>``; the matched
        arguments reach the app in ``environ["wsgiorg.routing_args"]``.
    app: the WSGI app that answers it. It must check its input and call
        ``start_response`` *before* it returns its iterable (see ``streamlib.params``).
    summary: one sentence for the index page.
    example: a path and query string to try, shown as a ``curl -N`` command.
    methods: the HTTP methods; ``GET`` also answers ``HEAD``.
    streams: count its responses in ``/stats``: True for every method, False for none,
        or the methods whose answers stream, such as ``("GET",)`` when POST only accepts.
    example_body: a JSON request body to go with ``example``, for a POST route.
    free_text: query parameters that take any text (``prompt``), not a bounded value.
    limits: what bounds its cost, for the index: ``"bodies up to 1 MiB (413 above)"``, or
        ``"endless on purpose"`` for a stream that runs until the client leaves.
    curl_flags: more flags its curl command needs to show the point, such as
        ``--compressed`` (curl asks for no compression without it).
    """

    path: str
    app: WSGIApp
    summary: str
    example: str = ""
    methods: tuple[str, ...] = ("GET",)
    streams: bool | tuple[str, ...] = True
    example_body: bytes = b""
    free_text: tuple[str, ...] = ()
    limits: str = ""
    curl_flags: str = ""

    def streams_for(self, method: str) -> bool:
        """Whether an answer to ``method`` is a stream, to be counted in ``/stats``."""
        return self.streams if isinstance(self.streams, bool) else method in self.streams


@dataclass(frozen=True)
class Lesson:
    """A lesson: its number and slug (as in ``lessons/01_buffered_vs_streamed.py``),
    a title, a one-paragraph summary, its routes and its browser demos (path, label)."""

    number: int
    slug: str
    title: str
    summary: str
    routes: tuple[Route, ...]
    demos: tuple[tuple[str, str], ...] = field(default=())

    @property
    def name(self) -> str:
        return f"{self.number:02d}_{self.slug}"


def send_text(environ: dict, start_response: Callable, content_type: str, text: str) -> list[bytes]:
    """Answer 200 with ``text`` (UTF-8) as ``content_type``, its length, and no body for HEAD.

    For small answers built whole: pages, listings, JSON. Streams are the lessons' job.
    A page (``text/html``) goes out with :func:`lessons.html_page.page_headers`.
    """
    body = text.encode()
    headers = [
        ("Content-Type", f"{content_type}; charset=utf-8"),
        ("Content-Length", str(len(body))),
    ]
    if content_type == "text/html":
        headers += page_headers(text)  # its own scripts and styles only; framed by none
    start_response("200 OK", headers)
    return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]


def plain_error(error: HTTPException) -> tuple[str, list[tuple[str, str]]]:
    """An HTTP error as the course answers it: one line of text, ``400 Bad Request: count:
    ...``, and the headers it needs besides its type (a 416's ``Content-Range``). For a
    framework's error handler (lesson 09) to send the same answer as every other route."""
    headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
    return f"{error.code} {error.name}: {error.description}\n", headers
