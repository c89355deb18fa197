"""Exercise 11: store an upload in constant memory, refuse it early, never leave half a file.

Write ``save_upload``: the heart of ``PUT /uploads/<name>``. It reads the request body from
``environ["wsgi.input"]``, writes it to ``path`` and returns how many bytes it stored and
their SHA-256. A 1 GiB upload must cost the server a piece's worth of memory, not 1 GiB.
Raise werkzeug's exceptions and the course turns them into clear 4xx answers.

Read first: lesson 11, 'Where the body ends', 'Refuse before the body comes' and 'Never half
a file' (the page ``/lessons/11``), and notebook 11, 'Memory: a piece at a time, or the
whole body'.

Task 1. Store the body. Read it in pieces of at most ``PIECE`` bytes and write each as it
        comes: never ``read()`` without a size. With ``CONTENT_LENGTH`` read exactly that
        many bytes, no more (the next bytes on the connection are not yours). Without it,
        a server that undid a chunked body says so with ``wsgi.input_terminated``: then
        read until ``read`` returns ``b""``. Return the size and the SHA-256 (hex) of what
        you stored, counted as the pieces pass (``hashlib.sha256().update``).
Task 2. Refuse early. A ``CONTENT_LENGTH`` over ``max_bytes`` raises
        ``RequestEntityTooLarge`` before a byte is read. A chunked body raises it as soon
        as more than ``max_bytes`` have come. With neither a length nor an end marked,
        raise ``LengthRequired``.
Task 3. Never half a file. Write to a temporary file in ``path``'s folder and rename it to
        ``path`` only once the whole body is in (``os.replace``: atomic in one folder).
        A body that stops before ``CONTENT_LENGTH`` (``read`` returns ``b""`` early) raises
        ``BadRequest``; after any error ``path`` is as it was and no other file is left.

Grade your work:   python -m pytest exercises/test_11_uploads.py
"""

import hashlib
import os
import tempfile
from pathlib import Path

from werkzeug.exceptions import (
    BadRequest,
    LengthRequired,
    RequestEntityTooLarge,
)

PIECE = 64 * 1024  # the most to read at once


def save_upload(environ: dict, path: Path, max_bytes: int) -> tuple[int, str]:
    """Store the request body of ``environ`` at ``path``; return (size, SHA-256 hex).

    environ: the WSGI environ; the body is ``environ["wsgi.input"]``, its length (if any)
        ``environ.get("CONTENT_LENGTH")``, a decimal string.
    path: where the body goes, in a folder that exists.
    max_bytes: the largest body to accept.
    """
    text = environ.get("CONTENT_LENGTH") or ""
    length = int(text) if text else None
    if length is None and not environ.get("wsgi.input_terminated"):
        raise LengthRequired("send Content-Length, or a chunked body")
    if length is not None and length > max_bytes:
        raise RequestEntityTooLarge(f"{length} bytes; at most {max_bytes}")
    body = environ["wsgi.input"]
    digest, size = hashlib.sha256(), 0
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, suffix=".part")
    try:
        with os.fdopen(descriptor, "wb") as file:
            while length is None or size < length:
                wanted = PIECE if length is None else min(PIECE, length - size)
                data = body.read(wanted)
                if not data:
                    if length is None:
                        break  # the chunked body's end
                    raise BadRequest(f"the body stopped after {size} of {length} bytes")
                size += len(data)
                if size > max_bytes:
                    raise RequestEntityTooLarge(f"more than {max_bytes} bytes")
                file.write(data)
                digest.update(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return size, digest.hexdigest()
