"""Keep the servers and the clients on separate cores, so that they do not measure each other.

On a two-core machine a benchmark's server and its load generator would otherwise take
turns on the same core, and each would show up in the other's figures. Servers go on
core 0 (:func:`pin`); the benchmark and the client processes it starts, which inherit
its affinity, on the last core (:func:`clients_on_the_last_core`: one lean client), or on
every other core (:func:`clients_on_spare_cores`: a crowd of clients in one process per
core, so that on a bigger machine the load generator is never what runs out). Where the
machine cannot pin (not Linux, or one core), they do nothing.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager


def can_pin() -> bool:
    """Whether processes can be kept apart here: Linux, with two cores or more."""
    return hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2


def pin(pids: list[int], cpu: int = 0) -> None:
    """Keep ``pids`` on core ``cpu`` (the servers' core, 0, unless told otherwise)."""
    if can_pin():
        for pid in pids:
            os.sched_setaffinity(pid, {cpu})


def spare_cores() -> set[int]:
    """The cores that no server is pinned to: every core but 0 (all of them if none can be
    pinned). A load generator spreads its processes over these."""
    cores = set(range(os.cpu_count() or 1))
    return cores - {0} if can_pin() else cores


@contextmanager
def clients_on_spare_cores() -> Iterator[int]:
    """Run this process, and the processes it starts meanwhile, on :func:`spare_cores`;
    yields how many there are (as many client processes as that is the most useful)."""
    cores = spare_cores()
    if not can_pin():
        yield len(cores)
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cores)
    try:
        yield len(cores)
    finally:
        os.sched_setaffinity(0, before)


@contextmanager
def clients_on_the_last_core() -> Iterator[None]:
    """Run this process, and the processes it starts meanwhile, on the last core."""
    if not can_pin():
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {(os.cpu_count() or 1) - 1})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
