"""Exercise 03, reference solution: a countdown that keeps time and stops cleanly.

Write ``countdown``, a generator that counts down to a launch, one line per chunk:

    T-3
    T-2
    T-1
    liftoff

``make_countdown_app`` (given, below) serves it: ``GET /?from=3&interval=1``.

Read first: lesson 03, 'The pattern' and 'On schedule' (the page ``/lessons/3``), notebook
03, 'Why sleep until a deadline'; and lesson 01, 'close()'.

Task 1. Yield ``T-N\\n`` for N from ``start`` down to 1, then ``liftoff\\n``: the first line
        at once, then one every ``interval`` seconds. Wait only with the ``sleep`` you are
        given (the graders pass a fake one, so that they never wait).
Task 2. Keep time: sleep until each line's deadline on ``clock`` (the start time plus
        ``n * interval``), not for ``interval``, so that every late wake-up does not push
        all the later lines back.
Task 3. Report how it ended, exactly once: ``on_stop("liftoff")`` after the last line, or
        ``on_stop("aborted at T-N")`` when the server closes the generator early (T-N is
        the last line sent). After that, never sleep or yield again.

Grade your work:   python -m pytest exercises/test_03_manual_chunks.py
"""

import time
from collections.abc import Callable, Iterator

from werkzeug.wrappers import Request

from streamlib import float_param, int_param


def countdown(
    start: int,
    interval: float,
    on_stop: Callable[[str], None],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[bytes]:
    """Yield ``T-start`` ... ``T-1`` and ``liftoff``, one line every ``interval`` seconds.

    start: the first number counted down from.
    interval: seconds between two lines.
    on_stop: called once at the end with ``"liftoff"`` or ``"aborted at T-N"``.
    clock: a monotonic clock in seconds; sleep: how to wait (both replaced in the grader).
    """
    began = clock()
    last = None
    lines = [f"T-{n}" for n in range(start, 0, -1)] + ["liftoff"]
    try:
        for n, line in enumerate(lines):
            delay = began + n * interval - clock()  # Task 2: sleep until the deadline
            if delay > 0:
                sleep(delay)
            last = line  # before the yield: close() arrives while we are paused there
            yield f"{line}\n".encode()  # Task 1; the first line has no delay
    except GeneratorExit:  # Task 3: the server called close() while we waited at a yield
        on_stop(f"aborted at {last}")
        raise  # let the generator close; never yield after GeneratorExit
    on_stop("liftoff")


def make_countdown_app(on_stop: Callable[[str], None]) -> Callable:
    """Return a WSGI app serving ``countdown``: ``?from=3&interval=1`` (given, not a task)."""

    def app(environ: dict, start_response: Callable) -> Iterator[bytes]:
        args = Request(environ).args
        start = int_param(args, "from", 3, 1, 100)
        interval = float_param(args, "interval", 1.0, 0.0, 10.0)
        start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
        return countdown(start, interval, on_stop)

    return app
