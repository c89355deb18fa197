"""Measure a server process's memory from the outside, while a response streams.

The figure that matters for streaming is the *peak* resident set size (RSS): a buffered
response of 256 MiB may be freed a moment after it is sent, but the machine still had to
hold it. Linux keeps each process's peak in ``/proc/PID/status`` (``VmHWM``, the
"high water mark") and lets the owner reset it by writing ``5`` to
``/proc/PID/clear_refs`` (see ``man 5 proc``). That gives an exact peak for one request.
Elsewhere we fall back to sampling the RSS with psutil, which can miss a short spike.
"""

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil


def rss_bytes(pids: Sequence[int]) -> int:
    """Return the resident memory of the processes ``pids`` now, in bytes, summed."""
    return sum(psutil.Process(pid).memory_info().rss for pid in pids)


def peak_rss_bytes(pid: int) -> int | None:
    """Return the peak resident memory of process ``pid`` in bytes, or None off Linux.

    The peak is the process's lifetime high-water mark, or the one since the last
    :func:`reset_peak_rss`.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024  # the kernel reports kB
    return None


def reset_peak_rss(pid: int) -> bool:
    """Reset the peak resident memory of ``pid`` to its current RSS; say if it worked.

    Needs Linux 4.0+ and the right to write the process's ``clear_refs`` (your own
    processes, as started by :func:`streamlib.spawn_server`).
    """
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass
class MemoryTrace:
    """What :func:`trace_memory` saw: sizes in bytes, times in seconds from its start."""

    baseline_bytes: int
    peak_bytes: int
    exact: bool
    samples: list[tuple[float, int]] = field(default_factory=list)

    @property
    def growth_bytes(self) -> int:
        """How far the peak rose above the memory held before the measurement began."""
        return self.peak_bytes - self.baseline_bytes


@contextmanager
def trace_memory(pids: Sequence[int], interval: float = 0.01) -> Iterator[MemoryTrace]:
    """Trace the memory of the processes ``pids`` while the ``with`` block runs.

    pids: the server's processes (:meth:`streamlib.ServerProcess.pids`).
    interval: seconds between two RSS samples (the samples are for plotting).

    On Linux the peak is exact (``exact`` is True); elsewhere it is the largest sample.

    >>> with spawn_server(command, port) as server:            # doctest: +SKIP
    ...     with trace_memory(server.pids()) as memory:
    ...         observe(server.url + "/buffered?size=67108864")
    ...     print(memory.growth_bytes)
    """
    exact = all(reset_peak_rss(pid) for pid in pids)
    trace = MemoryTrace(baseline_bytes=rss_bytes(pids), peak_bytes=0, exact=exact)
    stop = threading.Event()
    start = time.perf_counter()

    def sample() -> None:
        while True:
            try:
                size = rss_bytes(pids)
            except psutil.Error:  # the server went away: nothing left to sample
                return
            trace.samples.append((time.perf_counter() - start, size))
            trace.peak_bytes = max(trace.peak_bytes, size)
            if stop.wait(interval):
                return

    sampler = threading.Thread(target=sample, name="trace_memory", daemon=True)
    sampler.start()
    try:
        yield trace
    finally:
        stop.set()
        sampler.join()
        if exact:
            peaks = [peak_rss_bytes(pid) for pid in pids]
            if None not in peaks:
                trace.peak_bytes = max(trace.peak_bytes, sum(peaks))
