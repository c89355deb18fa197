"""Keep a stream on schedule: one beat every ``interval`` seconds, without drift.

``for n in range(count): sleep(interval); yield ...`` drifts: every ``sleep`` wakes a
little late (about half a millisecond here), the work between sleeps takes time too, and
the delays add up. Sleeping *until a deadline* instead, ``start + n * interval``, makes
each beat's lateness its own: beat 1000 is no later than beat 1.
"""

import itertools
import time
from collections.abc import Callable, Iterator


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
