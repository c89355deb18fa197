"""Where a request's body ends, decided strictly: RFC 9112's framing rules for a server.

Two headers can say where a request body ends, ``Content-Length`` and
``Transfer-Encoding: chunked``, and a server that guesses when they disagree reads a
different body than the client (or a proxy in front) meant: the bytes it leaves over, or
takes from the next request, are how request smuggling works. RFC 9112 is strict about it,
and so is the course's dev server (``lab.devserver``); gunicorn already is.

- :func:`framing_problem` checks the headers before the app runs: a request with both
  headers, two ``Content-Length`` headers, a length that is not a plain number, a
  ``Transfer-Encoding`` that does not end with one ``chunked``, or one in an HTTP/1.0
  request is refused with a 400 and the connection closed: the safe side of what RFC 9112
  sections 6.1 and 6.3 allow (a server MAY instead frame by ``Transfer-Encoding`` alone,
  or take repeated equal lengths); so is an HTTP/1.1 request without exactly one ``Host``
  (section 3.2, a MUST). Another
  coding before ``chunked`` (``gzip, chunked``) is a 501: understood, not supported.
- :class:`ChunkedBody` undoes a chunked body by the grammar of section 7.1 and nothing
  looser: a chunk size of at most 16 hex digits, leading zeros included (stricter than the
  grammar's ``1*HEXDIG``; Go's ``net/http`` does the same), with
  nothing around it but chunk extensions, every line ended by CRLF, no bare LF, trailer
  fields read and dropped. Anything else raises :class:`MalformedBody` at once, instead of
  waiting for bytes a bogus size promised.

https://www.rfc-editor.org/rfc/rfc9112#section-6
"""

import io
import re
from email.message import Message
from typing import BinaryIO

MAX_LINE = 4096  # bytes in a chunk-size line or a trailer line, with its CRLF
MAX_TRAILERS = 64 * 1024  # bytes in the whole trailer section

# RFC 9110 section 5.6.2 and 5.6.4: token and quoted-string; RFC 9112 section 7.1.1:
#   chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,16})"  # chunk-size: at most 64 bits
    rb"((?:[ \t]*;[ \t]*" + _TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb"|" + _QUOTED + rb"))?)*)"
)
TRAILER_FIELD = re.compile(rb"(" + _TOKEN + rb"):[\t -~\x80-\xff]*")


class MalformedBody(ValueError):
    """A chunked request body that breaks RFC 9112's grammar: the request is a 400."""


def framing_problem(version: str, headers: Message) -> tuple[int, str] | None:
    """Say what is wrong with how a request frames its body, as ``(status, reason)``, or
    None if nothing is.

    version: the request's protocol, ``"HTTP/1.0"`` or ``"HTTP/1.1"``.
    headers: its header fields, every line of them (``http.server`` gives a ``Message``).

    A request this refuses must be answered with ``status`` (400, or 501 for a transfer
    coding the server does not know, RFC 9112 section 6.1) and its connection closed:
    nobody can say where its body ends, so nothing after it can be trusted.

    >>> from email.message import Message
    >>> both = Message()
    >>> both["Host"], both["Content-Length"], both["Transfer-Encoding"] = "a", "5", "chunked"
    >>> framing_problem("HTTP/1.1", both)
    (400, 'both Transfer-Encoding and Content-Length: the body could end at either')
    """
    hosts = headers.get_all("Host") or []
    if len(hosts) > 1:
        return 400, "more than one Host header: which one is this request for?"
    if not hosts and version >= "HTTP/1.1":
        return 400, "an HTTP/1.1 request needs a Host header"
    lengths = [value.strip(" \t") for value in headers.get_all("Content-Length") or []]
    codings = headers.get_all("Transfer-Encoding") or []
    if codings:
        if version < "HTTP/1.1":
            return 400, "Transfer-Encoding in an HTTP/1.0 request, which cannot use it"
        if lengths:
            return 400, "both Transfer-Encoding and Content-Length: the body could end at either"
        names = [name.strip(" \t").lower() for value in codings for name in value.split(",")]
        if names[-1] != "chunked" or names.count("chunked") > 1:
            return 400, f"Transfer-Encoding must end with one chunked, got {', '.join(names)!r}"
        if len(names) > 1:
            return 501, f"Transfer-Encoding: only chunked is understood here, got {names[:-1]}"
    if len(lengths) > 1:
        return 400, "more than one Content-Length header"
    if lengths and not (lengths[0].isascii() and lengths[0].isdigit()):
        return 400, f"Content-Length: expected a number of bytes, got {lengths[0][:40]!r}"
    return None


class ChunkedBody(io.RawIOBase):
    """A chunked request body, read from ``source`` and handed out without its framing.

    source: the connection's buffered input, positioned at the first chunk-size line.

    ``read`` gives the data of the chunks and ``b""`` after the last chunk and the trailer
    section; a body that breaks the grammar, or ends before its last chunk, raises
    :class:`MalformedBody` (the app answers 400). Trailer fields are read and dropped.
    """

    def __init__(self, source: BinaryIO) -> None:
        self.source = source
        self.left = 0  # bytes of the current chunk not yet read
        self.started = False
        self.finished = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self.finished or not len(buffer):
            return 0
        if self.left == 0:
            if self.started:
                self._line_end_after_data()
            self.started = True
            self.left = self._chunk_size()
            if self.left == 0:
                self._trailer_section()
                self.finished = True
                return 0
        wanted = memoryview(buffer)[: min(len(buffer), self.left)]
        count = self.source.readinto(wanted)
        if not count:
            raise MalformedBody(f"the body ended {self.left} bytes into a chunk")
        self.left -= count
        return count

    def _line(self) -> bytes:
        """The next line without its CRLF; a bare LF, a long line or the end is refused."""
        line = self.source.readline(MAX_LINE)
        if not line.endswith(b"\r\n"):
            if line.endswith(b"\n"):
                raise MalformedBody("a line ended by a bare LF; HTTP/1.1 ends lines with CRLF")
            if len(line) >= MAX_LINE:
                raise MalformedBody(f"a line longer than {MAX_LINE} bytes")
            raise MalformedBody("the body ended before its last chunk")
        return line[:-2]

    def _chunk_size(self) -> int:
        line = self._line()
        found = CHUNK_LINE.fullmatch(line)
        if found is None:
            raise MalformedBody(f"a chunk size must be 1 to 16 hex digits, got {line[:40]!r}")
        return int(found.group(1), 16)

    def _line_end_after_data(self) -> None:
        if self.source.read(2) != b"\r\n":
            raise MalformedBody("a chunk's data must be followed by CRLF")

    def _trailer_section(self) -> None:
        size = 0
        while line := self._line():
            size += len(line) + 2
            if size > MAX_TRAILERS:
                raise MalformedBody(f"trailer fields over {MAX_TRAILERS} bytes")
            if not TRAILER_FIELD.fullmatch(line):
                raise MalformedBody(f"a trailer field must be name: value, got {line[:40]!r}")
