"""Lesson 10: HTTP/2 in a browser. Many streams on one connection, through a real nginx.

**Six at a time.** Over HTTP/1.1 a connection carries one response at a time, and a
stream never ends, so every open ``EventSource`` holds a connection of its own. A browser
opens at most six connections to one origin (Chromium's ``g_max_sockets_per_group``;
Firefox's default too), across all its tabs: the seventh ``EventSource`` waits,
connecting, until one of the six closes. ``/demo/many?n=10`` opens ten at once and shows
each one's state: over plain HTTP six are open and four wait, for as long as the streams last.
Every other request to the site waits behind them too, from any tab: another page of the
site never loads, and even leaving the page would hang, so the demo closes its streams
before it unloads (``beforeunload``).

**One connection, many streams.** HTTP/2 (RFC 9113) cuts each response into frames on a
numbered stream, and streams share one connection: a ``HEADERS`` frame (status and
headers), ``DATA`` frames as the body comes, the last one flagged ``END_STREAM``. There is
no chunked encoding; the frames are the framing. RFC 9113 (section 6.5.2) recommends that
a server allow at least 100 streams at once (nginx: ``http2_max_concurrent_streams 128``),
so the same page over HTTP/2 opens all ten on one connection. Browsers speak HTTP/2 only
over TLS, which they negotiate in the handshake (ALPN ``h2``).

**The course behind nginx.** werkzeug speaks HTTP/1.1 only, and so does gunicorn unless
told otherwise (since 25.0 its gthread and gevent workers can speak HTTP/2 over TLS,
``--http-protocols h2,h1``; ``gunicorn/config.py``). Here nginx does it: it speaks HTTP/2
and TLS to the browser and HTTP/1.1 to the app,
with lesson 07's config for streams: ``proxy_buffering off``, HTTP/1.1 upstream, a read
timeout longer than the heartbeat. ``python -m lessons --https`` starts it in front of the
course, with a certificate for ``localhost`` made at start by a certificate authority of
the course's own (``lab.certs``, with trustme: nothing is downloaded), and prints the
URL. Nothing in the app changes: HTTP/2 is the proxy's business.

**What the proxy removes.** ``Connection``, ``Keep-Alive``, ``Transfer-Encoding`` and
``Upgrade`` describe one HTTP/1.1 connection (hop-by-hop headers). An HTTP/2 message that
carries one is malformed (RFC 9113 section 8.2.2) and a client must refuse it. nginx 1.22
drops ``Connection``, ``Keep-Alive`` and ``Transfer-Encoding`` from the app's answer, as it
drops the chunks; an ``Upgrade`` it would pass on (nginx strips it from 1.31.3 on, and only
for HTTP/2 and later clients: ``ngx_http_upstream.c``): one more reason PEP 3333 forbids a
WSGI app to send any of them. The server frames the body, whichever protocol it speaks.

**Flow control.** Each stream has a window: the sender may have only so many bytes in
flight (65,535 octets by default, RFC 9113 section 6.9.2) until the reader makes room
(``WINDOW_UPDATE``). A client that stops reading one stream stops that stream alone; the
other streams on the connection go on (``lab.http2.exchange`` shows it: one stream left
unread holds at 65,535 bytes while another's ticks keep coming). Meanwhile nginx keeps what
it has read of that answer, and once its buffer and the kernel's are full it stops reading
from the app, whose next write then waits: 200 MB on a stream left unread still has its
generator open two seconds later (with nginx's default ``proxy_buffering on`` it is done by
then, spooled to nginx's temporary file), and it closes when the client goes (a test
measures both). The connection has a window of its own too, which browsers open wide for
that reason.

**HTTP/3** runs the same streams over QUIC (UDP), so that a lost packet holds up only its
own stream, where TCP holds up every stream of the connection. nginx has it, experimental,
since 1.25; Debian 12's nginx is 1.22, so this course does not show it.

Try it (``python -m lessons --https``, or ``python lessons/10_http2.py --https``)::

    open http://127.0.0.1:8000/demo/many?n=10      # six open, four waiting
    open https://localhost:8443/demo/many?n=10     # all ten, on one connection
    curl --cacert ~/.cache/streamlib/https/ca.pem -N https://localhost:8443/ticks?count=3  # h2
"""

import time
from collections.abc import Callable
from html import escape
from typing import Any

from werkzeug.wrappers import Request

from lab.browser import wait_until
from lab.nginx import https_proxy, spawn_nginx  # noqa: F401 (lesson 10's front end)
from lessons.cli import run_lesson
from lessons.routes import Lesson, Route, send_text
from streamlib import int_param

MANY_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>Lesson 10: {n} EventSources at once</title>
<style>body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 50rem; margin: 2rem auto; }}
td, th {{ padding: 0 1rem; text-align: left; }} tr[data-state=waiting] {{ color: #a60; }}
tr[data-state=open] {{ color: #060; }}</style>
</head>
<body data-n="{n}">
<nav><a href="/">All lessons</a> · <a href="/#10_http2">Lesson 10: HTTP/2</a></nav>
<h1>{n} EventSources at once</h1>
<p>This page came over <strong id="protocol">?</strong>. Open: <strong id="open">0</strong>
of {n}. Over HTTP/1.1 a browser holds six connections to a site, one stream each; over
HTTP/2 every stream shares one connection.
<button id="close-first">close stream 1</button></p>
<table><thead><tr><th>stream</th><th>state</th><th>opened after</th><th>last event</th></tr>
</thead><tbody id="streams"></tbody></table>
<script>
const n = Number(document.body.dataset.n);
const started = performance.now();
const navigation = performance.getEntriesByType("navigation")[0];
document.getElementById("protocol").textContent = navigation.nextHopProtocol || "?";
const countOpen = () => {{
  document.getElementById("open").textContent =
    document.querySelectorAll("tr[data-state=open]").length;
}};
window.sources = [];
for (let i = 1; i <= n; i++) {{
  const row = document.getElementById("streams").insertRow();
  row.dataset.state = "waiting";
  for (const text of [String(i), "waiting", "", ""]) row.insertCell().textContent = text;
  const source = new EventSource("/events?interval=1");
  source.onopen = () => {{
    row.dataset.state = "open";
    row.dataset.openedMs = String(Math.round(performance.now() - started));
    row.cells[1].textContent = "open";
    row.cells[2].textContent = row.dataset.openedMs + " ms";
    countOpen();
  }};
  source.onmessage = (message) => {{
    const item = document.createElement("span");
    item.dataset.streamed = "";
    item.textContent = "id " + message.lastEventId;
    row.cells[3].replaceChildren(item);
  }};
  window.sources.push(source);
}}
// Over HTTP/1.1 six open streams hold every connection to the site, and a navigation
// away would wait for one that never comes free: close them all before leaving.
window.addEventListener("beforeunload", () => window.sources.forEach((s) => s.close()));
document.getElementById("close-first").onclick = () => {{
  window.sources[0].close();
  const row = document.getElementById("streams").rows[0];
  row.dataset.state = "closed";
  row.cells[1].textContent = "closed";
  countOpen();
}};
</script>
</body>
</html>
"""


def demo_many(environ: dict, start_response: Callable) -> list[bytes]:
    """``GET /demo/many?n=10``: a page that opens ``n`` EventSources to the clock at once."""
    n = int_param(Request(environ).args, "n", 10, 1, 100)
    return send_text(environ, start_response, "text/html", MANY_PAGE.format(n=escape(str(n))))


def streams_opened(page: Any, url: str, n: int, settle: float = 2.0) -> tuple[str, list]:
    """Open ``/demo/many?n=n`` at ``url`` in ``page`` (a Playwright page: a real browser),
    wait ``settle`` seconds, and return the protocol the page came over and, for each of
    its EventSources, when it opened (ms after the page's start), or None if it still waits.
    """
    page.goto(f"{url}/demo/many?n={n}")
    wait_until(page, "document.querySelectorAll('tr[data-state=open]').length > 0")
    time.sleep(settle)
    opened = page.eval_on_selector_all(
        "#streams tr", "rows => rows.map(r => r.dataset.openedMs ? +r.dataset.openedMs : null)"
    )
    return page.text_content("#protocol"), opened


LESSON = Lesson(
    number=10,
    slug="http2",
    title="HTTP/2 in a browser",
    summary=(
        "Over HTTP/1.1 a browser holds six streams to a site at once; through nginx speaking"
        " HTTP/2 and TLS (python -m lessons --https) every stream shares one connection."
        " Frames on the wire, hop-by-hop headers, and flow control stalling one stream alone."
    ),
    routes=(
        Route(
            "/demo/many",
            demo_many,
            "a page opening n EventSources at once (n up to 100)",
            "/demo/many?n=10",
            streams=False,
        ),
    ),
    demos=(("/demo/many?n=10", "ten EventSources at once: over HTTP/1.1, then over HTTP/2"),),
)

if __name__ == "__main__":
    run_lesson(LESSON)
