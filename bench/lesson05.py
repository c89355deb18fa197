"""Lesson 05: a million rows as NDJSON and as a JSON array, memory on both sides.

Each case runs on a fresh server: the server's peak memory comes from the kernel
(``trace_memory``), the client's from ``tracemalloc`` (the Python objects it holds).
Three clients: NDJSON parsed row by row, the array parsed row by row with ijson, and the
array read whole with ``response.json()``, the usual way.
"""

import time
import tracemalloc
from pathlib import Path

import matplotlib
import requests

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.report import targets_and_plot
from lab import observe, trace_memory
from lessons import spawn_course
from streamlib.json_stream import parse_json_array, parse_ndjson

MiB = 1024 * 1024
CLIENTS = {
    "NDJSON, parsed row by row": ("/ndjson", "stream"),
    "array, parsed row by row (ijson)": ("/json-array", "stream"),
    "array, read whole (response.json())": ("/json-array", "whole"),
}
MEMORY_TARGET_MIB = 8.0


def measure(path: str, how: str, count: int) -> dict:
    """One download of ``count`` rows on a fresh server; times in s, memory in MiB."""
    parse = parse_ndjson if path == "/ndjson" else parse_json_array
    with spawn_course() as server:
        observe(f"{server.url}{path}?count=10")
        url = f"{server.url}{path}?count={count}"
        with trace_memory(server.pids()) as server_memory:
            tracemalloc.start()
            start = time.perf_counter()
            first = None
            try:
                if how == "whole":
                    rows = len(requests.get(url).json())
                    first = time.perf_counter() - start
                else:
                    rows = 0
                    with requests.get(url, stream=True) as response:
                        for _ in parse(response.iter_content(chunk_size=64 * 1024)):
                            rows += 1
                            first = first or time.perf_counter() - start
                total = time.perf_counter() - start
                client_peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
    assert rows == count, f"{path}: {rows} rows"
    return {
        "first_row_ms": first * 1000,
        "total_s": total,
        "rows_per_s": count / total,
        "server_mib": server_memory.growth_bytes / MiB,
        "client_mib": client_peak / MiB,
    }


def run(out: Path, quick: bool = False) -> str:
    count = 10_000 if quick else 1_000_000
    results = {}
    for name, (path, how) in CLIENTS.items():
        results[name] = measure(path, how, count)
        print(f"  {name}: {results[name]}", flush=True)
    fig, ax = plt.subplots(figsize=(8, 3))
    names = list(results)
    ax.barh(names, [results[n]["client_mib"] for n in names], label="client")
    ax.barh(names, [results[n]["server_mib"] for n in names], label="server", alpha=0.7)
    ax.invert_yaxis()
    ax.set(xlabel="peak memory growth (MiB)", title=f"{count:,} rows")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "05_chunked_json.png", dpi=90)
    plt.close(fig)
    streaming = [r for name, r in results.items() if "row by row" in name]
    checks = [
        (
            f"{count:,} NDJSON rows: server and client both within {MEMORY_TARGET_MIB:.0f} MiB",
            results["NDJSON, parsed row by row"]["server_mib"] < MEMORY_TARGET_MIB
            and results["NDJSON, parsed row by row"]["client_mib"] < MEMORY_TARGET_MIB,
        ),
        (
            "every streaming client has its first row before the whole client has any",
            all(
                r["first_row_ms"] < results["array, read whole (response.json())"]["first_row_ms"]
                for r in streaming
            ),
        ),
    ]
    lines = [
        "## Lesson 05: a million rows\n",
        f"`/ndjson?count={count}` and `/json-array?count={count}`, each on a fresh server."
        " Server: peak memory growth from the kernel. Client: peak Python allocations"
        " (tracemalloc).\n",
        "| client | first row ms | total s | rows/s | server peak growth MiB | client peak MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {name} | {r['first_row_ms']:.1f} | {r['total_s']:.2f} | {r['rows_per_s']:,.0f}"
        f" | {r['server_mib']:.1f} | {r['client_mib']:.1f} |"
        for name, r in results.items()
    ]
    lines += targets_and_plot(checks, "05_chunked_json.png", "lesson 05")
    return "\n".join(lines)
