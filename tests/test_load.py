"""streamlib.load: the lean SSE clients of the fan-out benchmarks count every event once,
however the server's writes are cut into reads."""

import asyncio
import json

import pytest

from streamlib.load import ClientResult, CrowdResult, _StreamClient, crowd
from streamlib.sse import format_event

HEAD = b"HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"


def feed(pieces: list[bytes], time_field: str, window: tuple[float, float]) -> ClientResult:
    loop = asyncio.new_event_loop()
    try:
        result = ClientResult()
        client = _StreamClient(b"", result, window, 0.0, loop.create_future(), time_field)
        for piece in pieces:
            client.data_received(piece)
        return result
    finally:
        loop.close()


def test_every_stamp_in_the_window_is_counted_once_whatever_the_cuts():
    body = b": hello\n\n" + b"".join(
        format_event(json.dumps({"text": f'"sent": {n}', "sent": 1000 * n}), id=str(n))
        for n in range(1, 6)
    )
    whole = HEAD + body
    for cut in range(1, len(whole), 7):  # every few bytes: inside the head, a line, a stamp
        result = feed([whole[:cut], whole[cut:]], "sent", window=(2.0, 5.0))
        assert len(result.latencies_ms) == 3, cut  # events 2, 3, 4 fall in the window
    assert result.first_event_after is not None


def test_the_clock_field_is_read_by_default_name():
    event = format_event(json.dumps({"time": 1500}), id="1")
    result = feed([HEAD, event[:5], event[5:]], "time", window=(1.0, 2.0))
    assert len(result.latencies_ms) == 1


def test_served_counts_clients_with_every_expected_event():
    clients = [ClientResult(latencies_ms=[1.0] * n) for n in (3, 2, 3)]
    result = CrowdResult(clients, window=(10.0, 13.0), interval=1.0)
    assert result.expected_events() == 3 and result.served() == 2
    assert result.served(expected=2) == 3


def test_crowd_refuses_anything_but_loopback():
    with pytest.raises(ValueError, match="loopback"):
        crowd("http://example.com/events", 1, window=0.1)
