"""Lesson 02: stream a file with constant memory, sendfile, ranges and conditional requests.

**Constant memory.** ``[open(path, "rb").read()]`` holds the whole file: a 1 GiB video
costs 1 GiB of server memory per download, and the first byte waits for the last one to
be read. ``streamlib.iter_file`` reads 64 KiB, yields it, and reads the next: memory holds
one chunk whatever the size, and the first byte leaves at once.

**sendfile.** Better still, do not read the file in Python at all. PEP 3333 lets a server
offer ``environ["wsgi.file_wrapper"]``: hand it the open file and the server sends it as
it likes. gunicorn's sync and gthread workers call ``sendfile(2)``, which copies from the
kernel's page cache to the socket without the bytes ever entering the process (its gevent
worker reads and sends instead: a test counts the reads). werkzeug's dev server offers no
wrapper, so there the generator runs. ``streamlib.file_body`` picks. A trap: gunicorn's
``sendfile`` setting is its ``--no-sendfile`` flag, so ``sendfile = True`` in a
``gunicorn.conf.py`` turns sendfile *off*. Leave it out to keep sendfile on.

**Ranges** (RFC 9110 section 14). A client asks for part of a file with
``Range: bytes=START-END``; the server answers ``206 Partial Content`` with
``Content-Range: bytes START-END/SIZE``. That is how a browser seeks in a video without
downloading what it skips, and how a download manager resumes. Say so with
``Accept-Ranges: bytes``. Three forms: ``a-b`` (inclusive), ``a-`` (to the end), ``-n``
(the last n bytes; a suffix longer than the file means the whole file, which werkzeug's
helper gets wrong and ``streamlib.ranges`` corrects). A range starting past the end is
``416 Range Not Satisfiable`` with ``Content-Range: bytes */SIZE``. A malformed Range is
ignored: a plain 200. Several ranges get a plain 200 too: ``multipart/byteranges`` is
legal but rarely used and easy to abuse.

**Conditional requests** (RFC 9110 section 13). Every answer carries an ``ETag`` (here:
the modification time and size, in hex) and ``Last-Modified``. A client sends them back as
preconditions, and the server checks them *in this order* before it sends a byte
(section 13.2.2; ``streamlib.conditional`` does it):

+-----------------------------+---------------------------------------------+------------+
| precondition                | true when                                   | if false   |
+=============================+=============================================+============+
| ``If-Match``                | the ETag matches strongly (``W/`` never     | 412        |
|                             | does), or it is ``*``                       |            |
+-----------------------------+---------------------------------------------+------------+
| ``If-Unmodified-Since``     | the file was not modified after the date    | 412        |
| (without ``If-Match``)      |                                             |            |
+-----------------------------+---------------------------------------------+------------+
| ``If-None-Match``           | no ETag matches (weakly; ``*`` matches any) | 304 (GET,  |
|                             |                                             | HEAD), else|
|                             |                                             | 412        |
+-----------------------------+---------------------------------------------+------------+
| ``If-Modified-Since``       | the file was modified after the date        | 304        |
| (without ``If-None-Match``) |                                             |            |
+-----------------------------+---------------------------------------------+------------+
| ``If-Range`` + ``Range``    | the ETag or date is the file's own          | 200, whole |
+-----------------------------+---------------------------------------------+------------+

The first two guard against sending (or, on a write, overwriting) a version the client
did not mean: ``412 Precondition Failed``. The next two save a download the client already
has: ``304 Not Modified``, no body, only the ``ETag``. ``If-Range`` makes a range
conditional: resume only if the file is still the same version, otherwise send it all. The
order matters: werkzeug's ``is_resource_modified`` answers "send the body?": it calls a
failed ``If-Match`` "not modified", which ``send_file`` then makes a 412; ``send_file``
answers ``If-Match: *`` with a 412 too (RFC 9110 section 13.1.1 makes ``*`` true for any
existing file), and never reads ``If-Unmodified-Since`` (werkzeug 3.1).

**HEAD** answers the headers of GET (length included) and no body, and never opens the
file: ``serve_file`` returns before ``file_body``, which would open it for a server's
file wrapper.

**Only the folder, nothing else.** The name comes from the URL, so it is hostile until
proven otherwise: ``streamlib.paths.resolve_under`` refuses ``..`` in every spelling the
server decodes to it, absolute paths, NUL bytes, backslashes, hidden names and symlinks
that lead out of the folder. Each is a plain 404: no hint of what exists outside.

**Only this machine's pages.** Listening on 127.0.0.1 keeps the network out, not the
web: every page open in the learner's browser can send requests to ``localhost``. Chrome
142 and later ask the learner first (Local Network Access, chromestatus.com feature
5152728072060928), but one click on Allow, or another browser, and the server is on its
own. Four ways it turns against a local file server, each once measured on this course:

- *DNS rebinding.* A page on ``evil.example`` makes its name resolve to 127.0.0.1 and
  fetches ``http://evil.example:8000/files/``. The browser calls that same-origin, so the
  page reads the answer: with ``--files ~/Documents``, the learner's documents. The one
  thing that differs is the ``Host`` header. The course answers only its own names
  (loopback names and addresses, the address it listens on, and ``--allow-host NAME``);
  ``curl -H 'Host: evil.example:8000' http://127.0.0.1:8000/files/`` is a 403.
- *Cross-site requests.* A page may POST ``text/plain`` anywhere without asking
  (a "simple request": no CORS preflight). It cannot read the answer, but the server does
  the work. The course refuses a POST whose ``Origin`` is not its own or whose
  ``Sec-Fetch-Site`` says ``cross-site`` (403), and JSON endpoints take only
  ``application/json`` (415), which no page can send to another origin unasked.
- *Its own pages, turned against it.* Those checks look at where a request comes from. A
  page of the course that sends what its URL says would send it from the course's own
  origin: an ``/inspect`` address with ``path=/broadcast``, ``method=POST`` and a
  ``body``, opened by a link or in a frame on any site, once posted into the broadcast
  room. So the inspector sends a POST
  only when the learner presses Watch, and every page of the course carries
  a Content-Security-Policy whose ``frame-ancestors 'self'`` stops other sites framing it
  to steer that click, and whose ``script-src`` runs only the scripts the page lists
  (``lessons.html_page``).
- *Files as pages.* An HTML or SVG file in the served folder (an upload, lesson 11), sent
  as ``text/html``, would run its scripts as the course's origin: reading every answer,
  posting anywhere. Every file goes out with ``Content-Security-Policy: sandbox``: the
  browser shows it as an opaque origin, its scripts not run (``streamlib.files``).

No CORS header is sent unless ``--cors ORIGIN`` names an origin whose pages may read and
post (a front end on another port, say). ``streamlib.origins`` holds the checks; Jupyter,
Vite and webpack-dev-server added the same ones after the same attacks. A ``--host`` other
than loopback is announced before serving: then the network can reach every route.

Try it (``python lessons/02_stream_a_file.py``, or ``python -m lessons``)::

    curl -N http://127.0.0.1:8000/files/                          # what is served
    curl -D - -r 0-99 -o part http://127.0.0.1:8000/files/tone.wav  # 206; 100 bytes to part
    curl -i -r 999999999- http://127.0.0.1:8000/files/tone.wav    # 416
    curl -I http://127.0.0.1:8000/files/tone.wav                  # HEAD: ETag, Accept-Ranges
    curl -C - -o tone.wav http://127.0.0.1:8000/files/tone.wav    # resume a download

Then open http://127.0.0.1:8000/demo/video and seek. ``--files DIR`` serves your own
folder; by default the course creates a sample folder on first use.

Notebook: ``notebooks/02_stream_a_file.ipynb``. Exercise: ``exercises/02_stream_a_file.py``.
"""

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from urllib.parse import quote

from werkzeug.exceptions import BadRequest, NotFound, PreconditionFailed
from werkzeug.http import http_date
from werkzeug.wrappers import Request

from lessons.cli import run_lesson
from lessons.folders import CLIP_NAME, sample_folder, served_folder  # noqa: F401
from lessons.routes import Lesson, Route, send_text
from streamlib.conditional import evaluate_preconditions
from streamlib.files import UNTRUSTED_FILE_HEADERS, file_body, media_type
from streamlib.paths import resolve_under
from streamlib.ranges import requested_range


def find_file(environ: dict) -> Path:
    """The file named in the URL, inside the served folder, or a 404."""
    name = environ["wsgiorg.routing_args"][1]["name"]
    path = resolve_under(served_folder(environ), name)
    if path is None:
        raise NotFound()
    return path


def serve_file(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """Send a file from the served folder: 200, 206, 304, 412 or 416, streamed."""
    path = find_file(environ)
    stat = path.stat()
    size = stat.st_size
    etag = f'"{stat.st_mtime_ns:x}-{size:x}"'
    last_modified = datetime.fromtimestamp(int(stat.st_mtime), UTC)
    headers = [
        ("ETag", etag),
        ("Last-Modified", http_date(last_modified)),
        ("Accept-Ranges", "bytes"),
    ]
    verdict = evaluate_preconditions(environ, etag, last_modified)
    if verdict is not None and verdict.status == 412:
        raise PreconditionFailed(
            f"{verdict.header} is false for this file (ETag {etag},"
            f" Last-Modified {http_date(last_modified)})"
        )
    if verdict is not None:  # 304: what a cache needs to match its copy (RFC 9110 section 15.4.5)
        start_response("304 Not Modified", [("ETag", etag)])
        return []
    byte_range = requested_range(environ, size, etag, last_modified)
    if byte_range is None:
        status, (start, stop) = "200 OK", (0, size)
    else:
        status, (start, stop) = "206 Partial Content", byte_range
        headers.append(("Content-Range", f"bytes {start}-{stop - 1}/{size}"))
    headers += [("Content-Type", media_type(path)), ("Content-Length", str(stop - start))]
    start_response(status, headers + UNTRUSTED_FILE_HEADERS)  # never runs as the course
    if environ["REQUEST_METHOD"] == "HEAD":
        return []  # headers only: not even the server's file wrapper opens the file
    return file_body(environ, path, start, stop - start)


def serve_file_buffered(environ: dict, start_response: Callable) -> list[bytes]:
    """The way not to do it: read the whole file into memory, then send it."""
    path = find_file(environ)
    body = path.read_bytes()
    headers = [("Content-Type", media_type(path)), ("Content-Length", str(len(body)))]
    start_response("200 OK", headers + UNTRUSTED_FILE_HEADERS)
    return [body]


def list_files(environ: dict, start_response: Callable) -> list[bytes]:
    """List the served folder's files, one ``size name`` line each.

    Only what ``/files/<name>`` would serve: the same ``resolve_under`` decides, so a
    symlink leading out of the folder is neither listed nor served.
    """
    folder = served_folder(environ)
    lines = []
    for entry in sorted(folder.iterdir()):
        path = resolve_under(folder, entry.name)
        if path is not None:
            lines.append(f"{path.stat().st_size:>12} {entry.name}\n")
    return send_text(environ, start_response, "text/plain", "".join(lines))


DEMO_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>Lesson 02: seeking in {name} with Range requests</title>
<style>body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 50rem; margin: 2rem auto; }}
{element} {{ width: 100%; }}</style>
</head>
<body>
<nav><a href="/">All lessons</a> ·
<a href="/#02_stream_a_file">Lesson 02: streaming a file</a></nav>
<h1>Seeking in {name} ({element}) with Range requests</h1>
<p>The browser asks for <code>/files/{name}</code> with <code>Range: bytes=0-</code> and
reads a little. When you jump, it asks for <code>bytes=N-</code> from where you jumped, and the
server answers <code>206 Partial Content</code>: nothing in between is downloaded. Watch the
parts the browser holds (<code>buffered</code>) below, and the requests in your browser's
network panel.</p>
<{element} id="player" controls preload="metadata" src="/files/{src}"></{element}>
<p><button id="middle">Jump to the middle</button></p>
<p>Other media in the served folder: {others}</p>
<p>Buffered: <span id="buffered">nothing yet</span></p>
<script>
const player = document.getElementById("player");
const shown = document.getElementById("buffered");
function showBuffered() {{
  const parts = [];
  for (let i = 0; i < player.buffered.length; i++) {{
    const [start, end] = [player.buffered.start(i), player.buffered.end(i)];
    parts.push(start.toFixed(0) + "-" + end.toFixed(0) + " s");
  }}
  shown.textContent = parts.join(", ") || "nothing yet";
}}
["progress", "seeked", "loadedmetadata"].forEach((e) => player.addEventListener(e, showBuffered));
document.getElementById("middle").onclick = () => {{ player.currentTime = player.duration / 2; }};
</script>
</body>
</html>
"""


def media_files(folder: Path) -> list[str]:
    """The audio and video files that ``/files/`` serves from ``folder``, by name."""
    return [
        entry.name
        for entry in sorted(folder.iterdir())
        if media_type(entry).startswith(("audio/", "video/"))
        and resolve_under(folder, entry.name) is not None
    ]


def demo_video(environ: dict, start_response: Callable) -> list[bytes]:
    """A page with a media element playing ``?name=``: by default the served folder's first
    audio or video file (the course's tone clip, in its sample folder)."""
    folder = served_folder(environ)
    found = media_files(folder)
    name = Request(environ).args.get("name") or (found[0] if found else "")
    if not name:
        raise NotFound(f"the served folder {folder} has no audio or video file to play")
    path = resolve_under(folder, name)
    if path is None:
        raise BadRequest(f"name: expected a file in the served folder, got {name!r}")
    element = "video" if media_type(path).startswith("video/") else "audio"
    others = " ".join(
        f'<a href="?name={quote(other)}">{escape(other)}</a>' for other in found if other != name
    )
    page = DEMO_PAGE.format(
        name=escape(name), src=quote(name), element=element, others=others or "none"
    )
    return send_text(environ, start_response, "text/html", page)


LESSON = Lesson(
    number=2,
    slug="stream_a_file",
    title="Streaming a file",
    summary=(
        "Files sent in 64 KiB chunks (or by sendfile under gunicorn) with flat memory at any"
        " size; Range requests (206, 416), ETag and Last-Modified (304), HEAD; and no way out"
        " of the served folder."
    ),
    routes=(
        Route("/files/", list_files, "the served folder's files", "/files/", streams=False),
        Route(
            "/files/<path:name>", serve_file, "a file, streamed, with ranges", "/files/hello.txt"
        ),
        Route(
            "/files-buffered/<path:name>",
            serve_file_buffered,
            "the same file read whole into memory first (for comparison)",
            "/files-buffered/hello.txt",
        ),
        Route(
            "/demo/video",
            demo_video,
            "an audio or video player (the folder's first media file) that seeks with ranges",
            "/demo/video",
            streams=False,
        ),
    ),
    demos=(("/demo/video", "seek in a media clip"),),
)

if __name__ == "__main__":
    run_lesson(LESSON)
