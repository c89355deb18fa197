"""Lesson 11: uploads. Request bodies streamed to disk, resumed after a drop, with progress.

**The same problem, the other way.** A WSGI app reads its request body from
``environ["wsgi.input"]``. ``read()`` with no size, Flask's ``request.get_data()`` and
Django's ``request.body`` hold the whole body in memory before the first byte is stored:
``PUT /uploads-buffered/NAME`` does that, and a 64 MiB upload raises the server's peak
memory by 64 MiB (a test measures it; the notebook goes to 128 MiB, the bench to 1 GiB:
1,034.5 MiB). ``PUT /uploads/NAME`` reads 1 MiB at a time and writes each piece as it
comes (``streamlib.uploads.store_body``): 1 GiB moved the dev server's peak by 1.9 MiB and
gunicorn's by 7.7 MiB at most, and the dev server stored it at 0.94 of the speed of nginx
storing the same upload (994 MB/s; bench 11). ``?piece=`` sets the size: a piece is what
must arrive before the app sees any of it, and small pieces cost time (below).

**Where the body ends.** With ``Content-Length`` the app reads exactly that many bytes
(reading past it may wait forever). A ``Transfer-Encoding: chunked`` body has no length:
werkzeug's dev server and gunicorn (all three worker classes) undo the chunks and set
``environ["wsgi.input_terminated"]``, and then ``read()`` returns ``b""`` at the end. A
request with neither has no body (RFC 9112 section 6.3). A request that frames its body two
ways at once (``Transfer-Encoding`` and ``Content-Length``, two different lengths) is
refused before the app runs, and a malformed chunk (a size of ``0x3``) as soon as the app
reads it: a server that guessed would store a different body than the client sent. The
course's dev server checks 79 such cases from llhttp's and Go's published tests
(``lab.framing``); gunicorn, with the app's own check of transfer codings, agrees on all
but one (leading zeros in a chunk size).

**Refuse before the body comes.** Over ``--max-upload`` (1 GiB unless told), a
``Content-Length`` gets 413 before a byte is read, and a chunked body as soon as it passes
the cap. A client sending a large body can ask first: ``Expect: 100-continue`` (curl 8
does for a body over 1 MiB or of unknown size; Debian 12's curl 7.88 for every upload with
``-T``) and wait for ``100 Continue`` before sending. PEP 3333 lets the server say it
at once or at the app's first read; the course's dev server waits for the read
(``lab.devserver``), so a refused upload costs the client nothing. gunicorn says it
at once, and plain werkzeug twice: the client starts sending, then meets the 413.

**Never half a file.** The body goes to a hidden temporary file beside the target,
``fsync``-ed and renamed into place only when whole (a rename within one folder is
atomic, and the ``fsync`` makes the bytes under the new name survive a power cut): a
client that stops halfway leaves the old file as it was and nothing else. The answer
carries the SHA-256 of what was stored; a client that sends ``Content-Digest:
sha-256=:BASE64:`` (RFC 9530) has it checked before the rename (400 if the bytes differ).
A full disk is ``507 Insufficient Storage`` (RFC 4918 section 11.5), said before the body
when its length is known; a folder or a symbolic link where the file goes is a 409, and
nothing is written through a link. The tests fill a 1 MiB disk of their own (a tmpfs) on
every server and find no file half-written.

**Resume a dropped upload.** The course follows the IETF draft "Resumable Uploads for HTTP"
at version -05 (interop version 6: ``protocol: "ietf-draft-05"`` in tus-js-client, the
published client the tests drive, through a link cut with a reset and one that goes
silent). A request with ``Upload-Complete`` starts an upload: ``POST /uploads/NAME`` (or
``PUT``, or ``POST /uploads``, named by its ``Content-Disposition``), with the first bytes
or none; the answer's ``Location`` is the upload's own address, ``/resumable/ID``, and the
dev server says it in a ``104 Upload Resumption Supported`` before it reads the body, to a
client that sent the draft's interop version. ``HEAD`` there answers ``Upload-Offset``, the
bytes held, and ``Upload-Complete``; ``PATCH`` with ``Content-Type:
application/partial-upload``, ``Upload-Offset: N`` and a body appends it at N;
``Upload-Complete: ?1`` on the last piece stores the file, and its answer carries the final
offset. Every byte the app was handed is kept, even when the connection drops mid-body
(gunicorn hands a piece over only once it is whole: a stalled body loses what it held of
the last one, and ``HEAD`` says where to go on from). The
offset is what the disk holds, checked under a lock held for one write at a time
(``streamlib.resumable``), and the newest request wins: after ``HEAD`` or a new ``PATCH``,
an older append still waiting on a dead connection writes nothing more, so the client can
go on at once (draft section 5: "The offset MUST be accepted by a subsequent append").
Eight appends at one offset at once: one is taken, seven get a 409 with the offset to
resume from. A finished upload keeps answering ``Upload-Complete: ?1`` and refuses more
bytes (400). ``DELETE`` cancels; an upload nobody touches for ``--upload-expiry`` seconds
(a day) is gone (404), and its files go when the next upload is made, or first of all
when the disk is full. Draft -03 (interop version 5,
tus-js-client's ``ietf-draft-03``) works too: its appends carry no media type. Left out of
the draft: ``OPTIONS *``, and content codings carried across appends.

**When the body stops coming.** A client that sends ten bytes of a megabyte and then
nothing holds a worker until something gives up, and gunicorn's gthread and gevent workers
never do (27.0.1: no setting bounds a wait for the body). So the app gives each wait for the body
``--body-timeout`` seconds (10; ``streamlib.uploads.reads_give_up_after``): 408 (the
dev server's own reader ends such a body at the same wait: 400). Each
byte restarts the wait, so a client trickling a byte at a time still holds a worker:
nginx in front holds it instead (below).

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

**Who holds the body before the app.** gunicorn's sync, gthread and gevent workers all call
the app once the headers are in and hand it the body as it comes (a slow upload of six
pieces 0.15 s apart: first byte 4 ms after the client began). nginx in front reads the
whole body first, to a temporary file past ``client_body_buffer_size`` (8 KiB on x86-64)
(``proxy_request_buffering on``, its default): the app was called 0.91 s into an upload of
ten pieces 0.1 s apart. That shields workers from slow uploaders (lesson 07): sixteen
uploads trickling a byte every 0.4 s hold all eight threads of a gthread worker and the
index goes unanswered; through nginx the worker never sees them and answers (a test). It
also hides progress and early refusals from the app; ``proxy_request_buffering off`` passes
the body on as it comes (3 ms), with ``client_max_body_size`` (nginx's default is 1 MiB)
raised to the app's cap. The course's dev server gives a request 10 s, and a second more
for every 64 KiB that arrives (lesson 07's deadline, which a trickling client must not
dodge and a large upload must not hit).

**Where the time goes.** nginx storing an upload does two things: it receives the bytes and
writes them to a file (39% and 55% of its time in a profile of a 1 GiB upload, with
``perf``). The course's servers do both, and two things more. They hash every byte (SHA-256,
for the answer and for ``Content-Digest``: about half a second a GiB here, with the
processor's SHA instructions; nginx hashes nothing). And under gunicorn, its body reader
copies what it holds into a new buffer of about 1 MiB at every ``read``; glibc hands a
buffer that large back to the kernel when it is freed, and the next one is faulted in page
by page: read 64 KiB at a time, a gunicorn worker spent about half its time in page faults
(perf), faulting in several times the body's pages (nginx: 2 faults in all); with the
settings below, under a tenth of the body's pages (a test counts them, 64 MiB on a sync
worker). So ``store_body`` reads 1 MiB at a time, and the course starts gunicorn with
``MALLOC_MMAP_THRESHOLD_=4194304 MALLOC_TRIM_THRESHOLD_=33554432`` (``mallopt(3)``: freed
buffers stay in the heap, up to 32 MiB of them, and are reused; the command it prints shows
them). A 1 GiB upload, against nginx at its defaults (bench 11): the dev server 0.94,
gunicorn sync 0.90 (0.72 read 64 KiB at a time), gthread 0.80, gevent 0.68, the fan-out
worker 0.94.

**nginx stores it, the app renames it.** The setup for production takes the body off the
workers altogether: nginx in front stores each ``PUT`` itself, at its own speed and in its
own event loop, and passes the app the file's path instead of the body
(``lab.nginx.nginx_stores_uploads``: ``client_body_in_file_only clean``,
``proxy_pass_request_body off``, the path in ``X-Upload-File``). The app checks a secret
that only it and its nginx know (a client that reached the app directly could otherwise name
any file: 403) and that the file lies in nginx's folder (400), then ``fsync``-s it and
renames it into place (``streamlib.uploads.take_proxy_stored``): the worker is busy for a
rename. Its answer has no SHA-256 unless the client sent ``Content-Digest`` to check: the
app never read the body. nginx's folder must be on the file system of the uploads (a rename
cannot cross them), and nginx removes a body the app did not take. With a 1 MiB body buffer
(nginx writes the file in pieces of it; 8 KiB by default) a 1 GiB upload stored at 1,881
MB/s, 1.96 of nginx at its defaults and as fast as nginx alone with the same buffer (1,843),
and the memory of nginx and the worker together rose by 1.0 MiB (bench 11). ``python -m
lessons --https --nginx-stores-uploads`` runs it.

Uploads go to ``uploads/`` in the folder ``/files/`` serves (so ``/files/uploads/NAME``
sends one back, with lesson 02's ranges), or to ``--uploads DIR``.

Try it (``python -m lessons``)::

    curl -T README.md http://127.0.0.1:8000/uploads/README.md   # 201 (200 if replaced): sha256
    curl -i -X PUT -H 'Content-Length: 2000000000' -H 'Expect: 100-continue' \\
         http://127.0.0.1:8000/uploads/big.bin                   # 413 at once, no 100
    curl -i -X POST -H 'Upload-Complete: ?0' http://127.0.0.1:8000/uploads/hi.txt  # Location
    curl -i -X PATCH -H 'Content-Type: application/partial-upload' -H 'Upload-Offset: 0' \\
         -H 'Upload-Complete: ?0' -d 'hello ' http://127.0.0.1:8000/resumable/ID  # offset 6
    curl -I http://127.0.0.1:8000/resumable/ID                  # Upload-Offset: 6
    curl -X PATCH -H 'Content-Type: application/partial-upload' -H 'Upload-Offset: 6' \\
         -H 'Upload-Complete: ?1' -d 'world' http://127.0.0.1:8000/resumable/ID  # stored
    curl -F file=@README.md http://127.0.0.1:8000/uploads       # a form: 201, stored
    curl -X DELETE http://127.0.0.1:8000/uploads/hi.txt         # gone: 204

(ID: the end of the ``Location`` the third command printed.)

Then open http://127.0.0.1:8000/demo/upload and send a large file.

Notebook: ``notebooks/11_uploads.ipynb``. Exercise: ``exercises/11_uploads.py``.
"""

import contextlib
import hashlib
import json
import re
import secrets
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

from werkzeug.datastructures import EnvironHeaders
from werkzeug.exceptions import (
    BadRequest,
    NotFound,
    RequestEntityTooLarge,
    UnsupportedMediaType,
)
from werkzeug.formparser import parse_form_data
from werkzeug.http import parse_options_header
from werkzeug.utils import secure_filename
from werkzeug.wrappers import Request

from lessons.cli import run_lesson
from lessons.folders import upload_folder
from lessons.routes import Lesson, Route, send_text
from streamlib import float_param, int_param
from streamlib.resumable import (
    INTEROP_VERSION,
    INTEROP_VERSIONS,
    MAX_AGE,
    PARTIAL_UPLOAD,
    Held,
    UploadProblem,
    agreed_length,
    append_upload,
    cancel_upload,
    create_upload,
    reclaim_expired,
    upload_offset,
    upload_record,
)
from streamlib.sse import SSE_HEADERS, event_stream, format_event
from streamlib.uploads import (
    PROXY_FILE,
    STALL_SECONDS,
    STORE_PIECE,
    CountingInput,
    InsufficientStorage,
    acceptable_length,
    body_pieces,
    declared_length,
    file_sha256,
    read_piece,
    reads_give_up_after,
    refuse_non_file,
    replace_durably,
    require_room,
    storage_errors,
    store_body,
    take_proxy_stored,
    temporary_beside,
)

MAX_UPLOAD = 1024**3  # bytes; --max-upload changes it
# The most a form's text fields (and werkzeug's parser buffer) may hold; files go to disk.
FORM_FIELDS_MEMORY = 1024 * 1024
UPLOAD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
UPLOAD_ID = re.compile(r"[0-9a-f]{32}")  # streamlib.resumable's: 128 random bits in hex


def max_upload(environ: dict) -> int:
    """The largest upload accepted, in bytes (``--max-upload``)."""
    return int(environ.get("course.max_upload", MAX_UPLOAD))


def body_timeout(environ: dict) -> float:
    """Seconds a request body may send nothing before it is given up (``--body-timeout``)."""
    return float(environ.get("course.body_timeout", STALL_SECONDS))


def upload_expiry(environ: dict) -> int:
    """Seconds an unfinished upload is kept untouched (``--upload-expiry``)."""
    return int(environ.get("course.upload_expiry", MAX_AGE))


def plain_name(name: str) -> str:
    """``name`` if it is one plain file name, else a 400.

    Letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit, at most 128
    characters. Nothing to decode, no folders, no hidden files: a name the server writes
    to is held to a stricter rule than one it only reads.
    """
    if not UPLOAD_NAME.fullmatch(name):
        raise BadRequest(
            "name: letters, digits, '.', '_' and '-', starting with a letter or digit, at"
            f" most 128 characters; got {name[:40]!r}"
        )
    return name


def incoming_folder(environ: dict) -> Path:
    """Where nginx stores request bodies for the app to take (``--nginx-stores-uploads``):
    a hidden folder inside the upload folder, so that a rename moves a body into place."""
    return upload_folder(environ) / ".incoming"


def upload_path(environ: dict) -> Path:
    """The file that ``/uploads/<name>`` names, inside the upload folder, or a 400."""
    return upload_folder(environ) / plain_name(environ["wsgiorg.routing_args"][1]["name"])


def send_json(
    start_response: Callable, status: str, fields: dict, headers: Iterable = ()
) -> list[bytes]:
    """Answer ``status`` with ``fields`` as JSON, and ``headers`` besides."""
    body = json.dumps(fields).encode()
    start_response(
        status,
        [*headers, ("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


@contextlib.contextmanager
def making_room(environ: dict, size: int) -> Iterator[None]:
    """Before a new upload of ``size`` bytes: make sure the disk has room for it, reclaiming
    expired uploads if it has not (507 if it still has not). If the disk fills up anyway
    (a chunked body, other uploads), reclaim them before the 507 goes out, so that the
    client's next try finds the room."""
    folder, expiry = upload_folder(environ), upload_expiry(environ)
    try:
        require_room(folder, size)
    except InsufficientStorage:
        reclaim_expired(folder, expiry)
        require_room(folder, size)
    try:
        yield
    except InsufficientStorage:
        reclaim_expired(folder, expiry)
        raise


# -- PUT: one request, the whole file ---------------------------------------------------------


def put_upload(environ: dict, start_response: Callable) -> list[bytes]:
    """``PUT /uploads/<name>?piece=65536``: store the body as ``name``, whole or not at all,
    read ``piece`` bytes at a time (4 KiB to 8 MiB; see ``streamlib.uploads`` on the size).

    Answers 201 (created) or 200 (replaced) with the size, the SHA-256 and the server's
    timeline: when the app was called and when its first and last byte of body arrived
    (Unix seconds), which is how the lesson sees who buffered the body before the app.
    With ``Upload-Complete``, the same PUT is the start of a resumable upload instead.
    """
    if "HTTP_UPLOAD_COMPLETE" in environ:
        return create_resumable(environ, start_response)
    path = upload_path(environ)
    if environ.get(PROXY_FILE):  # nginx stored the body (--nginx-stores-uploads)
        existed, secret = path.exists(), environ.get("course.proxy_secret", "")
        stored = take_proxy_stored(environ, path, incoming_folder(environ), secret)
        fields = {"name": path.name, "size": stored.size, "sha256": stored.sha256}
        return send_json(start_response, "200 OK" if existed else "201 Created", fields)
    piece = int_param(Request(environ).args, "piece", STORE_PIECE, 4096, 8 * 1024 * 1024)
    timeline = {"called_at": time.time()}

    def note_arrival(count: int) -> None:
        if count:
            timeline.setdefault("first_byte_at", time.time())
            timeline["last_byte_at"] = time.time()

    environ["wsgi.input"] = CountingInput(environ["wsgi.input"], note_arrival)
    existed = path.exists()
    length = acceptable_length(environ, max_upload(environ))  # 413 before 507: the cap first
    with making_room(environ, length or 0):
        stored = store_body(environ, path, max_upload(environ), piece, body_timeout(environ))
    status = "200 OK" if existed else "201 Created"
    fields = {"name": path.name, "size": stored.size, "sha256": stored.sha256, **timeline}
    return send_json(start_response, status, fields)


def put_upload_buffered(environ: dict, start_response: Callable) -> list[bytes]:
    """``PUT /uploads-buffered/<name>``: the same, the way that costs the body's size.

    ``read()`` with no size (as ``request.get_data()`` or ``request.body`` do) holds the
    whole body in memory before a byte is written: a 1 GiB upload costs 1 GiB, per upload
    at once. For the lesson's comparison only; bounded by ``--max-upload`` like the rest,
    and stored as safely: under a temporary name, renamed once whole.
    """
    path = upload_path(environ)
    length = declared_length(environ)
    if length is None or length > max_upload(environ):
        raise RequestEntityTooLarge("this route takes a Content-Length up to --max-upload")
    refuse_non_file(path)
    with making_room(environ, length), storage_errors(path):
        with reads_give_up_after(environ, body_timeout(environ)):
            body = read_piece(environ["wsgi.input"].read, length)
        if len(body) < length:
            raise BadRequest(f"the body stopped after {len(body)} of {length} bytes")
        with temporary_beside(path) as (file, temporary):
            file.write(body)
            replace_durably(file, temporary, path)
    fields = {"name": path.name, "size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    return send_json(start_response, "201 Created", fields)


def delete_upload(environ: dict, start_response: Callable) -> list[bytes]:
    """``DELETE /uploads/<name>``: remove the stored file (an unfinished resumable upload
    is cancelled at its own address, ``DELETE /resumable/<id>``)."""
    path = upload_path(environ)
    refuse_non_file(path)  # a folder or a link is not an upload: 409, nothing removed
    try:
        path.unlink()
    except FileNotFoundError:
        raise NotFound(f"no upload called {path.name}") from None
    start_response("204 No Content", [])
    return []


def upload_options(environ: dict, start_response: Callable) -> list[bytes]:
    """``OPTIONS /uploads`` and ``/uploads/<name>``: the methods, and the limits a
    resumable upload made here has (the draft: ``Upload-Limit``, a MUST)."""
    limit = f"max-size={max_upload(environ)}, expires={upload_expiry(environ)}"
    methods = "POST, OPTIONS" if environ["PATH_INFO"] == "/uploads" else "PUT, POST, DELETE"
    start_response("204 No Content", [("Allow", methods), ("Upload-Limit", limit)])
    return []


def uploads(environ: dict, start_response: Callable) -> list[bytes]:
    """``/uploads/<name>``: PUT stores a whole body (or starts a resumable upload), POST
    starts a resumable upload, DELETE removes the file, OPTIONS gives the limits."""
    answer = {
        "PUT": put_upload,
        "POST": create_named_resumable,
        "DELETE": delete_upload,
        "OPTIONS": upload_options,
    }
    return answer[environ["REQUEST_METHOD"]](environ, start_response)


# -- Resumable: create, ask, append, cancel -----------------------------------------------------


def resumable(app: Callable) -> Callable:
    """A route of the resumable-upload draft: its refusals that carry an offset go out
    as the draft's problem details (``UploadProblem`` is a WSGI app itself)."""

    def answer(environ: dict, start_response: Callable) -> list[bytes]:
        try:
            return app(environ, start_response)
        except UploadProblem as problem:
            return problem(environ, start_response)

    answer.__doc__ = app.__doc__
    return answer


def structured_boolean(environ: dict, header: str) -> bool:
    """A header holding an RFC 9651 boolean, ``?1`` or ``?0``; anything else is a 400."""
    value = EnvironHeaders(environ).get(header, "").strip()
    if value not in ("?0", "?1"):
        raise BadRequest(f"{header}: expected ?1 (true) or ?0 (false)")
    return value == "?1"


def header_integer(environ: dict, header: str) -> int | None:
    """A header holding a byte count (an RFC 9651 integer: up to 15 digits), or None."""
    value = EnvironHeaders(environ).get(header)
    if value is None:
        return None
    value = value.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 15:
        raise BadRequest(f"{header}: expected a number of bytes, got {value[:20]!r}")
    return int(value)


def refuse_headers(environ: dict, *headers: str) -> None:
    """A 400 if the request carries any of ``headers`` (the draft forbids them here)."""
    present = EnvironHeaders(environ)
    for header in headers:
        if header in present:
            raise BadRequest(f"{header} does not belong in a {environ['REQUEST_METHOD']}")


def create_named_resumable(environ: dict, start_response: Callable) -> list[bytes]:
    """``POST /uploads/<name>`` with ``Upload-Complete``: start a resumable upload of
    ``name`` (tus-js-client posts to its ``endpoint``)."""
    if "HTTP_UPLOAD_COMPLETE" not in environ:
        raise BadRequest("POST here starts a resumable upload: send Upload-Complete ?0 or ?1")
    return create_resumable(environ, start_response)


def name_for_new_upload(environ: dict) -> str:
    """The name of a resumable upload started at ``/uploads``: the ``filename`` of its
    ``Content-Disposition`` (the draft's way to send one), or a new made-up one."""
    _, options = parse_options_header(environ.get("HTTP_CONTENT_DISPOSITION", ""))
    if "filename" in options:
        return plain_name(secure_filename(options["filename"]))
    return f"upload-{secrets.token_hex(4)}.bin"


@resumable
def create_resumable(environ: dict, start_response: Callable) -> list[bytes]:
    """Start a resumable upload (the draft's "upload creation"): answer its address as
    ``Location``, in a ``104`` before reading the body where the server can, and store
    the body as its first bytes. ``Upload-Complete: ?1`` says the body is all of it."""
    folder = upload_folder(environ)
    routed = environ["wsgiorg.routing_args"][1]
    name = plain_name(routed["name"]) if "name" in routed else name_for_new_upload(environ)
    refuse_headers(environ, "Upload-Offset")
    complete = structured_boolean(environ, "Upload-Complete")
    length = header_integer(environ, "Upload-Length")
    if length is not None and length > max_upload(environ):
        raise RequestEntityTooLarge(f"Upload-Length: at most {max_upload(environ)} bytes here")
    content_length = acceptable_length(environ, max_upload(environ))
    if complete and content_length is not None:
        length = agreed_length(length, content_length)
    refuse_non_file(folder / name)
    reclaim_expired(folder, upload_expiry(environ))  # each new upload sweeps the old ones
    with making_room(environ, length or content_length or 0):
        upload_id = create_upload(folder, name, length)
        location = f"/resumable/{upload_id}"
        if draft_version(environ) and content_length != 0:  # a body to come: chunked too
            say_where(environ, location)
        held = append_upload(
            folder,
            upload_id,
            0,
            complete,
            body_pieces(environ, max_upload(environ), stall=body_timeout(environ)),
            content_length,
            upload_expiry(environ),
        )
    return answer_held(environ, start_response, upload_id, held, location)


def draft_version(environ: dict) -> str | None:
    """The draft's interop version the client says it speaks, if the course speaks it too."""
    version = environ.get("HTTP_UPLOAD_DRAFT_INTEROP_VERSION", "").strip()
    return version if version in INTEROP_VERSIONS else None


def say_where(environ: dict, location: str) -> None:
    """Send ``104 Upload Resumption Supported`` with the upload's address, if the server
    offers a way (the course's dev server does: ``lab.devserver``). Only to a client
    that sent the draft's interop version: others may take any 1xx but ``100 Continue`` for
    the final answer (CPython 3.11's ``http.client``, under requests, does), and draft -05
    (section 4.2) forbids it otherwise."""
    informational = environ.get("streamlib.informational")
    if informational is not None:
        limit = f"max-size={max_upload(environ)}, expires={upload_expiry(environ)}"
        headers = [("Upload-Draft-Interop-Version", draft_version(environ)), ("Location", location)]
        informational("104 Upload Resumption Supported", [*headers, ("Upload-Limit", limit)])


def answer_held(
    environ: dict, start_response: Callable, upload_id: str, held: Held, location: str = ""
) -> list[bytes]:
    """201 with where the upload stands (and the stored file's name, size and SHA-256 once
    it is complete). The draft asks 201 for every successful creation and append."""
    headers = [*held.headers(max_upload(environ)), ("Cache-Control", "no-store")]
    if location:
        headers.append(("Location", location))
    fields = {"offset": held.offset, "complete": held.complete}
    if held.complete:
        record = upload_record(upload_folder(environ), upload_id)
        fields = {"name": record.name, "size": record.size, "sha256": record.sha256}
    return send_json(start_response, "201 Created", fields, headers)


def upload_id_of(environ: dict) -> str:
    """The ``<id>`` of ``/resumable/<id>``, or a 404 for one that cannot be an upload."""
    upload_id = environ["wsgiorg.routing_args"][1]["upload_id"]
    if not UPLOAD_ID.fullmatch(upload_id):
        raise NotFound("no such upload")
    return upload_id


def resumable_offset(environ: dict, start_response: Callable) -> list[bytes]:
    """``HEAD /resumable/<id>``: ``Upload-Offset``, the bytes the server holds, and
    ``Upload-Complete``. A request still appending writes nothing more after this: the
    offset answered is the one to go on from."""
    refuse_headers(environ, "Upload-Offset", "Upload-Complete", "Upload-Length")
    held = upload_offset(upload_folder(environ), upload_id_of(environ), upload_expiry(environ))
    start_response(
        "204 No Content", [*held.headers(max_upload(environ)), ("Cache-Control", "no-store")]
    )
    return []


def append_resumable(environ: dict, start_response: Callable) -> list[bytes]:
    """``PATCH /resumable/<id>``: append the body at ``Upload-Offset``; ``Upload-Complete:
    ?1`` on the last piece stores the file. An offset other than the one held is a 409
    that says the right one; so is being overtaken by a newer request for the upload."""
    upload_id = upload_id_of(environ)
    mimetype, _ = parse_options_header(environ.get("CONTENT_TYPE", ""))
    untyped_draft_03 = draft_version(environ) == "5" and not mimetype  # -03 has no type yet
    if mimetype != PARTIAL_UPLOAD and not untyped_draft_03:
        raise UnsupportedMediaType(f"Content-Type: send {PARTIAL_UPLOAD} to append to an upload")
    offset = header_integer(environ, "Upload-Offset")
    if offset is None:
        raise BadRequest("Upload-Offset: the byte of the upload this body starts at")
    complete = structured_boolean(environ, "Upload-Complete")
    if offset > max_upload(environ):  # never an offset held here: the 409 says which is
        nothing: list[bytes] = []
        append_upload(upload_folder(environ), upload_id, offset, complete, nothing)
    room = max(0, max_upload(environ) - offset)
    content_length = acceptable_length(environ, room)  # a 400, 411 or 413 opens nothing
    with making_room(environ, content_length or 0):
        held = append_upload(
            upload_folder(environ),
            upload_id,
            offset,
            complete,
            body_pieces(environ, room, stall=body_timeout(environ)),
            content_length,
            upload_expiry(environ),
        )
    return answer_held(environ, start_response, upload_id, held)


def cancel_resumable(environ: dict, start_response: Callable) -> list[bytes]:
    """``DELETE /resumable/<id>``: cancel the upload and drop the bytes it holds."""
    refuse_headers(environ, "Upload-Offset", "Upload-Complete")
    cancel_upload(upload_folder(environ), upload_id_of(environ))
    start_response("204 No Content", [])
    return []


@resumable
def resumable_upload(environ: dict, start_response: Callable) -> list[bytes]:
    """``/resumable/<id>``: HEAD asks, PATCH appends, DELETE cancels."""
    answer = {"HEAD": resumable_offset, "PATCH": append_resumable, "DELETE": cancel_resumable}
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
    to the file's name once the whole body is parsed and every name checked, so a form
    with one bad name stores nothing. Meanwhile ``/upload-progress?id=ID`` streams how many
    bytes have arrived. With ``Upload-Complete``, a POST here starts a resumable upload.
    """
    if "HTTP_UPLOAD_COMPLETE" in environ:
        return create_resumable(environ, start_response)
    folder = upload_folder(environ)
    progress = progress_for(upload_id(environ) or "")
    progress.total = acceptable_length(environ, max_upload(environ))  # 413 before 507

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
        with (
            making_room(environ, progress.total or 0),
            storage_errors(folder / "form"),
            reads_give_up_after(environ, body_timeout(environ)),
        ):
            _, _, files = parse_form_data(
                environ,
                stream_factory=stream_factory,
                max_content_length=max_upload(environ),
                max_form_memory_size=FORM_FIELDS_MEMORY,
                max_form_parts=100,
            )
            fields = files.getlist("file")
            if not fields:
                raise BadRequest("send multipart/form-data with one or more files named 'file'")
            named = [(folder / form_file_name(field), field) for field in fields]  # all first
            for target, _ in named:
                refuse_non_file(target)
            stored = [store_form_file(target, field) for target, field in named]
    finally:
        progress.done = True
        for path in made:
            path.unlink(missing_ok=True)  # what was not renamed into place
    return send_json(start_response, "201 Created", {"files": stored})


def post_to_uploads(environ: dict, start_response: Callable) -> list[bytes]:
    """``/uploads``: POST stores a form's files (or starts a resumable upload); OPTIONS
    gives the limits."""
    if environ["REQUEST_METHOD"] == "OPTIONS":
        return upload_options(environ, start_response)
    return post_form(environ, start_response)


def form_file_name(field: object) -> str:
    """The plain name a form's file field is stored under, or a 400."""
    name = secure_filename(field.filename or "")
    if not UPLOAD_NAME.fullmatch(name):
        raise BadRequest(f"file name {field.filename!r}: needs a plain name such as photo.jpg")
    return name


def store_form_file(path: Path, field: object) -> dict:
    """Rename one parsed file field into place as ``path``; return its name, size, SHA-256."""
    replace_durably(field.stream, Path(field.stream.name), path)
    field.stream.close()
    return {"name": path.name, "size": path.stat().st_size, "sha256": file_sha256(path)}


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
    ``gap`` seconds apart, as a chunked body, like a client on a slow link; the app reads
    pieces of the same size (``?piece=``), so that it sees each one as it comes.

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
    answer = requests.put(url, params={"piece": piece}, data=body(), timeout=60)
    answer.raise_for_status()
    stored = answer.json()
    for moment in ("called", "first_byte", "last_byte"):
        stored[f"{moment}_after"] = stored.pop(f"{moment}_at") - began
    return stored


def resume_upload(url: str, path: Path, upload_url: str = "", attempts: int = 20) -> dict:
    """Upload the file at ``path`` as ``url`` (``/uploads/<name>``) so that a dropped
    connection costs only what was in flight: start a resumable upload (an empty ``POST``
    with ``Upload-Complete: ?0``; or go on with the one at ``upload_url``), then ask
    ``HEAD`` how much is stored and ``PATCH`` the rest from there, again after any
    failure, up to ``attempts`` times.

    Returns the server's answer to the last piece: name, size and SHA-256.
    """
    import requests

    size = path.stat().st_size
    if not upload_url:
        started = requests.post(
            url,
            headers={
                "Upload-Complete": "?0",
                "Upload-Length": str(size),
                "Upload-Draft-Interop-Version": INTEROP_VERSION,
            },
            timeout=10,
        )
        started.raise_for_status()
        upload_url = urljoin(url, started.headers["Location"])
    for _ in range(attempts):
        try:
            asked = requests.head(upload_url, timeout=10)
            asked.raise_for_status()
            held = int(asked.headers["Upload-Offset"])
            if asked.headers["Upload-Complete"] == "?1":  # stored; its answer was lost
                return {"name": Path(url).name, "size": held, "sha256": file_sha256(path)}
            with path.open("rb") as file:
                file.seek(held)
                answer = requests.patch(
                    upload_url,
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
            if answer.status_code != 409:  # 409: overtaken, or an offset gone by: ask again
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
        " never left half-stored, even on a full disk; a dropped upload resumed with HEAD"
        " and PATCH, as the IETF draft and tus-js-client do it; a browser"
        " form parsed as a stream, with the server's own progress as an event stream."
    ),
    routes=(
        Route(
            "/uploads/<name>",
            uploads,
            "PUT stores the body as name; with Upload-Complete, PUT or POST starts a"
            " resumable upload; DELETE removes",
            "/uploads/README.md",
            methods=("PUT", "POST", "DELETE", "OPTIONS"),
            streams=False,
            limits=LIMIT,
        ),
        Route(
            "/resumable/<upload_id>",
            resumable_upload,
            "a resumable upload: HEAD says how much is stored, PATCH appends, DELETE cancels",
            methods=("HEAD", "PATCH", "DELETE"),
            streams=False,
            limits=LIMIT + "; kept --upload-expiry seconds untouched",
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
            post_to_uploads,
            "store the files of a multipart/form-data POST (?id= for progress); with"
            " Upload-Complete, start a resumable upload",
            methods=("POST", "OPTIONS"),
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
