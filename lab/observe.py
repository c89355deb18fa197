"""Watch a response arrive, from the client's side: when each piece came, and how big.

This is what the notebooks plot and the tests assert on. It reads with ``requests`` and
``stream=True``, then asks for "whatever has arrived, up to N bytes" (``read1``) in a
loop, and notes the time of every read. Note what it does *not* use:
``iter_content(chunk_size=None)`` yields each HTTP chunk as it comes for a chunked
response, but for a response with a ``Content-Length`` it waits for the whole body, which
would hide when the first byte came.
"""

import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Chunk:
    """One read that returned data: ``at`` seconds after the request, ``size`` bytes."""

    at: float
    size: int


@dataclass
class Observation:
    """A response as the client saw it. Times are seconds from the moment of the request."""

    status: int
    headers: dict[str, str]
    headers_at: float
    chunks: list[Chunk] = field(default_factory=list)
    total_time: float = 0.0
    body: bytes | None = None

    @property
    def ttfb(self) -> float | None:
        """Time to first byte of the body, or None if the body was empty."""
        return self.chunks[0].at if self.chunks else None

    @property
    def total_bytes(self) -> int:
        """How many body bytes arrived."""
        return sum(chunk.size for chunk in self.chunks)

    def bytes_over_time(self) -> tuple[list[float], list[int]]:
        """Return (times, bytes received so far), ready for ``plt.step``."""
        times, received, total = [0.0], [0], 0
        for chunk in self.chunks:
            total += chunk.size
            times.append(chunk.at)
            received.append(total)
        return times, received


def observe(
    url: str,
    method: str = "GET",
    *,
    read_size: int = 64 * 1024,
    keep_body: bool = False,
    max_chunks: int | None = None,
    timeout: float = 60.0,
    **request_options,
) -> Observation:
    """Request ``url`` and record when every piece of the body arrives.

    url: the full URL, query string included.
    method: the HTTP method.
    read_size: the most bytes one read may return; a read returns as soon as *some*
        bytes are there, so this caps a chunk's size but never waits to fill it.
    keep_body: also keep the body bytes in ``Observation.body`` (off by default, so
        that observing a 1 GiB stream does not cost the client 1 GiB).
    max_chunks: stop after this many reads and hang up, like a client that leaves.
    timeout: seconds to wait for the connection and for each read.
    request_options: passed on to ``requests.request`` (``headers``, ``json``...).

    >>> seen = observe("http://127.0.0.1:8000/streamed?size=1000000")   # doctest: +SKIP
    >>> seen.ttfb, seen.total_time, len(seen.chunks)                     # doctest: +SKIP
    (0.002, 0.31, 123)
    """
    import requests  # here, not at the top: see streamlib.fanout_worker on what imports cost

    body = bytearray()
    start = time.perf_counter()
    with requests.request(method, url, stream=True, timeout=timeout, **request_options) as r:
        seen = Observation(
            status=r.status_code,
            headers=dict(r.headers),
            headers_at=time.perf_counter() - start,
        )
        while max_chunks is None or len(seen.chunks) < max_chunks:
            data = r.raw.read1(read_size)
            if not data:
                break
            seen.chunks.append(Chunk(at=time.perf_counter() - start, size=len(data)))
            if keep_body:
                body += data
    seen.total_time = time.perf_counter() - start
    if keep_body:
        seen.body = bytes(body)
    return seen


def before_the_body(
    url: str, head: bytes, body: bytes = b"", wait: float = 0.3
) -> tuple[bytes, bytes]:
    """What a server at ``url`` says between a request's head and its body, and after.

    Sends ``head`` (a raw request head, such as one with ``Expect: 100-continue``), waits
    ``wait`` seconds and takes what arrived: ``100 Continue``, a final answer such as a
    413, or nothing. Then, unless a final answer came, sends ``body``, and reads until the
    server closes. Returns (what came before the body, what came after).

    >>> before_the_body(url, head_of_a_2_gb_put)  # doctest: +SKIP
    (b'HTTP/1.1 413 Request Entity Too Large\\r\\n...', b'')
    """
    import socket

    address = url.removeprefix("http://").split("/")[0]
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        time.sleep(wait)
        sock.setblocking(False)
        try:
            early = sock.recv(65536)
        except BlockingIOError:
            early = b""
        sock.setblocking(True)
        final = early.startswith(b"HTTP/1.") and not early[9:12].startswith(b"1")
        if body and not final:
            sock.sendall(body)
        rest = b""
        while data := sock.recv(65536):
            rest += data
    return early, rest
