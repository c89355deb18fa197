"""Run the Node tutorial's SSE clock on a free loopback port: the yardstick for fan-out.

The course descends from a Node tutorial whose SSE pattern is one timer per connection and
one ``res.write`` per event. Lesson 07's fan-out benchmark measures the course's WSGI
servers against that pattern, so both must do the same work: :data:`NODE_CLOCK` sends the
course's clock (lesson 04) with the same bytes as ``/events``: event n is due at
n x interval seconds since the epoch, with id n and data ``{"time": <due ms>}``, after the
same first comment and retry line; an interval outside the course's bounds (0.01 s to an
hour) is a 400, as there. It needs Node 18 or later (Debian's ``nodejs``).
"""

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lab.serving import ServerProcess, free_port, spawn_server

NODE_CLOCK = """\
"use strict";
const http = require("node:http");

http.createServer((request, response) => {
  const url = new URL(request.url, "http://127.0.0.1");
  if (url.pathname !== "/events") {
    response.writeHead(404, { "Content-Type": "text/plain" });
    response.end("only /events here\\n");
    return;
  }
  const interval = 1000 * Number(url.searchParams.get("interval") || 1);
  if (!(interval >= 10 && interval <= 3600000)) {  // the course's bounds: 0.01 s to an hour
    response.writeHead(400, { "Content-Type": "text/plain" });
    response.end("interval: expected a number from 0.01 to 3600\\n");
    return;
  }
  response.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
  response.write(": connected\\nretry: 1000\\n\\n");
  let n = Math.ceil(Date.now() / interval);
  let timer;
  const sendWhenDue = () => {  // one timer per connection: the tutorial's pattern
    timer = setTimeout(() => {
      response.write(`id: ${n}\\ndata: {"time": ${n * interval}}\\n\\n`);
      n += 1;
      sendWhenDue();
    }, n * interval - Date.now());
  };
  sendWhenDue();
  request.on("close", () => clearTimeout(timer));
}).listen(Number(process.argv[2]), "127.0.0.1");
process.on("SIGTERM", () => process.exit(0));
"""


def node_binary() -> str:
    """Return the path of Node, or raise saying how to install it."""
    found = shutil.which("node") or shutil.which("nodejs")
    if found is None:
        raise FileNotFoundError("node is not installed: apt-get install nodejs")
    return found


@contextmanager
def spawn_node_clock() -> Iterator[ServerProcess]:
    """Start :data:`NODE_CLOCK` under Node on a free loopback port; stop it afterwards.

    Yields a :class:`streamlib.ServerProcess` whose URL serves ``/events?interval=S``.

    >>> with spawn_node_clock() as node:                 # doctest: +SKIP
    ...     crowd(node.url + "/events?interval=1", 1000, window=8)
    """
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="streamlib-node-") as work:
        script = Path(work) / "clock.js"
        script.write_text(NODE_CLOCK)
        with spawn_server([node_binary(), str(script), str(port)], port) as process:
            yield process
