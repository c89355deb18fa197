"""The HTML index at ``/``: every lesson, its routes, the curl commands to try, the demos."""

from collections.abc import Sequence
from html import escape
from urllib.parse import quote

from werkzeug.wsgi import get_host

from lessons.html_page import html_page
from lessons.routes import Lesson, Route

# The whole course, so that the index shows where each lesson stands.
OUTLINE = (
    (1, "Buffered vs streamed"),
    (2, "Streaming a file"),
    (3, "Manual chunks"),
    (4, "Server-Sent Events"),
    (5, "Chunked JSON"),
    (6, "Streaming AI responses"),
    (7, "Streaming in production"),
    (8, "Fan-out beyond one process"),
    (9, "Flask and Django"),
    (10, "HTTP/2 in a browser"),
    (11, "Streaming uploads"),
)

STYLE = """\
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto;
         padding: 0 1rem; }
  code, pre { background: #f4f4f4; padding: 0 .25rem; }
  pre { padding: .5rem; white-space: pre-wrap; overflow-wrap: anywhere; }  /* no line hidden */
  li code, p code { overflow-wrap: anywhere; }
  .later { color: #888; }
"""

BODY = """\
<h1>streamlib</h1>
<p>Stream HTTP responses with WSGI: send data as it is ready instead of buffering it.
Each lesson below is live on this server. Try its routes with <code>curl -N</code>
(<code>-N</code> turns off curl's own buffering, so you see each piece as it arrives),
and watch <a href="/stats"><code>/stats</code></a> count the open streams. Each lesson's
title opens its page; <a href="/inspect">the stream inspector</a> draws any route's
chunks as they arrive ("watch it" on a lesson's page).</p>
<p>Every route bounds what it costs: a bad parameter is a one-line 400, a body over its cap
a 413, and every finite stream ends within 600 s (a longer one is refused up front). The
streams marked <em>endless on purpose</em> run until their client leaves, costing a
heartbeat now and then.</p>
{lessons}
"""


def curl_commands(route: Route, base: str) -> list[str]:
    """The ``curl`` commands that try ``route`` on the server at ``base``: one ``curl -N``
    for a GET, one that posts the route's example body for a POST, and for a PUT one that
    uploads the file the example names from the current folder (``curl -T``).

    >>> from lessons.routes import Route
    >>> route = Route("/x", lambda e, s: [], "x", "/x?n=1", ("GET", "POST"), example_body=b"{}")
    >>> curl_commands(route, "http://127.0.0.1:8000")  # doctest: +NORMALIZE_WHITESPACE
    ["curl -N 'http://127.0.0.1:8000/x?n=1'",
     "curl -N -H 'Content-Type: application/json' -d '{}' 'http://127.0.0.1:8000/x?n=1'"]
    """
    if not route.example:
        return []
    url = base + route.example
    curl = f"curl -N {route.curl_flags} " if route.curl_flags else "curl -N "
    commands = [f"{curl}'{url}'"] if "GET" in route.methods else []
    if "POST" in route.methods and route.example_body:
        body = route.example_body.decode()
        commands.append(f"curl -N -H 'Content-Type: application/json' -d '{body}' '{url}'")
    if "PUT" in route.methods:
        commands.append(f"curl -T {route.example.rsplit('/', 1)[-1]} '{url}'")
    return commands


def render_index(lessons: Sequence[Lesson], environ: dict) -> str:
    """Return the index page, with curl commands that point at the host asked for."""
    base = f"{environ.get('wsgi.url_scheme', 'http')}://{get_host(environ)}"
    built = {lesson.number: lesson for lesson in lessons}
    sections = []
    for number, title in OUTLINE:
        lesson = built.get(number)
        if lesson is None:
            sections.append(f'<h2 class="later">{number:02d}. {escape(title)} (coming)</h2>')
        else:
            sections.append(_lesson_section(lesson, base))
    body = BODY.format(lessons="\n".join(sections))
    return html_page("streamlib: streaming HTTP responses with WSGI", STYLE, body)


def _lesson_section(lesson: Lesson, base: str) -> str:
    parts = [
        f'<h2 id="{lesson.name}"><a href="/lessons/{lesson.number:02d}">{lesson.number:02d}.'
        f" {escape(lesson.title)}</a></h2>",
        f'<p>{escape(lesson.summary)} <a href="/lessons/{lesson.number:02d}">Read the'
        " lesson</a>.</p>",
        f"<p>Alone: <code>python lessons/{lesson.name}.py</code>; notebook: "
        f"<code>notebooks/{lesson.name}.ipynb</code>; exercise: "
        f"<code>exercises/{lesson.name}.py</code>.</p>",
        "<ul>",
    ]
    for route in lesson.routes:
        methods = " ".join(route.methods)
        if route.path.startswith("/demo/"):  # a page for a browser: a link, not a curl command
            target = escape(route.example or route.path)
            parts.append(
                f'<li><code>{methods} <a href="{target}">{escape(route.path)}</a></code>:'
                f" {escape(route.summary)}</li>"
            )
            continue
        limits = f" <em>({escape(route.limits)})</em>" if route.limits else ""
        watch = (
            f' <a href="/inspect?path={escape(quote(route.example, safe=""))}">watch it</a>'
            if route.example and "GET" in route.methods
            else ""
        )
        parts.append(
            f"<li><code>{methods} {escape(route.path)}</code>: {escape(route.summary)}{limits}"
            + watch
        )
        parts += [f"<pre>{escape(command)}</pre>" for command in curl_commands(route, base)]
        parts.append("</li>")
    for path, label in lesson.demos:
        parts.append(f'<li>Demo: <a href="{escape(path)}">{escape(label)}</a></li>')
    parts.append("</ul>")
    return "\n".join(parts)
