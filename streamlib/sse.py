"""Server-Sent Events: write an event stream, and read one, as the WHATWG HTML spec says.

An event stream is UTF-8 text (``text/event-stream``). Each event is a few ``field: value``
lines followed by a blank line; a line starting with ``:`` is a comment. The spec:
https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

We write ``\\n`` (LF) as the only line separator. Readers must accept CRLF, LF and CR alike,
and nothing else: Python's ``str.splitlines`` also splits on ``\\x0b``, ``\\x1c``, ``\\u2028``
and more, so it is the wrong tool for reading SSE; ``requests``' ``iter_lines`` is wrong too, for
another reason: a CRLF cut in two by the network becomes two line ends (notebook 04).
"""

import codecs
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

LINE_BREAK = re.compile(r"\r\n|\r|\n")  # the only three line ends the spec knows


def format_event(
    data: str | None = None,
    *,
    event: str | None = None,
    id: str | None = None,
    retry: int | None = None,
    comment: str | None = None,
) -> bytes:
    """Return one event, encoded and ending with the blank line that dispatches it.

    data: the payload; each of its lines (split at CRLF, LF or CR) becomes a ``data:``
        line, and the reader joins them back with ``\\n``. None sends no ``data`` field:
        then the browser dispatches nothing (a comment-only or retry-only message).
    event: the event type (``addEventListener(type)`` in a browser); default "message".
    id: the event's id; the browser sends the last one back as ``Last-Event-ID`` when it
        reconnects. It may not contain CR, LF or NUL (``ValueError``).
    retry: milliseconds the browser should wait before reconnecting (an integer >= 0).
    comment: a comment, ignored by readers: a heartbeat, or a hello that flushes headers.

    >>> format_event("line one\\nline two", event="note", id="7")
    b'event: note\\nid: 7\\ndata: line one\\ndata: line two\\n\\n'
    >>> format_event(comment="heartbeat")
    b': heartbeat\\n\\n'
    """
    lines = []
    if comment is not None:
        lines += [f": {line}" if line else ":" for line in LINE_BREAK.split(comment)]
    if retry is not None:
        if not isinstance(retry, int) or isinstance(retry, bool) or retry < 0:
            raise ValueError(f"retry: expected an integer of milliseconds >= 0, got {retry!r}")
        lines.append(f"retry: {retry}")
    if event is not None:
        if LINE_BREAK.search(event) or "\x00" in event:
            raise ValueError(f"event: may not contain CR, LF or NUL, got {event!r}")
        lines.append(f"event: {event}")
    if id is not None:
        if LINE_BREAK.search(id) or "\x00" in id:
            raise ValueError(f"id: may not contain CR, LF or NUL, got {id!r}")
        lines.append(f"id: {id}")
    if data is not None:
        lines += [f"data: {line}" for line in LINE_BREAK.split(data)]
    if not lines:
        raise ValueError("an event needs data, event, id, retry or a comment")
    return ("\n".join(lines) + "\n\n").encode()


HEARTBEAT = format_event(comment="heartbeat")

# The headers of every event stream (lesson 04): its type; no caching, since a cached stream
# is a broken one; and no buffering by nginx in front of the server (lesson 07).
SSE_HEADERS = [
    ("Content-Type", "text/event-stream"),
    ("Cache-Control", "no-cache"),
    ("X-Accel-Buffering", "no"),
]


def event_stream(
    events: Iterable[bytes | None], retry: int | None = None, hello: str = "connected"
) -> Iterator[bytes]:
    """Wrap encoded ``events`` into a stream that flushes at once and beats when idle.

    events: encoded events (from :func:`format_event`), and None whenever the source has
        waited its heartbeat interval with nothing to send. The source decides how long to
        wait, with a bounded wait such as ``queue.get(timeout=...)``, never a busy loop.
    retry: a reconnection delay in ms for the browser, sent with the first comment.
    hello: the first comment, sent at once: the server sends the status line and headers
        together with the first non-empty piece of body (PEP 3333, "The start_response()
        Callable"), so an idle stream would otherwise leave the client not knowing it is
        connected.

    Each None becomes a heartbeat comment. A heartbeat is not only for proxies that drop
    quiet connections: a WSGI app learns that its client left only when a write fails,
    so the heartbeat interval bounds how long a stream outlives its client. However the
    stream ends, the ``finally`` closes ``events`` so that its own cleanup runs.
    """
    try:
        yield format_event(comment=hello, retry=retry)
        for event in events:
            yield HEARTBEAT if event is None else event
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched event, as a browser's ``MessageEvent`` would carry it."""

    data: str
    event: str = "message"
    id: str = ""
    retry: int | None = None  # the reconnection time in force when it was dispatched


class SSEDecoder:
    """The spec's parsing rules as a state machine: feed it lines, get events. No I/O.

    >>> decoder = SSEDecoder()
    >>> [decoder.feed(line) for line in ["data: hi", "id: 1", ""]]
    [None, None, ServerSentEvent(data='hi', event='message', id='1', retry=None)]
    """

    def __init__(self) -> None:
        self._data: list[str] = []
        self._event = ""
        self.last_event_id = ""  # persists across events, as in the spec
        self.retry: int | None = None

    def feed(self, line: str) -> ServerSentEvent | None:
        """Process one line (without its line end); return the event a blank line dispatches."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id":
            if "\x00" not in value:  # an id with NUL is ignored, not an error
                self.last_event_id = value
        elif field == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)  # anything but ASCII digits is ignored
        return None  # any other field is ignored

    def _dispatch(self) -> ServerSentEvent | None:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None  # no data field, no event (the id, if any, was still recorded)
        return ServerSentEvent("\n".join(data), event or "message", self.last_event_id, self.retry)


def iter_sse_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Split a byte stream into lines ended by CRLF, LF or CR, across chunk boundaries.

    Decodes UTF-8 incrementally (a character may straddle two chunks; bad bytes become
    U+FFFD as the spec says) and drops one leading byte-order mark. A CR at the end of a
    chunk may be half of a CRLF, so the next chunk decides. A last line with no line end
    is never yielded: the stream ended in the middle of it.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    buffer, first = "", True
    for chunk in chunks:
        buffer += decoder.decode(chunk)
        if first and buffer:
            buffer, first = buffer.removeprefix("\ufeff"), False
        while (end := LINE_BREAK.search(buffer)) is not None:
            if end.group() == "\r" and end.end() == len(buffer):
                break  # wait: an LF may follow in the next chunk
            yield buffer[: end.start()]
            buffer = buffer[end.end() :]
    buffer += decoder.decode(b"", final=True)
    if buffer.endswith("\r"):
        yield from LINE_BREAK.split(buffer)[:-1]


def parse_events(chunks: Iterable[bytes]) -> Iterator[ServerSentEvent]:
    """Yield the events of a byte stream, e.g. ``parse_events(r.iter_content(None))``.

    An event left unfinished when the stream ends (no blank line after it) is dropped,
    as the spec requires.
    """
    decoder = SSEDecoder()
    for line in iter_sse_lines(chunks):
        event = decoder.feed(line)
        if event is not None:
            yield event
