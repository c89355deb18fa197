"""Grader for exercise 10: ``python -m pytest exercises/test_10_http2.py``.

Tests are named after the tasks in ``exercises/10_http2.py``. Each starts a real nginx with
your ``server {}`` block on a free loopback port, in front of a real WSGI server, and reads
it over HTTP/2 (``lab.http2``), trusting a certificate authority made for the test.
"""

import ssl
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from grading import Happened, tutor
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Request

from lab import free_port, serve
from lab.certs import CertificateFiles, localhost_certificate
from lab.http2 import Arrival, exchange
from lab.nginx import spawn_nginx_config
from lessons import load_lesson
from lessons.course import build_app

EXERCISE = "10_http2"
# The section each task's hint sends a learner to when no test says more.
TASK_SECTIONS = {
    1: "lesson 10, 'The course behind nginx'",
    2: "lesson 07, 'Proxies'",
    3: "lesson 10, 'The course behind nginx'",
}


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> CertificateFiles:
    return localhost_certificate(tmp_path_factory.mktemp("https"))


@contextmanager
def nginx_with(exercise, upstream: str, certificate: CertificateFiles) -> Iterator[str]:
    """A real nginx running your block in front of ``upstream``; yields its https URL."""
    port = free_port()
    block = exercise.server_block(port, upstream, str(certificate.chain), str(certificate.key))
    try:
        with spawn_nginx_config(block, port, ready_path=None, scheme="https"):
            yield f"https://localhost:{port}"
    except (RuntimeError, TimeoutError) as error:  # from spawn_nginx_config: nginx did not start
        pytest.fail(
            tutor(
                f"nginx with your block for port {port}",
                Happened(f"nginx would not start: {str(error)[-400:]}"),
                "nginx to start and listen",
                "nginx's error above names the line; the block is one `server { ... }`.",
            )
        )


def over_http2(url: str, path: str, certificate: CertificateFiles) -> list[Arrival]:
    """GET ``path`` over HTTP/2, as a browser would; fail with a hint if that cannot be."""
    try:
        protocol, arrivals = exchange(url, [path], ca=certificate.ca, seconds=10)
    except (ssl.SSLError, ConnectionError) as error:
        pytest.fail(
            tutor(
                f"GET {url}{path} over TLS",
                Happened(f"the TLS handshake failed: {error}"),
                "an HTTPS answer",
                "Task 1 and lesson 10, 'The course behind nginx': `listen ... ssl`, with"
                " ssl_certificate and ssl_certificate_key.",
            )
        )
    assert protocol == "h2", tutor(
        f"GET {url}{path}, offering HTTP/2 in the TLS handshake (ALPN h2)",
        Happened(f"the server chose {protocol}"),
        "h2",
        "Task 1 and lesson 10, 'The course behind nginx': nginx 1.22 speaks HTTP/2 when the"
        " listen line says so, `listen ... ssl http2;` (1.25 and later: `http2 on;`).",
    )
    return arrivals


@pytest.fixture(scope="module")
def course() -> Iterator[str]:
    with serve(build_app([load_lesson("03").LESSON])) as url:
        yield url


def test_task1_https_and_http2(exercise, course, certificate):
    with nginx_with(exercise, course, certificate) as url:
        arrivals = over_http2(url, "/ticks?count=1&interval=0", certificate)
    status = dict(arrivals[0].headers).get(":status") if arrivals else None
    body = b"".join(arrival.data for arrival in arrivals)
    assert status == "200" and body == b"tick 0\n", tutor(
        f"GET {url}/ticks?count=1 over HTTP/2",
        Happened(f"status {status}, body {body[:80]!r}"),
        "200 and b'tick 0\\n' from the course",
        "Task 1 and lesson 10, 'The course behind nginx': pass every request on with `proxy_pass`"
        " to the upstream you are given.",
    )


def test_task2_ticks_arrive_one_at_a_time_over_http2(exercise, course, certificate):
    with nginx_with(exercise, course, certificate) as url:
        arrivals = over_http2(url, "/ticks?count=4&interval=0.3", certificate)
    ticks = [arrival.at for arrival in arrivals if arrival.data]
    spread = ticks[-1] - ticks[0] if ticks else 0.0
    assert len(ticks) == 4 and spread > 0.6, tutor(
        f"GET {url}/ticks?count=4&interval=0.3 over HTTP/2",
        Happened(f"{len(ticks)} DATA frame(s) with ticks, {spread:.2f} s from first to last"),
        "four ticks about 0.3 s apart, each in its own frame",
        "Task 2 and lesson 07, 'Proxies': nginx buffers an upstream's answer by default; lesson 07"
        " shows the line"
        " that passes each piece on at once (nginx in front).",
    )


def where_the_browser_asked(environ, start_response):
    """The URL an app behind a proxy believes it was asked at: werkzeug's ``ProxyFix``
    takes the scheme from ``X-Forwarded-Proto``; the host and port come from ``Host``."""
    text = Request(environ).host_url
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(text)))])
    return [text.encode()]


def test_task3_the_app_learns_the_browsers_host_and_scheme(exercise, certificate):
    with (
        serve(ProxyFix(where_the_browser_asked, x_proto=1)) as upstream,
        nginx_with(exercise, upstream, certificate) as url,
    ):
        arrivals = over_http2(url, "/", certificate)
    believed = b"".join(arrival.data for arrival in arrivals).decode()
    assert believed == url + "/", tutor(
        f"GET {url}/ through your nginx, to an app that shows its own URL",
        Happened(f"the app believed it was at {believed!r}"),
        repr(url + "/"),
        "Task 3 and lesson 10, 'The course behind nginx': without proxy_set_header, nginx sends"
        " Host: with the upstream's address;"
        " $host drops the port, $http_host keeps it; and X-Forwarded-Proto $scheme says https.",
    )
