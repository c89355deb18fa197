"""lab.load: the lean SSE clients of the fan-out benchmarks count every event once,
however the server's writes are cut into reads."""

import json
import socket
import struct
import time

import pytest

from lab.load import (
    KERNEL_STAMPS,
    SO_TIMESTAMPNS,
    ClientResult,
    CrowdResult,
    _StreamClient,
    arrival_time,
    crowd,
)
from streamlib.sse import format_event

HEAD = b"HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"


def feed(
    pieces: list[bytes], time_field: str, window: tuple[float, float], timed: bool = True
) -> ClientResult:
    result = ClientResult(timed=timed)
    client = _StreamClient(result, window, 0.0, time_field)
    for piece in pieces:
        client.data_received(piece, arrived=10.0)
    return result


BODY = b": hello\n\n" + b"".join(
    format_event(json.dumps({"text": f'"sent": {n}', "sent": 1000 * n}), id=str(n))
    for n in range(1, 6)
)


@pytest.mark.parametrize("timed", [True, False], ids=["timed", "counting"])
def test_every_stamp_in_the_window_is_counted_once_whatever_the_cuts(timed):
    whole = HEAD + BODY
    for cut in range(1, len(whole), 7):  # every few bytes: inside the head, a line, a stamp
        result = feed([whole[:cut], whole[cut:]], "sent", window=(2.0, 5.0), timed=timed)
        assert result.events == 3, cut  # events 2, 3, 4 fall in the window
        assert len(result.latencies_ms) == (3 if timed else 0), cut
    assert result.first_event_after is not None


@pytest.mark.parametrize("window", [(0.0, 9.0), (1.0, 6.0), (3.0, 4.0), (3.5, 3.9), (6.0, 9.0)])
def test_a_counting_client_counts_whole_reads_and_reads_across_an_edge_alike(window):
    """An untimed client counts a read wholly inside the window at once; a read across
    an edge, or outside, stamp by stamp: the same count as a timed client's."""
    pieces = [HEAD + BODY]
    assert feed(pieces, "sent", window, timed=False).events == feed(pieces, "sent", window).events


def test_latency_counts_from_the_arrival_time_given():
    event = format_event(json.dumps({"time": 1500}), id="1")
    result = feed([HEAD, event[:5], event[5:]], "time", window=(1.0, 2.0))
    assert result.latencies_ms == [pytest.approx(8500.0)]  # arrived at 10.0 s, due at 1.5 s


@pytest.mark.skipif(not KERNEL_STAMPS, reason="kernel receive stamps are Linux's")
def test_arrival_is_when_the_kernel_received_not_when_the_client_read():
    """Up to five tries: a loaded machine may hand over bytes with no stamp (then
    ``arrival_time`` falls back to now), but a stamp, when given, is the send's time."""
    stamped = []
    for _ in range(5):
        listener = socket.create_server(("127.0.0.1", 0))
        with listener, socket.create_connection(listener.getsockname()) as client:
            client.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            server, _ = listener.accept()
            with server:
                before_send = time.time()
                server.sendall(b"data\n\n")  # on loopback, the kernel stamps it during the send
                after_send = time.time()
                time.sleep(0.3)  # a busy client: it reads late
                _, ancillary, _, _ = client.recvmsg(100, socket.CMSG_SPACE(16))
                read = time.time()
        if ancillary:
            stamped.append((before_send, arrival_time(ancillary), after_send, read))
            break
    assert stamped, "the kernel stamped none of five receives"
    [(before_send, arrived, after_send, read)] = stamped
    assert before_send - 0.001 <= arrived <= after_send + 0.001
    assert read - arrived >= 0.29


def test_without_a_kernel_stamp_arrival_is_now():
    other = [(socket.SOL_SOCKET, SO_TIMESTAMPNS + 1, struct.pack("qq", 1, 0))]
    assert abs(arrival_time(other) - time.time()) < 1.0


def test_served_counts_clients_with_every_expected_event():
    clients = [ClientResult(events=n) for n in (3, 2, 3)]
    result = CrowdResult(clients, window=(10.0, 13.0), interval=1.0)
    assert result.expected_events() == 3 and result.served() == 2
    assert result.served(expected=2) == 3


def test_crowd_refuses_anything_but_loopback():
    with pytest.raises(ValueError, match="loopback"):
        crowd("http://example.com/events", 1, window=0.1)


def test_a_crowd_times_a_sample_and_counts_every_client(live_url):
    """20 clients of a 0.2 s clock, 4 timed: all 20 count every event of the window, and
    only the 4 report latencies (on the werkzeug server of this process)."""
    result = crowd(
        live_url + "/events?interval=0.2", 20, window=1.0, ramp=0.2, interval=0.2, timed=4
    )
    assert result.served() == 20, [c.error for c in result.clients if c.error][:3]
    timed = [c for c in result.clients if c.timed]
    assert len(timed) == 4 and all(c.latencies_ms for c in timed)
    assert not any(c.latencies_ms for c in result.clients if not c.timed)
    assert len(result.latencies_ms()) == sum(c.events for c in timed)
    assert result.events() == 20 * result.expected_events()
