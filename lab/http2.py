"""HTTP/2 on the wire: requests on one connection, the response read frame by frame.

HTTP/1.1 sends one response at a time on a connection, its body framed by chunked
encoding. HTTP/2 (RFC 9113) cuts every response into frames on a numbered *stream*, and
many streams share one connection: a ``HEADERS`` frame with the status and headers, then
``DATA`` frames as the body comes, the last one flagged ``END_STREAM``. Each stream has a
flow-control window: the sender may send only as many bytes as the reader has made room
for (``WINDOW_UPDATE``), so a stream that is not read stops alone, and the others go on.

:func:`exchange` speaks HTTP/2 with the ``h2`` library (the protocol, no I/O of its own)
over a TLS socket, as a browser does, and reports what arrived on each stream and when.
"""

import socket
import ssl
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CONNECTION_WINDOW = 15 * 1024 * 1024  # bytes in flight on the whole connection, as Chromium


@dataclass(frozen=True)
class Arrival:
    """One thing that arrived: ``kind`` is ``"HEADERS"`` (``headers`` set), ``"DATA"``
    (``data`` set), or ``"END_STREAM"``; ``at`` is seconds after the requests were sent,
    ``when`` the wall-clock time (``time.time()``), to compare with the events' own stamps."""

    at: float
    when: float
    stream: int
    path: str
    kind: str
    headers: tuple[tuple[str, str], ...] = ()
    data: bytes = b""


def exchange(
    base_url: str,
    paths: Sequence[str],
    *,
    ca: Path | None = None,
    seconds: float = 10.0,
    unread: Collection[str] = (),
) -> tuple[str, list[Arrival]]:
    """GET every one of ``paths`` from ``base_url`` (``https://127.0.0.1:8443``) at once, as
    streams of one HTTP/2 connection; return the protocol the TLS handshake chose and
    what arrived, in order, until every stream ended or ``seconds`` passed.

    ca: the certificate authority to trust (``lab.certs``); None trusts the system's.
    unread: paths whose bytes the client never makes room for again: their window fills
        (64 KiB less one byte, HTTP/2's default) and the server must pause them.
    """
    with tls_connection(base_url, ca, seconds) as tls:
        protocol = tls.selected_alpn_protocol() or "http/1.1"
        if protocol != "h2":
            return protocol, []
        connection, streams = send_requests(urlsplit(base_url).netloc, paths)
        tls.sendall(connection.data_to_send())
        return protocol, read_streams(tls, connection, streams, seconds, unread)


@contextmanager
def tls_connection(base_url: str, ca: Path | None, timeout: float) -> Iterator[ssl.SSLSocket]:
    """A TLS connection to ``base_url`` that asks for HTTP/2 in its handshake (ALPN ``h2``),
    as browsers do; a server that does not speak it answers ``http/1.1`` or nothing."""
    address = urlsplit(base_url)
    context = ssl.create_default_context(cafile=str(ca) if ca else None)
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection((address.hostname, address.port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=address.hostname) as tls,
    ):
        yield tls


def send_requests(authority: str, paths: Sequence[str]) -> tuple[Any, dict[int, str]]:
    """An ``h2`` client connection with a GET queued for each path, one stream each
    (1, 3, 5...: a client's streams are odd); returns it and {stream id: path}."""
    import h2.config
    import h2.connection

    config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    connection = h2.connection.H2Connection(config=config)
    connection.initiate_connection()
    # The connection has a window too, shared by its streams. Browsers open it wide
    # (Chromium: 15 MiB) so that one unread stream cannot close it for the others.
    connection.increment_flow_control_window(CONNECTION_WINDOW - 65_535)
    streams = {}
    for path in paths:
        stream_id = connection.get_next_available_stream_id()
        streams[stream_id] = path
        request = [(":method", "GET"), (":scheme", "https"), (":authority", authority)]
        connection.send_headers(stream_id, [*request, (":path", path)], end_stream=True)
    return connection, streams


def read_streams(
    tls: ssl.SSLSocket,
    connection: Any,
    streams: dict[int, str],
    seconds: float,
    unread: Collection[str],
) -> list[Arrival]:
    """What arrives on ``streams`` until they all end or ``seconds`` pass."""
    import h2.events

    arrivals: list[Arrival] = []
    started = time.monotonic()
    open_streams = set(streams)
    while open_streams and (left := seconds - (time.monotonic() - started)) > 0:
        tls.settimeout(left)
        try:
            received = tls.recv(65536)
        except TimeoutError:
            break
        if not received:
            break
        at, when = time.monotonic() - started, time.time()
        for event in connection.receive_data(received):
            stream = getattr(event, "stream_id", 0)
            path = streams.get(stream, "")
            if isinstance(event, h2.events.ResponseReceived):
                arrivals.append(Arrival(at, when, stream, path, "HEADERS", tuple(event.headers)))
            elif isinstance(event, h2.events.DataReceived):
                arrivals.append(Arrival(at, when, stream, path, "DATA", data=event.data))
                if path not in unread:  # make room for as much again
                    connection.acknowledge_received_data(event.flow_controlled_length, stream)
            elif isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
                arrivals.append(Arrival(at, when, stream, path, "END_STREAM"))
                open_streams.discard(stream)
        tls.sendall(connection.data_to_send())
    return arrivals
