"""Grader for exercise 03: ``python -m pytest exercises/test_03_manual_chunks.py``.

Tests are named after the tasks in ``exercises/03_manual_chunks.py``.
"""

import threading
import time

import requests
from grading import Happened, serve_exercise, tutor

from streamlib import FakeClock

EXERCISE = "03_manual_chunks"
# The section each task's hint sends a learner to when no test says more.
TASK_SECTIONS = {
    1: "lesson 03, 'The pattern'",
    2: "lesson 03, 'On schedule'",
    3: "lesson 01, 'close()'",
}


def run(exercise, start=3, interval=1.0, oversleep=0.0):
    fake, stops = FakeClock(oversleep), []
    lines = exercise.countdown(start, interval, stops.append, fake.clock, fake.sleep)
    return lines, fake, stops


def test_task1_counts_down_to_liftoff(exercise):
    lines, _, _ = run(exercise)
    got = list(lines)
    expected = [b"T-3\n", b"T-2\n", b"T-1\n", b"liftoff\n"]
    assert got == expected, tutor(
        "countdown(3, 1.0, ...) and read every line",
        got,
        expected,
        "Task 1 and lesson 03, 'The pattern': yield one line per chunk, bytes ending in a newline.",
    )


def test_task1_the_first_line_comes_at_once_then_one_per_interval(exercise):
    lines, fake, _ = run(exercise)
    first = next(lines)
    slept_before_first = list(fake.sleeps)
    list(lines)
    assert (first, slept_before_first, fake.sleeps) == (b"T-3\n", [], [1.0, 1.0, 1.0]), tutor(
        "countdown(3, 1.0, ...) with a fake sleep, noting every sleep",
        Happened(f"sleeps before the first line: {slept_before_first}, in all: {fake.sleeps}"),
        "no sleep before the first line, then three sleeps of 1.0 s",
        "Task 1 and lesson 03, 'On schedule': the first chunk should leave at once.",
    )


def test_task2_late_wake_ups_do_not_add_up(exercise):
    lines, fake, _ = run(exercise, start=10, interval=1.0, oversleep=0.01)
    times = []
    for _ in lines:
        times.append(round(fake.now - 1000.0, 6))
    lateness = [round(t - n, 6) for n, t in enumerate(times)]
    assert max(lateness) <= 0.010001, tutor(
        "countdown(10, 1.0, ...) with a sleep that always wakes 10 ms late",
        Happened(f"lines at {times} s (the last {lateness[-1] * 1000:.0f} ms late)"),
        "every line at most 10 ms after its deadline n * 1.0 s",
        "Task 2 and lesson 03, 'On schedule': sleep for deadline - clock(), not interval.",
    )


def test_task3_reports_liftoff_once(exercise):
    lines, _, stops = run(exercise)
    list(lines)
    assert stops == ["liftoff"], tutor(
        "countdown(3, ...) and read every line",
        Happened(f"on_stop calls: {stops}"),
        "exactly one call: ['liftoff']",
        "Task 3 and lesson 03, 'The pattern': call on_stop('liftoff') after the last line, once.",
    )


def test_task3_reports_where_it_was_when_the_client_left(exercise):
    lines, fake, stops = run(exercise, start=5)
    first_two = [next(lines, None), next(lines, None)]
    assert first_two == [b"T-5\n", b"T-4\n"], tutor(
        "countdown(5, ...) and read two lines",
        first_two,
        "[b'T-5\\n', b'T-4\\n']",
        "Task 1 and lesson 03, 'The pattern': one line per yield, bytes ending in a newline.",
    )
    sleeps_before = len(fake.sleeps)
    lines.close()  # what the server does when the client hangs up
    assert (stops, len(fake.sleeps)) == (["aborted at T-4"], sleeps_before), tutor(
        "countdown(5, ...), read T-5 and T-4, then close() as the server does",
        Happened(f"on_stop calls {stops}, {len(fake.sleeps) - sleeps_before} sleeps after close()"),
        "on_stop('aborted at T-4') once, and no sleep after close()",
        "Task 3 and lesson 01, 'close()': close() raises GeneratorExit at the paused yield; catch"
        " it"
        " (or use finally), report, and re-raise.",
    )


def test_task3_a_real_server_stops_the_countdown_when_the_client_leaves(exercise):
    stopped = threading.Event()
    reports = []

    def on_stop(message: str) -> None:
        reports.append(message)
        stopped.set()

    with serve_exercise(exercise.make_countdown_app(on_stop)) as url:
        with requests.get(url + "/?from=100&interval=0.05", stream=True, timeout=5) as r:
            first = r.raw.read1(100)
        assert first.startswith(b"T-100"), tutor(
            "make_countdown_app(on_stop) on a real server",
            first,
            "the first line, b'T-100\\n'",
            "Task 1 and lesson 03, 'The pattern': yield the first line at once.",
        )
        # The server learns of the hang-up at its next write or two: a few intervals.
        stopped.wait(timeout=5)
        time.sleep(0.2)  # let a second report, if any, show itself
    assert len(reports) == 1, tutor(
        "make_countdown_app(on_stop) on a real server; a client read the first line and left",
        Happened(f"first bytes {first!r}, on_stop calls {reports}"),
        "one on_stop('aborted at T-...') within a few intervals",
        "Task 3 and lesson 04, 'Heartbeats and goodbyes': the server calls close() on your"
        " generator when a write fails.",
    )
    assert reports[0].startswith("aborted at T-"), tutor(
        "make_countdown_app(on_stop) on a real server; a client read the first line and left",
        Happened(f"on_stop calls {reports}"),
        "on_stop('aborted at T-...')",
        "Task 3 and lesson 01, 'close()': GeneratorExit arrives at the paused yield.",
    )
