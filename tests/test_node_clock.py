"""The Node yardstick (``lab.node_clock``) sends the course's clock byte for byte.

Lesson 07's fan-out benchmark puts Node beside gunicorn: the comparison is fair only if
both send the same events at the same due times, so the bytes are checked here against
the course's own ``/events``, and the load generator is checked to read Node's stream.
"""

import re
import socket
from urllib.parse import urlsplit

import pytest
from real_programs import need

from lab.load import crowd
from lab.node_clock import spawn_node_clock

pytestmark = pytest.mark.live

CLOCK = re.compile(rb': connected\nretry: 1000\n\n((?:id: \d+\ndata: \{"time": \d+\}\n\n)+)')
EVENT = re.compile(rb'id: (\d+)\ndata: \{"time": (\d+)\}\n\n')


def head_and_events(url: str, events: int) -> tuple[bytes, bytes]:
    """The response head and the body, read raw over HTTP/1.0 until ``events`` events (and
    the first comment) have come."""
    address = urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=5) as sock:
        sock.sendall(f"GET {address.path}?{address.query} HTTP/1.0\r\n\r\n".encode())
        received = b""
        while received.count(b"\n\n") < events + 1 or b"\r\n\r\n" not in received:
            piece = sock.recv(65536)
            assert piece, f"the stream ended early: {received!r}"
            received += piece
    head, _, body = received.partition(b"\r\n\r\n")
    return head, body


def clock_of(body: bytes, interval_ms: int) -> list[int]:
    """The ids of a clock's events, checked to be consecutive and stamped with their due time."""
    found = CLOCK.match(body)
    assert found, body[:200]
    events = [(int(n), int(time)) for n, time in EVENT.findall(found[1])]
    assert all(time == n * interval_ms for n, time in events), events
    ids = [n for n, _ in events]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    return ids


def test_node_sends_the_course_s_clock_with_the_same_bytes(live_url):
    need("node", "nodejs")
    with spawn_node_clock() as node:
        node_head, node_body = head_and_events(node.url + "/events?interval=0.2", 3)
    our_head, our_body = head_and_events(live_url + "/events?interval=0.2", 3)
    for head in (node_head, our_head):
        assert b"\r\ncontent-type: text/event-stream" in head.lower()
    assert len(clock_of(node_body, 200)) >= 3 and len(clock_of(our_body, 200)) >= 3


@pytest.mark.parametrize("interval", ["0", "-1", "abc", "1e999", "0.001"])
def test_node_refuses_an_interval_outside_the_course_s_bounds(interval):
    import requests

    need("node", "nodejs")
    with spawn_node_clock() as node:
        answer = requests.get(f"{node.url}/events?interval={interval}", timeout=5)
    assert answer.status_code == 400 and "interval" in answer.text


def test_the_load_generator_reads_every_node_event():
    need("node", "nodejs")
    with spawn_node_clock() as node:
        result = crowd(node.url + "/events?interval=0.2", 50, window=1.0, ramp=0.2, interval=0.2)
    assert result.served() == 50
    assert 0 < result.client_cores_used() < 1, "the load generator's CPU, in cores"


def test_the_node_relay_sends_what_the_course_sends_for_a_broadcast():
    """Lesson 08's yardstick (``lab.node_relay``): each message published to the
    room's Redis Stream reaches every client as the course's ``/broadcast`` sends it."""
    need("node", "nodejs")
    need("redis-server", "redis-server")
    import json
    import time

    import redis

    from lab.node_relay import spawn_node_relay
    from lab.redis_server import spawn_redis
    from lessons import spawn_course
    from streamlib.broadcast import publish

    with (
        spawn_redis() as broker,
        spawn_node_relay(broker.url) as node,
        spawn_course("--redis", broker.url) as course,
    ):
        readers = [raw_reader(server.url + "/broadcast") for server in (node, course)]
        time.sleep(0.5)  # both are blocked on the stream's newest message by now
        client = redis.Redis.from_url(broker.url, decode_responses=True)
        ids = [publish(client, json.dumps({"text": f"m{n}"})) for n in range(3)]
        bodies = [read_until(reader, ids[-1].encode()) for reader in readers]
    node_body, course_body = bodies
    expected = b"".join(
        b'id: %s\ndata: {"text": "m%d"}\n\n' % (message_id.encode(), n)
        for n, message_id in enumerate(ids)
    )
    assert node_body.endswith(expected), node_body
    assert course_body.split(b"\n\n", 1)[1].endswith(expected), course_body  # after its hello


def raw_reader(url: str) -> socket.socket:
    address = urlsplit(url)
    sock = socket.create_connection((address.hostname, address.port), timeout=5)
    sock.sendall(f"GET {address.path} HTTP/1.0\r\n\r\n".encode())
    return sock


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    """The body read from ``sock`` until ``marker`` and the end of its event have come."""
    with sock:
        received = b""
        while not (marker in received and received.endswith(b"\n\n")):
            piece = sock.recv(65536)
            assert piece, f"the stream ended early: {received!r}"
            received += piece
    return received.partition(b"\r\n\r\n")[2]
