"""Count streams as a server opens and closes them: the figures behind ``GET /stats``.

A stream is *started* when an app hands its iterable to the server and *closed* when the
server calls ``close()`` on it, which PEP 3333 requires however the response ends: fully
sent, failed, or abandoned by a client that went away. A stream that is started but never
closed is a leak, and ``open`` shows it.
"""

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from streamlib.fanout import SharedStream


class StreamStats:
    """Thread-safe counters of started and closed streams, per route.

    >>> stats = StreamStats()
    >>> body = stats.track("/ticks", iter([b"tick 0\\n"]))
    >>> stats.snapshot()["open_streams"]
    1
    >>> body.close()
    >>> stats.snapshot()["streams_closed"]
    1
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started: Counter[str] = Counter()
        self._closed: Counter[str] = Counter()
        self._counters: dict[str, Counter[str]] = {}

    def track(
        self, route: str, iterable: Iterable[bytes], environ: dict | None = None
    ) -> Iterable[bytes]:
        """Count ``iterable`` as a started stream of ``route``; return it, closing-aware.

        route: the name to count it under.
        iterable: the app's response body.
        environ: the request's environ, to recognise the server's own file wrapper.

        The wrapper's ``close()`` first calls the iterable's own ``close()`` (so a
        generator's ``finally`` runs), then counts the stream as closed. The wrapper is a
        class, not a generator, on purpose: a generator that has not started runs none of
        its code on ``close()``, not even its ``finally``, so a generator wrapper would never
        close a stream whose client left before the first chunk.

        A ``wsgi.file_wrapper`` body is not wrapped: the server checks that the body *is*
        its wrapper before it uses ``sendfile``. Nor is a ``streamlib.fanout.SharedStream``,
        for the same reason. Their ``close`` is replaced instead.
        """
        with self._lock:
            self._started[route] += 1
        file_wrapper = (environ or {}).get("wsgi.file_wrapper")
        taken_by_type = (
            (SharedStream, file_wrapper) if isinstance(file_wrapper, type) else SharedStream
        )
        if isinstance(iterable, taken_by_type):
            close_file = getattr(iterable, "close", lambda: None)

            def close() -> None:
                try:
                    close_file()
                finally:
                    self._count_closed(route)

            iterable.close = close  # type: ignore[attr-defined]
            return iterable
        return _Closing(iterable, lambda: self._count_closed(route))

    def add(self, route: str, counter: str, amount: int = 1) -> None:
        """Add ``amount`` to a route's own counter, e.g. ``add("/chat", "tokens_generated")``.

        These appear in the route's ``/stats`` entry beside the stream counts.
        """
        with self._lock:
            self._counters.setdefault(route, Counter())[counter] += amount

    def _count_closed(self, route: str) -> None:
        with self._lock:
            self._closed[route] += 1

    def snapshot(self) -> dict:
        """Return the counters as plain data, ready for ``json.dumps``.

        ``open_streams`` is started minus closed: the streams being served right now.
        ``routes`` holds the same three figures for each route that has seen a stream.
        """
        with self._lock:
            routes = {
                route: {
                    "open_streams": self._started[route] - self._closed[route],
                    "streams_started": self._started[route],
                    "streams_closed": self._closed[route],
                    **self._counters.get(route, {}),
                }
                for route in sorted(set(self._started) | set(self._counters))
            }
        return {
            "open_streams": sum(r.get("open_streams", 0) for r in routes.values()),
            "streams_started": sum(r["streams_started"] for r in routes.values()),
            "streams_closed": sum(r["streams_closed"] for r in routes.values()),
            "routes": routes,
        }


class _Closing:
    """``iterable`` as the server sees it, with ``then`` called once when it is closed.

    Iterating it iterates ``iterable`` itself: ``__iter__`` hands the server the app's own
    iterator, so a chunk costs no call through this wrapper (werkzeug's ``ClosingIterator``
    adds one per chunk, which a stream sending to thousands of clients pays thousands of
    times a tick; lesson 07's "where the microseconds go" has the figure).
    """

    def __init__(self, iterable: Iterable[bytes], then: Callable[[], None]) -> None:
        self._iterable = iterable
        self._then: Callable[[], None] | None = then

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._iterable)

    def close(self) -> None:
        then, self._then = self._then, None
        if then is None:
            return  # closed already
        try:
            close = getattr(self._iterable, "close", None)
            if close is not None:
                close()
        finally:
            then()
