"""Gzip responses without holding streams back.

Compression and streaming pull in opposite directions. Deflate packs better the more it
sees, so a compressor keeps small inputs to itself until it has a block's worth (zlib's
default: 16,384 literals or matches, some 190 KB of the clock's events): a middleware
that compresses each piece as it comes and sends whatever comes out sends *nothing* for
a stream of small events, until the stream ends.
The events are not lost, only held, which for a live stream is the same as broken.

Two ways out, both in :func:`gzip_responses`:

- leave streams alone: ``skip_types=("text/event-stream",)`` passes event streams through
  uncompressed (what most compression middleware should be told to do);
- flush after every piece: ``sync_flush=True`` ends each piece with a deflate sync flush
  (``zlib.Z_SYNC_FLUSH``), which pushes out everything so far on a byte boundary. The
  client can decode each piece as it comes; the cost is a few bytes per flush and a worse
  ratio, since each piece is packed with less context.

Gzip framing: RFC 1952; ``Content-Encoding``: RFC 9110 section 8.4.
"""

import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from streamlib.disconnect import client_watch

WSGIApp = Callable[..., Any]


def gzip_responses(
    app: WSGIApp, *, skip_types: tuple[str, ...] = (), sync_flush: bool = False
) -> WSGIApp:
    """Wrap ``app`` so that its responses are gzipped for clients whose ``Accept-Encoding``
    names gzip.

    app: the WSGI app to wrap. It must call ``start_response`` before it returns its body
        (as every app in this course does), so that the headers can be rewritten.
    skip_types: media types to pass through uncompressed, such as ``"text/event-stream"``.
    sync_flush: end every piece of the body with a sync flush, so that it leaves at once;
        without it, small pieces wait inside the compressor.

    Compressed responses lose their ``Content-Length`` (the new length is unknown until
    the end) and get ``Content-Encoding: gzip`` and ``Vary: Accept-Encoding`` (so that
    caches keep both versions apart). Responses that are already encoded pass through.

    >>> app = gzip_responses(app, skip_types=("text/event-stream",))   # doctest: +SKIP
    """

    def compressing_app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if "gzip" not in environ.get("HTTP_ACCEPT_ENCODING", ""):
            return app(environ, start_response)
        compress = False

        def start_compressed(status: str, headers: list, exc_info: Any = None) -> Callable:
            nonlocal compress
            names = {name.lower(): value for name, value in headers}
            media_type = names.get("content-type", "").split(";")[0].strip().lower()
            compress = "content-encoding" not in names and media_type not in skip_types
            if compress:
                headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
                headers += [("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")]
            return start_response(status, headers, exc_info)

        body = app(environ, start_compressed)
        return gzip_pieces(body, sync_flush, client_watch(environ)) if compress else body

    return compressing_app


def gzip_pieces(
    body: Iterable[bytes], sync_flush: bool = False, gone: Callable[[], bool] | None = None
) -> Iterator[bytes]:
    """Yield ``body`` gzipped, piece by piece; with ``sync_flush``, every piece at once.

    body: the app's response body; it is closed however this generator ends.
    sync_flush: flush the compressor after each piece (see the module's docstring).
    gone: a check that the client has left (``streamlib.disconnect.client_watch``), asked
        after a piece the compressor kept. A WSGI app learns that its client left when a
        write fails; a piece kept back is no write at all, so without this check an
        endless stream behind the compressor would outlive its client for ever.
    """
    compressor = zlib.compressobj(wbits=31)  # 31: deflate with a gzip header and trailer
    try:
        for piece in body:
            out = compressor.compress(piece)
            if sync_flush:
                out += compressor.flush(zlib.Z_SYNC_FLUSH)
            if out:
                yield out
            elif gone is not None and gone():
                return  # nobody to send the rest to
        yield compressor.flush()  # the last block and the gzip trailer
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
