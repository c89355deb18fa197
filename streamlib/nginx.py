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

from streamlib.certs import CertificateFiles
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
{servers}
}}
"""
SERVER = """\
server {{
    listen 127.0.0.1:{port}{listen};
    {tls}
    {body}
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
def spawn_nginx(
    server: str,
    *,
    http2: bool = False,
    tls: CertificateFiles | None = None,
    port: int | None = None,
) -> Iterator[ServerProcess]:
    """Start nginx with ``server`` as the body of its one ``server {}`` block.

    server: nginx directives, such as ``location /files/ { alias /srv/files/; }``.
    http2: speak HTTP/2 without TLS ("h2c"), to clients that know it in advance
        (``curl --http2-prior-knowledge``); browsers speak HTTP/2 over TLS only.
    tls: a certificate (``streamlib.certs.localhost_certificate()``): speak HTTPS, and
        offer HTTP/2 to clients that ask for it in the TLS handshake (ALPN ``h2``), as
        browsers do; the yielded URL starts with ``https``.
    port: the port to listen on; a free one by default.

    Yields a :class:`streamlib.ServerProcess`; its ``pids()`` are nginx's worker processes.
    As root, the workers run as root too, so that they can read the caller's temporary
    folders (nginx would otherwise switch to an unprivileged user). Files are sent with
    ``sendfile on; tcp_nopush on;``, as in Debian's own ``nginx.conf``.
    """
    port = port or free_port()
    listen = (" ssl http2" if tls else " http2") if http2 or tls else ""
    certificate = f"ssl_certificate {tls.chain};\n    ssl_certificate_key {tls.key};" if tls else ""
    block = SERVER.format(port=port, listen=listen, tls=certificate, body=server)
    # HTTP/2 alone or TLS does not answer plain HTTP/1.1: then wait for the port alone
    ready_path = None if http2 or tls else "/"
    with spawn_nginx_config(block, port, ready_path, "https" if tls else "http") as process:
        yield process


@contextmanager
def spawn_nginx_config(
    servers: str, port: int, ready_path: str | None = "/", scheme: str = "http"
) -> Iterator[ServerProcess]:
    """Start nginx with ``servers``, whole ``server {}`` blocks, in its ``http {}`` block
    (with everything else it needs to run as a child, in a temporary folder), and wait
    until ``port`` answers: HTTP at ``ready_path``, or just a connection when it is None.
    """
    with tempfile.TemporaryDirectory(prefix="streamlib-nginx-") as work:
        config = Path(work) / "nginx.conf"
        user = "user root;" if os.geteuid() == 0 else ""
        config.write_text(CONFIG.format(user=user, work=work, servers=servers))
        command = [nginx_binary(), "-c", str(config), "-p", work, "-e", f"{work}/error.log"]
        with spawn_server(command, port, ready_path=ready_path, scheme=scheme) as process:
            yield process
