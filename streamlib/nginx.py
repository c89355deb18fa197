"""Run a real nginx on a free loopback port, with a generated config, for as long as needed.

The course compares with nginx (the near-physical limit for sending files) and puts it in
front of gunicorn (lesson 07). This starts Debian's nginx as a child process with its own
config, logs and temporary folders, all in one temporary directory, so nothing on the
machine's own nginx setup is used or touched.
"""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streamlib.serving import ServerProcess, free_port, spawn_server

CONFIG = """\
{user}
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {work}/client_body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port}{http2};
        {server}
    }}
}}
"""


def nginx_binary() -> str:
    """Return the path of nginx, or raise saying how to install it."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)), None
    )
    if found is None:
        raise FileNotFoundError("nginx is not installed: apt-get install nginx-light")
    return found


@contextmanager
def spawn_nginx(server: str, *, http2: bool = False) -> Iterator[ServerProcess]:
    """Start nginx with ``server`` as the body of its one ``server {}`` block.

    server: nginx directives, such as ``location /files/ { alias /srv/files/; }``.
    http2: speak HTTP/2 without TLS ("h2c"), to clients that know it in advance
        (``curl --http2-prior-knowledge``); browsers speak HTTP/2 over TLS only.

    Yields a :class:`streamlib.ServerProcess`; its ``pids()`` are nginx's worker processes.
    As root, the workers run as root too, so that they can read the caller's temporary
    folders (nginx would otherwise switch to an unprivileged user). Files are sent with
    ``sendfile on; tcp_nopush on;``, as in Debian's own ``nginx.conf``.
    """
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="streamlib-nginx-") as work:
        config = Path(work) / "nginx.conf"
        user = "user root;" if os.geteuid() == 0 else ""
        listen = " http2" if http2 else ""
        config.write_text(
            CONFIG.format(user=user, work=work, port=port, server=server, http2=listen)
        )
        command = [nginx_binary(), "-c", str(config), "-p", work, "-e", f"{work}/error.log"]
        # an HTTP/2-only port does not answer HTTP/1.1: then wait for the port alone
        with spawn_server(command, port, ready_path=None if http2 else "/") as process:
            yield process
