"""Call a WSGI app in-process, the way a server would, with PEP 3333 checked on the way.

No socket, no thread: build an environ, call the app, and pull the body one piece at a
time. Because you hold the iterable, you can check things a real client cannot see: that
the first piece comes before the rest is made, and that ``close()`` releases what the
stream holds. The app is wrapped in ``wsgiref.validate.validator``, which raises
``AssertionError`` on anything PEP 3333 forbids (a ``str`` body, a bad status line, a
read after ``close()``...); we add the check it leaves out: no hop-by-hop headers.
"""

import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit
from wsgiref.util import is_hop_by_hop, setup_testing_defaults
from wsgiref.validate import validator


def make_environ(
    path: str = "/", method: str = "GET", headers: dict[str, str] | None = None, body: bytes = b""
) -> dict[str, Any]:
    """Return a WSGI environ for a request to ``path`` (which may carry a query string).

    headers: request headers by their HTTP names (``{"Range": "bytes=0-9"}``).
    body: the request body, readable from ``environ["wsgi.input"]``.
    """
    url = urlsplit(path)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": url.path,
        "QUERY_STRING": url.query,
        "wsgi.input": io.BytesIO(body),
    }
    if body:
        environ["CONTENT_LENGTH"] = str(len(body))
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
    setup_testing_defaults(environ)
    return environ


@dataclass
class WSGIResponse:
    """An app's answer, with the body not yet read. ``status`` and ``headers`` are set
    once the app has called ``start_response`` (before it returns, or at the latest
    when the first piece is pulled)."""

    body: Iterable[bytes]
    status: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    _iterator: Iterator[bytes] | None = None

    @property
    def status_code(self) -> int:
        return int((self.status or "0").split()[0])

    def header(self, name: str) -> str | None:
        """The value of response header ``name`` (any case), or None."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def next_piece(self) -> bytes:
        """Pull one piece of the body, as a server's loop would; StopIteration at the end."""
        if self._iterator is None:
            self._iterator = iter(self.body)
        return next(self._iterator)

    def read(self) -> bytes:
        """Pull the rest of the body, then ``close()`` it, as a server must."""
        pieces = []
        try:
            while True:
                pieces.append(self.next_piece())
        except StopIteration:
            return b"".join(pieces)
        finally:
            self.close()

    def close(self) -> None:
        """Close the body, as a server does when a response ends or its client leaves."""
        close = getattr(self.body, "close", None)
        if close is not None:
            close()


def call_app(
    app: Callable,
    path: str = "/",
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    *,
    validate: bool = True,
    forbid_hop_by_hop: bool = True,
) -> WSGIResponse:
    """Call ``app`` for one request and return its response with the body unread.

    path, method, headers, body: the request (see :func:`make_environ`).
    validate: wrap ``app`` in ``wsgiref.validate.validator`` (keep it on in tests).
    forbid_hop_by_hop: raise ``AssertionError`` at a hop-by-hop response header
        (``Connection``...), which PEP 3333 forbids an app to send; a grader that reports
        it in its own words turns this off and looks at ``headers`` itself.

    The caller must read or close the body, as a server would:

    >>> response = call_app(app, "/streamed?size=100")    # doctest: +SKIP
    >>> response.status, response.read()                  # doctest: +SKIP
    """
    response = WSGIResponse(body=[])

    def start_response(status: str, response_headers: list, exc_info: Any = None) -> Callable:
        hop_by_hop = [name for name, _ in response_headers if is_hop_by_hop(name)]
        assert not (forbid_hop_by_hop and hop_by_hop), (
            f"hop-by-hop headers are the server's, not the app's: {hop_by_hop}"
        )
        response.status, response.headers = status, list(response_headers)
        return lambda data: None  # the legacy write(); the course never uses it

    wrapped = validator(app) if validate else app
    response.body = wrapped(make_environ(path, method, headers, body), start_response)
    return response


class FakeClock:
    """A monotonic clock that moves only when slept on, for testing paced streams.

    Pass ``fake.clock`` and ``fake.sleep`` where a stream takes ``clock`` and ``sleep``:
    the test runs at once, and ``fake.sleeps`` lists every wait the stream asked for.
    oversleep: seconds each sleep wakes late, as real sleeps do (about 0.5 ms here).

    >>> fake = FakeClock(oversleep=0.001)
    >>> fake.sleep(0.5)
    >>> fake.now, fake.sleeps
    (1000.501, [0.5])
    """

    def __init__(self, oversleep: float = 0.0, start: float = 1000.0) -> None:
        self.now, self.oversleep = start, oversleep
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 9))
        self.now += seconds + self.oversleep
