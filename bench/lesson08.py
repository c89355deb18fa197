"""Lesson 08: a broadcast through Redis, 1,000 clients over 2 workers, 100 messages a second.

A fresh redis-server and a fresh course server (gunicorn, two workers, ``--redis``) for
each worker class. ``streamlib.load.crowd`` connects the clients to ``/broadcast``; once
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
from streamlib.redis_server import spawn_redis

WORKER_CLASSES = {
    "gevent": ("--worker-class", "gevent"),
    "gthread, 1000 threads": ("--worker-class", "gthread", "--threads", "1000"),
}
P99_TARGET_MS = 100.0


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


def measure(flags: tuple[str, ...], clients: int, rate: float, window: float) -> dict:
    """One fresh Redis and server, ``clients`` clients, ``rate`` messages/s for ``window`` s."""
    with spawn_redis() as broker:
        flags = (*flags, "--workers", "2", "--worker-connections", str(clients + 100))
        flags += ("--graceful-timeout", "1")  # a measured row is over: cut its streams at once
        with spawn_course("--server", "gunicorn", "--redis", broker.url, *flags) as server:
            processes = [psutil.Process(pid) for pid in [*server.pids(), broker.pid]]
            pin([p.pid for p in processes])
            ramp, settle = max(0.5, clients / 1000), 1.0
            start = time.time() + ramp + settle + 0.5  # as crowd() computes its window
            published: list[float] = []
            publisher = threading.Thread(
                target=lambda: published.extend(
                    publish_for(broker.url, rate, start, start + window)
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


def run(out: Path, quick: bool = False) -> str:
    clients, rate, window = (50, 20.0, 2.0) if quick else (1000, 100.0, 8.0)
    crowd_sizes = [clients] if quick else [clients, 5000]
    rows: dict[str, dict] = {}
    with clients_on_the_last_core():
        for name, flags in WORKER_CLASSES.items():
            rows[name] = measure(flags, clients, rate, window)
            print(f"  {name} {rows[name]}", flush=True)
        for more in crowd_sizes[1:]:  # gevent only: gthread holds 1000 streams per worker
            rows[f"gevent, {more} clients"] = measure(WORKER_CLASSES["gevent"], more, rate, window)
            print(f"  gevent {rows[f'gevent, {more} clients']}", flush=True)
    plot(rows, out / "08_fan_out.png")
    lines = [
        "## Lesson 08: a broadcast through Redis\n",
        f"Two gunicorn workers relay a Redis Stream to {clients} SSE clients (`/broadcast`),"
        f" and gevent's to {' and '.join(str(n) for n in crowd_sizes[1:]) or 'no more'},"
        f" while {rate:.0f} messages a second are published to it for {window:.0f} s"
        " (`streamlib.broadcast.publish`, straight to Redis). Latency: a message's arrival"
        " at a client (the kernel's receive stamp) minus when it was published, over every"
        " delivery. Lost: deliveries of"
        " messages published in the window that never arrived. CPU: the two workers and"
        " Redis together, in % of one core, over the whole run. The workers and Redis share"
        " one core; the clients and the publisher have the other. *Client cores*: how much"
        " of a core the clients used in the window. The kernel's receive stamp keeps a"
        " client's late reading out of the latency; near 1.00, though, its socket buffers"
        " may fill and hold up the server's writes, and the row measures the client too.\n",
        "| worker class | clients | messages | clients served every one | clients never"
        " answered | deliveries lost | p50 ms | p99 ms | CPU % | client cores |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {name.split(',')[0]} | {r['clients']} | {r['messages']} | {r['served']}"
        f" | {r['unanswered']} | {r['lost']}"
        f" | {r['p50']:.0f} | {r['p99']:.0f} | {r['cpu']:.0f} | {r['client_cores']:.2f} |"
        for name, r in rows.items()
    ]
    best = rows["gevent"]
    checks = [
        (
            f"every client served every message, none lost, gevent at {n} clients",
            rows[f"gevent, {n} clients"]["lost"] == 0
            and rows[f"gevent, {n} clients"]["served"] == n,
        )
        for n in crowd_sizes[1:]
    ] + [
        (
            f"no message lost at {best['clients']} clients, gevent",
            best["lost"] == 0 and best["messages"] > 0,
        ),
        (
            f"p99 delivery under {P99_TARGET_MS:.0f} ms at {best['clients']} clients and"
            f" {best['rate']:.0f} messages/s, gevent",
            best["p99"] < P99_TARGET_MS,
        ),
    ]
    lines += targets_and_plot(checks, "08_fan_out.png", "lesson 08")
    return "\n".join(lines)


def plot(rows: dict[str, dict], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3))
    names = list(rows)
    for x, name in enumerate(names):
        r = rows[name]
        ax.bar([x - 0.2, x + 0.2], [r["p50"], r["p99"]], width=0.4, color=["C0", "C1"])
    ax.axhline(P99_TARGET_MS, color="grey", linestyle=":", label="p99 target")
    ax.set_xticks(range(len(names)), names)
    ax.set(ylabel="delivery latency (ms)", title="p50 (blue) and p99 (orange)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
