"""Run a real Redis server on a loopback port, with its own folder, for as long as needed.

Lesson 08 shares a broadcast between processes through Redis. The tests, the notebook and
the benchmark start Debian's ``redis-server`` as a child process, on a free port, with its
data in a folder of their own, so nothing of the machine's own Redis is used or touched.

The append-only file is on and written on every command (``appendfsync always``): a
message that Redis acknowledged survives even a ``kill -9`` of the server, which is what
the lesson's restart test needs to promise "no acknowledged message is lost".
"""

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lab.serving import ServerProcess, free_port, spawn_server


def redis_server_binary() -> str:
    """Return the path of redis-server, or raise saying how to install it."""
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if found is None:
        raise FileNotFoundError("redis-server is not installed: apt-get install redis-server")
    return found


@contextmanager
def spawn_redis(port: int | None = None, folder: Path | None = None) -> Iterator[ServerProcess]:
    """Start redis-server on ``127.0.0.1:port``, keeping its data in ``folder``.

    port: the port to listen on; a free one when omitted. Pass the same port and folder
        again to restart "the same" Redis after stopping or killing it: it reloads every
        acknowledged write from its append-only file.
    folder: where Redis keeps its files; a temporary folder, removed after, when omitted.

    Yields a :class:`streamlib.ServerProcess` whose ``url`` is ``redis://127.0.0.1:PORT``
    (``redis.Redis.from_url`` takes it). On exit the server gets SIGINT, which Redis
    takes as it takes a process manager's SIGTERM: a clean shutdown; ``kill()`` inside the
    block is a crash.
    """
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="streamlib-redis-") as scratch:
        data = Path(folder or scratch)
        data.mkdir(parents=True, exist_ok=True)
        command = [
            redis_server_binary(),
            *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(data)),
            *("--appendonly", "yes", "--appendfsync", "always", "--save", ""),
            *("--daemonize", "no", "--protected-mode", "yes", "--maxclients", "10000"),
        ]
        with spawn_server(command, port, ready_path=None, scheme="redis") as server:
            yield server
