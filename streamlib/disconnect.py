"""Notice that a client has gone without writing to it, by watching its socket.

A WSGI app normally learns that its client left only when a write fails, and after a
normal close the first write still succeeds: up to two writes late. Both werkzeug's dev
server and gunicorn put the client's socket in the environ (``werkzeug.socket``,
``gunicorn.socket``), so an app can look: a socket that is readable but yields no bytes
(``recv`` with ``MSG_PEEK``, which leaves any data in place) has reached end-of-file, the
client has closed its side. This is not part of PEP 3333; where no socket is offered, the
check says "still here" and the failed write remains the signal.
"""

import select
import socket
from collections.abc import Callable


def client_watch(environ: dict) -> Callable[[], bool]:
    """Return a function that says, without blocking, whether the client has gone.

    >>> gone = client_watch({})   # no socket in the environ: never "gone"
    >>> gone()
    False
    """
    sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    if not isinstance(sock, socket.socket):
        return lambda: False

    def gone() -> bool:
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return False  # nothing to read: the connection is quietly open
            return sock.recv(1, socket.MSG_PEEK) == b""  # readable and empty: end-of-file
        except (OSError, ValueError):  # reset by the peer, or already closed
            return True

    return gone
