"""Lesson 10: HTTP/2 through a real nginx with TLS, in Chromium and on the wire."""

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from real_programs import need

from lab import ServerProcess, free_port, serve
from lab.browser import wait_until
from lab.certs import CertificateFiles, default_folder, localhost_certificate
from lab.http2 import exchange
from lab.nginx import spawn_nginx
from lessons import load_lesson, spawn_course
from streamlib import call_app
from streamlib.sse import parse_events

lesson = load_lesson("10")
production = load_lesson("07")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection"}


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> CertificateFiles:
    return localhost_certificate(tmp_path_factory.mktemp("https"))


@pytest.fixture(scope="module")
def course_and_proxy(certificate) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """The course on werkzeug, and lesson 10's nginx (HTTPS, HTTP/2) in front of it."""
    need("nginx", "nginx-light")
    with spawn_course() as course, lesson.https_proxy(course.url, certificate=certificate) as nginx:
        yield course, nginx


@pytest.mark.parametrize("n", ["0", "101", "ten", "1e3", ""])
def test_the_many_streams_page_takes_1_to_100(course_app, n):
    response = call_app(course_app, f"/demo/many?n={n}")
    assert response.status.startswith("400") and response.read().startswith(b"400 Bad Request: n")


def test_the_many_streams_page_opens_n_eventsources(course_app):
    page = call_app(course_app, "/demo/many?n=12").read().decode()
    assert 'data-n="12"' in page and 'new EventSource("/events' in page


# -- Chromium: six at a time over HTTP/1.1, all of them over HTTP/2 --------------------------


def open_streams(page) -> int:
    return page.eval_on_selector_all("tr[data-state=open]", "rows => rows.length")


@pytest.mark.browser
@pytest.mark.live
def test_chromium_holds_six_streams_over_http11_and_all_over_http2(course_and_proxy):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from real_programs import chromium_page

    course, nginx = course_and_proxy
    with chromium_page(ignore_https_errors=True) as page:
        page.goto(course.url + "/demo/many?n=10")
        wait_until(page, "document.querySelectorAll('tr[data-state=open]').length >= 6")
        time.sleep(1.5)  # an event a second: the four others had their chance
        assert open_streams(page) == 6 and page.text_content("#protocol") == "http/1.1"
        other_tab = page.context.new_page()
        with pytest.raises(PlaywrightTimeout):  # the site's six connections are all streaming
            other_tab.goto(course.url + "/", timeout=2000)
        page.click("#close-first")  # a connection is free: the seventh opens on it
        wait_until(page, "document.querySelectorAll('tr[data-state=open]').length == 6")
        states = page.eval_on_selector_all("tr", "rows => rows.map(r => r.dataset.state)")
        assert states[1:].count("open") == 6 and states.count("waiting") == 3, states

        page.goto(nginx.url + "/demo/many?n=10")  # leaving closes the six: the tab loads
        other_tab.goto(course.url + "/", timeout=5000)
        wait_until(page, "document.querySelectorAll('tr[data-state=open]').length == 10")
        assert page.text_content("#protocol") == "h2"
        wait_until(page, "document.querySelectorAll('[data-streamed]').length == 10")
        other_tab.goto(nginx.url + "/")  # HTTP/2: one more stream on the same connection


# -- on the wire ------------------------------------------------------------------------------


@pytest.mark.live
def test_an_sse_stream_over_http2_is_headers_then_a_data_frame_per_event(
    course_and_proxy, certificate
):
    _, nginx = course_and_proxy
    protocol, arrivals = exchange(nginx.url, ["/events?count=3&interval=0.2"], ca=certificate.ca)
    assert protocol == "h2"
    kinds = [a.kind for a in arrivals]
    assert kinds[0] == "HEADERS" and kinds[-1] == "END_STREAM", kinds
    headers = dict(arrivals[0].headers)
    assert headers[":status"] == "200" and headers["content-type"] == "text/event-stream"
    assert not HOP_BY_HOP & set(headers), headers
    pieces = [a.data for a in arrivals if a.kind == "DATA" and a.data]
    events = list(parse_events(pieces))
    assert len(events) == 3 and all(b"data: " in piece for piece in pieces[1:])  # one each
    assert len(pieces) == 4  # the hello comment, then one DATA frame per event


@pytest.mark.live
def test_nginx_removes_hop_by_hop_headers_an_app_sends(certificate):
    """An HTTP/2 message with one is malformed (RFC 9113 section 8.2.2): ``h2`` would refuse
    it. PEP 3333 forbids the app to send them; nginx drops them if it does."""
    need("nginx", "nginx-light")

    def rude_app(environ, start_response):
        start_response(
            "200 OK",
            [("Content-Type", "text/plain"), ("Keep-Alive", "timeout=5"), ("X-Kept", "yes")],
        )
        return [b"hello\n"]

    with serve(rude_app) as url, lesson.https_proxy(url, certificate=certificate) as nginx:
        protocol, arrivals = exchange(nginx.url, ["/"], ca=certificate.ca)
    headers = dict(arrivals[0].headers)
    assert protocol == "h2" and headers["x-kept"] == "yes"
    assert not HOP_BY_HOP & set(headers), headers


@pytest.mark.live
def test_a_stream_left_unread_stops_alone_and_the_others_go_on(course_and_proxy, certificate):
    """Flow control: the unread stream holds at its window (65,535 bytes); ticks on the
    same connection keep their pace."""
    _, nginx = course_and_proxy
    big, ticks = "/streamed?size=5000000&delay=0", "/ticks?count=5&interval=0.2"
    _, arrivals = exchange(nginx.url, [big, ticks], ca=certificate.ca, unread=[big], seconds=4)
    received = sum(len(a.data) for a in arrivals if a.path == big)
    assert received == 65_535
    tick_times = [a.at for a in arrivals if a.path == ticks and a.data]
    assert len(tick_times) == 5 and tick_times[-1] - tick_times[0] == pytest.approx(0.8, abs=0.2)
    assert [a.kind for a in arrivals if a.path == ticks][-1] == "END_STREAM"


def streams_open(course_url: str, route: str) -> int:
    stats = requests.get(course_url + "/stats", timeout=5).json()
    return stats["routes"].get(route, {}).get("open_streams", 0)


def stalled(nginx_url: str, course_url: str, ca) -> tuple[int, int, int]:
    """Ask for 200 MB on a stream never read, for 3 s. Return the bytes that came, the app's
    open /streamed streams 2 s in, and 10 s after the client left (0 once closed)."""
    big = "/streamed?size=200000000&piece=65536"
    seen = {}

    def stall() -> None:
        seen["arrivals"] = exchange(nginx_url, [big], ca=ca, unread=[big], seconds=3)[1]

    client = threading.Thread(target=stall)
    client.start()
    time.sleep(2.0)
    open_while_stalled = streams_open(course_url, "/streamed")
    client.join()
    deadline = time.monotonic() + 10
    while streams_open(course_url, "/streamed") and time.monotonic() < deadline:
        time.sleep(0.1)
    received = sum(len(a.data) for a in seen["arrivals"])
    return received, open_while_stalled, streams_open(course_url, "/streamed")


@pytest.mark.live
def test_a_stalled_http2_stream_holds_the_apps_generator_through_nginx(
    course_and_proxy, certificate
):
    """Back-pressure end to end: 200 MB on a stream the client never reads. Over loopback
    the app would send it all in well under a second; instead, once nginx's buffer and the
    kernel's are full, nginx stops reading and the generator waits in its write, still
    open seconds later. When the client goes, the write fails and the stream closes. With
    nginx's default buffering, nginx takes it all (to a temporary file) and the app is done."""
    course, nginx = course_and_proxy
    assert stalled(nginx.url, course.url, certificate.ca) == (65_535, 1, 0)
    location = production.nginx_location(course.url, http11=True, read_timeout="1h")
    with spawn_nginx(location, tls=certificate) as buffering:
        assert stalled(buffering.url, course.url, certificate.ca) == (65_535, 0, 0)


# -- python -m lessons --https ----------------------------------------------------------------


@pytest.mark.live
def test_the_course_with_https_prints_its_url_and_stops_nginx_with_it():
    need("nginx", "nginx-light")
    https_port = free_port()
    with spawn_course("--https", "--https-port", str(https_port)) as course:
        printed = course.log()
        protocol, arrivals = exchange(
            f"https://localhost:{https_port}", ["/ticks?count=2"], ca=default_folder() / "ca.pem"
        )
    assert f"https://localhost:{https_port}/demo/many?n=10" in printed
    assert protocol == "h2" and b"".join(a.data for a in arrivals) == b"tick 0\ntick 1\n"
    with pytest.raises(ConnectionRefusedError):  # nginx stopped with the course
        socket.create_connection(("127.0.0.1", https_port), timeout=2).close()
