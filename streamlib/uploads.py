"""Request bodies streamed to disk: constant memory, a size cap, and no partial file.

Every lesson before 11 streams responses; an upload is the same problem the other way. A
WSGI app reads its request body from ``environ["wsgi.input"]``, a file-like object, and
``read()`` with no size would pull the whole body into memory. :func:`body_pieces` reads it
in pieces of a fixed size instead, and :func:`store_body` writes each piece as it comes to
a temporary file beside the target, renamed into place only once the whole body is in:
a client that stops halfway leaves no file that looks complete.

How big a piece. 64 KiB by default: ``read(n)`` waits until n bytes have come (or the body
ends), so the piece size is how much must arrive before the app sees any of it, on a slow
link too. Larger pieces are faster on a fast link under gunicorn, whose body reader reads
ahead up to 1 MiB and copies what it holds at every ``read``: stored 64 KiB at a time a
1 GiB upload ran at 151 MB/s under the sync worker, 1 MiB at a time at 371 MB/s (bench
11; the dev server 333, nginx 522), but then a slow upload shows nothing until a whole MiB
is in. ``piece=`` chooses.

Where the body ends. With ``Content-Length`` the app must read exactly that many bytes and
no more (PEP 3333: reading past it may block forever). A ``Transfer-Encoding: chunked``
body has no length; a server that undoes the chunks says so with
``environ["wsgi.input_terminated"] = True`` (werkzeug's dev server and gunicorn both do), and
then ``read()`` returns ``b""`` at the body's end. Without either, the app cannot know where
the body ends: 411 Length Required.

What arrived is what was sent. A client may send the body's SHA-256 in ``Content-Digest``
(RFC 9530: ``Content-Digest: sha-256=:BASE64:``); :func:`store_body` compares it with what
came before the file takes its place, and a body that differs is refused (400).
"""

import base64
import binascii
import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from werkzeug import exceptions
from werkzeug.exceptions import BadRequest, LengthRequired, RequestEntityTooLarge

PIECE = 64 * 1024  # bytes read and written at a time: the upload's whole footprint
SHA256_MEMBER = re.compile(r"(?:^|,)\s*sha-256\s*=\s*:([A-Za-z0-9+/=]*):\s*(?:;[^,]*)?(?=,|$)")


@dataclass(frozen=True)
class Stored:
    """A body stored whole: where, how many bytes, and their SHA-256 (hex)."""

    path: Path
    size: int
    sha256: str


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


def read_body(read: Callable[[int], bytes], size: int = -1) -> bytes:
    """``read(size)`` (the body's ``read`` or ``readline``), with a body the server cannot
    read turned into a 400.

    A malformed chunked body (a chunk size of twenty hex digits, a missing CRLF) fails
    inside the *server's* reader, when the app reads: werkzeug raises ``OSError``,
    gunicorn a ``ParseException`` of its own. Neither is the app's bug, so neither may
    become a 500; the types differ by server, hence the broad ``except``.
    """
    try:
        return read(size)
    except Exception as error:
        raise BadRequest(f"the body could not be read: {type(error).__name__}") from error


def acceptable_length(environ: dict, max_bytes: int) -> int | None:
    """The body's ``Content-Length`` (None for a chunked body), once the headers alone
    show the body can be accepted: what an app checks before it opens anything.

    Raises ``LengthRequired`` (411) when the server cannot say where the body ends,
    ``RequestEntityTooLarge`` (413) for a length over ``max_bytes``, ``BadRequest``
    (400) for a length that is not a number, and ``NotImplemented`` (501) for a body in
    a transfer coding besides ``chunked`` (``gzip, chunked``), which gunicorn hands over
    still encoded: stored as it is, it would not be the file the client sent.
    """
    codings = environ.get("HTTP_TRANSFER_ENCODING", "").lower().replace(" ", "").split(",")
    if codings not in ([""], ["chunked"]):
        # werkzeug's 501 Not Implemented, not Python's NotImplemented constant
        raise exceptions.NotImplemented("Transfer-Encoding: only chunked is understood here")
    length = declared_length(environ)
    if length is None and not environ.get("wsgi.input_terminated"):
        raise LengthRequired("send Content-Length, or a chunked body to a server that reads it")
    if length is not None and length > max_bytes:
        raise RequestEntityTooLarge(f"the body is {length} bytes; at most {max_bytes} here")
    return length


def body_pieces(environ: dict, max_bytes: int, piece: int = PIECE) -> Iterator[bytes]:
    """The request body, in pieces of at most ``piece`` bytes, as they come.

    max_bytes: the largest body accepted. A ``Content-Length`` above it is refused before a
        byte is read; a chunked body is refused as soon as more than that has come.

    Raises ``RequestEntityTooLarge`` (413), ``LengthRequired`` (411) when the server cannot
    say where the body ends, or ``BadRequest`` (400) when the client stops before it.
    """
    body = environ["wsgi.input"]
    length = acceptable_length(environ, max_bytes)
    received = 0
    while length is None or received < length:
        wanted = piece if length is None else min(piece, length - received)
        data = read_body(body.read, wanted)
        if not data:
            if length is None:
                return  # a chunked body's end, marked by the server
            raise BadRequest(f"the body stopped after {received} of {length} bytes")
        received += len(data)
        if received > max_bytes:
            raise RequestEntityTooLarge(f"the body went past {max_bytes} bytes")
        yield data


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


def store_body(environ: dict, path: Path, max_bytes: int, piece: int = PIECE) -> Stored:
    """Stream the request body to ``path`` in pieces, and return what was stored.

    The bytes go to a temporary file in the same folder, renamed to ``path`` only when the
    whole body is in and matches the ``Content-Digest`` the client sent, if any (a rename
    within one folder is atomic): on any error the temporary file is removed and ``path``
    is as it was. Raises as :func:`body_pieces` does, and ``BadRequest`` for a body that
    is not the one the client's digest describes.
    """
    expected = sent_sha256(environ)
    digest = hashlib.sha256()
    size = 0
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".part"
    )
    try:
        with os.fdopen(descriptor, "wb") as file:
            for data in body_pieces(environ, max_bytes, piece):
                file.write(data)
                digest.update(data)
                size += len(data)
        if expected is not None and digest.hexdigest() != expected:
            raise BadRequest(f"the body's SHA-256 is {digest.hexdigest()}, not {expected}")
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return Stored(path, size, digest.hexdigest())


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
        data = read_body(self.stream.read, size)
        self.on_read(len(data))
        return data

    def readline(self, size: int = -1) -> bytes:
        data = read_body(self.stream.readline, size)
        self.on_read(len(data))
        return data
