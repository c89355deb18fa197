"""Localhost is not a security boundary: the Host allow-list and the cross-site checks.

The two requests that started it (issue 18), on each server the course runs on:
``GET /files/`` with a foreign ``Host`` (DNS rebinding) and a cross-site text/plain
``POST /v1/chat/completions`` (no CORS preflight needed), and their variants.
"""

import json
import socket
import subprocess
import sys

import pytest
import requests
from conftest import SERVER_KINDS, WRITE_SERVER_KINDS

from lessons import load_lessons, spawn_course
from lessons.course import build_app
from streamlib import call_app
from streamlib.origins import cross_site_refusal, host_refusal, normalize_host

CHAT = "/v1/chat/completions?latency=0&rate=10000"
BODY = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()


def raw(url: str, request: bytes) -> bytes:
    host, port = url.split("://")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while data := sock.recv(65536):
            received += data
    return received


@pytest.fixture(scope="module", params=list(WRITE_SERVER_KINDS))
def server(request):
    with spawn_course(*WRITE_SERVER_KINDS[request.param]) as process:
        yield process


@pytest.mark.live
@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("evil.example:8000", 403),  # DNS rebinding: the page's own name
        ("evil.example", 403),
        ("10.0.0.1", 403),
        ("localhost:8000", 200),
        ("localhost.:8000", 200),  # a trailing dot is the same name
        ("LOCALHOST", 200),
        ("127.0.0.1:8000", 200),
        ("127.0.0.2", 200),  # all of 127.0.0.0/8 is loopback
        ("[::1]:8000", 200),
        ("app.localhost", 200),  # RFC 6761: *.localhost is loopback
        # Issue 29: a loopback name with something after it is no Host (RFC 9110 7.2): 400
        ("127.0.0.1:8000.evil.example", 400),
        ("localhost:80@evil.example", 400),
        ("[::1]evil.example", 400),
        ("[::1", 400),
        ("[evil.example]:80", 400),
        ("localhost:8000:8000", 400),
        ("localhost/x", 400),
    ],
)
def test_only_this_machine_s_names_are_answered(server, host, status):
    answer = raw(
        server.url, f"GET /files/ HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    )
    assert int(answer.split(b" ", 2)[1]) == status, answer[:200]
    if status == 403:
        assert b"--allow-host" in answer and b"hello.txt" not in answer  # nothing leaked


@pytest.mark.live
def test_two_host_headers_are_a_400_on_every_server(server):
    """RFC 9112 section 3.2: a request with two Host lines is a 400. werkzeug took the
    first of them (issue 29, item 4); gunicorn already refused."""
    answer = raw(
        server.url,
        b"GET /files/ HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n"
        b"Connection: close\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 400"), answer[:100]


@pytest.mark.live
@pytest.mark.parametrize("kind", ["werkzeug", "gthread"])
def test_a_trusted_origin_s_preflight_is_refused_for_a_foreign_host(kind):
    """With --cors, the preflight of a trusted origin was answered before the Host was
    checked: a rebound name could ask it. The Host is checked first, always."""
    trusted = "http://localhost:5173"
    with spawn_course(*SERVER_KINDS[kind], "--cors", trusted) as course:
        preflight = {"Origin": trusted, "Access-Control-Request-Method": "POST"}
        own = requests.options(course.url + CHAT, headers=preflight, timeout=10)
        foreign = requests.options(
            course.url + CHAT, headers={**preflight, "Host": "evil.example:8000"}, timeout=10
        )
    assert own.status_code == 204 and own.headers["Access-Control-Allow-Origin"] == trusted
    assert foreign.status_code == 403 and "Access-Control-Allow-Origin" not in foreign.headers


def test_http_1_0_without_a_host_is_answered(server):
    answer = raw(server.url, b"GET /files/ HTTP/1.0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 200") and b"hello.txt" in answer


@pytest.mark.live
def test_a_cross_site_text_plain_post_is_refused(server):
    """The issue's second request: what any page can send without a preflight."""
    cross_site = {
        "Content-Type": "text/plain",
        "Origin": "https://evil.example",
        "Sec-Fetch-Site": "cross-site",
    }
    r = requests.post(server.url + CHAT, data=BODY, headers=cross_site, timeout=10)
    assert r.status_code == 403 and "Access-Control-Allow-Origin" not in r.headers
    posted = requests.post(server.url + "/broadcast", data=b'{"text": "x"}', headers=cross_site)
    assert posted.status_code == 403


@pytest.mark.live
@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"}, 403),
        ({"Origin": "https://evil.example", "Content-Type": "application/json"}, 403),
        ({"Origin": "null", "Content-Type": "application/json"}, 403),  # sandboxed, file://
        ({"Content-Type": "text/plain"}, 415),  # JSON endpoints insist on JSON
        ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
        ({"Content-Type": "application/json", "Sec-Fetch-Site": "same-origin"}, 200),
        ({"Content-Type": "application/json"}, 200),  # curl, requests, openai: no Origin
    ],
)
def test_state_changing_requests_need_the_server_s_own_origin_and_json(server, headers, status):
    r = requests.post(server.url + CHAT, data=BODY, headers=headers, timeout=10)
    assert r.status_code == status, r.text
    if status == 415:
        assert json.loads(r.text)["error"]["message"].startswith("Content-Type: expected")


@pytest.mark.live
def test_the_server_s_own_origin_may_post(server):
    own = {"Origin": server.url, "Content-Type": "application/json"}
    assert requests.post(server.url + CHAT, data=BODY, headers=own, timeout=10).status_code == 200


@pytest.mark.live
def test_no_cors_headers_unless_asked(server):
    r = requests.get(server.url + "/ticks?count=1", headers={"Origin": "http://localhost:5173"})
    assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers


@pytest.mark.live
@pytest.mark.parametrize("kind", ["werkzeug", "gevent"])
def test_allow_host_and_cors_name_what_else_may_talk(kind):
    flags = ("--allow-host", "course.test", "--cors", "http://localhost:5173")
    with spawn_course(*SERVER_KINDS[kind], *flags) as server:
        answer = raw(
            server.url, b"GET /stats HTTP/1.1\r\nHost: course.test\r\nConnection: close\r\n\r\n"
        )
        assert answer.split(b" ", 2)[1] == b"200"
        trusted = {"Origin": "http://localhost:5173"}
        r = requests.get(server.url + "/ticks?count=1", headers=trusted, timeout=10)
        assert r.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
        other = requests.get(server.url + "/ticks?count=1", headers={"Origin": "http://x.test"})
        assert "Access-Control-Allow-Origin" not in other.headers
        preflight = requests.options(server.url + CHAT, headers=trusted, timeout=10)
        assert preflight.status_code == 204
        assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]
        post = requests.post(
            server.url + CHAT,
            data=BODY,
            headers={**trusted, "Content-Type": "application/json"},
            timeout=10,
        )
        assert post.status_code == 200


def test_a_network_host_is_announced_before_serving():
    # 192.0.2.1 is TEST-NET-1 (RFC 5737): no interface has it, so binding fails at once and
    # nothing listens; what matters is what was printed before the attempt.
    done = subprocess.run(
        [sys.executable, "-m", "lessons", "--host", "192.0.2.1", "--files", "/srv/videos"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    first = done.stdout.splitlines()[0]
    assert first.startswith("Warning: --host 192.0.2.1 makes every route reachable"), done.stdout
    assert "/srv/videos" in first


def test_the_checks_in_process():
    app = build_app(load_lessons())
    refused = call_app(app, "/files/", headers={"Host": "evil.example:8000"})
    assert refused.status_code == 403 and b"--allow-host evil.example" in refused.read()
    assert normalize_host("[::1]") == "::1" and normalize_host("Example.COM.:80") == "example.com"
    assert host_refusal({"HTTP_HOST": "a.test"}, ["A.test"]) is None
    get = {"REQUEST_METHOD": "GET", "HTTP_SEC_FETCH_SITE": "cross-site"}
    assert cross_site_refusal(get) is None  # reading is not refused here; the Host check is
