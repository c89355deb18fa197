"""Open many event streams at once and measure how each event was delivered.

A fan-out benchmark needs thousands of clients that cost the load generator as little as
possible, or it measures itself instead of the server. So each client is a bare
non-blocking socket that an asyncio event loop watches (no thread, no coroutine per read),
many share one loop, and the clients are split over several processes. Every client reads
the course's SSE clock (lesson 04), whose events carry the time they were due,
``{"time": <ms since epoch>}``, or lesson 08's broadcast, whose messages carry when the
server accepted them (``"sent"``): an event's delivery latency is when it arrived minus
that time. *When it arrived* is the kernel's receive stamp where there is one (Linux): the
moment the bytes reached this machine, however long they then waited for a busy client.

A client woken for every event costs the load generator a system call and a callback per
event: at 5,000 clients and 100 events a second that is more than one Python core can do,
and the run would measure the client. So a crowd can time a sample (``timed`` clients):
those are woken for every read, as above, in a process of their own; the others read what
has arrived every :data:`COUNT_EVERY` seconds and only count the events, so that none lost
goes unseen. The server cannot tell the two apart: it writes every event to every socket.

Why a process of their own: TCP hands a read that joins several writes the stamp of the
*last* of them, so a timed client that reads late still inflates its earlier events'
latency. In their own process, no counting pass stands between them and their reads.

The requests are HTTP/1.0, so that the body comes as the server wrote it, with no chunk
framing for the client to undo: the server's work per event is the same, less a few bytes
of chunk header. Only loopback addresses are accepted: this is for one machine's tests.
"""

import asyncio
import re
import socket
import struct
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


@dataclass
class ClientResult:
    """What one client saw: whether it connected, when its first event came, how many
    events due inside the measuring window arrived, and, for a timed client, the latency
    of each (ms)."""

    connected: bool = False
    first_event_after: float | None = None  # seconds from sending the request
    events: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    timed: bool = True
    error: str = ""


@dataclass
class CrowdResult:
    """The clients of one run, as returned by :func:`crowd`."""

    clients: list[ClientResult]
    window: tuple[float, float]  # the measuring window, seconds since the epoch
    interval: float
    client_cpu_seconds: float = 0.0  # the load generator's own CPU during the window

    def client_cores_used(self) -> float:
        """How many cores the load generator kept busy during the window (1.0: one core,
        all the time). Near the cores it had, it measured itself as much as the server."""
        start, end = self.window
        return self.client_cpu_seconds / (end - start)

    def served(self, expected: int | None = None) -> int:
        """Clients that received every event due in the window (``expected`` of them: by
        default, as many as the clock's ``interval`` puts in the window)."""
        expected = self.expected_events() if expected is None else expected
        return sum(1 for c in self.clients if c.events >= expected)

    def expected_events(self) -> int:
        start, end = self.window
        return sum(
            1
            for n in range(int(start / self.interval), int(end / self.interval) + 1)
            if start <= n * self.interval < end
        )

    def events(self) -> int:
        """Events due in the window that arrived, over every client."""
        return sum(client.events for client in self.clients)

    def latencies_ms(self) -> list[float]:
        """The latency of every event the timed clients received in the window."""
        return [ms for client in self.clients for ms in client.latencies_ms]


# Linux stamps each received packet with the time it reached this machine's TCP stack when a
# socket asks (SO_TIMESTAMPNS; Python's socket module does not name the option). On
# loopback that is the moment the server's send() ran.
SO_TIMESTAMPNS = 35
COUNT_EVERY = 0.25  # seconds between an untimed client's reads
KERNEL_STAMPS = sys.platform == "linux"
STAMP_SPACE = socket.CMSG_SPACE(16) if KERNEL_STAMPS else 0  # one struct timespec


def arrival_time(ancillary: list[tuple[int, int, bytes]]) -> float:
    """When the bytes of a ``recvmsg`` arrived: the kernel's stamp if there is one, else now.

    The stamp is what makes a busy load generator harmless: an event that waits in the
    socket while the client reads others still counts from when it arrived, not from
    when the client got round to it. Up to a point: TCP keeps one stamp per read, that of
    the last write the read takes in, so a read that joins several writes dates them all
    from the last. A timed client must still read before the next write comes.
    """
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanoseconds = struct.unpack("qq", data[:16])
            return seconds + nanoseconds / 1e9
    return time.time()


class _StreamClient:
    """One client's parsing: finds each complete event's time stamp in what it reads.

    Not with the course's SSE decoder: at 100,000 events a second, decoding each line in
    Python (4 us an event) would be most of what the run measures. One regular expression
    per read finds the stamp in every ``data:`` line of the events completed so far; an
    untimed client whose read lies wholly inside the window counts them with no loop.
    """

    def __init__(
        self,
        result: ClientResult,
        window: tuple[float, float],
        sent_at: float,
        time_field: str,
    ) -> None:
        self.result, self.window = result, window
        self.stamp = re.compile(rb'^data: .*"%s": (\d+)' % time_field.encode(), re.MULTILINE)
        self.sent_at = sent_at
        self.pending = b""
        self.in_body = False

    def data_received(self, data: bytes, arrived: float) -> None:
        """Take the bytes of one read, which arrived at ``arrived`` (seconds since the epoch)."""
        self.pending += data
        if not self.in_body:
            head_end = self.pending.find(b"\r\n\r\n")
            if head_end < 0:
                return
            self.in_body, self.pending = True, self.pending[head_end + 4 :]
        events_end = self.pending.rfind(b"\n\n") + 2  # after the last complete event
        if events_end < 2:
            return
        events, self.pending = self.pending[:events_end], self.pending[events_end:]
        stamps = self.stamp.findall(events)
        if not stamps:
            return
        result, (start, end) = self.result, self.window
        if result.first_event_after is None:
            result.first_event_after = arrived - self.sent_at
        if not result.timed and start <= int(stamps[0]) / 1000 <= int(stamps[-1]) / 1000 < end:
            result.events += len(stamps)  # all inside the window (stamps only grow)
            return
        for stamp in stamps:
            due = int(stamp) / 1000
            if start <= due < end:
                result.events += 1
                if result.timed:
                    result.latencies_ms.append((arrived - due) * 1000)


async def _run_clients(
    host: str,
    port: int,
    path: str,
    count: int,
    ramp: float,
    window: tuple[float, float],
    time_field: str,
    timed: bool = True,
) -> tuple[list[ClientResult], float]:
    """Run ``count`` clients, timed or counting; return what each saw, and this process's
    CPU seconds during the window.

    A timed client is a non-blocking socket watched by the event loop (``add_reader``):
    no coroutine, no transport, no buffer copy between the read and the parse. Counting
    clients are read in turn every :data:`COUNT_EVERY` seconds by one task.
    """
    loop = asyncio.get_running_loop()
    request = f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n".encode()
    results = [ClientResult(timed=timed) for _ in range(count)]
    sockets: list[socket.socket] = []
    counted: dict[socket.socket, tuple[_StreamClient, asyncio.Future]] = {}

    async def one(n: int) -> None:
        await asyncio.sleep(ramp * n / max(count, 1))
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setblocking(False)
        sockets.append(sock)
        if KERNEL_STAMPS and timed:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        client = _StreamClient(results[n], window, time.time(), time_field)
        done = loop.create_future()
        try:
            await asyncio.wait_for(
                loop.sock_connect(sock, (host, port)), timeout=max(1.0, window[1] - time.time())
            )
            await loop.sock_sendall(sock, request)
        except (OSError, TimeoutError) as error:
            results[n].error = f"{type(error).__name__}: {error}"
            return
        results[n].connected = True

        def read() -> None:
            try:
                data, ancillary, _, _ = sock.recvmsg(65536, STAMP_SPACE)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if data:
                client.data_received(data, arrival_time(ancillary))
            else:  # the server closed the stream, or the connection broke
                loop.remove_reader(sock)
                if not done.done():
                    done.set_result(None)

        if timed:
            loop.add_reader(sock, read)
        else:
            counted[sock] = (client, done)
        await asyncio.wait([done], timeout=max(0.0, window[1] + 1 - time.time()))

    async def count_the_untimed() -> None:
        while time.time() < window[1] + 1:
            for sock, (client, done) in list(counted.items()):
                if not _read_what_arrived(sock, client):
                    del counted[sock]
                    done.set_result(None)
            await asyncio.sleep(COUNT_EVERY)

    cpu_at: dict[str, float] = {}  # this process's CPU seconds at the window's edges

    def note_cpu(edge: str) -> None:
        cpu_at[edge] = time.process_time()

    for edge, at in zip(("start", "end"), window, strict=True):
        loop.call_later(max(0.0, at - time.time()), note_cpu, edge)
    counting = asyncio.create_task(count_the_untimed())
    try:
        await asyncio.gather(*(one(n) for n in range(count)))
    finally:
        counting.cancel()
        for sock in sockets:
            if sock.fileno() >= 0:
                loop.remove_reader(sock)
            sock.close()
    now = time.process_time()  # (no window edge if every client failed before it)
    return results, cpu_at.get("end", now) - cpu_at.get("start", now)


def _read_what_arrived(sock: socket.socket, client: _StreamClient) -> bool:
    """Read all that is waiting in an untimed client's socket; False once it is closed."""
    while True:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not data:
            return False
        client.data_received(data, time.time())


def _client_process(*args: object) -> tuple[list[ClientResult], float]:
    return asyncio.run(_run_clients(*args))  # type: ignore[arg-type]


def crowd(
    url: str,
    clients: int,
    *,
    window: float,
    ramp: float = 2.0,
    settle: float = 1.0,
    interval: float = 1.0,
    processes: int = 2,
    time_field: str = "time",
    timed: int | None = None,
) -> CrowdResult:
    """Connect ``clients`` SSE clients to ``url`` and measure every event for ``window`` s.

    url: an event stream of the course's SSE clock on a loopback address, such as
        ``http://127.0.0.1:8000/events?interval=1``.
    clients: how many connections to hold open at once.
    window: seconds of measuring, which starts once every client has had time to connect.
    ramp: seconds over which the clients connect, evenly (a listen queue overflows if
        thousands knock at once); settle: seconds to wait after the ramp.
    interval: the clock's seconds between events, to count the events due in the window.
    processes: how many processes share the clients (each with one event loop).
    time_field: the field of each event's JSON data that holds when it was due or sent,
        in ms since the epoch (``"time"`` for the clock, ``"sent"`` for the broadcast).
    timed: how many clients time every event, in one more process, connecting over the
        same ramp; the others only count theirs. ``None``: every client is timed.

    Every client stops at the end of the window, whether or not it was served: the run is
    bounded in time (ramp + settle + window + 1 s) and in count.
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 80
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"crowd targets loopback only, got host {host!r}")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    start = time.time() + ramp + settle + 0.5  # half a second for the processes to start
    measured = (start, start + window)
    sample = clients if timed is None else min(timed, clients)
    groups = [(share, False) for share in _split(clients - sample, processes)]
    groups += [(share, True) for share in _split(sample, 1 if timed else processes)]
    with ProcessPoolExecutor(len(groups)) as pool:
        futures = [
            pool.submit(
                _client_process, host, port, path, share, ramp, measured, time_field, is_timed
            )
            for share, is_timed in groups
            if share
        ]
        done = [future.result() for future in futures]
    clients_seen = [client for per_process, _ in done for client in per_process]
    return CrowdResult(clients_seen, measured, interval, sum(cpu for _, cpu in done))


def _split(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` shares as even as whole numbers allow."""
    return [total // parts + (1 if n < total % parts else 0) for n in range(parts)]
