"""Keep the servers and the clients on separate cores, so that they do not measure each other.

On a two-core machine a benchmark's server and its load generator would otherwise take
turns on the same core, and each would show up in the other's figures. Servers go on
core 0 (:func:`pin`); the benchmark and the client processes it starts, which inherit
its affinity, on the last core (:func:`clients_on_the_last_core`: one lean client), or on
every other core (:func:`clients_on_spare_cores`: a crowd of clients in one process per
core, so that on a bigger machine the load generator is never what runs out). Where the
machine cannot pin (not Linux, or one core), they do nothing. On loopback the kernel's
receive work goes with them when it can (:func:`loopback_receive_on_spare_cores`).
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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


LOOPBACK = Path("/sys/class/net/lo/queues")  # a receive queue's RPS mask: rx-N/rps_cpus


@contextmanager
def loopback_receive_on_spare_cores(queues: Path = LOOPBACK) -> Iterator[bool]:
    """Have the kernel receive loopback packets on :func:`spare_cores`; yield whether it could.

    A TCP write on loopback is received, by default, on the core that wrote it: the
    receiving end's TCP work (queueing the bytes, waking the reader) runs right after
    the sender's, on the sender's core. So a server pinned to core 0 would also do every
    client's receive, which on a real network happens on the client's machine. Receive
    Packet Steering (RPS: a mask of cores for each receive queue, in ``/sys``) sends that
    work to the clients' cores instead. The setting is the whole machine's and needs
    root: without it this yields False and changes nothing; with it, the old masks come
    back on exit.
    """
    masks = sorted(queues.glob("rx-*/rps_cpus"))
    spare = sum(1 << core for core in spare_cores())
    before: dict[Path, str] = {}
    try:
        for mask in masks if can_pin() else []:
            was = mask.read_text().strip()
            mask.write_text(f"{spare:x}")
            before[mask] = was
    except OSError:  # not root: put back the masks already written, below
        pass
    try:
        yield bool(masks) and list(before) == masks and all(read_mask(m) == spare for m in masks)
    finally:
        for mask, was in before.items():
            mask.write_text(was)


def read_mask(path: Path) -> int:
    """An RPS mask file's cores as one number (it reads as hex words: ``00000000,00000002``)."""
    return int(path.read_text().strip().replace(",", ""), 16)
