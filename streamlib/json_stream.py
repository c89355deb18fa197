"""Stream JSON row by row: NDJSON, or one JSON array sent element by element.

**NDJSON** (newline-delimited JSON, ``application/x-ndjson``): one compact JSON value per
line, UTF-8, each line ending in ``\\n`` (the NDJSON spec, github.com/ndjson/ndjson-spec). A
client parses each line as it arrives. JSON must escape control characters inside strings
(RFC 8259 section 7), so a raw ``\\n`` only ever ends a row.

**A JSON array** (``application/json``): ``[``, the elements separated by commas, ``]``. The
document is valid only once complete, so the client needs an incremental parser (``ijson``)
to use the rows before the end.

**Errors after the 200.** Once the status line has gone out, a failure can no longer become
a 500. NDJSON can say so in band: a last row ``{"error": "..."}``. An array cannot: any
element we add would be read as data. So the array stops *without* its closing bracket, an
invalid document, and the client's parser fails instead of taking a truncated list for the
whole one.
"""

import json
import logging
from collections.abc import Iterable, Iterator
from typing import Any

logger = logging.getLogger("streamlib.json_stream")


def _encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def iter_ndjson(rows: Iterable[Any]) -> Iterator[bytes]:
    """Yield each row as one line of NDJSON; end with an ``{"error": ...}`` row if one fails.

    rows: JSON-serialisable values, produced lazily (a generator, a database cursor).

    If a row cannot be encoded, or producing the rows raises, the failure is logged
    and sent as a last row, ``{"error": "<ExceptionType>: <message>"}``, then the stream
    ends. The rows are closed in ``finally`` however the stream ends.

    >>> b"".join(iter_ndjson([{"n": 1}, [2, "é"]]))
    b'{"n":1}\\n[2,"\\xc3\\xa9"]\\n'
    """
    try:
        for row in rows:
            yield _encode(row) + b"\n"
    except Exception as error:
        logger.exception("NDJSON stream failed")
        yield _encode({"error": f"{type(error).__name__}: {error}"}) + b"\n"
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()


def iter_json_array(rows: Iterable[Any]) -> Iterator[bytes]:
    """Yield one JSON array, element by element: ``[``, then each element, then ``]``.

    rows: JSON-serialisable values, produced lazily.

    The bytes are a valid JSON document once complete (``[]`` for no rows). If a row
    cannot be encoded or producing the rows raises, the failure is logged and the stream
    ends without ``]``: the client's parser then fails rather than accept a partial list.

    >>> b"".join(iter_json_array([])), b"".join(iter_json_array([1, {"a": 2}]))
    (b'[]', b'[1,{"a":2}]')
    """
    try:
        yield b"["
        separator = b""
        for row in rows:
            yield separator + _encode(row)
            separator = b","
        yield b"]"
    except Exception:
        logger.exception("JSON array stream failed; ending it unclosed")
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()


def parse_ndjson(chunks: Iterable[bytes]) -> Iterator[Any]:
    """Yield the rows of an NDJSON byte stream as they complete, e.g. from
    ``response.iter_content(chunk_size=None)``. A row may straddle chunks; an empty line
    is skipped; a last row without its newline still counts."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                yield json.loads(line)
    if pending.strip():
        yield json.loads(pending)


def parse_json_array(chunks: Iterable[bytes]) -> Iterator[Any]:
    """Yield the elements of a JSON array byte stream as each one completes.

    Uses ijson's push interface, fed one chunk at a time: ``ijson.items(response.raw, ...)``
    would instead ask the socket for 64 KiB at a time and wait until they came. An array
    that ends unclosed raises ``ijson.IncompleteJSONError`` after its complete elements.
    """
    import ijson  # needed only here; part of the course's requirements

    completed = ijson.sendable_list()  # the parser appends each finished element here
    parser = ijson.items_coro(completed, "item")
    for chunk in chunks:
        parser.send(chunk)
        yield from completed
        del completed[:]
    parser.close()  # raises if the document is incomplete
    yield from completed
