"""Lesson 11: storing an upload, from 1 MiB to 1 GiB, by five servers, nginx the yardstick.

The method is lesson 02's, the other way: for each size, start every server fresh, warm
each with a tiny upload, then upload to them in turns, several rounds, with a lean client
(a socket sending one random 1 MiB block over and over, with a ``Content-Length``, and
reading the answer up to its end). The
yardstick is nginx storing the same upload itself (``dav_methods PUT``: the body to a
temporary file, renamed into place when whole, as the course does). Everything is stored
in memory-backed ``/dev/shm`` where there is one, so the disk's moods stay out of it.
Throughput is the median round; the share of nginx is taken round by round against the
nginx upload just before; memory is the server's exact peak rise (``trace_memory``) in
the worst round.
"""

import os
import re
import secrets
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.cores import clients_on_the_last_core, pin
from bench.lesson02 import ensure_nginx
from bench.report import targets_and_plot
from lab import ServerProcess, free_port, gunicorn_args, spawn_server, trace_memory
from lab.nginx import nginx_location, nginx_stores_uploads, spawn_nginx
from lessons import spawn_course
from lessons.cli import GLIBC_HEAP

MiB = 1024 * 1024
NGINX = "nginx, dav_methods PUT"
NGINX_1MIB = "nginx, dav_methods PUT, 1 MiB body buffer"
DEV_SERVER = "werkzeug dev server, store_body"
BUFFERED = "buffered: read whole, gunicorn sync"
SYNC_64KIB = "gunicorn sync, store_body, 64 KiB pieces"
SYNC = "gunicorn sync, store_body"
GTHREAD = "gunicorn gthread, store_body"
GEVENT = "gunicorn gevent, store_body"
FANOUT = "gunicorn fanout worker, store_body"
NGINX_STORES = "nginx in front stores it, gevent renames it"
STREAMED = [DEV_SERVER, SYNC, SYNC_64KIB, GTHREAD, GEVENT, FANOUT, NGINX_STORES]
GROWTH_TARGET_MIB = 16  # the bound for a streamed upload of any size
# gunicorn sync, 1 MiB pieces (store_body's) against 64 KiB, on 1 GiB. It was 1.5 before the
# course gave gunicorn glibc's heap settings (lessons.cli.GLIBC_HEAP), which made 64 KiB reads
# twice as fast: what is left is the reader's copying, no longer its page faults.
PIECE_SPEEDUP_TARGET = 1.25
# Shares of nginx's speed, median round on 1 GiB (issue 32): the production setup, each
# gunicorn worker class with store_body, the dev server
SHARE_TARGETS = {NGINX_STORES: 0.9, SYNC: 0.6, GTHREAD: 0.6, GEVENT: 0.6, DEV_SERVER: 0.8}


@dataclass
class Result:
    server: str
    size_mib: int
    mb_per_s: float  # the median round
    share_of_nginx: tuple[float, float, float]  # round by round: lowest, median, highest
    growth_mib: float  # the worst round's peak memory rise


def servers(folder: Path) -> dict:
    """Each server to measure: how to start it storing into ``folder``, and the path to
    PUT an upload called ``{name}`` to."""
    course = ("--uploads", str(folder / "uploads"), "--max-upload", "2G")
    sync = ("--server", "gunicorn", "--worker-class", "sync")
    (folder / "uploads").mkdir()
    (folder / "nginx-temp").mkdir()
    nginx = (
        f"location /uploads/ {{ root {folder}; dav_methods PUT; client_max_body_size 2g;"
        f" client_body_temp_path {folder}/nginx-temp; }}"
    )
    nginx_1mib = nginx.replace("dav_methods PUT;", "dav_methods PUT; client_body_buffer_size 1m;")
    gthread = ("--server", "gunicorn", "--worker-class", "gthread")
    gevent = ("--server", "gunicorn", "--worker-class", "gevent")
    fanout = ("--server", "gunicorn", "--worker-class", "fanout")
    return {
        NGINX: (lambda: spawn_nginx(nginx), "/uploads/{name}"),
        NGINX_1MIB: (lambda: spawn_nginx(nginx_1mib), "/uploads/{name}"),
        DEV_SERVER: (lambda: spawn_course(*course), "/uploads/{name}"),
        SYNC: (lambda: spawn_course(*course, *sync), "/uploads/{name}"),
        SYNC_64KIB: (lambda: spawn_course(*course, *sync), "/uploads/{name}?piece=65536"),
        GTHREAD: (lambda: spawn_course(*course, *gthread), "/uploads/{name}"),
        GEVENT: (lambda: spawn_course(*course, *gevent), "/uploads/{name}"),
        FANOUT: (lambda: spawn_course(*course, *fanout), "/uploads/{name}"),
        NGINX_STORES: (lambda: nginx_storing_for_gevent(folder / "uploads"), "/uploads/{name}"),
        BUFFERED: (lambda: spawn_course(*course, *sync), "/uploads-buffered/{name}"),
    }


@contextmanager
def nginx_storing_for_gevent(uploads: Path) -> Iterator[ServerProcess]:
    """gunicorn's gevent worker with nginx in front storing each upload itself (what
    ``python -m lessons --https --nginx-stores-uploads`` runs, over plain HTTP here, as
    the yardstick is). Yields nginx; its ``pids()`` are nginx's and the worker's, so that
    the memory measured is the whole setup's."""
    incoming = uploads / ".incoming"
    incoming.mkdir(mode=0o700, exist_ok=True)
    secret = secrets.token_urlsafe(24)
    port = free_port()
    command = gunicorn_args(
        "lessons.wsgi:app", bind=f"127.0.0.1:{port}", worker_class="gevent", workers=1
    )
    env = {**GLIBC_HEAP, "STREAMLIB_UPLOADS": str(uploads), "STREAMLIB_PROXY_SECRET": secret}
    env["STREAMLIB_MAX_UPLOAD"] = str(2 * 1024 * MiB)
    with spawn_server([sys.executable, "-m", "gunicorn", *command], port, env=env) as course:
        front = nginx_stores_uploads(course.url, incoming, secret, "2g")
        with spawn_nginx(front + "\n" + nginx_location(course.url, http11=True)) as nginx:
            own_pids = nginx.pids
            nginx.pids = lambda: [*own_pids(), *course.pids()]
            yield nginx


def upload(url: str, size: int, block: bytes) -> float:
    """PUT ``size`` bytes (``block`` over and over) to ``url``; return the seconds from the
    first byte sent to the whole answer received."""
    address = urlsplit(url)
    start = time.perf_counter()
    with socket.create_connection((address.hostname, address.port)) as sock:
        target = address.path + (f"?{address.query}" if address.query else "")
        head = (
            f"PUT {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {size}\r\n"
            "Connection: close\r\n\r\n"
        )
        sock.sendall(head.encode())
        view, left = memoryview(block), size
        while left:
            sent = min(left, len(block))
            sock.sendall(view[:sent])
            left -= sent
        answer = b""
        while not whole(answer) and (data := sock.recv(65536)):
            answer += data
    seconds = time.perf_counter() - start
    status = re.match(rb"HTTP/1\.[01] (\d{3})", answer)
    assert status and status.group(1) in (b"200", b"201", b"204"), (url, answer[:200])
    return seconds


def whole(answer: bytes) -> bool:
    """Whether ``answer`` holds a whole response: its head and ``Content-Length`` bytes. A
    client stops there; waiting for the close would time the server's goodbye (werkzeug's
    dev server waits 10 ms for stray bytes before it closes)."""
    head, separator, body = answer.partition(b"\r\n\r\n")
    if not separator:
        return False
    length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    return len(body) >= (int(length.group(1)) if length else 0)


def one_round(server: ServerProcess, url: str, size: int, block: bytes) -> tuple[float, float]:
    """Upload once; return (seconds, the server's peak memory rise in bytes)."""
    with trace_memory(server.pids()) as memory:
        seconds = upload(url, size, block)
    return seconds, memory.growth_bytes


def storage() -> str | None:
    """Memory-backed storage for the uploads, if this machine has enough (else the default)."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.statvfs(shm).f_bavail * os.statvfs(shm).f_frsize > 4 * 1024 * MiB:
        return str(shm)
    return None


def run(out: Path, quick: bool = False) -> str:
    """Measure, plot to ``out``, and return the markdown section."""
    ensure_nginx()
    sizes, repeats = ((4,), 1) if quick else ((1, 64, 1024), 5)
    block = os.urandom(MiB)
    results = []
    with clients_on_the_last_core():
        for size_mib in sizes:
            with (
                tempfile.TemporaryDirectory(prefix="bench-uploads-", dir=storage()) as work,
                ExitStack() as stack,
            ):
                running = {
                    name: (stack.enter_context(start()), path)
                    for name, (start, path) in servers(Path(work)).items()
                }
                for server, path in running.values():
                    pin(server.pids())
                    upload(server.url + path.format(name="warm.bin"), 1024, block)
                rounds: dict[str, list] = {name: [] for name in running}
                for _ in range(repeats):
                    for name, (server, path) in running.items():
                        url = server.url + path.format(name=f"{size_mib}MiB.bin")
                        rounds[name].append(one_round(server, url, size_mib * MiB, block))
            for name, measured in rounds.items():
                shares = sorted(
                    yardstick[0] / mine[0]
                    for yardstick, mine in zip(rounds[NGINX], measured, strict=True)
                )
                results.append(
                    Result(
                        name,
                        size_mib,
                        size_mib * MiB / statistics.median(s for s, _ in measured) / 1e6,
                        (shares[0], statistics.median(shares), shares[-1]),
                        max(growth for _, growth in measured) / MiB,
                    )
                )
    plot(results, out / "11_uploads.png")
    return section(results, sizes)


def plot(results: list[Result], path: Path) -> None:
    fig, (speed, memory) = plt.subplots(1, 2, figsize=(11, 4))
    for name in dict.fromkeys(r.server for r in results):
        mine = [r for r in results if r.server == name]
        sizes = [r.size_mib for r in mine]
        speed.plot(sizes, [r.mb_per_s for r in mine], marker="o", label=name)
        memory.plot(sizes, [r.growth_mib for r in mine], marker="o", label=name)
    speed.set(xscale="log", xlabel="upload (MiB)", ylabel="MB/s (median round)")
    memory.set(xscale="log", yscale="symlog", xlabel="upload (MiB)")
    memory.set(ylabel="server's peak memory rise (MiB)", ylim=(0, None))
    speed.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def section(results: list[Result], sizes: tuple[int, ...]) -> str:
    largest = max(sizes)
    at_largest = {r.server: r for r in results if r.size_mib == largest}
    lines = [
        "## Lesson 11: storing an upload",
        "",
        f"A PUT of 1 MiB to {largest:,} MiB, stored to a file, by each server in turn;"
        " nginx storing the same upload itself is the yardstick. MB/s is the median round;"
        " the share of nginx is taken round by round (lowest, median, highest); memory is"
        " the server's peak rise in its worst round. The gunicorn servers run with the heap"
        " settings the course gives them (``lessons.cli.GLIBC_HEAP``). The yardstick is nginx"
        " at its defaults, which writes the body in pieces of its 8 KiB body buffer; the"
        " production row (nginx in front stores the body, the app renames the file) gives"
        " nginx a 1 MiB buffer (``lab.nginx.nginx_stores_uploads``), as does the row of"
        " nginx alone with that buffer.",
        "",
        "| server | upload | MB/s | share of nginx | peak memory rise |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        low, median, high = r.share_of_nginx
        lines.append(
            f"| {r.server} | {r.size_mib:,} MiB | {r.mb_per_s:,.0f} |"
            f" {median:.2f} ({low:.2f}-{high:.2f}) | {r.growth_mib:,.1f} MiB |"
        )
    checks = [
        (
            f"every streamed server stores {largest:,} MiB with its peak memory up less than"
            f" {GROWTH_TARGET_MIB} MiB",
            all(at_largest[name].growth_mib < GROWTH_TARGET_MIB for name in STREAMED),
        ),
        (
            f"reading the body whole costs at least nine tenths of it ({largest:,} MiB)",
            at_largest[BUFFERED].growth_mib >= 0.9 * largest,
        ),
        (
            f"gunicorn sync stores {largest:,} MiB at least {PIECE_SPEEDUP_TARGET}x as fast"
            " read 1 MiB at a time (store_body's pieces) as 64 KiB at a time (its reader"
            " copies what it holds at every read)",
            at_largest[SYNC].mb_per_s >= PIECE_SPEEDUP_TARGET * at_largest[SYNC_64KIB].mb_per_s,
        ),
    ]
    checks.append(
        (
            f"{NGINX_STORES} at {largest:,} MiB: at least 90% of the speed of nginx alone with"
            " the same 1 MiB body buffer (median MB/s)",
            at_largest[NGINX_STORES].mb_per_s >= 0.9 * at_largest[NGINX_1MIB].mb_per_s,
        )
    )
    checks += [
        (
            f"{name} at {largest:,} MiB: at least {share:.0%} of nginx's speed (median round)",
            at_largest[name].share_of_nginx[1] >= share,
        )
        for name, share in SHARE_TARGETS.items()
    ]
    return "\n".join(lines + targets_and_plot(checks, "11_uploads.png", "lesson 11 uploads"))
