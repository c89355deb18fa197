"""streamlib.sse against the WHATWG spec: exact bytes out, and the spec's parsing rules in.

The parsing tests use the spec's own examples (section 9.2.6, "Interpreting an event
stream" and the examples after it), fed in awkward chunkings as well as whole.
"""

import pytest

from streamlib.sse import (
    HEARTBEAT,
    ServerSentEvent,
    SSEDecoder,
    event_stream,
    format_event,
    iter_sse_lines,
    parse_events,
)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"data": "hello"}, b"data: hello\n\n"),
        ({"data": ""}, b"data: \n\n"),
        ({"data": "a\nb"}, b"data: a\ndata: b\n\n"),
        ({"data": "a\r\nb\rc\n"}, b"data: a\ndata: b\ndata: c\ndata: \n\n"),
        ({"data": " leading space"}, b"data:  leading space\n\n"),
        ({"data": "x", "event": "tick", "id": "42"}, b"event: tick\nid: 42\ndata: x\n\n"),
        ({"data": "x", "id": ""}, b"id: \ndata: x\n\n"),
        ({"retry": 1500}, b"retry: 1500\n\n"),
        ({"comment": "hi"}, b": hi\n\n"),
        ({"comment": "two\nlines"}, b": two\n: lines\n\n"),
        ({"comment": ""}, b":\n\n"),
        ({"data": "é ✓"}, "data: é ✓\n\n".encode()),
        (
            {"data": "d", "event": "e", "id": "1", "retry": 0, "comment": "c"},
            b": c\nretry: 0\nevent: e\nid: 1\ndata: d\n\n",
        ),
    ],
)
def test_format_event_writes_exactly(kwargs, expected):
    assert format_event(**kwargs) == expected


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": "x", "id": "a\nb"},
        {"data": "x", "id": "a\rb"},
        {"data": "x", "id": "a\x00b"},
        {"data": "x", "event": "a\nb"},
        {"retry": -1},
        {"retry": 1.5},
        {"retry": "100"},
        {"retry": True},
        {},
    ],
)
def test_format_event_refuses_what_cannot_be_written(kwargs):
    with pytest.raises(ValueError):
        format_event(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": "multi\nline\r\ndata\rhere"},
        {"data": "", "event": "empty"},
        {"data": " spaces  ", "id": "id with spaces"},
        {"data": "ünïcödé 🚀", "event": "emoji"},
        {"data": "retry too", "retry": 250},
    ],
)
def test_what_format_event_writes_parse_events_reads_back(kwargs):
    (event,) = parse_events([format_event(**kwargs)])
    assert event.data == "\n".join(
        kwargs["data"].replace("\r\n", "\n").replace("\r", "\n").split("\n")
    )
    assert event.event == kwargs.get("event", "message")
    assert event.id == kwargs.get("id", "")
    assert event.retry == kwargs.get("retry")


def parse(text: str, chunk_size: int | None = None) -> list[tuple[str, str, str]]:
    raw = text.encode()
    chunks = (
        [raw]
        if chunk_size is None
        else [raw[i : i + chunk_size] for i in range(0, len(raw), chunk_size)]
    )
    return [(e.data, e.event, e.id) for e in parse_events(chunks)]


SPEC_EXAMPLES = {
    "three data lines make one event": (
        "data: YHOO\ndata: +2\ndata: 10\n\n",
        [("YHOO\n+2\n10", "message", "")],
    ),
    "comments, ids, an id reset, one space stripped": (
        ": test stream\n\ndata: first event\nid: 1\n\n"
        "data:second event\nid\n\ndata:  third event\n\n",
        [
            ("first event", "message", "1"),
            ("second event", "message", ""),
            (" third event", "message", ""),
        ],
    ),
    "empty data, two empty data lines, an unterminated last event": (
        "data\n\ndata\ndata\n\ndata:",
        [("", "message", ""), ("\n", "message", "")],
    ),
    "a space after the colon is optional": (
        "data:test\n\ndata: test\n\n",
        [("test", "message", ""), ("test", "message", "")],
    ),
    "event types": (
        "event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\n",
        [("73857293", "add", ""), ("2153", "remove", "")],
    ),
}


@pytest.mark.parametrize("name", SPEC_EXAMPLES)
@pytest.mark.parametrize("chunk_size", [None, 1, 2, 3, 7])
def test_the_spec_examples_parse_whole_or_in_pieces(name, chunk_size):
    text, events = SPEC_EXAMPLES[name]
    assert parse(text, chunk_size) == events


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("chunk_size", [None, 1, 2])
def test_cr_lf_and_crlf_all_end_lines(ending, chunk_size):
    text = f"data: a{ending}data: b{ending}{ending}data: c{ending}{ending}"
    assert parse(text, chunk_size) == [("a\nb", "message", ""), ("c", "message", "")]


def test_other_unicode_line_breaks_are_data_not_line_ends():
    # str.splitlines() would split on these; the spec does not.
    text = "data: a\x0bb\x1cc\u2028d\x85e\n\n"
    assert parse(text) == [("a\x0bb\x1cc\u2028d\x85e", "message", "")]


def test_one_leading_byte_order_mark_is_dropped_even_split_across_chunks():
    raw = "\ufeffdata: x\n\n".encode()
    assert [e.data for e in parse_events([raw[:1], raw[1:2], raw[2:]])] == ["x"]
    assert [e.data for e in parse_events(["\ufeff\ufeffdata: x\n\n".encode()])] == []


def test_an_id_containing_nul_is_ignored():
    assert parse("id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n") == [
        ("a", "message", "1"),
        ("b", "message", "1"),
    ]


def test_the_last_event_id_persists_until_changed():
    assert parse("id: 5\ndata: a\n\ndata: b\n\n") == [("a", "message", "5"), ("b", "message", "5")]


def test_an_id_alone_dispatches_nothing_but_is_remembered():
    decoder = SSEDecoder()
    for line in ["id: 9", ""]:
        assert decoder.feed(line) is None
    assert decoder.last_event_id == "9"


@pytest.mark.parametrize(
    ("value", "retry"),
    [("3000", 3000), ("0", 0), ("3s", None), ("-1", None), ("  5", None), ("٣", None), ("", None)],
)
def test_retry_takes_only_ascii_digits(value, retry):
    decoder = SSEDecoder()
    decoder.feed(f"retry:{value}")
    assert decoder.retry == retry


def test_unknown_fields_and_comments_are_ignored():
    assert parse(":comment\nfoo: bar\ndata: x\nbar\n\n") == [("x", "message", "")]


def test_invalid_utf8_becomes_the_replacement_character():
    assert [e.data for e in parse_events([b"data: \xff\xfe ok\n\n"])] == ["\ufffd\ufffd ok"]


def test_iter_sse_lines_keeps_a_cr_until_it_knows_if_lf_follows():
    assert list(iter_sse_lines([b"a\r", b"\nb\r", b"c\n", b"d\r"])) == ["a", "b", "c", "d"]


def test_event_stream_says_hello_at_once_beats_on_none_and_closes_its_source():
    closed = []

    def source():
        try:
            yield format_event("one")
            yield None
            yield format_event("two")
            yield None
        finally:
            closed.append(True)

    stream = event_stream(source(), retry=2000)
    assert next(stream) == b": connected\nretry: 2000\n\n"
    assert next(stream) == b"data: one\n\n"
    assert next(stream) == HEARTBEAT == b": heartbeat\n\n"
    assert next(stream) == b"data: two\n\n"
    stream.close()  # the server, when the client leaves
    assert closed == [True]
    assert [e.data for e in parse_events(event_stream(iter([format_event("x")])))] == ["x"]


def test_server_sent_event_defaults_match_a_browser_message_event():
    assert ServerSentEvent("d") == ServerSentEvent(data="d", event="message", id="", retry=None)
