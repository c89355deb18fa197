"""Run a Node relay of the course's Redis room on a free loopback port: lesson 08's yardstick.

Lesson 08's benchmark measures two gunicorn workers relaying a Redis Stream to SSE clients.
To state its targets as ratios, as lesson 07's are against the Node tutorial's clock, the
same run measures Node doing the same work the way a Node developer would: one reader
blocked on the stream (``XREAD BLOCK``), and for each message one ``res.write`` to every
client in a set, the tutorial's fan-out. :data:`NODE_RELAY` sends the course's bytes for
``/broadcast`` (``id:`` the stream id, ``data:`` the message as published) after the same
first comment. Node has no Redis client built in, so it speaks RESP, Redis's small protocol,
itself. It needs Node 18 or later (Debian's ``nodejs``).
"""

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from lab.node_clock import node_binary
from lab.serving import ServerProcess, free_port, spawn_server
from streamlib.broadcast import STREAM

NODE_RELAY = """\
"use strict";
const http = require("node:http");
const net = require("node:net");

const [port, redisPort, stream] = process.argv.slice(2);
const clients = new Set();

http.createServer((request, response) => {
  if (new URL(request.url, "http://127.0.0.1").pathname !== "/broadcast") {
    response.writeHead(404, { "Content-Type": "text/plain" });
    response.end("only /broadcast here\\n");
    return;
  }
  response.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
  response.write(": connected\\nretry: 1000\\n\\n");
  clients.add(response);
  request.on("close", () => clients.delete(response));
}).listen(Number(port), "127.0.0.1");

// RESP: a command is an array of bulk strings; a reply is parsed as it comes.
const command = (...words) =>
  `*${words.length}\\r\\n` + words.map((w) => `$${Buffer.byteLength(w)}\\r\\n${w}\\r\\n`).join("");
function parse(buffer, at) {  // [value, next offset], or null while the reply is incomplete
  const end = buffer.indexOf("\\r\\n", at);
  if (end < 0) return null;
  const type = String.fromCharCode(buffer[at]);
  const head = buffer.toString("utf8", at + 1, end);
  let next = end + 2;
  if (type === "-") throw new Error(head);
  if (type === "+" || type === ":") return [head, next];
  const length = Number(head);
  if (length < 0) return [null, next];
  if (type === "$") {
    if (buffer.length < next + length + 2) return null;
    return [buffer.toString("utf8", next, next + length), next + length + 2];
  }
  const items = [];
  for (let i = 0; i < length; i++) {
    const item = parse(buffer, next);
    if (item === null) return null;
    items.push(item[0]);
    next = item[1];
  }
  return [items, next];
}

const redis = net.createConnection(Number(redisPort), "127.0.0.1");
let received = Buffer.alloc(0);
let last = "$";  // the newest message at the first read; then the last one relayed
const readNext = () =>
  redis.write(command("XREAD", "BLOCK", "0", "COUNT", "1000", "STREAMS", stream, last));
redis.on("data", (data) => {
  received = Buffer.concat([received, data]);
  const reply = parse(received, 0);
  if (reply === null) return;
  received = received.subarray(reply[1]);
  for (const [, entries] of reply[0] || []) {
    for (const [id, fields] of entries) {
      last = id;
      const event = `id: ${id}\\ndata: ${fields[fields.indexOf("data") + 1]}\\n\\n`;
      for (const response of clients) response.write(event);  // the tutorial's fan-out
    }
  }
  readNext();
});
redis.on("connect", readNext);
process.on("SIGTERM", () => process.exit(0));
"""


@contextmanager
def spawn_node_relay(redis_url: str, stream: str = STREAM) -> Iterator[ServerProcess]:
    """Start :data:`NODE_RELAY` under Node on a free loopback port, relaying ``stream`` of the
    Redis at ``redis_url`` to the clients of ``/broadcast``; stop it afterwards."""
    port = free_port()
    redis_port = str(urlsplit(redis_url).port or 6379)
    with tempfile.TemporaryDirectory(prefix="streamlib-node-") as work:
        script = Path(work) / "relay.js"
        script.write_text(NODE_RELAY)
        command = [node_binary(), str(script), str(port), redis_port, stream]
        with spawn_server(command, port, ready_path="/") as process:  # "/" answers 404 at once
            yield process
