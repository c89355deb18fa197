"""Lesson 08: a broadcast through Redis, 1,000 and 5,000 clients, 100 messages a second.

A fresh redis-server and a fresh server for each run: the course on two gunicorn workers
(``--redis``), or the yardstick, one Node process relaying the same stream
(``streamlib.node_relay``), the two taking turns. ``streamlib.load.crowd`` connects the
clients to ``/broadcast``; once
they are all in, a publisher adds 100 messages a second to the Redis Stream for the
measuring window, each stamped with when it was published (``"sent"``, ms since the
epoch); a delivery's latency is its arrival at the client minus that. Lost: deliveries of the
messages published in the window that never arrived. The servers (workers and Redis) are
pinned to one core and the clients and publisher to the other. Every run is bounded:
the publisher stops at the end of the window, and the clients one second later.
"""

import json
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
import redis

from bench.cores import clients_on_the_last_core, pin
from bench.report import targets_and_plot
from lessons import spawn_course
from streamlib.broadcast import publish
from streamlib.load import crowd
from streamlib.node_relay import spawn_node_relay
from streamlib.redis_server import spawn_redis
from streamlib.serving import ServerProcess

WORKER_CLASSES = {
    "gevent": ("--worker-class", "gevent"),
    "fanout": ("--worker-class", "fanout"),  # streamlib.fanout_worker (lesson 07)
    "gthread, 1000 threads": ("--worker-class", "gthread", "--threads", "1000"),
}


def publish_for(redis_url: str, rate: float, start: float, end: float) -> list[float]:
    """Publish ``rate`` messages a second to the room's stream from ``start`` to ``end``
    (epoch seconds), on a schedule, as ``POST /broadcast`` would; return when each was sent.

    Straight to Redis, as another service would: so the publisher's pace does not depend
    on how busy the workers are, and each message is stamped the moment it is published.
    """
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    sent: list[float] = []
    time.sleep(max(0.0, start - time.time()))
    n = 0
    while (due := start + n / rate) < end:
        time.sleep(max(0.0, due - time.time()))
        now = time.time()
        publish(client, json.dumps({"text": f"m{n}", "sent": round(now * 1000)}))
        sent.append(now)
        n += 1
    client.close()
    return sent


Starter = Callable[[str, int], AbstractContextManager[ServerProcess]]


def course_with(flags: tuple[str, ...]) -> Starter:
    """Start the course on two gunicorn workers of a class (``flags``), relaying ``--redis``."""

    def start(redis_url: str, clients: int) -> AbstractContextManager[ServerProcess]:
        more = ("--workers", "2", "--worker-connections", str(clients + 100))
        more += ("--graceful-timeout", "1")  # a measured row is over: cut its streams at once
        return spawn_course("--server", "gunicorn", "--redis", redis_url, *flags, *more)

    return start


def node(redis_url: str, clients: int) -> AbstractContextManager[ServerProcess]:
    """The yardstick: one Node process relaying the same stream (``streamlib.node_relay``)."""
    return spawn_node_relay(redis_url)


def measure(start: Starter, clients: int, rate: float, window: float) -> dict:
    """One fresh Redis and server, ``clients`` clients, ``rate`` messages/s for ``window`` s."""
    with spawn_redis() as broker, start(broker.url, clients) as server:
        processes = [psutil.Process(pid) for pid in [*server.pids(), broker.pid]]
        pin([p.pid for p in processes])
        ramp, settle = max(0.5, clients / 1000), 1.0
        start_at = time.time() + ramp + settle + 0.5  # as crowd() computes its window
        published: list[float] = []
        publisher = threading.Thread(
            target=lambda: published.extend(
                publish_for(broker.url, rate, start_at, start_at + window)
            ),
            daemon=True,
        )
        publisher.start()
        cpu_before = sum(sum(p.cpu_times()[:2]) for p in processes)
        result = crowd(
            server.url + "/broadcast?heartbeat=15",
            clients,
            window=window,
            ramp=ramp,
            settle=settle,
            processes=1,
            time_field="sent",
        )
        cpu = sum(sum(p.cpu_times()[:2]) for p in processes) - cpu_before
        publisher.join(timeout=window + 10)
    sent_in_window = sum(1 for at in published if result.window[0] <= at < result.window[1])
    latencies = result.latencies_ms()
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    total = time.time() - (result.window[0] - ramp - settle - 0.5)
    return {
        "clients": clients,
        "rate": rate,
        "messages": sent_in_window,
        "served": result.served(expected=sent_in_window),
        "unanswered": sum(1 for c in result.clients if not c.latencies_ms),
        "lost": max(0, sent_in_window * clients - len(latencies)),
        "p50": quantiles[49],
        "p99": quantiles[98],
        "cpu": cpu / total * 100,
        "client_cores": result.client_cores_used(),
    }


NODE = "Node 20, one reader writing to every client"
GEVENT = "gunicorn gevent, 2 workers"
FANOUT = "fan-out worker, 2 workers"
GTHREAD = "gunicorn gthread, 2 workers, 1000 threads"
P99_RATIO = 2.0  # gevent's p99 as a multiple of Node's, at most, in the same run
FANOUT_P99_RATIO = 1.0  # the fan-out worker's: Node's or better (issue 13)


def run(out: Path, quick: bool = False) -> str:
    sizes, rate, window, rounds = ([50], 20.0, 2.0, 1) if quick else ([1000, 5000], 100.0, 8.0, 3)
    servers: dict[str, Starter] = {
        GEVENT: course_with(WORKER_CLASSES["gevent"]),
        FANOUT: course_with(WORKER_CLASSES["fanout"]),
        NODE: node,
    }
    runs: dict[tuple[str, int], list[dict]] = {}
    with clients_on_the_last_core():
        threads = course_with(WORKER_CLASSES["gthread, 1000 threads"])
        gthread = measure(threads, sizes[0], rate, window)
        print(f"  {GTHREAD} {gthread}", flush=True)
        for round_number in range(rounds):  # the two take turns, as the machine's speed drifts
            for clients in sizes:
                turn = round_number % len(servers)
                order = list(servers)[turn:] + list(servers)[:turn]
                for name in order:
                    figures = measure(servers[name], clients, rate, window)
                    runs.setdefault((name, clients), []).append(figures)
                    print(f"  round {round_number + 1} {name} {figures}", flush=True)
    ratios = {  # (server, clients): its p99 / Node's, round by round, sorted
        (name, clients): sorted(
            ours["p99"] / theirs["p99"]
            for ours, theirs in zip(runs[name, clients], runs[NODE, clients], strict=True)
        )
        for name in (GEVENT, FANOUT)
        for clients in sizes
    }
    rows = {(GTHREAD, sizes[0]): gthread} | {
        (name, clients): median_run(runs[name, clients]) for name in servers for clients in sizes
    }
    plot(rows, out / "08_fan_out.png")
    lines = [
        "## Lesson 08: a broadcast through Redis\n",
        f"The course's `/broadcast` on two gunicorn workers (gevent's, and the fan-out worker of"
        " lesson 07, where the clients that caught up are one audience written to in one loop)"
        f" relays a Redis Stream to"
        f" {' and '.join(str(n) for n in sizes)} SSE clients while {rate:.0f} messages a second"
        f" are published to it for {window:.0f} s (`streamlib.broadcast.publish`, straight to"
        " Redis); beside it, the yardstick: one Node process relaying the same stream the"
        " Node way, one reader and a `res.write` to every client (`streamlib.node_relay`, the"
        f" same bytes). The two take turns, {rounds} round(s); each row is the run with the"
        " median p99. Core budget: the servers and Redis share one core (two workers, or one"
        " Node process); the clients and the publisher have the other. Latency: a message's"
        " arrival at a client (the kernel's receive stamp) minus when it was published, over"
        " every delivery. Lost: deliveries of messages published in the window that never"
        " arrived. CPU: the servers and Redis together, in % of one core, over the whole run."
        " *Client cores*: how much of a core the clients used in the window; near 1.00 the"
        " row measures the client too.\n",
        "| server | clients | messages | clients served every one | clients never"
        " answered | deliveries lost | p50 ms | p99 ms | p99 × Node's (spread) | CPU % |"
        " client cores |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (name, clients), r in rows.items():
        spread = ratios.get((name, clients), [])
        ratio = (
            f"{statistics.median(spread):.2f} ({spread[0]:.2f}–{spread[-1]:.2f})" if spread else ""
        )
        lines.append(
            f"| {name} | {r['clients']} | {r['messages']} | {r['served']} | {r['unanswered']}"
            f" | {r['lost']} | {r['p50']:.0f} | {r['p99']:.0f} | {ratio} | {r['cpu']:.0f}"
            f" | {r['client_cores']:.2f} |"
        )
    checks = [
        (
            f"{name.split(',')[0]}: every client served every message, none lost, at {clients}"
            " clients, in every round",
            all(r["lost"] == 0 and r["served"] == clients for r in runs[name, clients]),
        )
        for name in (GEVENT, FANOUT)
        for clients in sizes
    ] + [
        (
            f"{name.split(',')[0]}'s p99 within {ratio}x Node's at {clients} clients (median of"
            " the rounds)",
            statistics.median(ratios[name, clients]) <= ratio,
        )
        for name, ratio in ((GEVENT, P99_RATIO), (FANOUT, FANOUT_P99_RATIO))
        for clients in sizes
    ]
    lines += targets_and_plot(checks, "08_fan_out.png", "lesson 08")
    return "\n".join(lines)


def median_run(measured: list[dict]) -> dict:
    """The run whose p99 is the median of ``measured``: one run's figures, all consistent."""
    return sorted(measured, key=lambda r: r["p99"])[len(measured) // 2]


def plot(rows: dict[tuple[str, int], dict], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 3))
    names = [f"{name.split(',')[0]}\n{clients} clients" for name, clients in rows]
    for x, r in enumerate(rows.values()):
        ax.bar([x - 0.2, x + 0.2], [r["p50"], r["p99"]], width=0.4, color=["C0", "C1"])
    ax.set_xticks(range(len(names)), names, fontsize=7)
    ax.set(ylabel="delivery latency (ms)", title="p50 (blue) and p99 (orange)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
