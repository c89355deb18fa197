"""The kernel's part of fan-out: one pass of loopback writes, timed on the servers' core.

Every server that sends a message to N clients makes N writes, whatever its language; this
times that pass alone, with nothing else per client. On loopback part of each write is not
the sender's: the kernel receives the packet on the core that sent it, so the pass also
runs each client's TCP receive, unless it is steered to the clients' cores
(:func:`bench.cores.loopback_receive_on_spare_cores`, root only). Lesson 08's benchmark
reports both; its notebook runs this:

    python -m bench.write_pass 1000 5000

which prints, for each count of sockets, a JSON line: the pass in ms as loopback has it, and
with the receive steered away (``null`` where that needs root).
"""

import json
import os
import socket
import statistics
import sys
import time

from bench.cores import can_pin, loopback_receive_on_spare_cores
from lab.serving import unwind_on_sigterm


def write_pass_ms(sockets: int, rounds: int = 5) -> float:
    """How long one pass of ``sockets`` writes takes on the servers' core: a message's
    bytes written once to each of ``sockets`` loopback connections, nothing else per
    client (the median of ``rounds`` passes, in ms).

    That is the kernel's part of fan-out, which no server can skip: a message waits for
    the pass under way, then for its own, so about two passes is the p99 floor of any
    server that writes every client's socket on this core budget, Node and C included.
    """
    message = b'data: {"text": "m0", "sent": 1700000000000}\nid: 1700000000000-0\n\n'
    before = os.sched_getaffinity(0) if can_pin() else None
    with socket.create_server(("127.0.0.1", 0), backlog=sockets) as listener:
        pairs = []
        try:
            for _ in range(sockets):
                client = socket.create_connection(listener.getsockname())
                server, _ = listener.accept()
                pairs.append((client, server))
            if before is not None:
                os.sched_setaffinity(0, {0})
            times = []
            for _ in range(rounds):
                began = time.perf_counter()
                for _, server in pairs:
                    server.send(message)
                times.append((time.perf_counter() - began) * 1000)
                for client, _ in pairs:
                    client.recv(65536)
        finally:
            if before is not None:
                os.sched_setaffinity(0, before)
            for client, server in pairs:
                client.close()
                server.close()
    return statistics.median(times)


if __name__ == "__main__":
    unwind_on_sigterm()  # a steered pass's masks are put back however the run ends
    for count in [int(arg) for arg in sys.argv[1:]] or [1000]:
        as_loopback_has_it = write_pass_ms(count)
        with loopback_receive_on_spare_cores() as steered:
            steered_away = write_pass_ms(count) if steered else None
        figures = {"sockets": count, "ms": as_loopback_has_it, "steered_ms": steered_away}
        print(json.dumps(figures), flush=True)
