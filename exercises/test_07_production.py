"""Grader for exercise 07: ``python -m pytest exercises/test_07_production.py``.

Tests are named after the tasks in ``exercises/07_production.py``. Each starts a real
gunicorn with your file as its configuration, on a free loopback port.
"""

import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import requests
from grading import Happened, tutor

from lab import free_port, spawn_server
from lab.load import crowd

EXERCISE = "07_production"
# The section each task's hint sends a learner to when no test says more.
TASK_SECTIONS = {
    1: "lesson 07, 'Worker classes'",
    2: "lesson 07, 'Worker classes'",
    3: "lesson 07, 'Shutdown'",
}
LESSONS = "03_manual_chunks,04_server_sent_events"  # the app serves /ticks and /events
DEADLINE = 5.5  # s: Task 3's deploy must be over by then (5 s, and a little for the machine)
GIVE_UP = 6.5  # s: a gunicorn still running then would not stop soon; no need to wait more


@contextmanager
def gunicorn_with(exercise, *flags: str):
    """A real gunicorn configured by the exercise file (``-c``), plus ``flags``."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "-c", exercise.__file__]
    command += ["--bind", f"127.0.0.1:{port}", "--no-control-socket", *flags]
    with spawn_server(
        [*command, "lessons.wsgi:app"], port, env={"STREAMLIB_LESSONS": LESSONS}
    ) as server:
        yield server
        server.kill()  # shutdown is graded in Task 3 alone, which stops gunicorn itself


def settings(exercise) -> str:
    names = ["workers", "worker_class", "threads", "worker_connections", "graceful_timeout"]
    return ", ".join(f"{name}={getattr(exercise, name, '(unset)')!r}" for name in names)


def test_task1_one_worker_holds_200_streams_at_once(exercise):
    assert getattr(exercise, "workers", 1) == 1, tutor(
        "your configuration's workers",
        exercise.workers,
        "1: hold the streams in one process",
        "Task 1 and lesson 07, 'Worker classes': more processes multiply memory; choose a worker"
        " class that holds many"
        " streams per process instead.",
    )
    with gunicorn_with(exercise) as server:
        result = crowd(server.url + "/events?interval=0.5", 200, window=1.5, ramp=0.5)
    served = result.served()
    assert served == 200, tutor(
        f"200 clients of /events together, with {settings(exercise)}",
        Happened(f"{served} of 200 clients served"),
        "all 200 to get every event",
        "Task 1 and lesson 07, 'Worker classes': a sync worker serves one request at a time;"
        " gthread holds `threads`"
        " streams at once, gevent up to `worker_connections`.",
    )


def ticks_received(url: str) -> int:
    """How many ticks arrived before the stream ended, normally or cut off."""
    received = b""
    try:
        with requests.get(url, stream=True, timeout=20) as response:
            for piece in response.iter_content(None):
                received += piece
    except requests.RequestException:
        pass  # the worker was killed mid-stream
    return received.count(b"tick")


def test_task2_a_stream_outlives_the_timeout(exercise):
    with gunicorn_with(exercise, "--timeout", "2") as server:
        got = ticks_received(server.url + "/ticks?count=9&interval=0.5")
        killed = "WORKER TIMEOUT" in server.log()
    assert got == 9 and not killed, tutor(
        f"a 4-second /ticks stream under --timeout 2, with {settings(exercise)}",
        Happened(
            f"{got} of 9 ticks" + (", and 'WORKER TIMEOUT' in gunicorn's log" if killed else "")
        ),
        "all 9 ticks, the worker alive",
        "Task 2 and lesson 07, 'Worker classes': a sync worker tells the arbiter it is alive only"
        " between requests, so a"
        " long stream looks like a hung worker.",
    )


def stop_while(exercise, request_path: str) -> tuple[float, bytes]:
    """Start gunicorn and open two endless streams; once one is streaming, send
    ``request_path`` and SIGTERM 0.3 s later. Return how long gunicorn took to stop, and
    what the request received."""
    with gunicorn_with(exercise) as server:
        received: dict[str, bytes] = {}
        streaming = threading.Event()

        def read(name: str, path: str) -> None:
            body = b""
            try:
                with requests.get(server.url + path, stream=True, timeout=15) as response:
                    for piece in response.iter_content(None):
                        body += piece
                        streaming.set()
            except requests.RequestException:
                pass
            received[name] = body

        def reader(name: str, path: str) -> threading.Thread:
            thread = threading.Thread(target=read, args=(name, path), daemon=True)
            thread.start()
            return thread

        readers = [reader("stream 1", "/events"), reader("stream 2", "/events")]
        streaming.wait(timeout=5)  # a stream holds a worker, a thread or a greenlet now
        readers.append(reader("request", request_path))
        time.sleep(0.3)
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=GIVE_UP)
        except subprocess.TimeoutExpired:
            server.kill()
        took = time.monotonic() - signalled
    for thread in readers:
        thread.join(timeout=15)
    return took, received.get("request", b"")


def too_slow(took: float, exercise) -> str:
    return tutor(
        f"SIGTERM with two endless /events streams open, with {settings(exercise)}",
        Happened(
            f"gunicorn stopped after {took:.1f} s"
            if took < GIVE_UP
            else f"still running after {GIVE_UP} s"
        ),
        "gone within 5 s",
        "Task 3 and lesson 07, 'Shutdown': on SIGTERM gunicorn waits graceful_timeout for open"
        " requests, and a stream"
        " never finishes by itself.",
    )


def test_task3_a_deploy_with_streams_open_is_over_within_5_seconds(exercise):
    took, _ = stop_while(exercise, "/ticks?count=1")
    assert took <= DEADLINE, too_slow(took, exercise)


def test_task3_a_quick_deploy_still_lets_a_short_request_finish(exercise):
    expected = b"".join(f"tick {n}\n".encode() for n in range(4))
    took, got = stop_while(exercise, "/ticks?count=4&interval=0.25")
    assert took <= DEADLINE, too_slow(took, exercise)
    assert got == expected, tutor(
        "SIGTERM 0.3 s into a 0.75 s /ticks request, with " + settings(exercise),
        got,
        f"the whole response, {expected!r}",
        "Task 3 and lesson 07, 'Shutdown': graceful_timeout is the time in-flight requests get to"
        " finish: cut it"
        " short for streams, not to nothing.",
    )
