"""Run a WSGI app on a real server: in a thread, in a child process, or under gunicorn.

Notebooks and tests talk to real servers over real sockets, because streaming is about
what happens on the wire. :func:`serve` is the quick one (werkzeug's threaded dev server
in a background thread). :func:`spawn_server` starts a separate process, so that its
memory can be measured on its own and it can be stopped and restarted.
:func:`gunicorn_args` writes the command line that runs an app under gunicorn, and
:func:`unwind_on_sigterm` has a script that started servers stop them when it is stopped.
"""

import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from werkzeug.serving import make_server

from lab.devserver import QuietRequestHandler

WSGIApp = Callable[..., Any]


@contextmanager
def serve(app: WSGIApp, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` with werkzeug's threaded server in a background thread.

    host: the address to listen on; keep the loopback for anything but a demo.
    port: the TCP port; 0 lets the system pick a free one.

    Yields the base URL (``http://127.0.0.1:PORT``). Each request gets its own thread,
    so one long stream never blocks another. The handler is
    :class:`lab.devserver.SpecRequestHandler`'s quiet twin: HTTP/1.0 framing for
    HTTP/1.0 clients, ``close()`` always called, a deadline for each request. On exit the
    server stops accepting connections; streams still open end at their next write to a
    closed client.

    >>> with serve(app) as url:                          # doctest: +SKIP
    ...     requests.get(url + "/streamed").text
    """
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(host, port, app, threaded=True, request_handler=QuietRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="streamlib.serve", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now (for a child server to use)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@dataclass
class ServerProcess:
    """A server running in a child process, as yielded by :func:`spawn_server`."""

    url: str
    process: subprocess.Popen
    log_path: Path
    final_log: str | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def pids(self) -> list[int]:
        """The processes that serve requests: the child itself, or gunicorn's workers."""
        children = psutil.Process(self.pid).children(recursive=True)
        return [child.pid for child in children] or [self.pid]

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), and every process it started: a crash.

        Killing only the parent would leave gunicorn's workers running as orphans, still
        holding their clients' connections open.
        """
        try:
            family = psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        self.process.kill()
        self.process.wait()
        for child in family:
            with suppress(psutil.NoSuchProcess):
                child.kill()

    def log(self) -> str:
        """Everything the server printed (stdout and stderr), so far or until it stopped."""
        if self.final_log is not None:
            return self.final_log
        return self.log_path.read_text(errors="replace")


@contextmanager
def spawn_server(
    command: Sequence[str],
    port: int,
    *,
    host: str = "127.0.0.1",
    ready_path: str | None = "/",
    ready_timeout: float = 20.0,
    env: dict[str, str] | None = None,
    scheme: str = "http",
) -> Iterator[ServerProcess]:
    """Start ``command`` as a server process and wait until it answers.

    command: the program and its arguments; it must listen on ``host:port``.
    port: the port the command was told to use (see :func:`free_port`).
    ready_path: a path that answers HTTP once the server is ready (any status will do);
        None to wait only until the port accepts connections (a server that speaks
        another protocol, such as Redis, or HTTP/2 alone).
    ready_timeout: seconds to wait for that answer before giving up.
    env: extra environment variables for the child.
    scheme: the start of the yielded URL: ``http``, or ``redis`` for a Redis server.

    The child's output goes to a log file (a pipe nobody reads would fill up and stall
    the server). On exit it gets SIGINT, what Ctrl-C sends, then SIGKILL, with every
    process it started, if it has not stopped within 10 s. Not SIGTERM, the signal a
    process manager sends: gunicorn answers that with a graceful shutdown, which waits
    ``--graceful-timeout`` for open streams, and a gevent worker notices it only at its
    next once-a-second check (1.4 s to stop an idle one here, against 0.5 s for SIGINT).
    Lesson 07's tests send SIGTERM themselves where the graceful shutdown is the point.
    """
    with tempfile.NamedTemporaryFile(prefix="streamlib-server-", suffix=".log") as log_file:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        server = ServerProcess(f"{scheme}://{host}:{port}", process, Path(log_file.name))
        try:
            _wait_until_ready(server, ready_path, ready_timeout)
            yield server
        finally:
            _stop(server)
            server.final_log = server.log()


def _wait_until_ready(server: ServerProcess, path: str | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    import requests  # here, not at the top: see streamlib.fanout_worker on what imports cost

    host, port = server.url.split("://")[1].rsplit(":", 1)
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"the server exited with code {server.process.returncode} before it answered;"
                f" it printed:\n{server.log()}"
            )
        try:
            if path is None:
                socket.create_connection((host, int(port)), timeout=1).close()
            else:
                requests.get(server.url + path, timeout=1)
            if listens_on(server.process.pid, int(port)):
                return
        except (requests.ConnectionError, OSError):
            pass
        time.sleep(0.05)
    raise TimeoutError(
        f"no answer from {server.url}{path or ''} by the server started after {timeout} s"
        f" (another process may hold the port):\n{server.log()}"
    )


def listens_on(pid: int, port: int) -> bool:
    """Whether process ``pid``, or a process it started, holds the listening socket on ``port``.

    A free port (:func:`free_port`) is free when asked, not after: two tests at once may be
    given the same one. Then the server that lost the race retries its bind, or exits, while
    the winner answers on the port; without this check, the loser would pass for ready.
    """
    try:
        parent = psutil.Process(pid)
        for process in [parent, *parent.children(recursive=True)]:
            for connection in process.net_connections(kind="inet"):
                if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port:
                    return True
    except psutil.Error:
        return False
    return False


def _stop(server: ServerProcess) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGINT)
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def unwind_on_sigterm() -> None:
    """Make SIGTERM end this process as Ctrl-C does: by unwinding, every ``finally`` and
    ``with`` exit on the way out, so the servers it started are stopped too.

    Python's default for SIGTERM ends the process on the spot: children started with
    :func:`spawn_server` (and nginx, Redis) would outlive it. The exit status is the
    shell's for a process ended by a signal, 128 + 15. Call it from the main thread.
    """
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))


def gunicorn_args(app: str, bind: str = "127.0.0.1:8000", **settings: Any) -> list[str]:
    """Return the arguments of the ``gunicorn`` command that serves ``app`` with ``settings``.

    app: the app's import path, ``module:name``, such as ``lessons.wsgi:app``.
    bind: ``HOST:PORT`` to listen on.
    settings: gunicorn settings by their Python names, as in a ``gunicorn.conf.py``:
        ``worker_class="gevent"``, ``workers=2``, ``threads=100``, ``timeout=30``...

    >>> gunicorn_args("lessons.wsgi:app", worker_class="gthread", threads=8)[:5]
    ['--bind', '127.0.0.1:8000', '--worker-class', 'gthread', '--threads']

    Run them as ``gunicorn ARGS`` (or ``python -m gunicorn ARGS``). gunicorn imports the
    app in each worker *after* the worker has started, which is what a gevent worker
    needs: it patches ``time.sleep``, sockets and locks first, so that the app's modules
    get the cooperative versions. An app object built before the fork would not.

    Two gunicorn habits to know. Its ``sendfile`` setting is the ``--no-sendfile`` flag:
    pass ``sendfile=False`` to turn sendfile off (in a ``gunicorn.conf.py``, setting
    ``sendfile`` to *any* value, ``True`` included, turns it off). And since version 25.1.0
    it opens a control socket at one fixed path per user, which we turn off so that
    several servers can run side by side (``--no-control-socket``, also new in 25.1.0).
    """
    from gunicorn.config import KNOWN_SETTINGS  # gunicorn is only needed here

    args = ["--bind", bind]
    for name, value in settings.items():
        flag = "--" + name.replace("_", "-")
        if name == "sendfile":
            args += [] if value else ["--no-sendfile"]
        elif value is True:
            args.append(flag)
        elif value not in (False, None):
            args += [flag, str(value)]
    if any(setting.name == "control_socket_disable" for setting in KNOWN_SETTINGS):
        args.append("--no-control-socket")
    return [*args, app]
