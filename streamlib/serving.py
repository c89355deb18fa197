"""Run a WSGI app on a real server: in a thread, in a child process, or under gunicorn.

Notebooks and tests talk to real servers over real sockets, because streaming is about
what happens on the wire. :func:`serve` is the quick one (werkzeug's threaded dev server
in a background thread). :func:`spawn_server` starts a separate process, so that its
memory can be measured on its own and it can be stopped and restarted.
:func:`run_gunicorn` runs an app object under gunicorn from Python.
"""

import logging
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import requests
from werkzeug.serving import WSGIRequestHandler, make_server

WSGIApp = Callable[..., Any]


class _QuietRequestHandler(WSGIRequestHandler):
    """werkzeug's handler without the one-line log of every request (errors still log)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@contextmanager
def serve(app: WSGIApp, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` with werkzeug's threaded server in a background thread.

    host: the address to listen on; keep the loopback for anything but a demo.
    port: the TCP port; 0 lets the system pick a free one.

    Yields the base URL (``http://127.0.0.1:PORT``). Each request gets its own thread,
    so one long stream never blocks another. On exit the server stops accepting
    connections; streams still open end at their next write to a closed client.

    >>> with serve(app) as url:                          # doctest: +SKIP
    ...     requests.get(url + "/streamed").text
    """
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(host, port, app, threaded=True, request_handler=_QuietRequestHandler)
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
    ready_path: str = "/",
    ready_timeout: float = 20.0,
    env: dict[str, str] | None = None,
) -> Iterator[ServerProcess]:
    """Start ``command`` as a server process and wait until it answers HTTP.

    command: the program and its arguments; it must listen on ``host:port``.
    port: the port the command was told to use (see :func:`free_port`).
    ready_path: a path that answers once the server is ready (any status will do).
    ready_timeout: seconds to wait for that answer before giving up.
    env: extra environment variables for the child.

    The child's output goes to a log file (a pipe nobody reads would fill up and stall
    the server). On exit it gets SIGTERM, the signal a process manager sends, then
    SIGKILL if it has not stopped within 10 s.
    """
    with tempfile.NamedTemporaryFile(prefix="streamlib-server-", suffix=".log") as log_file:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        server = ServerProcess(f"http://{host}:{port}", process, Path(log_file.name))
        try:
            _wait_until_ready(server, ready_path, ready_timeout)
            yield server
        finally:
            _stop(process)
            server.final_log = server.log()


def _wait_until_ready(server: ServerProcess, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"the server exited with code {server.process.returncode} before it answered;"
                f" it printed:\n{server.log()}"
            )
        try:
            requests.get(server.url + path, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise TimeoutError(f"no answer from {server.url}{path} after {timeout} s:\n{server.log()}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_gunicorn(app: WSGIApp, bind: str = "127.0.0.1:8000", **settings: Any) -> None:
    """Serve ``app`` under gunicorn until the process is stopped (SIGINT or SIGTERM).

    bind: ``HOST:PORT`` to listen on.
    settings: gunicorn settings by their Python names, as in a ``gunicorn.conf.py``:
        ``worker_class="gthread"``, ``workers=2``, ``threads=100``, ``timeout=30``...

    This is gunicorn's documented "custom application": the same as running
    ``gunicorn --bind 127.0.0.1:8000 module:app`` on the command line, but with an app
    object we already hold. gunicorn forks its workers from this process.

    Three gunicorn habits to know. Its ``sendfile`` setting is the ``--no-sendfile``
    flag in disguise: setting it to *any* value, ``True`` included, turns sendfile off
    (in a ``gunicorn.conf.py`` too), so we pass it on only when it is False. With
    ``threads`` above 1 it quietly swaps the ``sync`` worker for ``gthread``. And since
    version 24 it opens a control socket at one fixed path per user, which we turn off
    so that several servers can run side by side.
    """
    if settings.get("sendfile") is True:
        del settings["sendfile"]  # True would mean "--no-sendfile" to gunicorn
    from gunicorn.app.base import BaseApplication  # gunicorn is only needed here

    class EmbeddedGunicorn(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", bind)
            if "control_socket_disable" in self.cfg.settings:
                self.cfg.set("control_socket_disable", True)
            for name, value in settings.items():
                self.cfg.set(name, value)

        def load(self) -> WSGIApp:
            return app

    EmbeddedGunicorn().run()
