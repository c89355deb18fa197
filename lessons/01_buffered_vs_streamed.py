"""Lesson 01: buffered vs streamed.

A WSGI app is a callable ``app(environ, start_response)`` that returns an *iterable of
bytes*. The server calls it, then loops over what it returned and writes each item to the
socket. Everything in this course follows from that loop.

**Buffered.** ``return [body]`` hands the server a list with one item. The server can
send nothing until the app returns, and the app returns only when the whole body is
built. So the client waits for the slowest part before it sees the first byte, and the
server holds the whole body in memory (twice, for a moment, while ``b"".join`` copies the
pieces into one).

**Streamed.** ``return pieces()``, where ``pieces`` is a generator function, hands the
server an iterator that builds the body one piece at a time. The server writes each piece
as soon as the generator yields it, so the first byte leaves after the first piece, and
memory holds one piece, not the body.

**When the status line and headers go out.** ``start_response`` does not send anything: it
stores the status and headers. PEP 3333 forbids the server to send them before the first
non-empty piece of the body (or before the body ends, for an empty one; "The
start_response() Callable"). So before the first
``yield`` the server can send nothing at all, not even the headers: if your first piece is
slow, the client sees a silent connection. Later lessons yield something small at once
for that reason.

**Content-Length.** The buffered app knows its length and says so. The streamed app does
not know it yet, so it leaves the header out, and the server frames the body for us: with
HTTP/1.1 it uses ``Transfer-Encoding: chunked`` (each piece prefixed by its size in hex;
lesson 03 shows the bytes on the wire); with HTTP/1.0 it closes the connection at the end.

**A generator is lazy.** Its body does not run when the app returns it; it runs when the
server asks for the first piece. So check the input and call ``start_response`` *before*
returning the generator: a bad parameter then becomes a clean 400. Found inside the
generator, it would be a 500 at best (raised before the first piece, while the server can
still change the status) or a broken 200 (after it).

**close().** When the response ends, however it ends (sent in full, or the client hung up),
the server calls ``close()`` on the iterable. For a generator that raises ``GeneratorExit``
at the paused ``yield``, so its ``finally`` blocks run: that is where a stream releases what
it holds. A generator closed before its first ``next()`` never runs at all, not even its
``finally`` (CPython's ``gen_close`` in ``Objects/genobject.c`` just marks it finished; the
notebook shows it), and a server does that when the client leaves before the first piece. So
what a stream holds is opened inside the generator, never in the app before it returns the
generator: opened there, it would stay open. ``/stats`` counts streams started and closed.
The guarantee is PEP 3333's, and so it is only as good as the server: gunicorn keeps it, and
werkzeug's dev server skips ``close()`` when a client resets the connection right after the
last byte (still so in werkzeug 3.1.9: ``serving.py``'s ``execute`` reads the socket first),
so the course runs werkzeug through ``lab.devserver``, which keeps it too.

**What buffering costs a server.** ``/buffered`` holds twice its body while it joins the
pieces, so it takes at most 256 MiB (``/streamed``: 1 GiB, in 1 MiB of memory), and all
the bodies being built at once share a budget of 512 MiB: a request that does not fit is
a ``503`` with ``Retry-After``. Without such limits, four requests for 1 GiB would take
8 GiB of memory. A streamed response needs no budget: it holds one piece.

Try it (``python lessons/01_buffered_vs_streamed.py``, or ``python -m lessons``)::

    curl -N 'http://127.0.0.1:8000/streamed?size=1000000&delay=0.01'   # prints as it comes
    curl -N 'http://127.0.0.1:8000/buffered?size=1000000&delay=0.01'   # all at the end

Notebook: ``notebooks/01_buffered_vs_streamed.ipynb``. Exercise:
``exercises/01_buffered_vs_streamed.py``. Benchmark: ``python -m bench``.
"""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from werkzeug.exceptions import BadRequest, HTTPException
from werkzeug.wrappers import Request

from lessons.cli import run_lesson
from lessons.routes import Lesson, Route
from streamlib import float_param, int_param
from streamlib.params import check_duration

MAX_SIZE = 1024**3  # 1 GiB streamed: one piece in memory at a time
MAX_BUFFERED_SIZE = 256 * 1024**2  # buffered, that is 512 MiB of server memory
BUFFER_BUDGET = 512 * 1024**2  # the bodies all buffered requests may build at once
_buffering = {"bytes": 0}
_buffering_lock = threading.Lock()
MAX_PIECE = 1024**2
MAX_DELAY = 10.0  # seconds between two pieces
MAX_PIECES = 1024**2

LINE = 64  # every line of the body is 64 bytes, so that curl shows it line by line
FILLER = (b"." * (LINE - 1) + b"\n") * (MAX_PIECE // LINE)


def make_piece(number: int, offset: int, length: int) -> bytes:
    """Return piece ``number`` of the body: ``length`` bytes of 64-byte text lines.

    The first line says which piece it is and where it starts, so a learner watching
    ``curl -N`` sees the pieces arrive. The rest is filler, made by slicing a ready-made
    buffer because formatting millions of lines would measure Python, not streaming.
    """
    first_line = f"piece {number} starts at byte {offset}".encode()[: LINE - 1].ljust(LINE - 1)
    first_line += b"\n"
    if length <= LINE:
        return first_line[:length]
    return first_line + FILLER[: length - LINE]


def build_pieces(
    size: int, piece_size: int, delay: float, sleep: Callable[[float], None] = time.sleep
) -> Iterator[bytes]:
    """Yield a body of ``size`` bytes in pieces of ``piece_size``, ``delay`` s apart.

    size: the body's length in bytes.
    piece_size: bytes per piece (the last piece may be shorter).
    delay: seconds to wait before each piece but the first, standing in for slow work
        such as a database query per piece.
    sleep: how to wait; tests pass a fake one so that they do not wait.

    >>> [len(piece) for piece in build_pieces(200, 64, 0.0)]
    [64, 64, 64, 8]
    """
    for number, offset in enumerate(range(0, size, piece_size)):
        if number and delay:
            sleep(delay)
        yield make_piece(number, offset, min(piece_size, size - offset))


def read_body_params(environ: dict) -> tuple[int, int, float]:
    """Read ``size``, ``piece`` and ``delay`` from the query string, or raise a 400."""
    args = Request(environ).args
    size = int_param(args, "size", 1_000_000, 0, MAX_SIZE)
    piece_size = int_param(args, "piece", 8192, 1, MAX_PIECE)
    delay = float_param(args, "delay", 0.0, 0.0, MAX_DELAY)
    pieces = -(-size // piece_size)  # ceiling division
    if pieces > MAX_PIECES:
        raise BadRequest(
            f"piece: {size} bytes in pieces of {piece_size} makes {pieces} pieces;"
            f" at most {MAX_PIECES} are allowed, so use piece={-(-size // MAX_PIECES)} or more"
        )
    check_duration("delay", pieces, "pieces", delay)
    return size, piece_size, delay


@contextmanager
def reserved(size: int) -> Iterator[None]:
    """Hold ``size`` bytes of ``BUFFER_BUDGET`` while a body is built, or raise a 503.

    Admission control: a buffered request says up front how much it will hold, and is
    refused if the bodies already being built leave no room for it.
    """
    with _buffering_lock:
        if _buffering["bytes"] + size > BUFFER_BUDGET:
            raise Busy()
        _buffering["bytes"] += size
    try:
        yield
    finally:
        with _buffering_lock:
            _buffering["bytes"] -= size


class Busy(HTTPException):
    code = 503
    description = "other buffered bodies fill the server's budget; try again in a second"

    def get_headers(self, environ: dict | None = None, scope: dict | None = None) -> list:
        return [*super().get_headers(environ, scope), ("Retry-After", "1")]


def buffered(environ: dict, start_response: Callable) -> list[bytes]:
    """Build the whole body, then send it in one piece with its Content-Length."""
    size, piece_size, delay = read_body_params(environ)
    if size > MAX_BUFFERED_SIZE:
        raise BadRequest(
            f"size: buffered bodies go up to {MAX_BUFFERED_SIZE} bytes (twice that in"
            f" memory), got {size}; /streamed takes up to {MAX_SIZE}"
        )
    with reserved(size):
        body = b"".join(build_pieces(size, piece_size, delay))
    start_response(
        "200 OK",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]


def streamed(environ: dict, start_response: Callable) -> Iterator[bytes]:
    """Send each piece of the body as soon as it is built."""
    size, piece_size, delay = read_body_params(environ)
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return build_pieces(size, piece_size, delay)


LESSON = Lesson(
    number=1,
    slug="buffered_vs_streamed",
    title="Buffered vs streamed",
    summary=(
        "The same body, built slowly in pieces, sent two ways: joined and returned as"
        " [body], or yielded piece by piece. Compare time to first byte and server memory."
        " Parameters: size (bytes), piece (bytes per piece), delay (seconds between pieces)."
    ),
    routes=(
        Route(
            "/buffered",
            buffered,
            "the body in one piece, after all of it is built",
            "/buffered?size=1000000&delay=0.01",
            limits="up to 256 MiB; 512 MiB of bodies at once, 503 above",
        ),
        Route(
            "/streamed",
            streamed,
            "the body piece by piece, as it is built",
            "/streamed?size=1000000&delay=0.01",
            limits="up to 1 GiB, one piece in memory",
        ),
    ),
)

if __name__ == "__main__":
    run_lesson(LESSON)
