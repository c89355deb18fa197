"""Lesson 07: SSE fan-out. How many clients each gunicorn worker class serves, how promptly.

For each worker class and crowd size, a fresh one-worker server streams lesson 04's clock,
one event a second, to ``lab.load.crowd``: lean asyncio clients that note when each
event arrived against when it was due. gevent also serves lesson 07's ``/shared-events``
(one ticker for every stream, each event encoded once). The yardstick is Node with the
tutorial the course comes from (``lab.node_clock``: a timer per connection, the same
event bytes), one process like the worker; and CPython's floor, ``bench.one_loop``: not
WSGI, one loop that sends each event to every socket. The server is pinned to one core and
the clients spread over the others, one process per core, and their own CPU is reported: a
load generator that ran out of core would be measuring itself. A client is *served* if it
received every event due in the measuring window. Memory per connection is the server's peak
RSS in the window less its RSS before the clients came, divided by the clients; CPU is the
server's share of one core in the window. Every run is bounded: the clients hang up when the
window ends.
"""

import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import psutil

from bench.cores import can_pin, clients_on_spare_cores, pin
from bench.report import targets_and_plot
from lab import ServerProcess, spawn_server
from lab.load import crowd
from lab.nginx import spawn_nginx
from lab.node_clock import spawn_node_clock
from lab.serving import free_port
from lab.slow_clients import answer_time, slow_clients
from lessons import load_lesson, spawn_course

WORKER_CLASSES = {
    "sync": ("--worker-class", "sync"),
    "gthread, 1000 threads": ("--worker-class", "gthread", "--threads", "1000"),
    "gevent": ("--worker-class", "gevent"),
}
NODE = "Node 20, a timer per connection"
TICKER = "gevent, one ticker (/shared-events)"
FANOUT = "fan-out worker, one loop (/shared-events)"
FLOOR = "one loop, not WSGI (CPython's floor)"
# Targets as ratios against Node in the same run. The ticker's is no goal reached but the
# gap measured (lesson 07, "Where the microseconds go"): it guards against losing ground.
# The fan-out worker's are issue 13's goal: Node's p99 and memory, or better.
TICKER_P99_RATIO = 2.0
FANOUT_P99_RATIO = 1.0
FLOOR_P99_RATIO = 1.0
MEMORY_RATIO = 1.5
FANOUT_MEMORY_RATIO = 1.0


def one_worker(flags: tuple[str, ...], clients: int) -> AbstractContextManager[ServerProcess]:
    """The course under gunicorn with one worker of the class ``flags`` names."""
    flags = (*flags, "--worker-connections", str(clients + 100), "--server", "gunicorn")
    return spawn_course(*flags, *QUICK_STOP)


def one_loop() -> AbstractContextManager[ServerProcess]:
    """``bench.one_loop``, the floor, on a free port."""
    port = free_port()
    return spawn_server([sys.executable, "-m", "bench.one_loop", str(port)], port, ready_path=None)


def measure(
    start: Callable[[], AbstractContextManager[ServerProcess]],
    clients: int,
    window: float,
    client_processes: int,
    path: str = "/events?interval=1&heartbeat=15",
) -> dict:
    """One fresh server (``start()``), ``clients`` clients for ``window`` s: the row's figures."""
    with start() as server:
        workers = [psutil.Process(pid) for pid in server.pids()]
        pin([w.pid for w in workers])
        idle = sum(w.memory_info().rss for w in workers)
        samples: list[tuple[float, float, int]] = []  # (time, CPU seconds, RSS)
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.25):
                cpu = sum(sum(w.cpu_times()[:2]) for w in workers)
                samples.append((time.time(), cpu, sum(w.memory_info().rss for w in workers)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        result = crowd(
            server.url + path,
            clients,
            window=window,
            ramp=max(0.5, clients / 1000),
            processes=client_processes,
        )
        done.set()
        sampler.join()
    start, end = result.window
    inside = [s for s in samples if start <= s[0] <= end]
    latencies = result.latencies_ms()
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    cpu_share = (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])
    return {
        "clients": clients,
        "served": result.served(),
        "p50": quantiles[49],
        "p99": quantiles[98],
        "kib_per_connection": (max(s[2] for s in inside) - idle) / clients / 1024,
        "cpu": cpu_share * 100,
        "us_per_event": cpu_share / clients * 1e6,  # one event a second per client
        "client_cores": result.client_cores_used(),
    }


# The bench measures streams, not shutdown: when a row is done, its server cuts its streams
# within a second (with 0, gunicorn did not stop within 10 s).
QUICK_STOP = ("--graceful-timeout", "1")

SLOW_SERVERS = {  # name: (course flags, whether nginx stands in front)
    "gthread, 64 threads": (("--server", "gunicorn", "--worker-class", "gthread"), False),
    "gevent": (("--server", "gunicorn", "--worker-class", "gevent"), False),
    "werkzeug (course handler)": ((), False),
    "nginx in front of gthread, 64 threads": (
        ("--server", "gunicorn", "--worker-class", "gthread"),
        True,
    ),
}


def slow_client_answer(
    flags: tuple[str, ...], proxied: bool, count: int, part: str
) -> float | None:
    """With ``count`` slow clients on a fresh server, the ms a normal ``GET /`` took (None:
    no answer within 3 s)."""
    with spawn_course(*flags, *(QUICK_STOP if flags else ())) as server:
        url = server.url
        if proxied:
            location = load_lesson("07").nginx_location(url, client_timeout="10s")
            with spawn_nginx(location) as nginx, slow_clients(nginx.url, count, part=part):
                time.sleep(1.0)
                seconds = answer_time(nginx.url + "/", timeout=3)
        else:
            with slow_clients(url, count, part=part):
                time.sleep(1.0)
                seconds = answer_time(url + "/", timeout=3)
    return None if seconds is None else seconds * 1000


def slow_clients_section(quick: bool) -> tuple[list[str], list[tuple[str, bool]]]:
    """Lesson 07's slow-client table: who still answers a normal request, and the targets."""
    counts = [70] if quick else [30, 60, 70, 200]
    servers = dict(list(SLOW_SERVERS.items())[:2]) if quick else SLOW_SERVERS
    parts = ["headers"] if quick else ["headers", "body"]
    lines = [
        "\n### Slow clients\n",
        "Slow clients send their request one byte a second (`lab.slow_clients`); then"
        " a normal client asks for `/`. Each cell: how long it waited for its answer, or"
        " *none* within 3 s. A fresh server for every cell.\n",
        "| server | part sent slowly | " + " | ".join(f"{n} slow clients" for n in counts) + " |",
        "|---|---|" + "---:|" * len(counts),
    ]
    answered: dict[tuple[str, str, int], bool] = {}
    for name, (flags, proxied) in servers.items():
        for part in parts:
            cells = []
            for count in counts:
                ms = slow_client_answer(flags, proxied, count, part)
                answered[name, part, count] = ms is not None
                cells.append("none" if ms is None else f"{ms:.0f} ms")
            lines.append(f"| {name} | {part} | " + " | ".join(cells) + " |")
            print(f"  slow {name} {part} {cells}", flush=True)
    most = counts[-1]
    checks = [
        (
            f"gthread with 64 threads answers nobody once {most} clients send slowly",
            not any(answered["gthread, 64 threads", part, most] for part in parts),
        ),
        (
            f"gevent answers with {most} slow clients",
            all(answered["gevent", part, most] for part in parts),
        ),
    ]
    if not quick:
        checks.append(
            (
                f"nginx in front of gthread answers with {most} slow clients",
                all(answered[list(SLOW_SERVERS)[3], p, most] for p in ["headers", "body"]),
            )
        )
    return lines, checks


Starter = Callable[[int], Callable[[], AbstractContextManager[ServerProcess]]]


def fan_out_servers() -> dict[str, tuple[Starter, str]]:
    """The servers measured against Node: name -> (server for n clients, route)."""
    gevent = WORKER_CLASSES["gevent"]
    fanout = ("--worker-class", "fanout")  # streamlib.fanout_worker
    return {
        "gevent": (lambda clients: lambda: one_worker(gevent, clients), "/events"),
        TICKER: (lambda clients: lambda: one_worker(gevent, clients), "/shared-events"),
        FANOUT: (lambda clients: lambda: one_worker(fanout, clients), "/shared-events"),
        NODE: (lambda clients: spawn_node_clock, "/events"),
        FLOOR: (lambda clients: one_loop, "/events"),
    }


def against_node(
    servers: dict[str, tuple[Starter, str]],
    sizes: list[int],
    rounds: int,
    window: float,
    client_cores: int,
) -> tuple[dict[tuple[str, int], list[dict]], dict[tuple[str, int], list[float]]]:
    """Measure every server (``NODE`` among them) at every size, in ``rounds`` rounds.

    The machine's speed drifts over minutes, so the servers take turns, size by size, each
    round starting with the next, and each is compared with the Node run of its own round.
    Returns {(server, clients): [figures of each round]} and {(server, clients): [p99 /
    Node's p99 in the same round, ...]}.
    """
    runs: dict[tuple[str, int], list[dict]] = {}
    ratios: dict[tuple[str, int], list[float]] = {}
    for round_number in range(rounds):
        for clients in sizes:
            order = list(servers)[round_number:] + list(servers)[:round_number]
            for name in order:
                server_for, route = servers[name]
                path = f"{route}?interval=1&heartbeat=15"
                figures = measure(server_for(clients), clients, window, client_cores, path)
                runs.setdefault((name, clients), []).append(figures)
                print(f"  round {round_number + 1} {name} {figures}", flush=True)
            node = runs[NODE, clients][-1]
            for name in servers:
                ratios.setdefault((name, clients), []).append(
                    runs[name, clients][-1]["p99"] / node["p99"]
                )
    return runs, ratios


def median_run(runs: list[dict]) -> dict:
    """The run whose p99 is the median of ``runs``: one run's figures, all consistent."""
    return sorted(runs, key=lambda r: r["p99"])[len(runs) // 2]


def run(out: Path, quick: bool = False) -> str:
    sizes, fan_out_sizes, window, rounds = (
        ([60], [60], 1.5, 1) if quick else ([100, 1000, 5000], [1000, 5000, 10000], 8.0, 3)
    )
    rows: dict[str, list[dict]] = {}
    with clients_on_spare_cores() as client_cores:
        for name in ["sync", "gthread, 1000 threads"]:
            rows[name] = []
            for clients in sizes:
                start = partial(one_worker, WORKER_CLASSES[name], clients)
                rows[name].append(measure(start, clients, window, client_cores))
                print(f"  {name} {rows[name][-1]}", flush=True)
        servers = fan_out_servers()
        runs, ratios = against_node(servers, fan_out_sizes, rounds, window, client_cores)
        for name in servers:
            rows[name] = [median_run(runs[name, clients]) for clients in fan_out_sizes]
    plot(rows, out / "07_production.png")
    lines = [
        "## Lesson 07: SSE fan-out by worker class, against Node\n",
        f"One gunicorn worker streams `/events?interval=1` (lesson 04's clock: a timer per"
        f" stream) to every client for {window:.0f} s after they have all connected; gevent"
        " also streams `/shared-events` (lesson 07: one ticker for every stream, each event"
        " encoded once), and so does the fan-out worker (`streamlib.fanout_worker`: gevent's,"
        " plus one loop that writes each event to every caught-up client's socket). Node runs"
        " the tutorial's pattern with the same event bytes"
        " (`lab.node_clock`), and `bench.one_loop` is CPython's floor: no WSGI, one loop"
        " sends each event to every socket. Core budget: every server 1 core (pinned), the"
        f" clients (asyncio, `lab.load.crowd`) {client_cores} core(s), one process"
        " each; *client cores* is how much of them the clients used. Latency: an event's"
        " arrival (the kernel's receive stamp, so a busy client does not add to it) minus its"
        " due time, over every event received. Served: clients that got every event of the"
        " window. Memory per connection divides the server's growth by every client"
        " connected, served or waiting; *µs/event* is the server's CPU per event per client.\n",
        "| server | clients | served | p50 ms | p99 ms | KiB per connection | CPU % | µs/event |"
        " client cores |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, measured in rows.items():
        lines += [
            f"| {name} | {r['clients']} | {r['served']} | {r['p50']:.0f} | {r['p99']:.0f}"
            f" | {r['kib_per_connection']:.1f} | {r['cpu']:.0f} | {r['us_per_event']:.1f}"
            f" | {r['client_cores']:.2f} |"
            for r in measured
        ]
    node = {r["clients"]: r for r in rows[NODE]}
    lines += [
        f"\nEach server compared with Node took turns with it, size by size, in {rounds}"
        " round(s); above, each row is the run with the median p99. Against Node, its p99"
        " as a multiple of Node's in the same round (median, and the spread over the"
        " rounds), and its memory per connection as a multiple of Node's:\n",
        "| server | " + " | ".join(f"{n} clients" for n in fan_out_sizes) + " |",
        "|---|" + "---:|" * len(fan_out_sizes),
    ]
    for name in ["gevent", TICKER, FANOUT, FLOOR]:
        cells = []
        for r in rows[name]:
            spread = sorted(ratios[name, r["clients"]])
            memory = r["kib_per_connection"] / node[r["clients"]]["kib_per_connection"]
            cells.append(
                f"p99 {statistics.median(spread):.2f}x ({spread[0]:.2f}–{spread[-1]:.2f}),"
                f" memory {memory:.2f}x"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += microseconds_section(1 if quick else 5)
    largest, middle = fan_out_sizes[-1], fan_out_sizes[len(fan_out_sizes) // 2]
    at = {name: {r["clients"]: r for r in rows[name]} for name in fan_out_servers()}
    checks = [
        (
            f"Node and the floor serve every client up to {largest}, in every round",
            all(
                r["served"] == r["clients"]
                for n in [NODE, FLOOR]
                for clients in fan_out_sizes
                for r in runs[n, clients]
            ),
        ),
        (
            f"gevent with one ticker serves every client up to {largest}, in every round",
            all(r["served"] == r["clients"] for n in fan_out_sizes for r in runs[TICKER, n]),
        ),
        (
            f"at {middle} clients, one ticker's p99 is below a timer per stream's (medians)",
            at[TICKER][middle]["p99"] < at["gevent"][middle]["p99"],
        ),
        (
            f"the fan-out worker serves every client up to {largest}, in every round",
            all(r["served"] == r["clients"] for n in fan_out_sizes for r in runs[FANOUT, n]),
        ),
        (
            f"the fan-out worker: p99 within {FANOUT_P99_RATIO}x Node's at {middle} and"
            f" {largest} clients (medians of the rounds)",
            all(
                statistics.median(ratios[FANOUT, n]) <= FANOUT_P99_RATIO for n in (middle, largest)
            ),
        ),
        (
            f"the fan-out worker: memory per connection within {FANOUT_MEMORY_RATIO}x Node's"
            f" at {middle} and {largest} clients",
            all(
                at[FANOUT][n]["kib_per_connection"]
                <= FANOUT_MEMORY_RATIO * at[NODE][n]["kib_per_connection"]
                for n in (middle, largest)
            ),
        ),
        (
            f"the floor's p99 within {FLOOR_P99_RATIO}x Node's at {largest} clients",
            statistics.median(ratios[FLOOR, largest]) <= FLOOR_P99_RATIO,
        ),
        (
            f"gevent with one ticker: p99 within {TICKER_P99_RATIO}x Node's at {middle} and"
            f" {largest} clients",
            all(
                statistics.median(ratios[TICKER, n]) <= TICKER_P99_RATIO for n in (middle, largest)
            ),
        ),
        (
            f"gevent with one ticker: memory per connection within {MEMORY_RATIO}x Node's"
            f" at {largest} clients",
            at[TICKER][largest]["kib_per_connection"]
            <= MEMORY_RATIO * at[NODE][largest]["kib_per_connection"],
        ),
        (
            "sync serves one client at a time, at every size",
            all(r["served"] == 1 for r in rows["sync"]),
        ),
        (
            "gthread serves every client of the smallest crowd, and never more than its 1000"
            " threads",
            rows["gthread, 1000 threads"][0]["served"] == sizes[0]
            and all(r["served"] <= 1000 for r in rows["gthread, 1000 threads"]),
        ),
    ]
    slow_lines, slow_checks = slow_clients_section(quick)
    lines += slow_lines
    lines += targets_and_plot(checks + slow_checks, "07_production.png", "lesson 07")
    return "\n".join(lines)


def microseconds_section(rounds: int) -> list[str]:
    """The table of ``bench.microseconds``: each step of one event to one client, timed alone,
    the best of ``rounds``."""
    command = [sys.executable, "-m", "bench.microseconds", str(rounds)]
    finished = subprocess.run(
        ["taskset", "-c", "0", *command] if can_pin() else command,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    steps = [json.loads(line) for line in finished.stdout.splitlines()]
    lines = [
        "\n### Where the microseconds go\n",
        "`bench.microseconds` times each step of sending one event to one client on its own,"
        " in one process with gevent's patches, on the servers' core: µs per event per"
        f" client, the best of {rounds} round(s) of 1,000 clients.\n",
        "| step | how | µs |",
        "|---|---|---:|",
    ]
    lines += [f"| {s['step']} | {s['how']} | {s['us']:.2f} |" for s in steps]
    return lines


def plot(rows: dict[str, list[dict]], path: Path) -> None:
    fig, (served_ax, p99_ax) = plt.subplots(1, 2, figsize=(10, 3.5))
    for name, measured in rows.items():
        clients = [r["clients"] for r in measured]
        (line,) = served_ax.plot(clients, [r["served"] for r in measured], "o-", label=name)
        # a p99 over the few clients a server let in is no latency of the crowd: leave it out
        everyone = [r for r in measured if r["served"] == r["clients"]]
        p99_ax.plot(
            [r["clients"] for r in everyone],
            [r["p99"] for r in everyone],
            "o-",
            color=line.get_color(),
            label=name if everyone else f"{name}: no row served everyone",
        )
    served_ax.plot(clients, clients, color="grey", linestyle=":", label="every client")
    served_ax.set(xscale="log", yscale="log", xlabel="clients", ylabel="clients served")
    served_ax.set_title("clients that got every event")
    served_ax.legend(fontsize=8)
    p99_ax.set(xscale="log", xlabel="clients", ylabel="p99 delivery latency (ms)")
    p99_ax.set_title("p99 latency, where every client was served")
    p99_ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
