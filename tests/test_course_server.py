"""The course server: index, /stats, clear errors, HEAD, and its command line."""

import json
import socket
import subprocess
import sys
import time
from html import escape
from pathlib import Path

import pytest
import requests

from lab import free_port, serve, spawn_server
from lab.browser import wait_until
from lessons import lesson_names, load_lesson, load_lessons, spawn_course
from lessons.course import build_app
from lessons.index_page import curl_commands
from lessons.routes import Lesson, Route
from streamlib import call_app

ROOT = Path(__file__).resolve().parent.parent


def test_every_lesson_module_describes_itself_and_names_its_parts():
    for name in lesson_names():
        lesson = load_lesson(name).LESSON
        assert lesson.name == name
        assert lesson.routes, f"{name} has no route"
        assert (ROOT / "notebooks" / f"{name}.ipynb").exists(), f"{name} has no notebook"
        assert (ROOT / "exercises" / f"{name}.py").exists(), f"{name} has no exercise"
        assert (ROOT / "exercises" / "solutions" / f"{name}.py").exists()
        assert (ROOT / "exercises" / f"test_{name}.py").exists(), f"{name} has no grader"


def test_the_index_lists_every_lesson_route_and_curl_command(course_app):
    response = call_app(course_app, "/", headers={"Host": "localhost:8123"})
    page = response.read().decode()
    assert response.header("Content-Type") == "text/html; charset=utf-8"
    for lesson in load_lessons():
        assert lesson.title in page
        for route in lesson.routes:
            assert escape(route.path) in page
            if route.path.startswith("/demo/"):
                assert f'href="{escape(route.example or route.path)}"' in page
            else:
                for command in curl_commands(route, "http://localhost:8123"):
                    assert f"<pre>{escape(command)}</pre>" in page
    posted = "-d &#x27;{&quot;text&quot;: &quot;hello&quot;}&#x27;"
    assert f"curl -N -H &#x27;Content-Type: application/json&#x27; {posted}" in page
    assert "curl -N &#x27;http://localhost:8123/v1/chat/completions" not in page, "a GET"
    assert "Fan-out beyond one process" in page, "the index should outline the whole course"


@pytest.mark.parametrize(
    ("path", "method", "status", "says"),
    [
        ("/nope", "GET", 404, "404 Not Found: nothing at /nope; the index at / lists every route"),
        ("/../../etc/passwd", "GET", 404, "404 Not Found"),
        ("/streamed", "POST", 405, "405 Method Not Allowed: POST is not allowed on /streamed"),
        ("/streamed?size=abc", "GET", 400, "400 Bad Request: size: expected an integer"),
    ],
)
def test_errors_are_one_plain_line(course_app, path, method, status, says):
    response = call_app(course_app, path, method)
    body = response.read().decode()
    assert response.status_code == status
    assert response.header("Content-Type") == "text/plain; charset=utf-8"
    assert body.startswith(says) and body.count("\n") == 1, body


def test_405_says_which_methods_are_allowed(course_app):
    response = call_app(course_app, "/buffered", "DELETE")
    response.read()
    assert response.header("Allow") == "GET, HEAD"


def crashing_lesson(where: str) -> Lesson:
    """A lesson whose route has a bug: before start_response, or right after it."""

    def buggy(environ, start_response):
        if where == "after":
            start_response("200 OK", [("Content-Type", "text/plain")])
        raise ZeroDivisionError("secret detail")

    return Lesson(99, "buggy", "Buggy", "A bug.", (Route("/buggy", buggy, "crashes"),))


@pytest.mark.parametrize("where", ["before", "after"])
def test_a_bug_is_a_bare_500_and_its_traceback_stays_in_the_log(where, caplog):
    app = build_app([crashing_lesson(where)])
    response = call_app(app, "/buggy")
    body = response.read().decode()
    assert response.status_code == 500
    assert "secret detail" not in body and "Traceback" not in body
    assert body == "500 Internal Server Error: the server hit a bug; its log says more\n"
    assert "ZeroDivisionError: secret detail" in caplog.text


def test_head_sends_the_headers_of_get_and_no_body(course_app, stats):
    response = call_app(course_app, "/buffered?size=1000", "HEAD")
    assert response.read() == b""
    assert response.header("Content-Length") == "1000"
    assert stats.snapshot()["streams_started"] == 0


def test_head_has_no_body_on_the_wire_with_werkzeug_either(live_url):
    # werkzeug's dev server writes whatever the app yields, even for HEAD: the course
    # app has to drop the body itself. A raw request shows what really goes out.
    with requests.Session() as session:
        response = session.head(live_url + "/streamed?size=5000", timeout=5)
    assert response.status_code == 200
    assert response.raw.read() == b""


def test_stats_counts_streams_per_route(course_app, stats):
    for path in ["/streamed?size=10", "/streamed?size=10", "/buffered?size=10"]:
        call_app(course_app, path).read()
    half_read = call_app(course_app, "/streamed?size=100&piece=10")
    half_read.next_piece()
    counts = call_app(course_app, "/stats").read()
    half_read.close()
    snapshot = json.loads(counts)
    assert snapshot["routes"]["/streamed"] == {
        "open_streams": 1,
        "streams_started": 3,
        "streams_closed": 2,
    }
    assert snapshot["open_streams"] == 1 and snapshot["streams_started"] == 4
    assert snapshot["rss_bytes"] > 0 and snapshot["pid"] > 0
    assert stats.snapshot()["open_streams"] == 0


def test_stats_sees_a_stream_closed_when_its_client_hangs_up(live_url):
    with requests.get(live_url + "/streamed?size=100000&piece=100&delay=0.02", stream=True) as r:
        assert r.raw.read1(100)
        assert requests.get(live_url + "/stats").json()["open_streams"] == 1
    deadline = time.monotonic() + 10  # the server notices at its next failed write
    while time.monotonic() < deadline:
        if requests.get(live_url + "/stats").json()["open_streams"] == 0:
            break
        time.sleep(0.02)
    assert requests.get(live_url + "/stats").json()["routes"]["/streamed"] == {
        "open_streams": 0,
        "streams_started": 1,
        "streams_closed": 1,
    }


def test_python_dash_m_lessons_help_lists_every_flag():
    shown = subprocess.run(
        [sys.executable, "-m", "lessons", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for flag in [
        "--host",
        "--port",
        "--files",
        "--server",
        "--worker-class",
        "--workers",
        "--redis",
    ]:
        assert flag in shown


@pytest.mark.parametrize(
    "flags",
    [
        ("--server", "werkzeug"),
        ("--server", "gunicorn", "--worker-class", "sync"),
        ("--server", "gunicorn", "--worker-class", "gthread", "--workers", "2"),
    ],
    ids=["werkzeug", "gunicorn-sync", "gunicorn-gthread-2"],
)
def test_the_course_server_streams_under_each_server(flags):
    with spawn_course(*flags) as server:
        index = requests.get(server.url + "/", timeout=5)
        body = requests.get(server.url + "/streamed?size=100000", timeout=5).content
    assert index.status_code == 200 and "Buffered vs streamed" in index.text
    assert len(body) == 100000
    if "gunicorn" in flags:
        worker_class = flags[flags.index("--worker-class") + 1]
        assert f"Using worker: {worker_class}" in server.log()


def closed_streams(url: str, route: str = "/streamed") -> int:
    stats = requests.get(url + "/stats", timeout=5).json()
    return stats["routes"].get(route, {}).get("streams_closed", 0)


def test_a_lesson_runs_alone_and_says_what_to_try():
    port = free_port()
    script = ROOT / "lessons" / "01_buffered_vs_streamed.py"
    with spawn_server([sys.executable, str(script), "--port", str(port)], port) as server:
        body = requests.get(server.url + "/streamed?size=1000", timeout=5).content
        # The server closes the stream just after its last byte (werkzeug first waits 10 ms
        # for stray request bytes): ask until it has, for at most 2 s.
        deadline = time.monotonic() + 2
        while closed_streams(server.url) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        stats = requests.get(server.url + "/stats", timeout=5).json()
    assert len(body) == 1000
    assert stats["routes"]["/streamed"]["streams_closed"] == 1
    assert f"curl -N 'http://127.0.0.1:{port}/streamed?size=1000000&delay=0.01'" in server.log()


def test_serve_runs_the_course_app_in_a_thread(course_app):
    with serve(course_app) as url:
        assert requests.get(url + "/stats", timeout=5).json()["open_streams"] == 0


def test_plain_gunicorn_serves_the_course_from_lessons_wsgi(tmp_path):
    (tmp_path / "mine.txt").write_text("served from STREAMLIB_FILES\n")
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "lessons.wsgi:app"]
    with spawn_server(command, port, env={"STREAMLIB_FILES": str(tmp_path)}) as server:
        index = requests.get(server.url + "/", timeout=5)
        mine = requests.get(server.url + "/files/mine.txt", timeout=5)
    assert index.status_code == 200 and "Streaming a file" in index.text
    assert mine.text == "served from STREAMLIB_FILES\n"


def test_under_gunicorn_a_lesson_alone_prints_and_runs_the_plain_gunicorn_command():
    """``--server gunicorn`` shows the command it becomes, and serves just that lesson."""
    port = free_port()
    script = ROOT / "lessons" / "03_manual_chunks.py"
    command = [sys.executable, str(script), "--port", str(port), "--server", "gunicorn"]
    with spawn_server(command, port) as server:
        ticks = requests.get(server.url + "/ticks?count=2&interval=0", timeout=5)
        other_lesson = requests.get(server.url + "/streamed?size=10", timeout=5)
    assert ticks.text == "tick 0\ntick 1\n"
    assert other_lesson.status_code == 404
    assert (
        "Running: MALLOC_MMAP_THRESHOLD_=4194304 MALLOC_TRIM_THRESHOLD_=33554432"
        " STREAMLIB_LESSONS=03_manual_chunks gunicorn --bind 127.0.0.1:"
        f"{port} --worker-class gevent --workers 1 --worker-connections 1000" in server.log()
    )
    assert "Using worker: gevent" in server.log()  # the course's default (lesson 07: why)


def test_a_malformed_redis_url_is_refused_at_startup():
    done = subprocess.run(
        [sys.executable, "-m", "lessons", "--redis", "notaurl"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "--redis: 'notaurl'" in done.stderr, done.stderr
    assert "The course is at" not in done.stdout  # refused before anything is served


def test_a_broker_that_does_not_answer_is_a_warning_not_a_failure():
    port = free_port()  # nothing listens there
    with spawn_course("--redis", f"redis://127.0.0.1:{port}/0") as server:
        assert requests.get(server.url + "/stats", timeout=10).status_code == 200
        posted = requests.post(server.url + "/broadcast", json={"text": "hi"}, timeout=30)
        assert posted.status_code == 503, posted.text
    assert f"Warning: the Redis broker at redis://127.0.0.1:{port}/0 does not answer" in (
        server.log()
    )


def test_the_index_states_what_bounds_each_route(course_app):
    page = call_app(course_app, "/").read().decode()
    assert "every finite stream ends within 600 s" in page
    assert page.count("endless on purpose") >= 4  # the note, /events, /gzip-events, /broadcast
    assert "request bodies up to 1 MiB (413 above)" in page


@pytest.mark.parametrize(
    ("command", "usage"),
    [
        (["-m", "lessons"], "usage: python -m lessons "),
        (
            ["lessons/01_buffered_vs_streamed.py"],
            "usage: python lessons/01_buffered_vs_streamed.py",
        ),
        (["-m", "bench"], "usage: python -m bench "),
    ],
)
def test_help_names_the_command_shows_defaults_and_no_markup(command, usage):
    shown = subprocess.run(
        [sys.executable, *command, "--help"], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert shown.startswith(usage) and "``" not in shown and "__main__" not in shown
    assert "(default:" in shown


def test_a_taken_port_is_said_first_with_the_flag_to_use():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "lessons", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1 and done.stdout == ""  # nothing printed before it
    assert done.stderr.startswith(f"Port {port} on 127.0.0.1 is taken")
    assert f"--port {port + 1}" in done.stderr


def test_a_lesson_alone_says_it_is_that_lesson():
    port = free_port()
    command = [sys.executable, str(ROOT / "lessons" / "03_manual_chunks.py"), "--port", str(port)]
    with spawn_server(command, port) as server:
        pass
    assert f"Lesson 03 is at http://127.0.0.1:{port}/" in server.log()


def test_the_gunicorn_command_shown_everywhere_is_the_one_run():
    """docs/server.md, lesson 07 and lessons/wsgi.py show the command python -m lessons
    prints."""
    from lab import gunicorn_args
    from lessons.cli import GLIBC_HEAP

    heap = " ".join(f"{name}={value}" for name, value in GLIBC_HEAP.items())
    printed = f"{heap} gunicorn " + " ".join(
        gunicorn_args(
            "lessons.wsgi:app",
            worker_class="gevent",
            workers=1,
            worker_connections=1000,
            timeout=30,
            graceful_timeout=3,
        )
    )
    server_page = (ROOT / "docs" / "server.md").read_text()
    assert f"`{printed}`" in server_page
    lesson = " ".join(load_lesson("07").__doc__.replace("\\\n", " ").split())
    assert printed in lesson
    assert "--no-control-socket lessons.wsgi:app" in (ROOT / "lessons" / "wsgi.py").read_text()


@pytest.mark.browser
def test_every_demo_page_links_home_and_asks_for_nothing_missing(live_url):
    from real_programs import chromium_page

    demos = [
        r.path for lesson in load_lessons() for r in lesson.routes if r.path.startswith("/demo/")
    ]
    with chromium_page() as page:
        failed = []
        page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
        for path in demos:
            page.goto(live_url + path)
            page.wait_for_timeout(300)  # let the page's own requests go out
            assert page.get_attribute("nav a[href='/']", "href") == "/", path
            lesson_link = page.get_attribute("nav a:nth-of-type(2)", "href")
            assert lesson_link.startswith("/#"), path
        page.goto(live_url + "/")
        page.wait_for_timeout(300)
    assert failed == [], failed  # no favicon.ico 404, no broken request


@pytest.mark.browser
def test_the_broadcast_page_says_there_is_no_broker_without_redis(live_url):
    from real_programs import chromium_page

    with chromium_page() as page:
        page.goto(live_url + "/demo/broadcast")
        wait_until(page, "document.getElementById('stream').textContent === 'open'")
        assert page.text_content("#broker").startswith("none: the room lives in this process")
