"""Run a real nginx on a free loopback port, with a generated config, for as long as needed.

The course compares with nginx (the near-physical limit for sending files) and puts it in
front of gunicorn (lesson 07). This starts Debian's nginx as a child process with its own
config, logs and temporary folders, all in one temporary directory, so nothing on the
machine's own nginx setup is used or touched.

:func:`nginx_location` writes the proxy configuration lesson 07 teaches (buffering,
HTTP/1.1 upstream, timeouts, body size), and :func:`https_proxy` puts nginx with TLS and
HTTP/2 in front of the course (lesson 10, ``python -m lessons --https``).
"""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lab.certs import CertificateFiles, localhost_certificate
from lab.serving import ServerProcess, free_port, spawn_server

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
    tls: a certificate (``lab.certs.localhost_certificate()``): speak HTTPS, and
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


def nginx_location(
    upstream: str,
    *,
    buffering: bool = True,
    http11: bool = False,
    gzip: bool = False,
    read_timeout: str | None = None,
    client_timeout: str | None = None,
    request_buffering: bool = True,
    max_body: str | None = None,
) -> str:
    """Return an nginx ``location / {}`` block that proxies every request to ``upstream``
    (with ``client_timeout``, the two server-level timeouts before it).

    upstream: the WSGI server's URL, such as ``http://127.0.0.1:8000``.
    buffering: nginx's default; False adds ``proxy_buffering off;`` (pieces pass at once).
    http11: speak HTTP/1.1 to the upstream (so it may send chunked bodies) instead of
        nginx's 1.0 (its default before 1.29.7); keeping connections to it alive would also
        need an ``upstream`` block with ``keepalive``.
    gzip: compress text responses on their way out, as many sites do.
    read_timeout: how long the upstream may stay silent before nginx cuts the response,
        in nginx's units (``"1s"``, ``"1h"``); nginx's default is 60 s.
    client_timeout: how long a client may take to send its whole request header
        (``client_header_timeout``: then nginx closes the connection, with a 408 in its
        log), and to pause between two reads of its body (``client_body_timeout``); 60 s
        each by default. With request buffering on (the default), nginx holds slow clients
        itself, in its event loop, and a slow client never reaches a worker.
    request_buffering: nginx's default, the whole request body read (to a temporary file
        past ``client_body_buffer_size``, 8 KiB on x86-64) before the upstream sees the
        request; False adds
        ``proxy_request_buffering off;``: the body passes on as it comes (lesson 11).
    max_body: the largest request body nginx lets through, such as ``"1g"``
        (``client_max_body_size``; nginx's default is 1m, 413 above; ``"0"``: no limit).

    ``spawn_nginx(nginx_location(url))`` starts a real nginx with it (lesson 07).
    """
    lines = [f"proxy_pass {upstream};", "proxy_set_header Host $http_host;"]
    if http11:
        lines += ["proxy_http_version 1.1;", 'proxy_set_header Connection "";']
    if not buffering:
        lines.append("proxy_buffering off;")
    if not request_buffering:
        lines.append("proxy_request_buffering off;")
    if max_body:
        lines.append(f"client_max_body_size {max_body};")
    if gzip:
        lines += ["gzip on;", "gzip_types text/plain text/event-stream;", "gzip_min_length 1;"]
    if read_timeout:
        lines.append(f"proxy_read_timeout {read_timeout};")
    server = ""  # client_header_timeout belongs to the server block (not a location)
    if client_timeout:
        server = f"client_header_timeout {client_timeout};\nclient_body_timeout {client_timeout};\n"
    return server + "location / {\n" + "".join(f"    {line}\n" for line in lines) + "}"


def nginx_stores_uploads(
    upstream: str, incoming: Path, secret: str, max_body: str = "1g", prefix: str = "/uploads/"
) -> str:
    """Return nginx locations that store a ``PUT`` to ``prefix`` themselves, and pass the app
    the file's path instead of the body (``streamlib.uploads.take_proxy_stored``); every
    other request under ``prefix`` passes on as :func:`nginx_location` would pass it.

    incoming: the folder nginx writes bodies to, on the same file system as the uploads,
        so that the app can rename a body into place.
    secret: sent to the app in ``X-Upload-Secret``, so that it knows the path came from here.
    max_body: the largest body nginx takes (``client_max_body_size``), checked before the
        body is read: the app can refuse nothing that nginx has already stored.

    A ``PUT`` goes to the named location ``@stored_by_nginx`` (``return 418`` with
    ``error_page``, the usual way to pick a location by method): there
    ``client_body_in_file_only clean`` stores the whole body in a file and removes it once
    the request is done, if the app has not renamed it; ``proxy_pass_request_body off``
    sends the app the headers alone, with the path in ``X-Upload-File``
    (``$request_body_file``). Both locations set the two headers, so a client cannot send
    its own. ``client_body_buffer_size 1m``: nginx writes the file in pieces of its body
    buffer, 8 KiB by default on x86-64, and 1 MiB pieces stored a 1 GiB upload twice as
    fast (bench 11; nginx alone gains the same way).
    """
    return f"""location {prefix} {{
    client_max_body_size {max_body};
    proxy_request_buffering off;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $http_host;
    proxy_set_header X-Upload-Secret "";
    proxy_set_header X-Upload-File "";
    error_page 418 = @stored_by_nginx;
    if ($request_method = PUT) {{ return 418; }}
    proxy_pass {upstream};
}}
location @stored_by_nginx {{
    client_max_body_size {max_body};
    client_body_in_file_only clean;
    client_body_buffer_size 1m;
    client_body_temp_path {incoming};
    proxy_pass_request_body off;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Content-Length "";
    proxy_set_header Host $http_host;
    proxy_set_header X-Upload-File $request_body_file;
    proxy_set_header X-Upload-Secret {secret};
    proxy_pass {upstream};
}}"""


@contextmanager
def https_proxy(
    upstream: str,
    *,
    port: int | None = None,
    certificate: CertificateFiles | None = None,
    stores_uploads: tuple[Path, str, str] | None = None,
) -> Iterator[ServerProcess]:
    """nginx in front of ``upstream`` (the course's URL): HTTPS and HTTP/2 to browsers,
    HTTP/1.1 to the course, with lesson 07's config for streams and lesson 11's for uploads.

    port: the port nginx listens on; a free one by default.
    certificate: the files to serve; by default a fresh one for localhost, signed by the
        course's CA (``lab.certs.localhost_certificate``).
    stores_uploads: ``(incoming, secret, max_body)``: nginx stores each ``PUT`` to
        ``/uploads/`` itself (:func:`nginx_stores_uploads`).
    """
    # Request bodies pass on as they come, and the course's own cap answers (lesson 11).
    location = nginx_location(
        upstream,
        buffering=False,
        http11=True,
        read_timeout="1h",
        request_buffering=False,
        max_body="0",
    )
    if stores_uploads is not None:
        incoming, secret, max_body = stores_uploads
        location = nginx_stores_uploads(upstream, incoming, secret, max_body) + "\n" + location
    files = certificate or localhost_certificate()
    with spawn_nginx(location, tls=files, port=port) as nginx:
        yield nginx
