"""Lesson 03: manual chunks. ``tick N`` every 500 ms, and what it looks like on the wire.

**The pattern.** A generator that yields a line when it has one: the server writes each
yield to the socket as soon as it comes. ``streamlib.timing.ticks`` is the one this
lesson serves: ``for n in paced(count, interval): yield f"tick {n}\\n".encode()``.
PEP 3333 forbids the server to hold a block back: "WSGI servers, gateways, and
middleware must not delay the transmission of any block; they must either fully transmit
the block to the client, or guarantee that they will continue transmission even while
the application is producing its next block."

**On the wire: chunked encoding.** The app sends no ``Content-Length`` (it cannot know it),
so an HTTP/1.1 server frames the body itself with ``Transfer-Encoding: chunked``
(RFC 9112 section 7.1): each yield becomes its size in hex, CRLF, the bytes, CRLF, and a
zero-size chunk ends the body::

    7\\r\\ntick 0\\n\\r\\n   7\\r\\ntick 1\\n\\r\\n   ...   0\\r\\n\\r\\n

Chunks are HTTP/1.1's: an HTTP/1.0 client gets none, and the body simply ends when the
server closes the connection, which is how HTTP/1.0 always ended a body of unknown length.
gunicorn does exactly that, and so does the course's default server. Plain werkzeug
(3.1) does not: it chunks whenever *it* speaks HTTP/1.1 (threaded, as here) and the
response has no ``Content-Length``, whatever the request's version, so it answers an
HTTP/1.0 request with chunks, which RFC 9112 section 6.1 forbids ("A server MUST NOT send
a response containing Transfer-Encoding unless the corresponding request indicates
HTTP/1.1"). curl copes; a strict HTTP/1.0 client would not. The course runs werkzeug with
``lab.devserver.SpecRequestHandler``, which answers 1.0 with 1.0. The notebook
shows both servers on the wire, and a test reads every route with a strict parser (h11).

**On schedule.** ``streamlib.timing.paced`` sleeps until ``start + n * interval``, not for
``interval``: the plain ``sleep(interval)`` loop drifts, each tick a little later than
the last, because every sleep overshoots a bit and the work between sleeps takes time.

**Who buffers anyway.** The server sends every chunk at once; other layers may not:

- a proxy (nginx buffers responses by default; lesson 07 measures it);
- compression (a gzip middleware collects bytes to compress them well);
- the client: ``curl`` without ``-N`` buffers its output; ``requests``'
  ``iter_content(chunk_size=None)`` hands over each chunk as it comes on a chunked
  response, but on one with a ``Content-Length`` it waits for the whole body, and on
  such a response ``iter_lines()`` (its ``chunk_size`` is 512) waits for 512 bytes at a
  time. On a chunked response both see each tick as it comes: the notebook measures all
  four.

Try it (``python lessons/03_manual_chunks.py``, or ``python -m lessons``)::

    curl -N 'http://127.0.0.1:8000/ticks?count=10&interval=0.5'
    curl -N --raw 'http://127.0.0.1:8000/ticks?count=3'      # the chunk framing itself
    curl -N --http1.0 'http://127.0.0.1:8000/ticks?count=3'  # no framing: ends at close

Notebook: ``notebooks/03_manual_chunks.ipynb``. Exercise: ``exercises/03_manual_chunks.py``.
"""

from collections.abc import Callable, Iterator

from werkzeug.wrappers import Request

from lessons.cli import run_lesson
from lessons.routes import Lesson, Route
from streamlib.timing import ticks, ticks_for  # noqa: F401 (ticks: the lesson's generator)


def serve_ticks(environ: dict, start_response: Callable) -> Iterator[bytes]:
    """``GET /ticks?count=10&interval=0.5``: one ``tick N`` line per chunk."""
    body = ticks_for(Request(environ).args)
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return body


LESSON = Lesson(
    number=3,
    slug="manual_chunks",
    title="Manual chunks",
    summary=(
        "A generator yields 'tick N' every interval seconds; the server sends each as one"
        " HTTP/1.1 chunk. See the framing with curl --raw, the drift a plain sleep loop"
        " causes, and the clients and layers that buffer anyway."
    ),
    routes=(
        Route(
            "/ticks",
            serve_ticks,
            "count ticks, interval seconds apart, one chunk each",
            "/ticks?count=10&interval=0.5",
        ),
    ),
)

if __name__ == "__main__":
    run_lesson(LESSON)
