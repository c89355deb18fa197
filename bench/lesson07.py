"""Lesson 07: SSE fan-out. How many clients each gunicorn worker class serves, how promptly.

For each worker class and crowd size, a fresh one-worker server streams lesson 04's clock,
one event a second, to ``streamlib.load.crowd``: lean asyncio clients that note when each
event arrived against when it was due. The yardstick is Node with the tutorial the course
comes from (``streamlib.node_clock``: a timer per connection, the same event bytes), one
process like the worker. The server is pinned to one core and the clients spread over the
others, one process per core, and their own CPU is reported: a load generator that ran out
of core would be measuring itself. A client is *served* if it received every event due in
the measuring window. Memory per connection is the server's peak RSS in the window less its
RSS before the clients came, divided by the clients; CPU is the server's share of one core
in the window. Every run is bounded: the clients hang up when the window ends.
"""

import statistics
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import psutil

from bench.cores import clients_on_spare_cores, pin
from bench.report import targets_and_plot
from lessons import load_lesson, spawn_course
from streamlib import ServerProcess
from streamlib.load import crowd
from streamlib.nginx import spawn_nginx
from streamlib.node_clock import spawn_node_clock
from streamlib.slow_clients import answer_time, slow_clients

WORKER_CLASSES = {
    "sync": ("--worker-class", "sync"),
    "gthread, 1000 threads": ("--worker-class", "gthread", "--threads", "1000"),
    "gevent": ("--worker-class", "gevent"),
}
NODE = "Node 20, a timer per connection"
P99_TARGET_MS = 250.0
MEMORY_TARGET_KIB = 50.0


def one_worker(flags: tuple[str, ...], clients: int) -> AbstractContextManager[ServerProcess]:
    """The course under gunicorn with one worker of the class ``flags`` names."""
    flags = (*flags, "--worker-connections", str(clients + 100), "--server", "gunicorn")
    return spawn_course(*flags, *QUICK_STOP)


def measure(
    start: Callable[[], AbstractContextManager[ServerProcess]],
    clients: int,
    window: float,
    client_processes: int,
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
            server.url + "/events?interval=1&heartbeat=15",
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
    lines = [
        "\n### Slow clients\n",
        "Slow clients send their request one byte a second (`streamlib.slow_clients`); then"
        " a normal client asks for `/`. Each cell: how long it waited for its answer, or"
        " *none* within 3 s. A fresh server for every cell.\n",
        "| server | part sent slowly | " + " | ".join(f"{n} slow clients" for n in counts) + " |",
        "|---|---|" + "---:|" * len(counts),
    ]
    answered: dict[tuple[str, str, int], bool] = {}
    for name, (flags, proxied) in servers.items():
        for part in ["headers", "body"]:
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
            not any(answered["gthread, 64 threads", part, most] for part in ["headers", "body"]),
        ),
        (
            f"gevent answers with {most} slow clients",
            all(answered["gevent", part, most] for part in ["headers", "body"]),
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


def run(out: Path, quick: bool = False) -> str:
    sizes, window = ([60], 1.5) if quick else ([100, 1000, 5000], 8.0)
    rows: dict[str, list[dict]] = {}
    servers: dict[str, Callable[[int], Callable[[], AbstractContextManager]]] = {
        name: (lambda clients, flags=flags: lambda: one_worker(flags, clients))
        for name, flags in WORKER_CLASSES.items()
    }
    servers[NODE] = lambda clients: spawn_node_clock
    with clients_on_spare_cores() as client_cores:
        for name, server_for in servers.items():
            rows[name] = []
            for clients in sizes:
                rows[name].append(measure(server_for(clients), clients, window, client_cores))
                print(f"  {name} {rows[name][-1]}", flush=True)
    plot(rows, out / "07_production.png")
    lines = [
        "## Lesson 07: SSE fan-out by worker class\n",
        f"One gunicorn worker streams `/events?interval=1` to every client for {window:.0f} s"
        " (after they have all connected), and so does Node with the tutorial's pattern, the"
        f" same event bytes (`streamlib.node_clock`). Core budget: the server 1 core (pinned),"
        f" the clients (asyncio, `streamlib.load.crowd`) {client_cores} core(s), one process"
        " each; *client cores* is how much of them the clients used (near their count, the"
        " run measured the load generator). Latency: an event's arrival minus its due time,"
        " over every event received; it includes the load generator's own time. Served:"
        " clients that got every event of the window. Memory per connection divides the"
        " server's growth by every client connected, served or waiting.\n",
        "| server | clients | served | p50 ms | p99 ms | KiB per connection | CPU % |"
        " client cores |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, measured in rows.items():
        lines += [
            f"| {name} | {r['clients']} | {r['served']} | {r['p50']:.0f} | {r['p99']:.0f}"
            f" | {r['kib_per_connection']:.1f} | {r['cpu']:.0f} | {r['client_cores']:.2f} |"
            for r in measured
        ]
    node = rows[NODE][-1]
    lines.append(
        f"\nAgainst Node at {node['clients']} clients, same run: gevent's p99 is"
        f" {rows['gevent'][-1]['p99'] / node['p99']:.2f}x Node's, its memory per connection"
        f" {rows['gevent'][-1]['kib_per_connection'] / node['kib_per_connection']:.2f}x."
    )
    gevent, gthread, sync = rows["gevent"][-1], rows["gthread, 1000 threads"], rows["sync"]
    checks = [
        (f"gevent serves all {gevent['clients']} clients", gevent["served"] == gevent["clients"]),
        (
            f"gevent p99 under {P99_TARGET_MS:.0f} ms at {gevent['clients']} clients",
            gevent["p99"] < P99_TARGET_MS,
        ),
        (
            f"gevent under {MEMORY_TARGET_KIB:.0f} KiB per connection at {gevent['clients']}",
            gevent["kib_per_connection"] < MEMORY_TARGET_KIB,
        ),
        ("sync serves one client at a time, at every size", all(r["served"] == 1 for r in sync)),
        (
            "gthread serves as many clients as it has threads (1000) and no more",
            all(r["served"] == min(r["clients"], 1000) for r in gthread),
        ),
    ]
    slow_lines, slow_checks = slow_clients_section(quick)
    lines += slow_lines
    lines += targets_and_plot(checks + slow_checks, "07_production.png", "lesson 07")
    return "\n".join(lines)


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
    p99_ax.axhline(P99_TARGET_MS, color="grey", linestyle=":", label="target")
    p99_ax.set(xscale="log", xlabel="clients", ylabel="p99 delivery latency (ms)")
    p99_ax.set_title("p99 latency, where every client was served")
    p99_ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
