"""Lesson 09: what Flask and Django cost a stream, and WSGI against ASGI at fan-out.

Two measurements. First, in one process with no network, what each framework adds to a
streamed piece (lesson 03's ticks with no pause) and to a request (lesson 02's small
file), against the WSGI originals: the best of five rounds each. Second, lesson 07's
fan-out (the SSE clock, one event a second to every client, one server process pinned to
one core) for the ASGI clock (``lessons.asgi_clock``: Starlette on uvicorn, with asyncio
and h11, and with uvloop and httptools) beside one gunicorn gevent worker, on a timer per
stream and on one ticker, and Node as the yardstick, in interleaved rounds, each compared
with Node's run of the same round.
"""

import statistics
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.cores import clients_on_spare_cores
from bench.lesson07 import NODE, TICKER, WORKER_CLASSES, against_node, median_run, one_worker
from bench.report import targets_and_plot
from lab import ServerProcess, free_port, spawn_server
from lab.node_clock import spawn_node_clock
from lessons import load_lessons
from lessons.course import build_app
from streamlib import call_app

PREFIXES = {"WSGI (lessons 02-04)": "", "Flask": "/flask", "Django": "/django"}
ASGI = "uvicorn + Starlette, asyncio + h11 (ASGI)"
ASGI_FAST = "uvicorn + Starlette, uvloop + httptools (ASGI)"
GEVENT = "gunicorn gevent, a timer per stream"
PIECE_RATIO = 2.0  # a framework's cost per streamed piece, as a multiple of plain WSGI's
REQUEST_EXTRA_US = 1000.0  # what a framework may add to a small request, in µs


def framework_costs(pieces: int, requests_made: int, rounds: int) -> dict[str, tuple[float, float]]:
    """{framework: (µs per streamed piece, µs per file request)}, the best of ``rounds``."""
    app = build_app(load_lessons())

    def per_piece(prefix: str) -> float:
        started = time.perf_counter()
        response = call_app(app, f"{prefix}/ticks?count={pieces}&interval=0", validate=False)
        response.read()
        return (time.perf_counter() - started) / pieces * 1e6

    def per_request(prefix: str) -> float:
        started = time.perf_counter()
        for _ in range(requests_made):
            call_app(app, f"{prefix}/files/hello.txt", validate=False).read()
        return (time.perf_counter() - started) / requests_made * 1e6

    return {
        name: (
            min(per_piece(prefix) for _ in range(rounds)),
            min(per_request(prefix) for _ in range(rounds)),
        )
        for name, prefix in PREFIXES.items()
    }


def asgi_clock(loop: str = "asyncio", http: str = "h11") -> AbstractContextManager[ServerProcess]:
    """``lessons.asgi_clock`` under uvicorn, one process: on its pure-Python parts (asyncio's
    loop, the h11 parser) or on the C ones ``pip install uvicorn[standard]`` brings (uvloop,
    httptools), which uvicorn picks by itself when they are installed."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "lessons.asgi_clock:app", "--port", str(port)]
    command += ["--loop", loop, "--http", http, "--log-level", "warning"]
    return spawn_server(command, port, ready_path="/stats")


def fan_out_servers() -> dict[str, tuple[Callable[[int], Callable], str]]:
    """The servers measured against Node: name -> (server for n clients, route)."""
    gevent = WORKER_CLASSES["gevent"]
    return {
        ASGI: (lambda clients: asgi_clock, "/events"),
        ASGI_FAST: (lambda clients: lambda: asgi_clock("uvloop", "httptools"), "/events"),
        GEVENT: (lambda clients: lambda: one_worker(gevent, clients), "/events"),
        TICKER: (lambda clients: lambda: one_worker(gevent, clients), "/shared-events"),
        NODE: (lambda clients: spawn_node_clock, "/events"),
    }


def run(out: Path, quick: bool = False) -> str:
    pieces, requests_made, cost_rounds = (2000, 50, 1) if quick else (20_000, 300, 5)
    sizes, window, rounds = ([60], 1.5, 1) if quick else ([1000, 5000, 10000], 8.0, 3)
    costs = framework_costs(pieces, requests_made, cost_rounds)
    print(f"  costs {costs}", flush=True)
    servers = fan_out_servers()
    if quick:  # only that it runs: the ASGI clock on both kinds of parts, and the yardstick
        servers = {name: servers[name] for name in (ASGI, ASGI_FAST, NODE)}
    with clients_on_spare_cores() as client_cores:
        runs, ratios = against_node(servers, sizes, rounds, window, client_cores)
    rows = {name: [median_run(runs[name, n]) for n in sizes] for name in servers}
    plot(costs, rows, out / "09_flask_and_django.png")
    raw_piece, raw_request = costs["WSGI (lessons 02-04)"]
    lines = [
        "## Lesson 09: Flask and Django, and WSGI against ASGI\n",
        f"What each framework costs, in one process with no network: lesson 03's ticks with"
        f" no pause ({pieces} pieces) and lesson 02's small file ({requests_made} requests),"
        f" through the course's own WSGI app and through Flask and Django mounted in it; the"
        f" best of {cost_rounds} round(s).\n",
        "| framework | µs per piece | × WSGI | µs per request | added to WSGI's |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {name} | {piece:.2f} | {piece / raw_piece:.2f} | {request:.0f}"
        f" | {request - raw_request:+.0f} µs |"
        for name, (piece, request) in costs.items()
    ]
    lines += [
        f"\nFan-out, as lesson 07 measures it: every server one process pinned to one core,"
        f" the clients (`lab.load.crowd`) on {client_cores} other core(s); the SSE clock"
        f" to every client for {window:.0f} s, in {rounds} interleaved round(s); each row the"
        " run with the median p99.\n",
        "| server | clients | served | p50 ms | p99 ms | p99 × Node's (spread) | KiB per"
        " connection | µs/event | client cores |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, measured in rows.items():
        for r in measured:
            spread = sorted(ratios[name, r["clients"]])
            lines.append(
                f"| {name} | {r['clients']} | {r['served']} | {r['p50']:.0f} | {r['p99']:.0f}"
                f" | {statistics.median(spread):.2f} ({spread[0]:.2f}–{spread[-1]:.2f})"
                f" | {r['kib_per_connection']:.1f} | {r['us_per_event']:.1f}"
                f" | {r['client_cores']:.2f} |"
            )
    checks = [
        (
            f"Flask and Django each cost within {PIECE_RATIO}x plain WSGI per streamed piece",
            all(costs[n][0] <= PIECE_RATIO * raw_piece for n in ("Flask", "Django")),
        ),
        (
            f"Flask and Django each add under {REQUEST_EXTRA_US:.0f} µs to a small request",
            all(costs[n][1] - raw_request < REQUEST_EXTRA_US for n in ("Flask", "Django")),
        ),
        (
            f"Node serves every client up to {sizes[-1]}, in every round",
            all(r["served"] == r["clients"] for n in sizes for r in runs[NODE, n]),
        ),
    ]
    if not quick:  # the lesson's answer to "should I leave WSGI for this?", kept true
        middle = sizes[len(sizes) // 2]
        tickers = runs[TICKER, middle]
        checks.append(
            (
                f"at {middle} clients, one gevent worker on a shared ticker has a lower p99 than"
                " uvicorn on either loop, in every round",
                all(
                    ticker["p99"] < asgi["p99"]
                    for name in (ASGI, ASGI_FAST)
                    for ticker, asgi in zip(tickers, runs[name, middle], strict=True)
                ),
            )
        )
    lines += targets_and_plot(checks, "09_flask_and_django.png", "lesson 09")
    return "\n".join(lines)


def plot(costs: dict, rows: dict[str, list[dict]], path: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    left.bar(list(costs), [piece for piece, _ in costs.values()], color=["C0", "C1", "C2"])
    left.set(ylabel="µs per streamed piece", title="what a framework adds to a piece")
    for name, measured in rows.items():
        right.plot([r["clients"] for r in measured], [r["p99"] for r in measured], "o-", label=name)
    right.set(xlabel="clients", ylabel="p99 latency (ms)", title="fan-out, one core each")
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
