"""Lesson 01: time to first byte and server peak memory, buffered vs streamed.

For each server, route and body size: start a fresh course server (so no memory freed by
an earlier request can be reused), warm it up with a tiny request, then fetch the body
once while tracing the server's peak memory. Repeat, and keep the median times and the
largest memory growth.
"""

import statistics
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no window
import matplotlib.pyplot as plt

from bench.report import targets_and_plot
from lab import observe, trace_memory
from lessons import spawn_course

MiB = 1024 * 1024
SERVERS = {
    "werkzeug": ("--server", "werkzeug"),
    "gunicorn sync": ("--server", "gunicorn", "--worker-class", "sync"),
}
ROUTES = ("buffered", "streamed")
TTFB_TARGET_MS = 50  # streamed: under this at every size
MEMORY_TARGET_MIB = 8  # streamed: peak within this of the baseline at every size


@dataclass
class Result:
    server: str
    route: str
    size_mib: int
    ttfb_ms: float
    total_ms: float
    growth_mib: float


def measure(flags: tuple[str, ...], route: str, size_mib: int) -> tuple[float, float, float]:
    """Fetch ``size_mib`` from ``route`` on a fresh server; return (ttfb ms, total ms, MiB)."""
    with spawn_course(*flags) as server:
        observe(f"{server.url}/{route}?size=1000")
        with trace_memory(server.pids()) as memory:
            seen = observe(f"{server.url}/{route}?size={size_mib * MiB}&piece=65536")
    assert seen.total_bytes == size_mib * MiB, f"{route} sent {seen.total_bytes} bytes"
    return seen.ttfb * 1000, seen.total_time * 1000, memory.growth_bytes / MiB


def run(out: Path, quick: bool = False) -> str:
    """Measure, plot to ``out``, and return the markdown section."""
    sizes, repeats = ((1, 4), 1) if quick else ((1, 16, 256), 3)
    results = []
    for server, flags in SERVERS.items():
        for route in ROUTES:
            for size in sizes:
                runs = [measure(flags, route, size) for _ in range(repeats)]
                ttfb, total, growth = zip(*runs, strict=True)
                results.append(
                    Result(
                        server,
                        route,
                        size,
                        statistics.median(ttfb),
                        statistics.median(total),
                        max(growth),
                    )
                )
                print(f"  {results[-1]}", flush=True)
    plot(results, out / "01_buffered_vs_streamed.png")
    return section(results, repeats)


def plot(results: list[Result], path: Path) -> None:
    fig, (memory, first_byte) = plt.subplots(1, 2, figsize=(11, 4))
    # Where both servers measure the same, their lines coincide: big hollow circles for one,
    # small crosses for the other, so that both stay visible.
    markers = {
        "werkzeug": {"marker": "o", "markersize": 10, "fillstyle": "none"},
        "gunicorn sync": {"marker": "x", "markersize": 7},
    }
    for server in SERVERS:
        for route in ROUTES:
            rows = [r for r in results if (r.server, r.route) == (server, route)]
            label = f"{route}, {server}"
            style = {"linestyle": "-" if route == "buffered" else "--", **markers[server]}
            sizes = [r.size_mib for r in rows]
            memory.plot(sizes, [r.growth_mib for r in rows], label=label, **style)
            first_byte.plot(sizes, [r.ttfb_ms for r in rows], label=label, **style)
    memory.set(xlabel="body size (MiB)", ylabel="server peak memory growth (MiB)")
    first_byte.set(xlabel="body size (MiB)", ylabel="time to first byte (ms)")
    memory.set_title("Server memory")
    first_byte.set_title("First byte")
    memory.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def section(results: list[Result], repeats: int) -> str:
    streamed = [r for r in results if r.route == "streamed"]
    buffered = [r for r in results if r.route == "buffered"]
    checks = [
        (
            f"streamed time to first byte under {TTFB_TARGET_MS} ms at every size",
            all(r.ttfb_ms < TTFB_TARGET_MS for r in streamed),
        ),
        (
            f"streamed server peak memory within {MEMORY_TARGET_MIB} MiB of its baseline",
            all(r.growth_mib < MEMORY_TARGET_MIB for r in streamed),
        ),
        (
            "buffered server peak memory grows by at least the body size",
            all(r.growth_mib >= r.size_mib for r in buffered),
        ),
        (
            "buffered time to first byte grows with the size",
            all(a.ttfb_ms < b.ttfb_ms for a, b in pairwise(buffered) if a.server == b.server),
        ),
    ]
    lines = [
        "## Lesson 01: buffered vs streamed\n",
        "The same body, in pieces of 64 KiB with no delay, from `/buffered` and `/streamed`;"
        f" medians of {repeats} runs (memory: the largest), each on a fresh server.\n",
        "| server | route | body MiB | first byte ms | total ms | server peak growth MiB |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.server} | {r.route} | {r.size_mib} | {r.ttfb_ms:.1f} | {r.total_ms:.0f}"
            f" | {r.growth_mib:.1f} |"
        )
    lines += targets_and_plot(checks, "01_buffered_vs_streamed.png", "lesson 01")
    return "\n".join(lines)
