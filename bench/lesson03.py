"""Lesson 03: do ticks leave on schedule? Jitter of ``/ticks`` under each server.

Each server streams ``count`` ticks ``interval`` seconds apart to a client that notes when
each read returned. A tick's deviation is its arrival minus its ideal time, counted from
the first tick's arrival (so connection set-up is left out): tick n should land at
``first + n * interval``. The client also checks that every read held exactly one tick,
i.e. that nothing between the generator and the socket merged them.
"""

import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.report import targets_and_plot
from lab import observe
from lessons import spawn_course

SERVERS = {
    "werkzeug dev server": (),
    "gunicorn sync": ("--server", "gunicorn", "--worker-class", "sync"),
    "gunicorn gthread": ("--server", "gunicorn", "--worker-class", "gthread"),
}
P99_TARGET_MS = 10.0


def deviations_ms(flags: tuple[str, ...], count: int, interval: float) -> tuple[list[float], bool]:
    """Stream ``count`` ticks from a fresh server; return each tick's deviation in ms, and
    whether every read held exactly one tick."""
    with spawn_course(*flags) as server:
        seen = observe(f"{server.url}/ticks?count={count}&interval={interval}")
    sizes = [chunk.size for chunk in seen.chunks]
    one_per_read = sizes == [len(f"tick {n}\n") for n in range(count)]
    first = seen.chunks[0].at
    return [(c.at - first - n * interval) * 1000 for n, c in enumerate(seen.chunks)], one_per_read


def percentile(values: list[float], share: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def run(out: Path, quick: bool = False) -> str:
    count, interval = (6, 0.05) if quick else (40, 0.5)
    rows, series = [], {}
    for name, flags in SERVERS.items():
        deviations, one_per_read = deviations_ms(flags, count, interval)
        late = [abs(d) for d in deviations[1:]]
        rows.append((name, percentile(late, 0.5), percentile(late, 0.99), max(late), one_per_read))
        series[name] = deviations
        print(f"  {rows[-1]}", flush=True)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for name, deviations in series.items():
        ax.plot(deviations, marker=".", label=name)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set(xlabel="tick", ylabel="ms from its ideal time")
    ax.set_title(f"{count} ticks, {interval * 1000:.0f} ms apart")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "03_manual_chunks.png", dpi=90)
    plt.close(fig)
    lines = [
        "## Lesson 03: ticks on schedule\n",
        f"`/ticks?count={count}&interval={interval}` from a fresh server each; a tick's deviation"
        " is its arrival minus the first tick's arrival minus n intervals.\n",
        "| server | p50 ms | p99 ms | max ms | one tick per read |",
        "|---|---:|---:|---:|---|",
    ]
    lines += [
        f"| {name} | {p50:.2f} | {p99:.2f} | {worst:.2f} | {'yes' if ok else 'NO'} |"
        for name, p50, p99, worst, ok in rows
    ]
    checks = [
        ("every tick arrived in a read of its own, on every server", all(r[4] for r in rows)),
        (
            f"p99 deviation under {P99_TARGET_MS:.0f} ms on every server",
            all(r[2] < P99_TARGET_MS for r in rows),
        ),
    ]
    lines += targets_and_plot(checks, "03_manual_chunks.png", "lesson 03")
    return "\n".join(lines)
