"""Lesson 05: chunked JSON. Rows a client can use while the rest is still on its way.

An API that returns a big list usually builds it, serialises it whole and sends it: the
client waits for the last row before it can read the first, and both sides hold the whole
list. Two ways to stream it instead (``streamlib.json_stream``):

**NDJSON** (``application/x-ndjson``): one JSON value per line
(https://github.com/ndjson/ndjson-spec). JSON escapes every control character inside a
string (RFC 8259 section 7), so a raw newline only ever ends a row. The easiest to stream
and to read: split on newlines, ``json.loads`` each line. A failure after the 200 becomes a last
row, ``{"error": "..."}``, which a client must check for.

**A streamed JSON array** (``application/json``): ``[``, rows with commas, ``]``: one valid
document when complete, which any client can read whole (``response.json()``), and which a
streaming client reads row by row with an incremental parser such as ``ijson``. The commas
and brackets are the work: no comma before the first row, ``[]`` for none. A failure after
the 200 cannot be said in band, so the array ends unclosed: an invalid document is the
honest answer, where a closed one would pass a partial list off as complete.

``fail_at`` breaks the rows on purpose, with a ``PlannedFailure``. The library logs a
failed stream with its traceback, as it should a real one; this failure is the lesson's
own, so the server's log gives it one line (``one_line_when_planned``).

Rows are produced lazily, one at a time, so the server never holds the list; the client,
reading with ``streamlib.json_stream.parse_ndjson`` or ``ijson``, does not either.

Try it (``python lessons/05_chunked_json.py``, or ``python -m lessons``)::

    curl -N 'http://127.0.0.1:8000/ndjson?count=5&delay=0.5'
    curl -N 'http://127.0.0.1:8000/json-array?count=5&delay=0.5'
    curl -N 'http://127.0.0.1:8000/ndjson?count=5&fail_at=3'       # an error row
    curl -N 'http://127.0.0.1:8000/json-array?count=5&fail_at=3'   # an unclosed array

Notebook: ``notebooks/05_chunked_json.ipynb``. Exercise: ``exercises/05_chunked_json.py``.
"""

import logging
import time
from collections.abc import Callable, Iterator

from werkzeug.wrappers import Request

from lessons.cli import run_lesson
from lessons.routes import Lesson, Route
from streamlib import float_param, int_param
from streamlib.json_stream import iter_json_array, iter_ndjson
from streamlib.params import check_duration

MAX_COUNT = 1_000_000  # a million rows: 12 to 15 s in bench/results, flat memory


class PlannedFailure(RuntimeError):
    """The failure that ``fail_at`` asks for: the data source breaking down at a row."""


def one_line_when_planned(record: logging.LogRecord) -> bool:
    """A logging filter: a stream that failed with a :class:`PlannedFailure` is logged as one
    line, without its traceback. Every other record passes as it is."""
    error = record.exc_info[1] if record.exc_info else None
    if isinstance(error, PlannedFailure):
        record.msg = f"lesson 05: {record.getMessage()}: {error}, on purpose (fail_at)"
        record.args = ()
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
    return True


# streamlib.json_stream logs each failed stream with logger.exception (a traceback)
logging.getLogger("streamlib.json_stream").addFilter(one_line_when_planned)


def make_rows(
    count: int, delay: float, fail_at: int | None = None, sleep: Callable = time.sleep
) -> Iterator[dict]:
    """Yield ``count`` rows, ``delay`` seconds apart, as a slow query would.

    count: how many rows; delay: seconds before each row but the first.
    fail_at: raise :class:`PlannedFailure` instead of producing row number ``fail_at``.
    sleep: how to wait; tests pass a fake one.

    >>> list(make_rows(2, 0.0))
    [{'n': 0, 'square': 0, 'label': 'row 0'}, {'n': 1, 'square': 1, 'label': 'row 1'}]
    """
    for n in range(count):
        if n and delay:
            sleep(delay)
        if n == fail_at:
            raise PlannedFailure(f"the data source failed at row {n}")
        yield {"n": n, "square": n * n, "label": f"row {n}"}


def read_rows_params(environ: dict) -> tuple[int, float, int | None]:
    """Read ``count``, ``delay`` and ``fail_at`` from the query string, or raise a 400."""
    args = Request(environ).args
    count = int_param(args, "count", 10, 0, MAX_COUNT)
    delay = float_param(args, "delay", 0.0, 0.0, 10.0)
    fail_at = int_param(args, "fail_at", -1, 0, MAX_COUNT) if "fail_at" in args else None
    check_duration("delay", count, "rows", delay)
    return count, delay, fail_at


def serve_ndjson(environ: dict, start_response: Callable) -> Iterator[bytes]:
    """``GET /ndjson?count=&delay=&fail_at=``: one JSON object per line."""
    count, delay, fail_at = read_rows_params(environ)
    start_response("200 OK", [("Content-Type", "application/x-ndjson")])
    return iter_ndjson(make_rows(count, delay, fail_at))


def serve_json_array(environ: dict, start_response: Callable) -> Iterator[bytes]:
    """``GET /json-array?count=&delay=&fail_at=``: one JSON array, element by element."""
    count, delay, fail_at = read_rows_params(environ)
    start_response("200 OK", [("Content-Type", "application/json")])
    return iter_json_array(make_rows(count, delay, fail_at))


LESSON = Lesson(
    number=5,
    slug="chunked_json",
    title="Chunked JSON",
    summary=(
        "Rows streamed as NDJSON (one JSON object per line) or as one JSON array sent element"
        " by element, parsed by the client as they arrive; and what each can do when a row"
        " fails after the 200. Parameters: count, delay (s between rows), fail_at (a row)."
    ),
    routes=(
        Route(
            "/ndjson",
            serve_ndjson,
            "count rows as NDJSON",
            "/ndjson?count=5&delay=0.5",
            limits="up to 1,000,000 rows",
        ),
        Route(
            "/json-array",
            serve_json_array,
            "count rows as one streamed JSON array",
            "/json-array?count=5&delay=0.5",
            limits="up to 1,000,000 rows",
        ),
    ),
)

if __name__ == "__main__":
    run_lesson(LESSON)
