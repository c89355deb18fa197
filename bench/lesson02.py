"""Lesson 02: sending a file, from 1 MiB to 1 GiB, by five servers, nginx the yardstick.

For each file size, start all five servers fresh, warm each with a tiny file, then
download the file from them in turns, several rounds, with a lean client (a socket reading
into one reused 1 MiB buffer, so the client costs as little as possible). Taking turns
matters on a shared machine: the same nginx download was seen at 2,000 and at 8,000 MB/s
a second apart, so servers measured one after the other would be comparing moments, not
servers. A round sends at least ``ROUND_MIB`` (a small file several times), because a
download of a few milliseconds measures the scheduler more than the server. On two cores or
more the servers run on the first core and the client on the last, so that the scheduler
does not make them trade places mid-download. Throughput is reported as the median round,
which one lucky or unlucky round cannot move, and the best round. The share of nginx is
taken round by round (each server against the nginx download just before it) and reported
as the median with its spread, so a noisy moment moves both sides of the ratio together.
The files are read once beforehand, so every server reads them from the page cache, not
the disk.
"""

import os
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import psutil

from bench.cores import clients_on_the_last_core, pin
from bench.report import targets_and_plot
from lab import ServerProcess, trace_memory
from lab.nginx import spawn_nginx
from lessons import spawn_course

MiB = 1024 * 1024
GUNICORN_SYNC = ("--server", "gunicorn", "--worker-class", "sync")
NGINX = "nginx, sendfile"
SENDFILE = "gunicorn sync, wsgi.file_wrapper (sendfile)"
BUFFERED = "buffered: read whole, gunicorn sync"
MEMORY_TARGET_MIB = 8  # streaming 1 GiB: peak within this of streaming 1 MiB
SHARE_OF_NGINX_TARGET = 0.80  # gunicorn with sendfile vs nginx, on the largest file
ROUND_MIB = 512  # a round sends at least this much: a 1 MiB file 512 times


@dataclass
class Result:
    server: str
    size_mib: int
    mb_per_s: float  # the median round
    best_mb_per_s: float
    share_of_nginx: tuple[float, float, float]  # round by round: lowest, median, highest
    ttfb_ms: float
    user_s_per_gib: float  # CPU in the server process itself: Python, for the WSGI servers
    system_s_per_gib: float  # CPU in the kernel on the server's behalf: copies, TCP
    growth_mib: float


def servers(folder: Path) -> dict[str, tuple[Callable[[], AbstractContextManager], str]]:
    """Each server to measure: how to start it on ``folder``, and its URL prefix."""
    files = ("--files", str(folder))
    return {
        NGINX: (
            lambda: spawn_nginx(f"location /files/ {{ alias {folder}/; }}"),
            "/files/",
        ),
        SENDFILE: (lambda: spawn_course(*files, *GUNICORN_SYNC), "/files/"),
        "gunicorn sync, --no-sendfile": (
            lambda: spawn_course(*files, *GUNICORN_SYNC, "--no-sendfile"),
            "/files/",
        ),
        "werkzeug dev server, iter_file": (lambda: spawn_course(*files), "/files/"),
        BUFFERED: (lambda: spawn_course(*files, *GUNICORN_SYNC), "/files-buffered/"),
    }


def download(url: str) -> tuple[float, float, int]:
    """GET ``url`` into one reused 1 MiB buffer; return (first byte s, total s, body bytes)."""
    address = urlsplit(url)
    buffer = bytearray(MiB)
    start = time.perf_counter()
    with socket.create_connection((address.hostname, address.port)) as sock:
        request = f"GET {address.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            count = sock.recv_into(buffer)
            if not count:
                raise ConnectionError(f"{url}: the connection closed in the headers")
            head += bytes(buffer[:count])
        header, _, body_start = head.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", header).group(1))
        received = len(body_start)
        first_byte = time.perf_counter() if received else None
        while received < length:
            count = sock.recv_into(buffer)
            if not count:
                break
            first_byte = first_byte or time.perf_counter()
            received += count
    end = time.perf_counter()
    return (first_byte or end) - start, end - start, received


def cpu_seconds(pids: list[int]) -> tuple[float, float]:
    """The user and system CPU seconds that ``pids`` have used so far."""
    times = [psutil.Process(pid).cpu_times() for pid in pids]
    return sum(t.user for t in times), sum(t.system for t in times)


def one_round(
    server: ServerProcess, path: str, size_mib: int, round_mib: int = ROUND_MIB
) -> tuple[float, ...]:
    """Download the file ``round_mib // size_mib`` times (at least once); return the seconds
    per download, first byte s, user s and system s per download, and memory growth."""
    copies = max(1, round_mib // size_mib)
    pids = server.pids()
    user_before, system_before = cpu_seconds(pids)
    with trace_memory(pids) as memory:
        downloads = [download(server.url + path) for _ in range(copies)]
    assert all(received == size_mib * MiB for _, _, received in downloads), path
    user, system = cpu_seconds(pids)
    total = sum(seconds for _, seconds, _ in downloads) / copies
    ttfb = statistics.median(first for first, _, _ in downloads)
    return (
        total,
        ttfb,
        (user - user_before) / copies,
        (system - system_before) / copies,
        (memory.growth_bytes),
    )


def summarise(
    name: str, size_mib: int, rounds: list[tuple[float, ...]], nginx: list[tuple[float, ...]]
) -> Result:
    total, ttfb, user, system, growth = zip(*rounds, strict=True)
    shares = sorted(yardstick[0] / mine[0] for yardstick, mine in zip(nginx, rounds, strict=True))
    size, gib = size_mib * MiB, size_mib / 1024
    return Result(
        name,
        size_mib,
        size / statistics.median(total) / 1e6,
        size / min(total) / 1e6,
        (shares[0], statistics.median(shares), shares[-1]),
        statistics.median(ttfb) * 1000,
        statistics.median(user) / gib,
        statistics.median(system) / gib,
        max(growth) / MiB,
    )


def ensure_nginx() -> None:
    """Install Debian's nginx-light if nginx is missing (as root), as the bench promises."""
    if shutil.which("nginx") or os.path.exists("/usr/sbin/nginx"):
        return
    if os.geteuid() != 0:
        raise SystemExit("the file benchmark needs nginx: sudo apt-get install nginx-light")
    subprocess.run(["apt-get", "update", "-qq"], check=True)  # a fresh machine has no lists
    subprocess.run(["apt-get", "install", "-y", "-qq", "nginx-light"], check=True)


def run(out: Path, quick: bool = False) -> str:
    """Measure, plot to ``out``, and return the markdown section."""
    ensure_nginx()
    sizes, repeats = ((1, 8), 1) if quick else ((1, 64, 1024), 15)
    round_mib = 16 if quick else ROUND_MIB
    results = []
    with clients_on_the_last_core(), tempfile.TemporaryDirectory(prefix="bench-files-") as work:
        folder = Path(work)
        block = os.urandom(MiB)
        for size in sizes:
            with open(folder / f"{size}MiB.bin", "wb") as file:
                for _ in range(size):
                    file.write(block)
            (folder / f"{size}MiB.bin").read_bytes()  # into the page cache
        (folder / "warm.bin").write_bytes(b"w" * 1024)
        for size in sizes:
            with ExitStack() as stack:
                running = {
                    name: (stack.enter_context(start()), prefix)
                    for name, (start, prefix) in servers(folder).items()
                }
                for server, prefix in running.values():
                    pin(server.pids())
                    download(server.url + prefix + "warm.bin")
                rounds: dict[str, list] = {name: [] for name in running}
                for _ in range(repeats):
                    for name, (server, prefix) in running.items():
                        path = f"{prefix}{size}MiB.bin"
                        rounds[name].append(one_round(server, path, size, round_mib))
            for name in running:
                results.append(summarise(name, size, rounds[name], rounds[NGINX]))
                print(f"  {results[-1]}", flush=True)
    plot(results, sizes, out / "02_stream_a_file.png")
    return section(results, sizes, repeats, round_mib)


def plot(results: list[Result], sizes: tuple[int, ...], path: Path) -> None:
    names = list(dict.fromkeys(r.server for r in results))
    largest = [next(r for r in results if r.server == n and r.size_mib == sizes[-1]) for n in names]
    fig, (speed, memory) = plt.subplots(1, 2, figsize=(12, 4.5))
    shares = [100 * r.share_of_nginx[1] for r in largest]
    spread = [
        [100 * (r.share_of_nginx[1] - r.share_of_nginx[0]) for r in largest],
        [100 * (r.share_of_nginx[2] - r.share_of_nginx[1]) for r in largest],
    ]
    speed.barh(names, shares, xerr=spread, capsize=4, label="median round; bar: all rounds")
    speed.axvline(100, color="grey", linestyle=":")
    speed.invert_yaxis()
    speed.set(xlabel="throughput, % of nginx's in the same round", ylabel="server")
    speed.set_title(f"Throughput against nginx, {sizes[-1]} MiB file")
    speed.legend(fontsize=8, loc="lower right")
    # the streaming servers all stay near 0: hollow markers of different shapes and sizes
    # keep each of their lines visible where they coincide
    for name, marker, size in zip(names, "osD^v", (12, 10, 8, 6, 4), strict=False):
        rows = [r for r in results if r.server == name]
        memory.plot(
            [r.size_mib for r in rows],
            [r.growth_mib for r in rows],
            marker=marker,
            markersize=size,
            fillstyle="none",
            label=name,
        )
    memory.set_xticks(list(sizes), [str(s) for s in sizes])  # linear: growth looks as it is
    memory.set(xlabel="file size (MiB)", ylabel="server peak memory growth (MiB)")
    memory.set_title("Server memory")
    memory.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def section(results: list[Result], sizes: tuple[int, ...], repeats: int, round_mib: int) -> str:
    def at(name: str, size: int) -> Result:
        return next(r for r in results if r.server == name and r.size_mib == size)

    small, large = sizes[0], sizes[-1]
    streaming = [name for name in dict.fromkeys(r.server for r in results) if name != BUFFERED]
    share = at(SENDFILE, large).share_of_nginx[1]
    checks = [
        (
            f"streaming {large} MiB keeps every streaming server's peak memory within"
            f" {MEMORY_TARGET_MIB} MiB of streaming {small} MiB",
            all(
                at(n, large).growth_mib - at(n, small).growth_mib < MEMORY_TARGET_MIB
                for n in streaming
            ),
        ),
        (
            "the buffered app's peak memory grows by at least 90% of the file size",
            all(at(BUFFERED, s).growth_mib >= 0.9 * s for s in sizes),  # pages may be reused
        ),
        (
            f"gunicorn with sendfile reaches {SHARE_OF_NGINX_TARGET:.0%} of nginx's throughput"
            f" on {large} MiB (measured: {share:.0%})",
            share >= SHARE_OF_NGINX_TARGET,
        ),
    ]
    lines = [
        "## Lesson 02: sending a file\n",
        "Each server sends the same file from the page cache to a client reading into one"
        f" 1 MiB buffer. The servers take turns, {repeats} rounds, all started fresh for each"
        " size, the servers pinned to one core and the client to another; a round sends at"
        f" least {round_mib} MiB (a small file several times). MB/s: the median round, then"
        " the best; share of nginx: each round against nginx's round just before it, the"
        " median and, in brackets, the lowest and highest round. First byte and CPU:"
        " medians; CPU is per GiB sent, user (the server's own code: Python, for the WSGI"
        " servers) + system (the kernel's copies and TCP work on its behalf). Memory: the"
        " largest growth of any round.\n",
        "| server | file MiB | MB/s median | MB/s best | share of nginx | first byte ms"
        " | server CPU s/GiB, user + system | server peak growth MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        low, median, high = r.share_of_nginx
        lines.append(
            f"| {r.server} | {r.size_mib} | {r.mb_per_s:.0f} | {r.best_mb_per_s:.0f}"
            f" | {median:.0%} ({low:.0%}–{high:.0%}) | {r.ttfb_ms:.1f}"
            f" | {r.user_s_per_gib:.2f} + {r.system_s_per_gib:.2f} | {r.growth_mib:.1f} |"
        )
    lines += targets_and_plot(checks, "02_stream_a_file.png", "lesson 02")
    return "\n".join(lines)
