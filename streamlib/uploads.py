"""Request bodies streamed to disk: constant memory, a size cap, and no partial file.

Every lesson before 11 streams responses; an upload is the same problem the other way. A
WSGI app reads its request body from ``environ["wsgi.input"]``, a file-like object, and
``read()`` with no size would pull the whole body into memory. :func:`body_pieces` reads it
in pieces of a fixed size instead, and :func:`store_body` writes each piece as it comes to
a temporary file beside the target, renamed into place only once the whole body is in:
a client that stops halfway leaves no file that looks complete.

How big a piece. ``read(n)`` waits until n bytes have come (or the body ends), so the piece
size is how much must arrive before the app sees any of it, and what a dropped connection
can lose of what had arrived. Small pieces cost time: every ``read`` is a call through the
server's body reader, and gunicorn's copies what it holds at every call into fresh memory
(half of a worker's time went to page faults and memcpy, in a profile of a 1 GiB upload
read 64 KiB at a time). :func:`store_body` reads 1 MiB at a time (``STORE_PIECE``): a
whole-body upload is all or nothing anyway, and it ran two to three times as fast as with
64 KiB on every server (bench 11). :func:`body_pieces` keeps 64 KiB (``PIECE``) for what
keeps every piece it is handed, such as a resumable upload's appends. ``piece=`` chooses.

Where the body ends. With ``Content-Length`` the app must read exactly that many bytes and
no more (PEP 3333: the app should not read past it; a server that does not fake an end of
file there, such as werkzeug's dev server, then waits for bytes that never come). A
``Transfer-Encoding: chunked`` body has no length; a server that undoes the chunks says so
with ``environ["wsgi.input_terminated"] = True`` (werkzeug's dev server and gunicorn both
do), and then ``read()`` returns ``b""`` at the body's end. A request with neither header
has no body at all (RFC 9112 section 6.3). A chunked body the server left chunked
(``wsgiref`` does) cannot be read: 411 Length Required.

When the body stops coming. A client that sends ten bytes of a megabyte and then nothing,
with its connection open, holds a worker until something gives up; gunicorn's gthread and
gevent workers never do (27.0.1: their body readers call ``recv`` on a blocking socket;
gthread's five-second wait covers only the first bytes of a request; a sync worker is
killed after ``--timeout``, and its stream with it). So while it reads,
:func:`body_pieces` gives each wait for the server's socket ``stall`` seconds
(``settimeout`` on ``environ["gunicorn.socket"]``), like nginx's ``client_body_timeout``
(60 s by default), and a body that stalls longer is a ``408 Request Timeout``. The
course's dev server has a deadline of its own (``lab.devserver``). Neither stops a
client that trickles a byte every few seconds: each byte restarts the wait. nginx in
front does, reading the whole body before a worker sees it (lesson 07).

What arrived is what was sent. A client may send the body's SHA-256 in ``Content-Digest``
(RFC 9530: ``Content-Digest: sha-256=:BASE64:``); :func:`store_body` compares it with what
came before the file takes its place, and a body that differs is refused (400).

Stored by nginx, moved by the app. In production the fastest way to take an upload is not
to read it in Python at all: nginx in front stores the body itself, at its own speed and
in its own event loop (``client_body_in_file_only``), and passes the app the file's path
in a header instead of the body. The app checks that the header came from its nginx (a
secret only the two know: a client that reaches the app directly could otherwise name any
file) and that the path lies in nginx's folder, then renames the file into place
(:func:`take_proxy_stored`): constant memory, and the worker busy for a rename, not for the
transfer. nginx removes the file afterwards if the app did not take it
(``client_body_in_file_only clean``). Lesson 11 shows the configuration
(``lab.nginx.nginx_stores_uploads``).

When the disk says no. A full disk (``ENOSPC``, or a quota: ``EDQUOT``) is not the app's
bug, so not a 500: it is ``507 Insufficient Storage`` (RFC 4918 section 11.5), decided
before a byte is read when the body's length is declared (:func:`require_room`), and
otherwise when a write fails, the temporary file removed. A name that is a folder or a
symbolic link is not a file to replace: 409 Conflict, never a write through the link
(:func:`refuse_non_file`). Everything stored is ``fsync``-ed before its rename, and the
folder after it: the rename makes the name atomic, the ``fsync`` makes the bytes under it
survive a power cut (without it, a crash can leave an empty file under the final name).
"""

import base64
import binascii
import contextlib
import errno
import hashlib
import hmac
import os
import re
import socket
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from werkzeug import exceptions
from werkzeug.exceptions import (
    BadRequest,
    Conflict,
    Forbidden,
    HTTPException,
    LengthRequired,
    RequestEntityTooLarge,
    RequestTimeout,
)
from werkzeug.http import parse_list_header

PIECE = 64 * 1024  # bytes read at a time where each piece is kept as it comes (resumable)
STORE_PIECE = 1024 * 1024  # bytes read at a time for a whole body: the upload's footprint
STALL_SECONDS = 10.0  # a body that sends nothing for this long is given up (408)
SHA256_MEMBER = re.compile(r"(?:^|,)\s*sha-256\s*=\s*:([A-Za-z0-9+/=]*):\s*(?:;[^,]*)?(?=,|$)")


class InsufficientStorage(HTTPException):
    """*507 Insufficient Storage*: the server has no room for what the request would store
    (RFC 4918 section 11.5). werkzeug has no class for it."""

    code = 507
    description = "there is no room left to store this upload"


@dataclass(frozen=True)
class Stored:
    """A body stored whole: where, how many bytes, and their SHA-256 (hex)."""

    path: Path
    size: int
    sha256: str | None  # None: stored by nginx and not read by the app (take_proxy_stored)


def declared_length(environ: dict) -> int | None:
    """The body's ``Content-Length``, or None if it has none (a chunked body).

    Raises ``BadRequest`` (400) for a length that is not a plain decimal number.
    """
    text = environ.get("CONTENT_LENGTH", "")
    if text == "":
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise BadRequest(f"Content-Length: expected a number of bytes, got {text[:40]!r}")
    return int(text)


def read_piece(read: Callable[[int], bytes], size: int = -1) -> bytes:
    """``read(size)`` (the body's ``read`` or ``readline``), with a body the server cannot
    read turned into a 400, and one that stopped coming (see :func:`reads_give_up_after`)
    into a 408.

    A malformed chunked body (a chunk size that is not hex, data not followed by CRLF)
    fails inside the *server's* reader, when the app reads: werkzeug raises ``OSError``
    (the course's dev server ``lab.framing.MalformedBody``), gunicorn a ``ParseException``
    of its own (or ``NoMoreData``, an ``OSError``, for a body cut short). Neither is the
    app's bug, so neither may become a 500; the types differ by server, hence the broad
    ``except``.
    """
    try:
        return read(size)
    except HTTPException:  # a reader that is itself read_piece's work (CountingInput)
        raise
    except TimeoutError:
        raise RequestTimeout("the body stopped coming; send it again, or resume it") from None
    except Exception as error:
        raise BadRequest(
            f"the body could not be read: {type(error).__name__}: {error}"[:200]
        ) from error


def acceptable_length(environ: dict, max_bytes: int) -> int | None:
    """The body's ``Content-Length`` (None for a chunked body, 0 for a request with neither
    header), once the headers alone show the body can be accepted: what an app checks
    before it opens anything.

    Raises ``LengthRequired`` (411) when the server cannot say where the body ends,
    ``RequestEntityTooLarge`` (413) for a length over ``max_bytes``, ``BadRequest``
    (400) for a length that is not a number, and ``NotImplemented`` (501) for a body in
    a transfer coding besides ``chunked`` (``gzip, chunked``), which gunicorn hands over
    still encoded: stored as it is, it would not be the file the client sent.
    """
    header = environ.get("HTTP_TRANSFER_ENCODING", "")
    codings = [coding.lower() for coding in parse_list_header(header)]
    if codings not in ([], ["chunked"]):
        # werkzeug's 501 Not Implemented, not Python's NotImplemented constant
        raise exceptions.NotImplemented("Transfer-Encoding: only chunked is understood here")
    length = declared_length(environ)
    if length is None and not environ.get("wsgi.input_terminated"):
        if "HTTP_TRANSFER_ENCODING" not in environ:
            return 0  # RFC 9112 section 6.3: a request with neither header has no body
        raise LengthRequired("send Content-Length, or a chunked body to a server that reads it")
    if length is not None and length > max_bytes:
        raise RequestEntityTooLarge(f"the body is {length} bytes; at most {max_bytes} here")
    return length


def body_pieces(
    environ: dict, max_bytes: int, piece: int = PIECE, stall: float = STALL_SECONDS
) -> Iterator[bytes]:
    """The request body, in pieces of at most ``piece`` bytes, as they come.

    max_bytes: the largest body accepted. A ``Content-Length`` above it is refused before a
        byte is read; a chunked body is refused as soon as more than that has come.
    stall: seconds each wait for more of the body may last (:func:`reads_give_up_after`).

    Raises ``RequestEntityTooLarge`` (413), ``LengthRequired`` (411) when the server cannot
    say where the body ends, ``BadRequest`` (400) when the client stops before it, or
    ``RequestTimeout`` (408) when it stalls.
    """
    body = environ["wsgi.input"]
    length = acceptable_length(environ, max_bytes)
    received = 0
    with reads_give_up_after(environ, stall):
        while length is None or received < length:
            wanted = piece if length is None else min(piece, length - received)
            data = read_piece(body.read, wanted)
            if not data:
                if length is None:
                    return  # a chunked body's end, marked by the server
                raise BadRequest(f"the body stopped after {received} of {length} bytes")
            received += len(data)
            if received > max_bytes:
                raise RequestEntityTooLarge(f"the body went past {max_bytes} bytes")
            yield data


@contextlib.contextmanager
def reads_give_up_after(environ: dict, seconds: float) -> Iterator[None]:
    """While the block runs, each wait of gunicorn's body reader for the client's bytes
    lasts at most ``seconds``, then raises ``TimeoutError`` (which :func:`read_piece` makes
    a 408); the socket's own timeout is put back afterwards.

    It sets the timeout of the client's socket, which gunicorn puts in the environ
    (``gunicorn.socket``; under gevent a cooperative socket with the same method). Where
    there is none it does nothing: the course's dev server keeps a deadline of its own.
    """
    sock = environ.get("gunicorn.socket")
    if not isinstance(sock, socket.socket):
        yield
        return
    previous = sock.gettimeout()
    sock.settimeout(seconds)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):  # closed meanwhile: nothing to put back
            sock.settimeout(previous)


def sent_sha256(environ: dict) -> str | None:
    """The SHA-256 (hex) the client says its body has, from ``Content-Digest``, or None.

    Raises ``BadRequest`` when the header has a ``sha-256`` member that is not 32 bytes
    of base64. Other algorithms (``sha-512``) are left unchecked, as RFC 9530 allows.

    >>> sent_sha256({"HTTP_CONTENT_DIGEST": "sha-256=:" + "A" * 43 + "=:"})[:8]
    '00000000'
    """
    found = SHA256_MEMBER.search(environ.get("HTTP_CONTENT_DIGEST", ""))
    if found is None:
        return None
    try:
        raw = base64.b64decode(found.group(1), validate=True)
    except binascii.Error:
        raw = b""
    if len(raw) != 32:
        raise BadRequest("Content-Digest: sha-256 must be 32 bytes in base64, as :...:")
    return raw.hex()


def store_body(
    environ: dict,
    path: Path,
    max_bytes: int,
    piece: int = STORE_PIECE,
    stall: float = STALL_SECONDS,
) -> Stored:
    """Stream the request body to ``path`` in pieces, and return what was stored.

    The bytes go to a temporary file in the same folder, renamed to ``path`` only when the
    whole body is in and matches the ``Content-Digest`` the client sent, if any (a rename
    within one folder is atomic): on any error the temporary file is removed and ``path``
    is as it was. Raises as :func:`body_pieces` does, ``BadRequest`` for a body that is not
    the one the client's digest describes, ``InsufficientStorage`` (507) when the disk is
    full, and ``Conflict`` (409) when ``path`` is a folder or a link.
    """
    expected = sent_sha256(environ)
    length = acceptable_length(environ, max_bytes)
    refuse_non_file(path)
    require_room(path.parent, length or 0)
    digest = hashlib.sha256()
    size = 0
    with storage_errors(path), temporary_beside(path) as (file, temporary):
        for data in body_pieces(environ, max_bytes, piece, stall):
            file.write(data)
            digest.update(data)
            size += len(data)
        if expected is not None and digest.hexdigest() != expected:
            raise BadRequest(f"the body's SHA-256 is {digest.hexdigest()}, not {expected}")
        replace_durably(file, temporary, path)
    return Stored(path, size, digest.hexdigest())


PROXY_FILE = "HTTP_X_UPLOAD_FILE"  # the path of the body nginx stored ($request_body_file)
PROXY_SECRET = "HTTP_X_UPLOAD_SECRET"  # what proves that nginx, not a client, sent it


def take_proxy_stored(environ: dict, path: Path, incoming: Path, secret: str) -> Stored | None:
    """Move the body that nginx stored for this request to ``path``; None if nginx did not
    store one (then read the body with :func:`store_body`).

    incoming: nginx's ``client_body_temp_path``, on the same file system as ``path`` (a
        rename cannot cross file systems).
    secret: the value nginx sends in ``X-Upload-Secret``; a request that names a file
        without it is refused (403): only nginx may point the app at a file.

    The file must be a plain file directly in ``incoming``; it is ``fsync``-ed, then renamed
    into place, as :func:`store_body` does with its own. Its SHA-256 is computed only when
    the client sent ``Content-Digest`` to check (the app never read the body, and hashing
    it would cost about half a second a GiB, half the time nginx took to store it at its
    defaults), so ``sha256`` is None otherwise. Raises
    ``Forbidden`` (403), ``BadRequest`` (400) for a path outside ``incoming`` or a digest
    that differs, and ``Conflict`` (409) when ``path`` is a folder or a link.
    """
    named = environ.get(PROXY_FILE, "")
    if not named:
        return None
    sent = environ.get(PROXY_SECRET, "").encode()
    if not secret or not hmac.compare_digest(sent, secret.encode()):
        raise Forbidden("X-Upload-File is for the server's own nginx to send")
    stored = Path(os.path.normpath(named))
    try:
        mode = os.lstat(stored).st_mode
    except FileNotFoundError:
        mode = 0
    if stored.parent != incoming or not stat.S_ISREG(mode):
        raise BadRequest("X-Upload-File: not a file in the folder nginx stores bodies in")
    expected = sent_sha256(environ)
    digest = file_sha256(stored, 1024 * 1024) if expected is not None else None
    if digest != expected:
        raise BadRequest(f"the body's SHA-256 is {digest}, not {expected}")
    refuse_non_file(path)
    with storage_errors(path), stored.open("rb") as file:
        replace_durably(file, stored, path)
    return Stored(path, path.stat().st_size, digest)


@contextlib.contextmanager
def temporary_beside(path: Path) -> Iterator[tuple[object, Path]]:
    """A new hidden file in ``path``'s folder, open for writing: ``(file, its path)``.

    Removed when the block ends, unless the block renamed it (:func:`replace_durably`).
    ``mkstemp`` makes it with ``O_EXCL``: a link planted under its name is never followed.
    """
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    temporary = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as file:
            yield file, temporary
    finally:
        temporary.unlink(missing_ok=True)  # gone already if it became ``path``


def replace_durably(file: object, temporary: Path, path: Path) -> None:
    """Make the open, written ``file`` at ``temporary`` the file at ``path``, crash-safe:
    its bytes to disk (``fsync``), then the atomic rename, then the folder's new entry."""
    file.flush()
    os.fsync(file.fileno())
    refuse_non_file(path)  # again: a folder may have been made there meanwhile
    os.replace(temporary, path)
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """``fsync`` a folder, so that a rename in it survives a power cut."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def refuse_non_file(path: Path) -> None:
    """Raise ``Conflict`` (409) if ``path`` exists and is not a regular file: a folder, a
    symbolic link (which could point anywhere), a device. Never follows a link."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        kind = (
            "a folder" if stat.S_ISDIR(mode) else "a link" if stat.S_ISLNK(mode) else "not a file"
        )
        raise Conflict(f"{path.name} is {kind}; uploads only replace plain files")


def require_room(folder: Path, size: int) -> None:
    """Raise ``InsufficientStorage`` (507) unless ``folder``'s disk has ``size`` bytes free
    for an unprivileged writer (``statvfs``'s ``f_bavail``): a full disk said before a byte
    of the body is read."""
    disk = os.statvfs(folder)
    free = disk.f_bavail * disk.f_frsize
    if size > free:
        raise InsufficientStorage(f"the body is {size} bytes; the disk has {free} free")


@contextlib.contextmanager
def storage_errors(path: Path) -> Iterator[None]:
    """Turn what the file system refuses while storing ``path`` into a clear 4xx or 507:
    no room (``ENOSPC``, ``EDQUOT``), a folder or a link where a file goes (``EISDIR``,
    ``ENOTDIR``, ``ELOOP``, the answer to ``O_NOFOLLOW`` on a link)."""
    try:
        yield
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise InsufficientStorage(f"the disk filled up while storing {path.name}") from None
        if error.errno in (errno.EISDIR, errno.ENOTDIR, errno.ELOOP):
            raise Conflict(f"{path.name} is a folder or a link, not a file") from None
        raise


def file_sha256(path: Path, piece: int = PIECE) -> str:
    """The SHA-256 (hex) of the file at ``path``, read a piece at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while data := file.read(piece):
            digest.update(data)
    return digest.hexdigest()


class CountingInput:
    """``wsgi.input`` that reports each read: ``on_read(n)`` after every ``n`` bytes read.

    Wrap the request body in it to learn how much has arrived *while* it arrives (a progress
    bar, the time of the first byte), whoever reads it: your loop or a form parser.
    """

    def __init__(self, stream: object, on_read: Callable[[int], None]) -> None:
        self.stream = stream
        self.on_read = on_read

    def read(self, size: int = -1) -> bytes:
        data = read_piece(self.stream.read, size)
        self.on_read(len(data))
        return data

    def readline(self, size: int = -1) -> bytes:
        data = read_piece(self.stream.readline, size)
        self.on_read(len(data))
        return data
