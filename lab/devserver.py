"""werkzeug's development server, held to the specs the course teaches.

The course runs on werkzeug's threaded dev server by default, and six of its habits
break rules that the lessons teach, or miss the best practice PEP 3333 offers.
:class:`SpecRequestHandler` mends each one:

1. **HTTP/1.0 gets HTTP/1.0 framing.** werkzeug decides on ``Transfer-Encoding: chunked``
   from the *server's* protocol version, so an HTTP/1.0 client, which cannot read
   chunks, receives chunk sizes in its body. RFC 9112 section 6.1: "A server MUST NOT
   send a response containing Transfer-Encoding unless the corresponding request
   indicates HTTP/1.1 (or later minor revisions)." Here a 1.0 request gets a 1.0
   response whose body simply ends when the connection closes.
   https://www.rfc-editor.org/rfc/rfc9112#section-6.1
2. **``close()`` is always called.** After a response, werkzeug reads whatever the
   client still sends, then closes the app's iterable. If the client has *reset* the
   connection, that read raises and the ``close()`` is skipped, against PEP 3333: the
   stream's ``finally`` never runs and ``/stats`` counts it open forever.
3. **A request has a deadline.** werkzeug waits for a request's headers and body as long
   as the client likes: a client sending one byte every few seconds holds a thread for
   ever ("slowloris"). Here the whole request must arrive within ``request_seconds``,
   plus a second for every ``min_rate`` bytes that have come (Apache's ``mod_reqtimeout``
   works so): a client trickling a byte at a time is cut, a large upload sent at a decent
   pace is not (lesson 11). And no single wait lasts more than ``stall_seconds``, so a
   large upload that stops dead is not held for the hours its pace has earned.

4. **``100 Continue`` when the app asks for the body.** A client that sends
   ``Expect: 100-continue`` (curl 8 for bodies over 1 MiB, curl 7.88 for any PUT) waits for
   the server's go
   before it sends the body, so that a server that will refuse it (413, 401) can say so
   first. werkzeug sends ``100 Continue`` before the app even runs (twice: http.server
   sends one and werkzeug another), so an app's early 413 comes after the client was
   told to go on. PEP 3333 offers the better way, taken here: a ``wsgi.input`` that sends
   ``100 Continue`` at the app's first read (:class:`ContinueOnFirstRead`). An app that
   answers without reading costs the client nothing. (gunicorn sends it at once, too.)

5. **Framing is strict.** werkzeug reads a chunked body leniently (a chunk size of
   ``0x3`` or `` 3 ``, lines ended by a bare LF) and lets ``Transfer-Encoding`` and
   ``Content-Length`` disagree, or two ``Content-Length`` headers differ: then the app
   stores a different body than the client sent. Such requests get a 400 before the app
   runs, and chunks are undone by RFC 9112's grammar (:mod:`lab.framing`).
6. **``104`` when the app says so.** PEP 3333 has no way to send an informational answer;
   the resumable-upload draft sends ``104 Upload Resumption Supported`` with the upload's
   address before the body is read. This server offers
   ``environ["streamlib.informational"](status, headers)`` for it (gunicorn's only hook,
   ``wsgi.early_hints``, sends ``103 Early Hints`` and nothing else).

Points 2 and 3 are one small change: the handler reads the request through
:class:`DeadlineReader`, for which a reset connection, or one past its deadline, reads
as the end of input. werkzeug already treats the end of input as a client that left.
"""

import contextlib
import io
import socket
import time
from collections.abc import Callable
from typing import Any

from werkzeug.serving import WSGIRequestHandler

from lab.framing import ChunkedBody, framing_problem
from streamlib.uploads import STALL_SECONDS

REQUEST_SECONDS = 10.0  # for the headers and the body together, to begin with
MIN_RATE = 64 * 1024  # bytes a second: each that arrives extends the deadline by 1/MIN_RATE s
STALL = STALL_SECONDS  # seconds one wait for the client's bytes may last (--body-timeout)


class DeadlineReader(io.RawIOBase):
    """A socket's input that ends at a deadline, when a wait stalls, or when the connection
    fails.

    sock: the connected socket to read from.
    deadline: a ``time.monotonic()`` instant after which every read returns end of input.
    min_rate: bytes a second; every byte read moves the deadline ``1 / min_rate`` s on,
        so a client that keeps up that pace is never cut, however much it sends.
    stall: the most seconds one wait for bytes may last, whatever the deadline.

    Each ``recv`` waits at most until the deadline, so a client that trickles bytes
    cannot stretch a request past it. Errors (a reset, a timeout) read as the end of
    input: for a server, a client that broke its connection and one that closed it are
    the same, it has gone. The socket's own timeout is put back after each read, so
    writing the response is not affected.
    """

    def __init__(
        self, sock: socket.socket, deadline: float, min_rate: float = MIN_RATE, stall: float = STALL
    ) -> None:
        self.sock, self.deadline, self.min_rate, self.stall = sock, deadline, min_rate, stall

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            return 0
        previous = self.sock.gettimeout()
        try:
            self.sock.settimeout(min(remaining, self.stall))
            count = self.sock.recv_into(buffer)
            self.deadline += count / self.min_rate
            return count
        except OSError:  # reset, timed out, or closed: the client has gone
            return 0
        finally:
            with contextlib.suppress(OSError):  # closed meanwhile: nothing to put back
                self.sock.settimeout(previous)


class ContinueOnFirstRead:
    """A request body that calls ``say_continue()`` once, just before it is first read.

    PEP 3333's second way to answer ``Expect: 100-continue``: the server tells the client
    to send its body only when the application wants it.
    """

    def __init__(self, body: Any, say_continue: Callable[[], None] | None) -> None:
        self.body, self.say_continue = body, say_continue

    def _asked(self) -> Any:
        if self.say_continue is not None:
            self.say_continue()
            self.say_continue = None
        return self.body

    def read(self, size: int = -1) -> bytes:
        return self._asked().read(size)

    def readline(self, size: int = -1) -> bytes:
        return self._asked().readline(size)

    def readlines(self, hint: int = -1) -> list[bytes]:
        return self._asked().readlines(hint)

    def __iter__(self) -> Any:
        return iter(self._asked())


class SpecRequestHandler(WSGIRequestHandler):
    """werkzeug's request handler with HTTP/1.0 framing, ``close()`` always, and a deadline.

    Pass it to werkzeug: ``make_server(host, port, app, threaded=True,
    request_handler=SpecRequestHandler)``, or ``run_simple(..., request_handler=...)``.
    The module docstring says what each change fixes and why.
    """

    request_seconds: float = REQUEST_SECONDS
    min_rate: float = MIN_RATE
    stall_seconds: float = STALL

    def setup(self) -> None:
        super().setup()
        deadline = time.monotonic() + self.request_seconds
        reader = DeadlineReader(self.connection, deadline, self.min_rate, self.stall_seconds)
        self.rfile = io.BufferedReader(reader)

    def handle_expect_100(self) -> bool:
        return True  # not yet: the app's first read of the body says it (point 4)

    def run_wsgi(self) -> None:
        problem = framing_problem(self.request_version, self.headers)
        if problem is not None:
            self.refuse(*problem)
            return
        expect = self.headers.get("Expect", "").lower().strip(" \t")
        self.continue_pending = expect == "100-continue" and self.request_version >= "HTTP/1.1"
        self.response_started = False
        if self.continue_pending:
            del self.headers["Expect"]  # werkzeug would send 100 Continue for it at once
        super().run_wsgi()

    def make_environ(self) -> dict:
        environ = super().make_environ()
        if environ.get("wsgi.input_terminated"):  # chunked: undone strictly (point 5)
            environ["wsgi.input"] = ChunkedBody(self.rfile)
        environ["streamlib.informational"] = self.send_informational
        if self.continue_pending:
            environ["wsgi.input"] = ContinueOnFirstRead(environ["wsgi.input"], self.say_continue)
        return environ

    def say_continue(self) -> None:
        """Send ``100 Continue``, unless the answer has begun (then it is too late)."""
        if not self.response_started:
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.wfile.flush()

    def send_informational(self, status: str, headers: list[tuple[str, str]]) -> bool:
        """Send an informational (1xx) answer such as ``"104 Upload Resumption Supported"``
        before the final one; False, and nothing sent, once that has begun or to HTTP/1.0
        (RFC 9110 section 15.2: a server must not send a 1xx to an HTTP/1.0 client)."""
        if self.response_started or self.request_version < "HTTP/1.1":
            return False
        lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in headers)]
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        self.wfile.flush()
        return True

    def refuse(self, status: int, reason: str) -> None:
        """Answer ``status`` with ``reason`` as one line of text, and close the connection."""
        phrase = self.responses[status][0]
        body = f"{status} {phrase}: {reason}\n".encode()
        self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":  # a HEAD answer has no body, refused or not
            self.wfile.write(body)

    def send_response(self, code: int, message: str | None = None) -> None:
        self.response_started = True
        super().send_response(code, message)

    def parse_request(self) -> bool:
        parsed = super().parse_request()
        if parsed and self.request_version < "HTTP/1.1":
            # An instance attribute, for this connection only: werkzeug reads it to choose
            # chunked encoding, and http.server writes it in the status line.
            self.protocol_version = "HTTP/1.0"
        return parsed


class QuietRequestHandler(SpecRequestHandler):
    """:class:`SpecRequestHandler` without the log line of every request (errors still log)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass
