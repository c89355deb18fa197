"""The course's werkzeug request handler keeps the specs that plain werkzeug 3.1 breaks.

Each test states the rule, shows it on a real socket, and where it helps shows plain
werkzeug breaking it, so that a werkzeug release that fixes itself is noticed here.
"""

import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from lab.devserver import QuietRequestHandler
from lab.observe import before_the_body
from lessons import load_lessons
from lessons.course import build_app
from streamlib import StreamStats

pytestmark = pytest.mark.live


@contextmanager
def running(app, handler: type) -> Iterator[tuple[str, int]]:
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", server.port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def exchange(address: tuple[str, int], request: bytes, timeout: float = 10.0) -> bytes:
    """Send ``request`` raw, read until the server closes, return everything it sent."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(request)
        received = b""
        while data := sock.recv(65536):
            received += data
        return received


TICKS_1_0 = b"GET /ticks?count=2&interval=0.01 HTTP/1.0\r\n\r\n"


def test_http_1_0_gets_a_close_delimited_body_not_chunks():
    """RFC 9112 section 6.1: no Transfer-Encoding in a response to an HTTP/1.0 request."""
    with running(build_app(load_lessons()), QuietRequestHandler) as address:
        answer = exchange(address, TICKS_1_0)
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.0 200") and b"Transfer-Encoding" not in head
    assert body == b"tick 0\ntick 1\n"


def test_plain_werkzeug_still_chunks_for_http_1_0():
    """Why the handler exists: if this fails, werkzeug fixed itself (say so in lesson 03)."""
    with running(build_app(load_lessons()), WSGIRequestHandler) as address:
        answer = exchange(address, TICKS_1_0)
    assert b"Transfer-Encoding: chunked" in answer.split(b"\r\n\r\n", 1)[0]


def test_http_1_1_still_gets_chunks():
    with running(build_app(load_lessons()), QuietRequestHandler) as address:
        answer = exchange(
            address, b"GET /ticks?count=2&interval=0.01 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        )
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200") and b"Transfer-Encoding: chunked" in head
    assert body == b"7\r\ntick 0\n\r\n7\r\ntick 1\n\r\n0\r\n\r\n"


def wait_for(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_close_is_called_when_the_client_resets_after_the_last_byte():
    """PEP 3333: the server calls close() however the response ends. Plain werkzeug skips it
    when the client resets right after reading ``[DONE]`` (its drain raises first)."""
    stats = StreamStats()
    body = json.dumps(
        {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    )
    request = (
        b"POST /v1/chat/completions?latency=0&rate=1000&length=3 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
    ) % (len(body), body.encode())
    with running(build_app(load_lessons(), stats), QuietRequestHandler) as address:
        for _ in range(5):
            sock = socket.create_connection(address, timeout=10)
            sock.sendall(request)
            received = b""
            while b"[DONE]" not in received:
                received += sock.recv(65536)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # linger 0: the kernel sends RST, not FIN
        assert wait_for(lambda: stats.snapshot()["streams_closed"] == 5), stats.snapshot()
    assert stats.snapshot()["open_streams"] == 0


class FastDeadline(QuietRequestHandler):
    request_seconds = 1.0


def test_a_client_trickling_its_headers_is_cut_at_the_deadline():
    """Slowloris: one byte of headers every 0.2 s would hold a thread for ever without one."""
    with running(build_app(load_lessons()), FastDeadline) as address:
        slow = socket.create_connection(address, timeout=10)
        started = time.monotonic()
        closed_after = None
        for byte in b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100:
            try:
                slow.sendall(bytes([byte]))
                time.sleep(0.2)
                slow.setblocking(False)
                if slow.recv(1) == b"":
                    closed_after = time.monotonic() - started
                    break
            except BlockingIOError:
                pass
            except OSError:
                closed_after = time.monotonic() - started
                break
            finally:
                slow.setblocking(True)
        slow.close()
        assert closed_after is not None and closed_after < 2.5, closed_after
        # and the server still answers everyone else
        assert exchange(address, b"GET /stats HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 200")


def test_a_body_that_stops_coming_is_a_400_at_the_deadline():
    app = build_app(load_lessons())
    with running(app, FastDeadline) as address, socket.create_connection(address, 10) as sock:
        started = time.monotonic()
        sock.sendall(
            b"POST /broadcast HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"text": '
        )
        answer = b""
        while data := sock.recv(65536):
            answer += data
        took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 400") and took < 3, (answer[:80], took)


def refuse_or_echo(environ: dict, start_response) -> list[bytes]:
    """Refuse a body over 10 bytes without reading it; echo a smaller one."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length > 10:
        start_response("413 Content Too Large", [("Content-Length", "0")])
        return []
    body = environ["wsgi.input"].read(length)
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


def expecting(length: int) -> bytes:
    return (
        f"PUT / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n"
        "Expect: 100-continue\r\n\r\n"
    ).encode()


def url_of(address: tuple[str, int]) -> str:
    return f"http://{address[0]}:{address[1]}"


def test_100_continue_comes_once_and_only_when_the_app_reads_the_body():
    # PEP 3333, "HTTP 1.1 Expect/Continue": the server may send 100 Continue at once, or
    # when the app first reads wsgi.input. The second spares a body the app refuses.
    with running(refuse_or_echo, QuietRequestHandler) as address:
        early, rest = before_the_body(url_of(address), expecting(5), b"hello")
        refused, _ = before_the_body(url_of(address), expecting(11), b"x" * 11)
    assert early == b"HTTP/1.1 100 Continue\r\n\r\n" and rest.endswith(b"\r\n\r\nhello")
    assert refused.startswith(b"HTTP/1.1 413") and b"100 Continue" not in refused


def test_plain_werkzeug_says_continue_twice_before_the_app_runs():
    with running(refuse_or_echo, WSGIRequestHandler) as address:
        early, _ = before_the_body(url_of(address), expecting(11), b"x" * 11)
    assert early.count(b"HTTP/1.1 100 Continue\r\n\r\n") == 2, early


def count_body(environ: dict, start_response) -> list[bytes]:
    """Read the whole body in pieces; answer how many bytes came."""
    body, length, received = environ["wsgi.input"], int(environ["CONTENT_LENGTH"]), 0
    while received < length and (data := body.read(min(65536, length - received))):
        received += len(data)
    answer = str(received).encode()
    start_response("200 OK", [("Content-Length", str(len(answer)))])
    return [answer]


def test_an_upload_at_a_steady_pace_outlives_the_deadline():
    """Each byte that comes buys time (mod_reqtimeout's MinRate): 4 MiB over 2.5 s passes
    a 1 s deadline, where a client trickling its headers is cut (the test above)."""
    size = 4 * 1024 * 1024
    head = f"PUT / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {size}\r\n\r\n"
    with running(count_body, FastDeadline) as address, socket.create_connection(address) as sock:
        sock.sendall(head.encode())
        started = time.monotonic()
        for _ in range(25):
            sock.sendall(b"x" * (size // 25))
            time.sleep(0.1)
        sock.sendall(b"x" * (size - size // 25 * 25))
        answer = b""
        while data := sock.recv(65536):
            answer += data
    assert time.monotonic() - started > 2.0
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(str(size).encode()), answer


def test_a_refused_head_request_gets_the_status_and_no_body():
    """A HEAD answer carries no body (RFC 9110 section 9.3.2), refused or not: the refusal
    of a HEAD without a Host header wrote its line of text after the headers."""
    with running(refuse_or_echo, QuietRequestHandler) as address:
        answer = exchange(address, b"HEAD / HTTP/1.1\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"Content-Length: " in head and body == b""
