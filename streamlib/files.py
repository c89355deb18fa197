"""Stream a file, or a byte range of it, in fixed-size chunks: constant memory at any size.

Two ways to send a file from WSGI:

- :func:`iter_file`, a generator: read a chunk, yield it, repeat. Memory holds one chunk.
- ``environ["wsgi.file_wrapper"]`` (PEP 3333), offered by some servers: hand the server
  the open file and let it send it as it likes. gunicorn's sync and gthread workers use
  ``sendfile(2)`` (unless ``--no-sendfile`` or TLS), so the bytes go from the page cache
  to the socket without ever entering Python; its gevent worker reads and sends instead.

:func:`file_body` picks between them.

A served file is not a page of the server. An HTML or SVG file that someone could put in
the folder (an upload, lesson 11) would run its scripts as the server's own origin, able
to read every answer and post anywhere on the learner's behalf, were it served as it is.
:data:`UNTRUSTED_FILE_HEADERS` go with every file: ``Content-Security-Policy: sandbox``
makes the browser show such a document as an opaque origin with no scripts running (CSP
Level 3, "sandbox"; HTML, "sandboxing"), and ``nosniff`` stops it guessing HTML where the
name said text. Images, video and downloads are untouched by either.
"""

import mimetypes
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from werkzeug.utils import get_content_type

CHUNK_SIZE = 64 * 1024
UNTRUSTED_FILE_HEADERS = [
    ("Content-Security-Policy", "sandbox"),
    ("X-Content-Type-Options", "nosniff"),
]


def iter_file(
    path: str | os.PathLike, start: int = 0, length: int | None = None, chunk_size: int = CHUNK_SIZE
) -> Iterator[bytes]:
    """Yield ``length`` bytes of the file at ``path`` from byte ``start``, in chunks.

    path: the file to read.
    start: the first byte to send (0 is the beginning of the file).
    length: how many bytes to send; None means up to the end of the file.
    chunk_size: the most bytes read and yielded at a time: every chunk is this big but
        the last. It bounds the memory a stream holds, whatever the file's size.

    The file is opened inside the generator, so it is opened only once the server asks
    for the first chunk, and the ``with`` block closes it however the stream ends: sent
    in full, or ``close()``-d by the server when the client leaves. A generator that is
    closed before it starts never runs its body, so there is nothing to leak.

    >>> for chunk in iter_file("video.mp4", start=1000, length=10):   # doctest: +SKIP
    ...     print(len(chunk))
    10
    """
    with open(path, "rb") as file:
        file.seek(start)
        remaining = length
        while remaining is None or remaining > 0:
            size = chunk_size if remaining is None else min(chunk_size, remaining)
            chunk = file.read(size)
            if not chunk:  # the file ended early: it shrank since its length was read
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk


def file_body(
    environ: dict, path: Path, start: int, length: int, chunk_size: int = CHUNK_SIZE
) -> Iterable[bytes]:
    """Return a WSGI body sending ``length`` bytes of ``path`` from ``start``.

    environ: the request's environ: its ``wsgi.file_wrapper``, if any, is used.
    path, start, length, chunk_size: as for :func:`iter_file`.

    The server's file wrapper is used only when the bytes run to the end of the file (a
    whole file, or a range like ``bytes=1000-``, which is how a browser seeks a video).
    PEP 3333 lets a wrapper send from the file's position *to its end*; servers are told
    to stop at ``Content-Length``, but a body that relies on that is only as safe as the
    server. A range that stops before the end uses :func:`iter_file`, which reads and
    sends exactly ``length`` bytes through any server.
    """
    file_wrapper = environ.get("wsgi.file_wrapper")
    if file_wrapper is not None and start + length == path.stat().st_size:
        file = open(path, "rb")  # noqa: SIM115 -- the wrapper's close() closes it
        file.seek(start)
        return file_wrapper(file, chunk_size)
    return iter_file(path, start, length, chunk_size)


def media_type(path: Path) -> str:
    """The ``Content-Type`` for the file at ``path``, guessed from its name (Python's
    ``mimetypes``); text gets ``charset=utf-8``, anything unknown is
    ``application/octet-stream``.

    >>> media_type(Path("notes.txt")), media_type(Path("clip.unknown"))
    ('text/plain; charset=utf-8', 'application/octet-stream')
    """
    mimetype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return get_content_type(mimetype, "utf-8")
