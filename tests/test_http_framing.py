"""Every route, read by a strict HTTP/1.1 parser (h11) over HTTP/1.0 and HTTP/1.1.

h11 (python-hyper/h11) refuses what RFC 9112 forbids: malformed status lines and header
fields, bad chunk sizes, a body longer than its Content-Length. Each route of the course's
Route table is asked for with its own example (made quick) on the course's three servers.
On top of what h11 checks, RFC 9112 section 6.1: no ``Transfer-Encoding`` in an answer to
an HTTP/1.0 request, whose body ends when the connection closes.
"""

import re
import socket
import threading
import time

import h11
import pytest
from conftest import SERVER_KINDS

from lessons import load_lessons, spawn_course

pytestmark = pytest.mark.live

ROUTES = [route for lesson in load_lessons() for route in lesson.routes]
READ_SECONDS = 1.5  # streams that wait for news (a room, a watcher) are read this long


def quick(example: str) -> str:
    """The route's example with its waits shortened, so that every stream ends soon. The
    shared clock ticks once a second whatever it is asked: it sends its head and hello only."""
    if example.startswith("/shared-events"):
        return re.sub(r"\bcount=[0-9]+", "count=0", example)
    return re.sub(r"\b(interval|delay|latency)=[0-9.]+", r"\1=0.01", example)


REQUESTS = [
    (method, quick(route.example or route.path), route.example_body if method == "POST" else b"")
    for route in ROUTES
    for method in route.methods
] + [("GET", "/", b""), ("GET", "/stats", b""), ("GET", "/nowhere", b""), ("DELETE", "/ticks", b"")]


@pytest.fixture(scope="module", params=list(SERVER_KINDS))
def server(request):
    with spawn_course(*SERVER_KINDS[request.param]) as process:
        yield process


def read_strictly(url: str, method: str, target: str, body: bytes, version: str):
    """Send one request as ``HTTP/{version}``; parse the answer with h11. Returns
    (response, body bytes, whether the message ended)."""
    host, port = url.split("://")[1].split(":")
    client = h11.Connection(our_role=h11.CLIENT)
    headers = [("Host", f"{host}:{port}"), ("Connection", "close")]
    if body:
        headers += [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    client.send(h11.Request(method=method, target=target, headers=headers))  # sets h11's state
    head = f"{method} {target} HTTP/{version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    response, received, ended = None, b"", False
    deadline = time.monotonic() + READ_SECONDS
    with socket.create_connection((host, int(port)), timeout=READ_SECONDS) as sock:
        sock.sendall(head.encode() + b"\r\n" + body)
        while not ended and time.monotonic() < deadline:
            event = client.next_event()
            if event is h11.NEED_DATA:
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    break
                client.receive_data(data)  # b"" means the server closed: the end of a 1.0 body
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                received += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                ended = True
    return response, received, ended


@pytest.mark.parametrize("version", ["1.0", "1.1"])
@pytest.mark.parametrize(("method", "target", "body"), REQUESTS, ids=[r[1] for r in REQUESTS])
def test_every_route_reads_cleanly_with_a_strict_parser(server, version, method, target, body):
    response, received, ended = read_strictly(server.url, method, target, body, version)
    assert response is not None, "no response head within the time"
    assert response.status_code < 500, (response.status_code, received[:200])
    framing = {name.lower(): value for name, value in response.headers}
    if version == "1.0":
        assert b"transfer-encoding" not in framing, "RFC 9112 6.1: no chunks for HTTP/1.0"
    # A room and an upload's watcher wait for news: read for READ_SECONDS, then left.
    endless = target.startswith(("/broadcast", "/upload-progress")) and method == "GET"
    assert ended or endless, f"the body of {target} did not end within {READ_SECONDS} s"


# The fan-out worker (lesson 07) writes the head and every chunk of a shared stream itself,
# past gunicorn: what a member is sent must read as strictly as any route's answer.


@pytest.fixture(scope="module")
def fanout_server():
    with spawn_course("--server", "gunicorn", "--worker-class", "fanout") as process:
        yield process


@pytest.mark.parametrize("version", ["1.0", "1.1"])
@pytest.mark.parametrize("target", ["/shared-events", "/broadcast"])
def test_the_fanout_workers_own_head_and_chunks_read_cleanly(fanout_server, version, target):
    import requests

    posted = f"framing {version} {time.monotonic()}"
    if target == "/broadcast":  # a room is quiet until someone posts: post while it is read
        url = fanout_server.url + target
        poster = threading.Timer(0.5, lambda: requests.post(url, json={"text": posted}, timeout=5))
        poster.start()
    response, received, _ = read_strictly(fanout_server.url, "GET", target, b"", version)
    assert response is not None and response.status_code == 200
    framing = {name.lower(): value for name, value in response.headers}
    if version == "1.0":
        assert b"transfer-encoding" not in framing, "RFC 9112 6.1: no chunks for HTTP/1.0"
    else:
        assert framing[b"transfer-encoding"] == b"chunked"
    events = received.split(b"\n\n")
    if target == "/broadcast":
        poster.join()
        assert any(posted.encode() in event for event in events), received[-300:]
    else:  # the clock ticks once a second: one at least in the READ_SECONDS read
        assert any(event.startswith(b"id: ") for event in events), received[-300:]
