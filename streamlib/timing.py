"""Keep a stream on schedule: one beat every ``interval`` seconds, without drift.

``for n in range(count): sleep(interval); yield ...`` drifts: every ``sleep`` wakes a
little late, the work between sleeps takes time too, and the delays add up. Sleeping
*until a deadline* instead, ``start + n * interval``, makes each beat's lateness its own:
beat 1000 is no later than beat 1.

:func:`ticks` is the simplest stream there is, on that schedule: ``tick 0``, ``tick 1``,
... one line a beat (lesson 03); :func:`ticks_for` reads how many and how often from a
request's query, within bounds.
"""

import itertools
import time
from collections.abc import Callable, Iterator, Mapping

from streamlib.params import check_duration, float_param, int_param


def paced(
    count: int | None,
    interval: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[int]:
    """Yield 0, 1, 2, ... ``count`` times (forever if None), beat n at ``n * interval`` s.

    count: how many beats; None for no end (the consumer stops by closing the generator).
    interval: seconds between beats. The first beat comes at once.
    clock: a monotonic clock in seconds (``time.monotonic``: never jumps, unlike the wall
        clock); tests pass a fake one.
    sleep: how to wait; tests pass a fake one that moves the fake clock.

    >>> [n for n in paced(3, 0.0)]
    [0, 1, 2]
    """
    start = clock()
    for beat in itertools.count() if count is None else range(count):
        delay = start + beat * interval - clock()
        if delay > 0:
            sleep(delay)
        yield beat


MAX_TICKS = 100_000  # the most ticks one request may ask for (lesson 03's /ticks)
MAX_TICK_INTERVAL = 60.0  # seconds


def ticks(
    count: int,
    interval: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[bytes]:
    """Yield ``tick 0``, ``tick 1``, ... one line every ``interval`` seconds, on schedule.

    count: how many ticks.
    interval: seconds between ticks; the first comes at once.
    clock, sleep: as for :func:`paced`; tests pass fake ones.

    >>> list(ticks(2, 0.0))
    [b'tick 0\\n', b'tick 1\\n']
    """
    for n in paced(count, interval, clock, sleep):
        yield f"tick {n}\n".encode()


def ticks_for(args: Mapping[str, str]) -> Iterator[bytes]:
    """The ticks that a request's query ``args`` ask for (``count``, ``interval``), every
    parameter checked before the first tick: a bad one raises werkzeug's ``BadRequest``."""
    count = int_param(args, "count", 10, 0, MAX_TICKS)
    interval = float_param(args, "interval", 0.5, 0.0, MAX_TICK_INTERVAL)
    check_duration("interval", count, "ticks", interval)
    return ticks(count, interval)
