"""Exercise 10: an nginx ``server {}`` block that serves the course over HTTP/2, streams intact.

Browsers speak HTTP/2 only over TLS, and gunicorn and werkzeug speak HTTP/1.1 only: in
production a proxy in front speaks TLS and HTTP/2 to browsers, HTTP/1.1 to the app. Write
its ``server {}`` block. The grader starts a real nginx with what :func:`server_block`
returns, in front of the course, and reads it over HTTP/2 with the ``h2`` library, as a
browser would::

    server_block(8443, "http://127.0.0.1:8000", "/path/localhost.pem", "/path/localhost-key.pem")

Below is the block an HTTP/1.1 site might start from.

Read first: lesson 10, 'The course behind nginx' and 'What the proxy removes' (the page
``/lessons/10``), and lesson 07, 'Proxies'.

Task 1. Speak HTTPS on ``port`` with the certificate and key given, and HTTP/2 to clients
        that ask for it in the handshake (nginx 1.22 says so on the ``listen`` line).
Task 2. Keep the streams streaming: ``/ticks?count=4&interval=0.3`` must arrive over
        HTTP/2 one tick at a time, as the app sends them, not all at the end.
Task 3. Tell the app what the browser asked for: the ``Host`` it sent, port included, and
        ``X-Forwarded-Proto: https``, so that an app behind the proxy (werkzeug's
        ``ProxyFix``) makes links to ``https://localhost:8443/``, not to ``http://127.0.0.1``.

Grade your work:   python -m pytest exercises/test_10_http2.py
"""


def server_block(port: int, upstream: str, certificate: str, key: str) -> str:
    """nginx's ``server {}`` block: listen on 127.0.0.1:``port``, pass requests to ``upstream``.

    port: the port to listen on.
    upstream: the course's URL, such as ``http://127.0.0.1:8000``.
    certificate, key: the paths of the certificate (with its CA's after it) and its key.
    """
    # Task 1: TLS, and HTTP/2 offered in the handshake (nginx 1.25+: "http2 on;" instead).
    # Task 2: proxy_buffering off passes each piece on as it comes; HTTP/1.1 to the app
    # keeps its connections open between requests, and a quiet stream may last an hour.
    # Task 3: $http_host is the Host as sent, port included ($host drops the port).
    return f"""
server {{
    listen 127.0.0.1:{port} ssl http2;
    ssl_certificate {certificate};
    ssl_certificate_key {key};
    location / {{
        proxy_pass {upstream};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_buffering off;
        proxy_read_timeout 1h;
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-Proto $scheme;
    }}
}}
"""
