"""Fan-out in the server: the bytes that every stream sends alike, written by one loop.

A WSGI app answers with an iterable and the server writes what it yields. For a broadcast
(every client gets the same events from some point on) that is one generator per client,
woken for every event, each handing the same bytes to the server on its own. At 10,000
clients that per-stream machinery, not CPython, is what costs (lesson 07, "Where the
microseconds go"). PEP 3333 already has the answer for one kind of body: a server may offer
``wsgi.file_wrapper``, and when an app returns that wrapper the server sends the file its
fastest way (``sendfile``) instead of iterating it.

:class:`SharedStream` is the same idea for a broadcast. The app's generator yields this
client's own bytes (a greeting, the events it missed), then yields the :class:`Audience`
itself: "from here on, I send what the audience is sent". A server that knows the type
(``streamlib.fanout_worker``, a gunicorn worker) writes the bytes before that point, then
adds the connection to the audience and stops iterating: from then on each
:meth:`Audience.send` writes every piece to every member's socket in one loop, with no
generator, greenlet or timer per client. Any other server just iterates: the marker is
skipped and the generator goes on making the same bytes itself.

    >>> audience = Audience()
    >>> def clock():
    ...     yield b"hello\\n"
    ...     yield audience  # the rest is the audience's
    ...     yield b"tick 1\\n"
    >>> list(SharedStream(clock()))  # what any server sends
    [b'hello\\n', b'tick 1\\n']
    >>> audience.send(b"tick 1\\n")  # no member yet: nothing to write
"""

from collections.abc import Callable, Iterable, Iterator


class Audience:
    """The connections that are sent the same bytes, and the one loop that sends them.

    Members are added by a server that takes the fast path (``streamlib.fanout_worker``);
    each is a callable that hands bytes to one socket without waiting. Under any other
    server there are none and :meth:`send` costs nothing.
    """

    def __init__(self) -> None:
        self.members: set[Callable[[bytes], None]] = set()

    def send(self, data: bytes) -> None:
        """Write ``data`` to every member, one after another, in the caller's thread.

        Each write goes to the kernel without waiting: a member whose socket is full keeps
        the rest for later, or is dropped if it falls too far behind.
        """
        for write in list(self.members):  # a member may leave during the loop
            write(data)


class SharedStream:
    """A response body whose generator may hand its client over to an :class:`Audience`.

    body: the app's generator of bytes. Where the rest of its bytes are the same for every
        client, it yields the audience that is sent them, at a point where it has sent
        everything due so far (see ``lessons/07_production.py``'s clock). If iteration
        goes on past that point, the generator carries on by itself.

    Iterated, it yields ``body``'s bytes and skips the marker, so any server can send it;
    ``close()`` closes ``body`` (PEP 3333: the server calls it however the response ends).
    A server that hands the client over calls ``close()`` when the client leaves.
    """

    def __init__(self, body: Iterable[bytes | Audience]) -> None:
        self.body = body

    def __iter__(self) -> Iterator[bytes]:
        for piece in self.body:
            if not isinstance(piece, Audience):
                yield piece

    def close(self) -> None:
        close = getattr(self.body, "close", None)
        if close is not None:
            close()
