"""Fixtures shared by the project's tests."""

import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

from lab import ServerProcess, free_port, serve, spawn_server
from lessons import load_lesson, load_lessons, spawn_course
from lessons.course import build_app
from streamlib import StreamStats


@pytest.fixture
def stats() -> StreamStats:
    return StreamStats()


@pytest.fixture
def course_app(stats: StreamStats, tmp_path):
    """The whole course server as one WSGI app, counting streams in ``stats``; what is
    uploaded to it (lesson 11) goes to a folder of the test's own."""
    return build_app(load_lessons(), stats, {"course.uploads": str(tmp_path / "uploads")})


@pytest.fixture
def live_url(course_app) -> Iterator[str]:
    """The course app on werkzeug's threaded server, in this process, on a free port."""
    with serve(course_app) as url:
        yield url


@pytest.fixture(scope="session")
def lesson01() -> ModuleType:
    return load_lesson("01")


@pytest.fixture(scope="module")
def course_process() -> Iterator[ServerProcess]:
    """One child process running the course on werkzeug, shared by a module's tests."""
    with spawn_course() as server:
        yield server


@pytest.fixture(scope="module")
def asgi_server() -> Iterator[ServerProcess]:
    """Lesson 09's ASGI clock (``lessons.asgi_clock``) under uvicorn, on a free port."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "lessons.asgi_clock:app", "--port", str(port)]
    with spawn_server(command, port, ready_path="/stats") as server:
        yield server


# The README's test command runs two tests at a time (pytest-xdist, ``-n 2``). The tests that
# load the machine most go to one worker, one after another (``--dist loadgroup``), so that
# no two of them compete for a two-core machine's cores.
HEAVY = {"test_notebooks.py", "test_bench.py", "test_lesson_07.py", "test_lesson_08.py"}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in HEAVY:
            item.add_marker(pytest.mark.xdist_group("heavy"))


# The three servers the course runs on: its default (werkzeug's dev server, through the
# course's own request handler) and gunicorn with each worker class that holds streams.
SERVER_KINDS = {
    "werkzeug": (),
    "gthread": ("--server", "gunicorn", "--worker-class", "gthread"),
    "gevent": ("--server", "gunicorn", "--worker-class", "gevent"),
}
# The write path (lesson 11) is also tried on the fan-out worker, a gevent worker of the
# course's own (lesson 07), which serves every request that is not a shared stream.
WRITE_SERVER_KINDS = {
    **SERVER_KINDS,
    "fanout": ("--server", "gunicorn", "--worker-class", "fanout"),
}


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A real redis-server on a free port, for lesson 08's broadcast (skipped without one)."""
    from real_programs import need

    need("redis-server", "redis-server")
    from lab.redis_server import spawn_redis

    with spawn_redis() as redis_server:
        yield redis_server.url
