"""Exercise 02: stream a file, or a byte range of it, in fixed-size chunks.

Write ``iter_file``: a generator that sends ``length`` bytes of a file, starting at byte
``start``, in chunks of ``chunk_size`` bytes. It is what lets a server send a 1 GiB
video with 64 KiB of memory, and answer a ``Range`` request for the middle of it.

Read first: lesson 02, 'Constant memory', 'Ranges' and 'Conditional requests' (the page
``/lessons/2``); lesson 01, 'close()'; and notebook 02, where the preconditions are checked
in RFC 9110's order.

Task 1. Yield the file's bytes in chunks of exactly ``chunk_size`` bytes (the last chunk
        may be shorter). Never read the whole file into memory.
Task 2. Honour the range: begin at byte ``start``; send ``length`` bytes, or up to the
        end of the file when ``length`` is None; stop early if the file ends first.
Task 3. Close the file however the stream ends: after the last chunk, and when the
        server calls ``close()`` on your generator because the client left. And leave
        nothing open if the server closes the generator before asking for a chunk.
Task 4. Write ``check_preconditions``: the answer a request's ``If-Match`` and
        ``If-None-Match`` headers call for, in RFC 9110's order. A failed ``If-Match``
        (no tag in it matches the file's *strongly*: ``W/"..."`` never does; ``*`` always
        does) is a 412, whatever else the request says. Then ``If-None-Match`` that
        matches *weakly* (``W/`` ignored; ``*`` matches any file) is a 304. Else None:
        send the file. ``werkzeug.http.parse_etags`` reads the header for you.

Grade your work:   python -m pytest exercises/test_02_stream_a_file.py
"""

from collections.abc import Iterator
from pathlib import Path


def iter_file(
    path: str | Path, start: int = 0, length: int | None = None, chunk_size: int = 65536
) -> Iterator[bytes]:
    """Yield ``length`` bytes of the file at ``path`` from byte ``start``, in chunks.

    path: the file to read.
    start: the first byte to send (0 is the beginning).
    length: how many bytes to send; None means up to the end of the file.
    chunk_size: bytes per chunk (the last chunk may be shorter).
    """
    raise NotImplementedError("Exercise 02: write iter_file (see the tasks at the top)")


def check_preconditions(if_match: str | None, if_none_match: str | None, etag: str) -> int | None:
    """Return 412, 304 or None for a request's ``If-Match`` and ``If-None-Match`` headers.

    if_match, if_none_match: the headers as sent (``'"a", W/"b"'``, ``'*'``), or None.
    etag: the file's current strong entity tag, quoted: ``'"5f3a-1000"'``.
    """
    raise NotImplementedError("Exercise 02: write check_preconditions (Task 4)")
