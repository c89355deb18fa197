"""``streamlib.sse.parse_events`` against the web-platform-tests ``eventsource/format-*`` cases.

The cases are the facts of the WHATWG's browser conformance suite (web-platform-tests/wpt,
``eventsource/``): each one there serves a body through ``resources/message.py``, which
sends ``message``, then ``\\n\\n`` (nothing with ``newline=none``), then ``\\n``, and checks
what an ``EventSource`` dispatches. Here the same bodies go through ``parse_events``, whole
and cut into pieces of every size from 1 byte, and must dispatch the same events.

Left out, on purpose: the ``mime-*`` cases (a browser refuses a wrong Content-Type; the
parser is handed bytes and does not see headers), the reconnection timing of
``field-retry`` (here: the ``retry`` value each event carries) and ``field-id`` cases that
need a server to echo ``Last-Event-ID`` (here: the id each event carries). The NUL-in-id
rule (WHATWG: "If the field value does not contain U+0000 NULL") is tested in test_sse.py.
"""

import pytest

from streamlib.sse import parse_events


def body(message: bytes, newline_none: bool = False) -> bytes:
    """What wpt's ``resources/message.py`` sends for ``message``."""
    return message + (b"" if newline_none else b"\n\n") + b"\n"


LONG = b"x" * 2048

# (wpt file, body, [(data, event type, last event id, retry) of each event dispatched])
CASES = [
    ("format-bom.js", body(b"\xef\xbb\xbfdata:1\n\n\xef\xbb\xbfdata:2\n\ndata:3"), ["1", "3"]),
    (
        "format-bom-2.any.js",
        body(b"\xef\xbb\xbf\xef\xbb\xbfdata:1\n\ndata:2\n\ndata:3"),
        ["2", "3"],
    ),
    (
        "format-comments.js",
        body(
            b"data:1\r:\0\n:\r\ndata:2\n:"
            + LONG
            + b"\rdata:3\n:data:fail\r:"
            + LONG
            + b"\ndata:4\n",
            newline_none=True,
        ),
        ["1\n2\n3\n4"],
    ),
    (
        "format-data-before-final-empty-line.js",  # the last event never ends: dropped
        body(b"retry:1000\ndata:test1\n\nid:test\ndata:test2", newline_none=True),
        [("test1", "message", "", 1000)],
    ),
    ("format-field-data.js", body(b"data:\n\ndata\ndata\n\ndata:test"), ["", "\n", "test"]),
    (
        "format-field-event.htm",
        body(b"event:test\ndata:x\n\ndata:x"),
        [("x", "test", "", None), ("x", "message", "", None)],
    ),
    ("format-field-event-empty.htm", body(b"event: \ndata:data"), [("data", "message", "", None)]),
    (
        "format-field-parsing.any.js",
        body(
            b"data:\0\ndata:  2\rData:1\ndata\0:2\ndata:1\r\0data:4\nda-ta:3\rdata_5\ndata:3\r"
            b"data:\r\n data:32\ndata:4\n",
            newline_none=True,
        ),
        ["\0\n 2\n1\n3\n\n4"],
    ),
    ("format-field-retry.htm", body(b"retry:02000\ndata:x"), [("x", "message", "", 2000)]),
    (
        "format-field-retry-bogus.htm",
        body(b"retry:2000\nretry:1000x\ndata:x"),
        [("x", "message", "", 2000)],
    ),
    ("format-field-retry-empty.any.js", body(b"retry\ndata:test"), [("test", "message", "", None)]),
    (
        "format-field-unknown.any.js",
        body(b"data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test"),
        ["test\n\ntest"],
    ),
    (
        "format-leading-space.any.js",
        body(b"data:\ttest\rdata: \ndata:test"),
        ["\ttest\n\ntest"],
    ),
    (
        "format-newlines.any.js",
        body(b"data:test\r\ndata\ndata:test\r\n\r", newline_none=True),
        ["test\n\ntest"],
    ),
    ("format-null-character.html", body(b"data:\0\n\n"), ["\0"]),
    ("format-utf-8.js", body(b"data:ok\xe2\x80\xa6"), ["ok\u2026"]),  # whatever charset says
    (
        "format-field-id.htm (last-event-id.py's first answer)",
        body("id: \u2026\nretry: 200\ndata: hello".encode()),
        [("hello", "message", "\u2026", 200)],
    ),
    (
        "format-field-id-3.htm (last-event-id2.py, ID_PERSISTS)",
        b"id: 1\ndata: 1\n\ndata:2\n\n",
        [("1", "message", "1", None), ("2", "message", "1", None)],
    ),
    (
        "format-field-id-3.htm (last-event-id2.py, ID_CHANGES_AND_PERSISTS)",
        b"id: 1\ndata: 1\n\nid: 2\ndata:2\n\ndata:3\n\n",
        [("1", "message", "1", None), ("2", "message", "2", None), ("3", "message", "2", None)],
    ),
    (
        "format-field-id-3.htm (last-event-id2.py, ID_RESETS)",
        b"id: 1\ndata: 1\n\nid:\ndata:2\n\ndata:3\n\n",
        [("1", "message", "1", None), ("2", "message", "", None), ("3", "message", "", None)],
    ),
]


def as_tuple(expected) -> tuple:
    return expected if isinstance(expected, tuple) else (expected, "message")


@pytest.mark.parametrize(("source", "stream", "expected"), CASES, ids=[c[0] for c in CASES])
def test_wpt_format_case(source, stream, expected):
    for size in range(1, len(stream) + 1):
        pieces = [stream[i : i + size] for i in range(0, len(stream), size)]
        events = list(parse_events(pieces))
        got = [
            (e.data, e.event, e.id, e.retry)[: len(as_tuple(want))]
            for e, want in zip(events, expected, strict=False)
        ]
        assert len(events) == len(expected) and got == [as_tuple(w) for w in expected], (
            f"{source}, in pieces of {size} bytes: {events}"
        )
