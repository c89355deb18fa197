"""A gunicorn gevent worker that serves a :class:`~streamlib.fanout.SharedStream` from one loop.

    gunicorn --worker-class streamlib.fanout_worker.FanOutWorker lessons.wsgi:app

(``python -m lessons --server gunicorn --worker-class fanout`` prints that command.) Every
response goes the gevent worker's way but one: a :class:`~streamlib.fanout.SharedStream`.
For that one, the worker writes the response itself: the head, then the body's own bytes,
until the body yields its :class:`~streamlib.fanout.Audience`. Then it makes the socket a
member of that audience and lets go of the request: the connection's greenlet ends, and
what is left per client is a file descriptor, what waits to be written to it, and a watcher
that the event loop calls once if the client sends anything (nothing runs per client
until then). Each :meth:`~streamlib.fanout.Audience.send` is then one ``write`` per member
in one loop, the shape of ``bench.one_loop``, CPython's floor in lesson 07's benchmark.

To an HTTP/1.1 client the response is chunked, as gunicorn's own streamed responses are:
a client such as ``requests`` hands over each chunk as it comes, where a body that ends
only when the connection closes would have it wait for a full read. A chunk's framing
depends on its length only, so each piece is framed once for every member
(:func:`chunked`). An HTTP/1.0 client, which knows no chunks, gets the bytes as they are.
Either way the connection closes when the member leaves. A
member that stops reading keeps up to :data:`MAX_BEHIND` bytes waiting, then is dropped:
an SSE client comes back with ``Last-Event-ID`` and catches up. Members are not requests
to gunicorn, so on SIGTERM the worker does not wait ``--graceful-timeout`` for them: they
are cut when it exits, and come back the same way.

gunicorn's arbiter imports this module, and so ``streamlib``, before it starts a worker, and
so before the worker patches the standard library (lesson 07). So nothing ``streamlib``
imports at its top may take hold of what gevent patches: ``requests`` does (``urllib3``
keeps ``ssl``'s originals), which is why ``lab.observe`` and ``lab.serving``
import it inside the functions that use it.
"""

import logging
import os
from collections.abc import Callable, Iterator
from functools import lru_cache

from gevent import get_hub
from gunicorn.workers.ggevent import GeventWorker
from werkzeug.http import http_date

from streamlib.fanout import Audience, SharedStream

logger = logging.getLogger(__name__)

MAX_BEHIND = 256 * 1024  # bytes waiting for a member that does not read, before it is dropped
READ, WRITE = 1, 2  # libev's event masks
TAKEN = object()  # what the app "returns" for a response this worker took over


class FanOutWorker(GeventWorker):
    """gunicorn's gevent worker, plus the fast path for :class:`~streamlib.fanout.SharedStream`.

    Over TLS it is the plain gevent worker: the fast path writes to the socket's file
    descriptor, under any encryption.
    """

    def load_wsgi(self) -> None:
        super().load_wsgi()
        if not self.cfg.is_ssl:
            self.wsgi = taking_shared_streams(self.wsgi)

    def is_already_handled(self, respiter: object) -> bool:
        if respiter is TAKEN:
            # gunicorn's own way to end a connection: it closes its socket and the
            # greenlet ends. The member holds a second descriptor of the same connection.
            raise StopIteration
        return super().is_already_handled(respiter)


def taking_shared_streams(app: Callable) -> Callable:
    """Wrap the WSGI ``app``: a :class:`SharedStream` it returns is served by :func:`serve`."""

    def app_with_fan_out(environ: dict, start_response: Callable) -> object:
        head: list = []

        def remember(status: str, headers: list, exc_info: object = None) -> Callable:
            head[:] = [status, headers]
            return start_response(status, headers, exc_info)

        body = app(environ, remember)
        sock = environ.get("gunicorn.socket")
        if not isinstance(body, SharedStream) or sock is None or not head:
            return body
        if environ["SERVER_PROTOCOL"] not in ("HTTP/1.0", "HTTP/1.1"):
            return body
        http11 = environ["SERVER_PROTOCOL"] == "HTTP/1.1"
        serve(body, sock, response_head(*head, chunks=http11), chunked if http11 else bytes)
        return TAKEN

    return app_with_fan_out


def response_head(status: str, headers: list[tuple[str, str]], chunks: bool) -> bytes:
    """The status line and headers of a response on a connection used once: chunked, or
    (``chunks`` False, for an HTTP/1.0 client) ended by the close."""
    lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in headers)]
    lines.append(f"Date: {http_date()}")
    lines += ["Transfer-Encoding: chunked"] if chunks else []
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@lru_cache(maxsize=16)
def chunked(data: bytes) -> bytes:
    """``data`` as one HTTP/1.1 chunk: its length in hex, CRLF, the bytes, CRLF.

    Cached: every member of an audience is sent the same bytes, framed once for them all
    (a ``bytes`` object keeps its hash, so each lookup after the first is cheap).
    """
    return b"%x\r\n%b\r\n" % (len(data), data)


def serve(body: SharedStream, sock: object, head: bytes, frame: Callable[[bytes], bytes]) -> None:
    """Send ``head`` and ``body``'s own bytes on ``sock``; at its audience, hand it over.

    frame: how each piece goes on the wire: :func:`chunked`, or ``bytes`` as it is.

    Until the audience comes, the connection's greenlet writes as any worker does
    (``sendall`` waits cooperatively). Between the audience's arrival and the member's
    joining nothing waits, so no event sent to the audience falls between the two.
    """
    pieces: Iterator = iter(body.body)
    try:
        for piece in pieces:
            if isinstance(piece, Audience):
                member = Member(os.dup(sock.fileno()), body.close, frame)
                member.join(piece, head)
                return
            if piece:  # an empty chunk would be the end
                sock.sendall(head + frame(piece))
                head = b""
        sock.sendall(head + (b"0\r\n\r\n" if frame is chunked else b""))  # ended, no audience
    except OSError:
        pass  # the client left
    except Exception:
        logger.exception("error in a shared stream")
    body.close()


class Member:
    """One client of an :class:`Audience`: its socket, the bytes waiting for it, its watchers.

    fd: a descriptor of the client's connection, this member's to close.
    on_leave: called once when the member leaves, to close the response's body.
    frame: how each piece goes on the wire: :func:`chunked` (the default), or ``bytes``.
    """

    __slots__ = ("audience", "fd", "frame", "on_leave", "readable", "waiting", "writable")

    def __init__(
        self, fd: int, on_leave: Callable[[], None], frame: Callable[[bytes], bytes] = chunked
    ) -> None:
        os.set_blocking(fd, False)
        self.fd = fd
        self.frame = frame
        self.waiting = b""
        self.audience: Audience | None = None
        self.on_leave = on_leave
        loop = get_hub().loop
        self.readable = loop.io(fd, READ)
        self.writable = loop.io(fd, WRITE)

    def join(self, audience: Audience, head: bytes) -> None:
        """Become a member of ``audience``, with ``head`` (if any) to write first."""
        self.audience = audience
        audience.members.add(self)
        self.readable.start(self.on_readable)
        if head:
            self.write(head)

    def __call__(self, data: bytes) -> None:
        """Send ``data``, framed (what :meth:`Audience.send` calls)."""
        if data:
            self.write(self.frame(data))

    def write(self, data: bytes) -> None:
        """Write ``data`` now, or after what is waiting; leave if too much is waiting."""
        if self.waiting:
            if len(self.waiting) + len(data) > MAX_BEHIND:
                self.leave()
            else:
                self.waiting += data
            return
        try:
            sent = os.write(self.fd, data)
        except BlockingIOError:
            sent = 0
        except OSError:  # the client is gone (EPIPE, ECONNRESET)
            self.leave()
            return
        if sent < len(data):
            self.waiting = data[sent:]
            self.writable.start(self.on_writable)

    def on_writable(self) -> None:
        """The kernel has room again: write what was waiting."""
        self.writable.stop()
        data, self.waiting = self.waiting, b""
        self.write(data)

    def on_readable(self) -> None:
        """The client sent something, closed its side, or reset the connection.

        An empty read says only that the client will send nothing more: it may still be
        reading (TCP's half-close). Bytes after the request have nothing to answer (an
        ``EventSource`` sends none), and reading on would let a client keep this loop busy
        as long as it sends. Either way the watching stops: what else comes waits in the
        kernel, whose full buffer soon stops the sender (TCP's flow control), as under
        gunicorn's own workers, which read nothing while they send a response. A client
        that is really gone is noticed at the next write, which fails, as under any
        worker. A reset leaves at once.
        """
        try:
            os.read(self.fd, 4096)
        except BlockingIOError:
            return
        except OSError:  # ECONNRESET: gone
            self.leave()
            return
        self.readable.stop()

    def leave(self) -> None:
        """Stop watching, close the descriptor, and close the response's body (once)."""
        if self.audience is None:
            return
        self.audience.members.discard(self)
        self.audience = None
        self.readable.close()
        self.writable.close()
        os.close(self.fd)
        try:
            self.on_leave()
        except Exception:
            logger.exception("error closing a shared stream")
