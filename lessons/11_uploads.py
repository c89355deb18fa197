"""Lesson 11: uploads. Request bodies streamed to disk, resumed after a drop, with progress.

**The same problem, the other way.** A WSGI app reads its request body from
``environ["wsgi.input"]``. ``read()`` with no size, Flask's ``request.get_data()`` and
Django's ``request.body`` hold the whole body in memory before the first byte is stored:
``PUT /uploads-buffered/NAME`` does that, and a 64 MiB upload raises the server's peak
memory by 64 MiB (a test measures it; the notebook goes to 128 MiB, the bench to 1 GiB:
1,032 MiB). ``PUT /uploads/NAME`` reads 64 KiB at a time and writes each piece as it
comes (``streamlib.uploads.store_body``): 1 GiB moved the dev server's peak by 0.1 MiB and
gunicorn's by under 9 MiB, and the dev server stored it at two thirds of the speed of
nginx storing the same upload (522 MB/s; bench 11).
``?piece=`` sets the size: a piece is what must arrive before the app sees any of it, and
under gunicorn larger pieces go faster (its reader copies what it holds at every read).

**Where the body ends.** With ``Content-Length`` the app reads exactly that many bytes
(reading past it may wait forever). A ``Transfer-Encoding: chunked`` body has no length:
werkzeug's dev server and gunicorn (all three worker classes) undo the chunks and set
``environ["wsgi.input_terminated"]``, and then ``read()`` returns ``b""`` at the end.
Without either, the app cannot know where the body ends: 411 Length Required. A body the
server itself cannot read (a chunk size of twenty hex digits) is a 400, whatever the
server raises.

**Refuse before the body comes.** Over ``--max-upload`` (1 GiB unless told), a
``Content-Length`` gets 413 before a byte is read, and a chunked body as soon as it passes
the cap. A client sending a large body can ask first: ``Expect: 100-continue`` (curl does
past 1 MiB) and wait for ``100 Continue`` before sending. PEP 3333 lets the server say it
at once or at the app's first read; the course's dev server waits for the read
(``streamlib.devserver``), so a refused upload costs the client nothing. gunicorn says it
at once, and plain werkzeug twice: the client starts sending, then meets the 413.

**Never half a file.** The body goes to a hidden temporary file beside the target,
renamed into place only when whole (a rename within one folder is atomic): a client that
stops halfway leaves the old file as it was and nothing else. The answer carries the
SHA-256 of what was stored; a client that sends ``Content-Digest: sha-256=:BASE64:``
(RFC 9530) has it checked before the rename (400 if the bytes differ).

**Resume a dropped upload.** A subset of the IETF draft "Resumable Uploads for HTTP"
(draft-ietf-httpbis-resumable-upload): ``HEAD /uploads/NAME`` answers ``Upload-Offset``,
the bytes held so far, and ``Upload-Complete: ?0`` (or ``?1`` once stored whole).
``PATCH`` with ``Content-Type: application/partial-upload``, ``Upload-Offset: N`` and a
body appends it at N; ``Upload-Complete: ?1`` on the last piece stores the file. Every
byte that arrived is kept, even when the connection drops mid-body, so the client asks
``HEAD`` and sends the rest (``resume_upload``). The offset is checked under a lock on
the upload: an append at any other offset is a 409 that says where to resume, and two
appends never write the same bytes. ``DELETE`` cancels. Left out of the draft: creating
an upload with ``POST`` and its ``104`` interim answer, ``Upload-Length``.

**From a browser.** A form sends files as ``multipart/form-data``. ``POST /uploads``
parses it with werkzeug's ``parse_form_data`` and a ``stream_factory`` that gives each
file a hidden temporary file in the upload folder: the parser writes each file's bytes
there as they come, and the app renames it into place. (Flask's ``request.files`` and
Django's upload handlers also spool a large file to disk; it is ``get_data()`` and
``request.body`` that hold it.) ``/demo/upload`` shows two progress bars: what the
browser has handed to its network stack (``xhr.upload.onprogress``), and what the server
has received, counted as the parser reads (``CountingInput``) and streamed to the page
by ``/upload-progress?id=ID``, an event stream (lesson 04). The count lives in the
process: with several gunicorn workers a watcher may land on another one.

**Who holds the body before the app.** gunicorn's sync, gthread and gevent workers all
call the app once the headers are in and hand it the body as it comes (a slow upload of
six pieces 0.15 s apart: first byte 4 ms after the client began). nginx in front reads
the whole body first, to a temporary file past 16 KiB (``proxy_request_buffering on``,
its default): the app was called 0.91 s into a 0.9 s upload. That shields workers from
slow uploaders (lesson 07), and hides progress and early refusals from the app;
``proxy_request_buffering off`` passes the body on as it comes (3 ms), with
``client_max_body_size`` (nginx's default is 1 MiB) raised to the app's cap. The course's
dev server gives a request 10 s, and a second more for every 64 KiB that arrives (lesson
07's deadline, which a trickling client must not dodge and a large upload must not hit).

Uploads go to ``uploads/`` in the folder ``/files/`` serves (so ``/files/uploads/NAME``
sends one back, with lesson 02's ranges), or to ``--uploads DIR``.

Try it (``python -m lessons``)::

    curl -T README.md http://127.0.0.1:8000/uploads/README.md   # 201: its size and sha256
    curl -I http://127.0.0.1:8000/uploads/README.md             # Upload-Complete: ?1
    curl -i -X PUT -H 'Content-Length: 2000000000' -H 'Expect: 100-continue' \\
         http://127.0.0.1:8000/uploads/big.bin                   # 413 at once, no 100
    curl -i -X PATCH -H 'Content-Type: application/partial-upload' -H 'Upload-Offset: 0' \\
         -H 'Upload-Complete: ?0' -d 'hello ' http://127.0.0.1:8000/uploads/hi.txt  # 204
    curl -X PATCH -H 'Content-Type: application/partial-upload' -H 'Upload-Offset: 6' \\
         -H 'Upload-Complete: ?1' -d 'world' http://127.0.0.1:8000/uploads/hi.txt   # 201
    curl -F file=@README.md http://127.0.0.1:8000/uploads       # a form: 201, stored
    curl -X DELETE http://127.0.0.1:8000/uploads/hi.txt         # gone: 204

Then open http://127.0.0.1:8000/demo/upload and send a large file.

Notebook: ``notebooks/11_uploads.ipynb``. Exercise: ``exercises/11_uploads.py``.
"""

import fcntl
import hashlib
import json
import os
import re
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from werkzeug.exceptions import (
    BadRequest,
    Conflict,
    NotFound,
    RequestEntityTooLarge,
    UnsupportedMediaType,
)
from werkzeug.formparser import parse_form_data
from werkzeug.utils import secure_filename
from werkzeug.wrappers import Request

from lessons import load_lesson
from lessons.cli import run_lesson
from lessons.course import Lesson, Route, send_text
from streamlib import float_param, int_param
from streamlib.sse import SSE_HEADERS, event_stream, format_event
from streamlib.uploads import (
    PIECE,
    CountingInput,
    acceptable_length,
    body_pieces,
    declared_length,
    file_sha256,
    store_body,
)

files_lesson = load_lesson("02")

MAX_UPLOAD = 1024**3  # bytes; --max-upload changes it
# The most a form's text fields (and werkzeug's parser buffer) may hold; files go to disk.
FORM_FIELDS_MEMORY = 1024 * 1024
UPLOAD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
PARTIAL_UPLOAD = "application/partial-upload"  # the resumable-upload draft's media type
MISMATCHING_OFFSET = "https://iana.org/assignments/http-problem-types#mismatching-upload-offset"


def upload_folder(environ: dict) -> Path:
    """Where uploads go: ``--uploads DIR``, or ``uploads/`` inside the folder ``/files/``
    serves (lesson 02), so that ``/files/uploads/NAME`` sends a stored file back."""
    configured = environ.get("course.uploads")
    folder = Path(configured) if configured else files_lesson.served_folder(environ) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def max_upload(environ: dict) -> int:
    """The largest upload accepted, in bytes (``--max-upload``)."""
    return int(environ.get("course.max_upload", MAX_UPLOAD))


def upload_path(environ: dict) -> Path:
    """The file that ``/uploads/<name>`` names, inside the upload folder, or a 400.

    A name is one plain file name: letters, digits, ``.``, ``_`` and ``-``, starting with a
    letter or digit, at most 128 characters. Nothing to decode, no folders, no hidden files:
    a name the server writes to is held to a stricter rule than one it only reads.
    """
    name = environ["wsgiorg.routing_args"][1]["name"]
    if not UPLOAD_NAME.fullmatch(name):
        raise BadRequest(
            "name: letters, digits, '.', '_' and '-', starting with a letter or digit,"
            " at most 128 characters"
        )
    return upload_folder(environ) / name


def send_json(environ: dict, start_response: Callable, status: str, fields: dict) -> list[bytes]:
    """Answer ``status`` with ``fields`` as JSON."""
    body = json.dumps(fields).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


# -- PUT: one request, the whole file ---------------------------------------------------------


def put_upload(environ: dict, start_response: Callable) -> list[bytes]:
    """``PUT /uploads/<name>?piece=65536``: store the body as ``name``, whole or not at all,
    read ``piece`` bytes at a time (4 KiB to 8 MiB; see ``streamlib.uploads`` on the size).

    Answers 201 (created) or 200 (replaced) with the size, the SHA-256 and the server's
    timeline: when the app was called and when its first and last byte of body arrived
    (Unix seconds), which is how the lesson sees who buffered the body before the app.
    """
    path = upload_path(environ)
    piece = int_param(Request(environ).args, "piece", PIECE, 4096, 8 * 1024 * 1024)
    timeline = {"called_at": time.time()}

    def note_arrival(count: int) -> None:
        if count:
            timeline.setdefault("first_byte_at", time.time())
            timeline["last_byte_at"] = time.time()

    environ["wsgi.input"] = CountingInput(environ["wsgi.input"], note_arrival)
    existed = path.exists()
    stored = store_body(environ, path, max_upload(environ), piece)
    status = "200 OK" if existed else "201 Created"
    fields = {"name": path.name, "size": stored.size, "sha256": stored.sha256, **timeline}
    return send_json(environ, start_response, status, fields)


def put_upload_buffered(environ: dict, start_response: Callable) -> list[bytes]:
    """``PUT /uploads-buffered/<name>``: the same, the way that costs the body's size.

    ``read()`` with no size (as ``request.get_data()`` or ``request.body`` do) holds the
    whole body in memory before a byte is written: a 1 GiB upload costs 1 GiB, per upload
    at once. For the lesson's comparison only; bounded by ``--max-upload`` like the rest.
    """
    path = upload_path(environ)
    length = declared_length(environ)
    if length is None or length > max_upload(environ):
        raise RequestEntityTooLarge("this route takes a Content-Length up to --max-upload")
    body = environ["wsgi.input"].read(length)
    if len(body) < length:
        raise BadRequest(f"the body stopped after {len(body)} of {length} bytes")
    path.write_bytes(body)
    fields = {"name": path.name, "size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    return send_json(environ, start_response, "201 Created", fields)


# -- HEAD and PATCH: resume a dropped upload --------------------------------------------------


def partial_path(path: Path) -> Path:
    """Where the bytes of an unfinished resumable upload of ``path`` are kept: hidden, so
    ``/files/`` never serves them as if they were the file."""
    return path.with_name(f".{path.name}.partial")


def upload_offset(environ: dict, start_response: Callable) -> list[bytes]:
    """``HEAD /uploads/<name>``: how many bytes of it the server holds, and if it is whole.

    ``Upload-Offset: N`` and ``Upload-Complete: ?0`` while an upload is unfinished (send
    the rest from byte N), ``?1`` once it is stored whole; 404 if there is neither.
    """
    path = upload_path(environ)
    partial = partial_path(path)
    if partial.exists():
        offset, complete = partial.stat().st_size, "?0"
    elif path.exists():
        offset, complete = path.stat().st_size, "?1"
    else:
        raise NotFound(f"no upload called {path.name}")
    start_response(
        "204 No Content",
        [
            ("Upload-Offset", str(offset)),
            ("Upload-Complete", complete),
            ("Cache-Control", "no-store"),
        ],
    )
    return []


def structured_boolean(environ: dict, header: str) -> bool:
    """A header holding an RFC 9651 boolean, ``?1`` or ``?0``; anything else is a 400."""
    value = environ.get("HTTP_" + header.upper().replace("-", "_"), "").strip()
    if value not in ("?0", "?1"):
        raise BadRequest(f"{header}: expected ?1 (true) or ?0 (false)")
    return value == "?1"


def stated_offset(environ: dict) -> int:
    """The request's ``Upload-Offset``: the byte of the upload its body starts at."""
    value = environ.get("HTTP_UPLOAD_OFFSET", "").strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 15:
        raise BadRequest("Upload-Offset: expected the number of bytes already stored")
    return int(value)


def append_upload(environ: dict, start_response: Callable) -> list[bytes]:
    """``PATCH /uploads/<name>``: append the body at ``Upload-Offset``; ``Upload-Complete: ?1``
    on the last piece stores the file.

    The offset must be what ``HEAD`` says, checked while holding a lock on the upload, so two
    requests can never write the same bytes twice (409 otherwise, with the right offset). If
    the connection drops, every byte that arrived stays: the client asks ``HEAD`` and goes on.
    """
    path = upload_path(environ)
    if environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower() != PARTIAL_UPLOAD:
        raise UnsupportedMediaType(f"Content-Type: send {PARTIAL_UPLOAD} to append to an upload")
    offset, complete = stated_offset(environ), structured_boolean(environ, "Upload-Complete")
    acceptable_length(environ, max_upload(environ))  # a 400, 411 or 413 opens nothing
    partial = partial_path(path)
    if offset != 0 and not partial.exists():
        return mismatching_offset(start_response, offset, 0)  # offset 0 starts an upload
    with partial.open("ab") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict(f"another request is appending to {path.name}; try again") from None
        if not still_named(partial, file.fileno()):
            raise Conflict(f"the upload of {path.name} was completed meanwhile")
        held = file.tell()
        if offset != held:
            return mismatching_offset(start_response, offset, held)
        try:
            for data in body_pieces(environ, max_upload(environ) - held):
                file.write(data)
        finally:
            file.flush()  # what arrived stays, even when the client stopped halfway
        stored = file.tell()
        if complete:
            os.replace(partial, path)  # still under the lock: no append can slip in between
    if not complete:
        start_response(
            "204 No Content", [("Upload-Offset", str(stored)), ("Upload-Complete", "?0")]
        )
        return []
    fields = {"name": path.name, "size": stored, "sha256": file_sha256(path)}
    return send_json(environ, start_response, "201 Created", fields)


def still_named(path: Path, descriptor: int) -> bool:
    """Whether ``path`` still names the open file ``descriptor`` (not renamed meanwhile)."""
    try:
        return os.path.samefile(path, descriptor)
    except FileNotFoundError:
        return False


def mismatching_offset(start_response: Callable, offset: int, held: int) -> list[bytes]:
    """409 Conflict for an append that does not start where the upload ends, in the draft's
    problem-details form, with the offset to resume from."""
    problem = {
        "type": MISMATCHING_OFFSET,
        "title": "the upload is not at the offset the request says",
        "expected-offset": held,
        "provided-offset": offset,
    }
    body = json.dumps(problem).encode()
    start_response(
        "409 Conflict",
        [
            ("Content-Type", "application/problem+json"),
            ("Content-Length", str(len(body))),
            ("Upload-Offset", str(held)),
        ],
    )
    return [body]


def delete_upload(environ: dict, start_response: Callable) -> list[bytes]:
    """``DELETE /uploads/<name>``: remove the stored file and any unfinished upload of it.

    The unfinished part is removed under its lock, so never from under a running append
    (409 then, as for a second append).
    """
    path = upload_path(environ)
    partial = partial_path(path)
    removed = False
    if partial.exists():
        with partial.open("ab") as file:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise Conflict(f"a request is appending to {path.name}; try again") from None
            if still_named(partial, file.fileno()):
                partial.unlink()
                removed = True
    if path.exists():
        path.unlink()
        removed = True
    if not removed:
        raise NotFound(f"no upload called {path.name}")
    start_response("204 No Content", [])
    return []


def uploads(environ: dict, start_response: Callable) -> list[bytes]:
    """``/uploads/<name>``: PUT stores a whole body, HEAD tells the offset, PATCH appends,
    DELETE removes."""
    answer = {
        "PUT": put_upload,
        "HEAD": upload_offset,
        "PATCH": append_upload,
        "DELETE": delete_upload,
    }
    return answer[environ["REQUEST_METHOD"]](environ, start_response)


# -- POST: a browser's form, with the server's own progress ------------------------------------


@dataclass
class Progress:
    """How much of one upload the server has received so far."""

    received: int = 0
    total: int | None = None
    done: bool = False


PROGRESS_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
KEPT_PROGRESS = 256  # uploads remembered at once; the oldest is forgotten first
progress_of: "OrderedDict[str, Progress]" = OrderedDict()
progress_lock = threading.Lock()


def progress_for(upload_id: str) -> Progress:
    """The progress record of ``upload_id``, made on first use (by the upload or its watcher)."""
    with progress_lock:
        if upload_id not in progress_of:
            progress_of[upload_id] = Progress()
            while len(progress_of) > KEPT_PROGRESS:
                progress_of.popitem(last=False)
        return progress_of[upload_id]


def upload_id(environ: dict) -> str | None:
    """The ``?id=`` that ties an upload to its progress stream; None if absent, 400 if bad."""
    value = Request(environ).args.get("id")
    if value is not None and not PROGRESS_ID.fullmatch(value):
        raise BadRequest("id: 1 to 64 letters, digits, '_' or '-'")
    return value


def post_form(environ: dict, start_response: Callable) -> list[bytes]:
    """``POST /uploads?id=ID``: store every ``file`` field of a ``multipart/form-data`` body.

    werkzeug's form parser reads the body in pieces and writes each file's bytes to the
    file its ``stream_factory`` returns: here a hidden file in the upload folder, renamed
    to the file's name once the whole body is parsed. Meanwhile ``/upload-progress?id=ID``
    streams how many bytes have arrived.
    """
    folder = upload_folder(environ)
    progress = progress_for(upload_id(environ) or "")
    progress.total = declared_length(environ)

    def count(size: int) -> None:
        progress.received += size

    environ["wsgi.input"] = CountingInput(environ["wsgi.input"], count)
    made: list[Path] = []

    def stream_factory(*args: object, **kwargs: object) -> object:
        # Not a context manager: the file outlives this call, and the finally below
        # removes it unless store_form_file renamed it into place.
        file = tempfile.NamedTemporaryFile(  # noqa: SIM115
            dir=folder, prefix=".form-", suffix=".part", delete=False
        )
        made.append(Path(file.name))
        return file

    try:
        _, _, files = parse_form_data(
            environ,
            stream_factory=stream_factory,
            max_content_length=max_upload(environ),
            max_form_memory_size=FORM_FIELDS_MEMORY,
            max_form_parts=100,
        )
        stored = [store_form_file(folder, field) for field in files.getlist("file")]
        if not stored:
            raise BadRequest("send multipart/form-data with one or more files named 'file'")
    finally:
        progress.done = True
        for path in made:
            path.unlink(missing_ok=True)  # what was not renamed into place
    return send_json(environ, start_response, "201 Created", {"files": stored})


def store_form_file(folder: Path, field: object) -> dict:
    """Give one parsed file field its name in ``folder``; return its name, size and SHA-256."""
    name = secure_filename(field.filename or "")
    if not UPLOAD_NAME.fullmatch(name):
        raise BadRequest(f"file name {field.filename!r}: needs a plain name such as photo.jpg")
    field.stream.close()
    path = folder / name
    os.replace(field.stream.name, path)
    return {"name": name, "size": path.stat().st_size, "sha256": file_sha256(path)}


def watch_progress(environ: dict, start_response: Callable) -> Iterator[bytes]:
    """``GET /upload-progress?id=ID&heartbeat=10``: an event stream of the bytes the server
    has received of upload ``ID``, a ``progress`` event at most every 0.1 s, ``done`` at the
    end, and a heartbeat comment after ``heartbeat`` seconds without news.

    It may open before the upload starts (it waits up to a minute for it). Progress is kept
    in this process's memory: with several gunicorn workers, a watcher may land on one that
    never sees the upload (lesson 08 shares state between workers through Redis).
    """
    wanted = upload_id(environ)
    if wanted is None:
        raise BadRequest("id: which upload to watch, as in /upload-progress?id=ID")
    heartbeat = float_param(Request(environ).args, "heartbeat", 10.0, 0.05, 60.0)
    start_response("200 OK", SSE_HEADERS)
    return event_stream(progress_events(progress_for(wanted), heartbeat=heartbeat))


def progress_events(
    progress: Progress, every: float = 0.1, heartbeat: float = 10.0, give_up: float = 60.0
) -> Iterator[bytes | None]:
    """Events for ``progress`` as it changes; ends when the upload is done, or after
    ``give_up`` seconds in which not a byte arrived."""
    sent, quiet_since, beat_at = -1, time.monotonic(), time.monotonic()
    while True:
        received, done = progress.received, progress.done
        now = time.monotonic()
        if received != sent or done:
            fields = {"received": received, "total": progress.total}
            yield format_event(json.dumps(fields), event="done" if done else "progress")
            if done:
                return
            sent, quiet_since, beat_at = received, now, now
        elif now - quiet_since > give_up:
            return
        elif now - beat_at > heartbeat:
            beat_at = now
            yield None
        time.sleep(every)


# -- The client's side: what the lesson's tests, notebook and bench do ------------------------


def slow_upload(url: str, pieces: int = 10, gap: float = 0.1, piece: int = 64 * 1024) -> dict:
    """PUT ``pieces`` pieces of ``piece`` bytes to ``url`` (an ``/uploads/<name>`` URL),
    ``gap`` seconds apart, as a chunked body, like a client on a slow link.

    Returns the server's answer with its timeline made relative to the moment the client
    began: ``called_after`` (when the app was called), ``first_byte_after`` and
    ``last_byte_after`` (when the app read its first and last byte), in seconds. A proxy
    that buffers the body calls the app only after the last piece was sent.
    """
    import requests

    def body() -> Iterator[bytes]:
        for number in range(pieces):
            if number:
                time.sleep(gap)
            yield bytes([number % 256]) * piece

    began = time.time()
    answer = requests.put(url, data=body(), timeout=60)
    answer.raise_for_status()
    stored = answer.json()
    for moment in ("called", "first_byte", "last_byte"):
        stored[f"{moment}_after"] = stored.pop(f"{moment}_at") - began
    return stored


def resume_upload(url: str, path: Path, attempts: int = 20) -> dict:
    """Upload the file at ``path`` to ``url`` (``/uploads/<name>``) so that a dropped
    connection costs only what was in flight: ask ``HEAD`` how much is stored, ``PATCH``
    the rest from there, and again after any failure, up to ``attempts`` times.

    Returns the server's answer to the last piece: name, size and SHA-256.
    """
    import requests

    size = path.stat().st_size
    for _ in range(attempts):
        try:
            asked = requests.head(url, timeout=10)
            held = int(asked.headers["Upload-Offset"]) if asked.status_code == 204 else 0
            if asked.headers.get("Upload-Complete") == "?1":
                held = 0  # a complete file of that name: start a new upload over it
            with path.open("rb") as file:
                file.seek(held)
                answer = requests.patch(
                    url,
                    data=file,  # requests sends from the file's position: the rest
                    headers={
                        "Content-Type": PARTIAL_UPLOAD,
                        "Upload-Offset": str(held),
                        "Upload-Complete": "?1",
                        "Content-Length": str(size - held),
                    },
                    timeout=60,
                )
            if answer.status_code == 201:
                return answer.json()
            if answer.status_code != 409:  # 409: another request holds it, or a new offset
                answer.raise_for_status()
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url}: not stored after {attempts} attempts")


UPLOAD_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>Lesson 11: upload with progress</title>
<style>body { font: 16px/1.5 system-ui, sans-serif; max-width: 50rem; margin: 2rem auto;
padding: 0 1rem; } progress { width: 100%; } code { word-break: break-all; }</style>
</head>
<body>
<nav><a href="/">All lessons</a> · <a href="/#11_uploads">Lesson 11: uploads</a></nav>
<h1>Upload with progress</h1>
<p>Two bars: what the browser has handed to the network (<code>xhr.upload.onprogress</code>)
and what the server says it has received (<code>/upload-progress</code>, an event stream).
Uploaded files are served back from <code>/files/uploads/</code>.</p>
<form id="form"><input type="file" id="file" name="file" required>
<button id="send">Upload</button></form>
<p><label for="sent">Sent by the browser</label> <span id="sent-text">0</span>
<progress id="sent" value="0" max="1"></progress></p>
<p><label for="received">Received by the server</label> <span id="received-text">0</span>
<progress id="received" value="0" max="1"></progress></p>
<p id="result" aria-live="polite"></p>
<script>
window.serverProgress = [];
const show = (bar, value, total) => {
  document.getElementById(bar).max = total || 1;
  document.getElementById(bar).value = value;
  document.getElementById(bar + "-text").textContent = value.toLocaleString() + " bytes";
};
document.getElementById("form").onsubmit = (submitted) => {
  submitted.preventDefault();
  const file = document.getElementById("file").files[0];
  const id = crypto.randomUUID();
  const started = performance.now();
  const watcher = new EventSource("/upload-progress?id=" + id);
  watcher.addEventListener("progress", (message) => {
    const progress = JSON.parse(message.data);
    window.serverProgress.push({ms: performance.now() - started, received: progress.received});
    show("received", progress.received, progress.total);
  });
  watcher.addEventListener("done", () => watcher.close());
  const form = new FormData();
  form.append("file", file);
  const request = new XMLHttpRequest();
  request.upload.onprogress = (sent) => show("sent", sent.loaded, sent.total);
  request.onloadend = () => {
    window.uploadResult = {status: request.status, body: request.responseText};
    document.getElementById("result").textContent = request.status === 201
      ? "Stored: " + request.responseText : "Refused: " + request.responseText;
  };
  request.open("POST", "/uploads?id=" + id);
  request.send(form);
};
</script>
</body>
</html>
"""


def demo_upload(environ: dict, start_response: Callable) -> list[bytes]:
    """``GET /demo/upload``: a page that uploads a file with two progress bars."""
    return send_text(environ, start_response, "text/html", UPLOAD_PAGE)


LIMIT = "bodies up to --max-upload (1 GiB; 413 above)"
LESSON = Lesson(
    number=11,
    slug="uploads",
    title="Uploads: streaming the other way",
    summary=(
        "Request bodies streamed to disk in constant memory, refused early when too big,"
        " never left half-stored; a dropped upload resumed with HEAD and PATCH; a browser"
        " form parsed as a stream, with the server's own progress as an event stream."
    ),
    routes=(
        Route(
            "/uploads/<name>",
            uploads,
            "PUT stores the body as name; HEAD and PATCH resume an upload; DELETE removes",
            "/uploads/README.md",
            methods=("PUT", "HEAD", "PATCH", "DELETE"),
            streams=False,
            limits=LIMIT,
        ),
        Route(
            "/uploads-buffered/<name>",
            put_upload_buffered,
            "PUT read whole into memory first: what not to do",
            methods=("PUT",),
            streams=False,
            limits=LIMIT,
        ),
        Route(
            "/uploads",
            post_form,
            "store the files of a multipart/form-data POST (?id= for progress)",
            methods=("POST",),
            streams=False,
            limits=LIMIT,
        ),
        Route(
            "/upload-progress",
            watch_progress,
            "an event stream of the bytes an upload has delivered so far",
            "/upload-progress?id=demo",
            free_text=("id",),
            limits="ends with its upload, or after a minute without a byte",
        ),
        Route("/demo/upload", demo_upload, "upload a file with two progress bars", streams=False),
    ),
    demos=(("/demo/upload", "upload a file: the browser's progress and the server's"),),
)

if __name__ == "__main__":
    run_lesson(LESSON)
