"""``/inspect``: watch any route of the course arrive, chunk by chunk, in the browser.

The page fetches the path with ``fetch`` and reads the body from its ``ReadableStream``,
noting the time of every chunk the browser hands over: what ``lab.observe`` does
from Python, done by the browser. It draws the bytes received against time (SVG, one
step per chunk, ticks at round numbers), parses the events of an event stream, and polls
``/stats`` for the server's open streams and memory, meanwhile and afterwards, until the
server has closed the streams watched (it notices a client that left only at its next
write). Two paths share one time axis, so ``/buffered`` (one late block) and ``/streamed``
(a staircase) can be watched side by side. A POST with a JSON body (the chat completions
endpoint) works too, once the learner presses Watch.

Plain JavaScript in the page: no build step, nothing fetched from elsewhere.
"""

from collections.abc import Callable
from html import escape

from werkzeug.exceptions import BadRequest
from werkzeug.wrappers import Request

from lessons.html_page import html_page
from lessons.routes import send_text

MAX_PATH = 2000  # characters
MAX_BODY = 64 * 1024  # characters of a POST body typed into the page
WAITING_FOR_A_POST = (
    "A POST is filled in below: read what it sends, then press Watch. (It never leaves by"
    " itself: a link on any site can fill this form in.)"
)
EXAMPLE_BODY = '{"model": "fake", "stream": true, "messages": [{"role": "user", "content": "hi"}]}'


def same_site_path(value: str, name: str) -> str:
    """``value`` if it is a path on this server (``/ticks?count=3``), else a 400.

    A path, not a URL: it starts with one ``/``, so the page can only fetch this server
    (``//evil.example/`` would be another host), and holds no spaces or control characters.
    """
    if (
        not value.startswith("/")
        or value.startswith(("//", "/\\"))
        or len(value) > MAX_PATH
        or any(ord(c) <= 32 or ord(c) == 127 for c in value)
    ):
        raise BadRequest(f"{name}: a path on this server, such as /ticks?count=3")
    return value


def inspector_page(environ: dict, start_response: Callable) -> list[bytes]:
    """``GET /inspect?path=/ticks%3Fcount%3D10``: the stream inspector, watching ``path``
    (and ``path2`` beside it, if given) as soon as it opens. ``method=POST`` fills in a
    POST of ``body`` as JSON, sent only when the learner presses Watch.

    Why not at once: the POST would leave from the course's own page, so the checks that
    refuse other sites' POSTs (``streamlib.origins``) would let it through, and any page
    that links to ``/inspect?path=/broadcast&method=POST&body=...`` could post in the
    learner's name (a cross-site request forgery through a page of the course; OWASP's
    CSRF cheat sheet). The page's ``frame-ancestors 'self'`` stops another site framing
    it to trick the click."""
    args = Request(environ).args
    paths = [same_site_path(args[name], name) for name in ("path", "path2") if args.get(name)]
    method = args.get("method", "GET")
    if method not in ("GET", "POST"):
        raise BadRequest("method: GET or POST")
    body = args.get("body", EXAMPLE_BODY if method == "POST" else "")
    if len(body) > MAX_BODY:
        raise BadRequest(f"body: at most {MAX_BODY} characters")
    body = BODY.format(
        path=escape(paths[0] if paths else ""),
        path2=escape(paths[1] if len(paths) > 1 else ""),
        body=escape(body),
        get_selected=" selected" if method == "GET" else "",
        post_selected=" selected" if method == "POST" else "",
        summary=WAITING_FOR_A_POST if method == "POST" else "Type a path and press Watch.",
        script=SCRIPT,
    )
    html = html_page("Stream inspector", STYLE, body)
    return send_text(environ, start_response, "text/html", html)


STYLE = """\
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 1rem auto;
         padding: 0 1rem; }
  form { display: grid; gap: .5rem;
          grid-template-columns: repeat(auto-fit, minmax(14rem, 1fr)); }
  label { display: flex; flex-direction: column; font-size: .9rem; }
  input, select, textarea, button { font: inherit; padding: .3rem; }
  button:focus, input:focus, select:focus, textarea:focus { outline: 3px solid #fa0; }
  svg { width: 100%; height: auto; background: #fafafa; border: 1px solid #ddd; }
  .lane-0 { color: #1f77b4; } .lane-1 { color: #d62728; }
  table { border-collapse: collapse; font-size: .85rem; }
  td, th { padding: 0 .5rem; text-align: right; }
  .chunks { max-height: 14rem; overflow-y: auto; display: inline-block; }
  .lanes { display: grid; gap: 1rem;
           grid-template-columns: repeat(auto-fit, minmax(16rem, 1fr)); }
  .lanes > section { min-width: 0; }  /* a grid column may shrink below its longest word */
  .lanes h2 { font-size: 1.1rem; overflow-wrap: anywhere; }  /* a long path breaks */
  dl { display: grid; grid-template-columns: auto 1fr; gap: 0 .75rem; margin: .25rem 0; }
  dt { font-weight: 600; } dd { margin: 0; }
"""

BODY = """\
<nav><a href="/">All lessons</a></nav>
<h1>Stream inspector</h1>
<p>Every chunk of a response, drawn as the browser receives it: bytes so far against time
since the request. Watch two paths on one time axis, such as <a
href="/inspect?path=%2Fbuffered%3Fsize%3D100000%26piece%3D10000%26delay%3D0.05&amp;path2=%2Fstreamed%3Fsize%3D100000%26piece%3D10000%26delay%3D0.05">/buffered
and /streamed</a>. The browser spends some time of its own starting a request, so its first
byte comes 20 to 150 ms later than <code>curl</code> or <code>lab.observe</code> would
see it; after that, the two agree.</p>
<form id="ask" action="/inspect" method="get">
  <label>Path
    <input id="path" name="path" value="{path}" placeholder="/ticks?count=10" required></label>
  <label>Beside it (optional) <input id="path2" name="path2" value="{path2}"></label>
  <label>Method <select id="method" name="method"><option{get_selected}>GET</option>
    <option{post_selected}>POST</option></select></label>
  <label>JSON body (POST) <textarea id="body" name="body" rows="2">{body}</textarea></label>
  <div><button id="watch">Watch</button> <button type="button" id="stop">Stop</button></div>
</form>
<p id="summary" aria-live="polite">{summary}</p>
<svg id="timeline" viewBox="0 0 800 320" role="img"
     aria-label="bytes received against milliseconds since the request"></svg>
<p id="server" aria-live="off">Server: waiting for /stats.</p>
<div id="lanes" class="lanes"></div>
<script>
{script}
</script>
"""

SCRIPT = r"""
"use strict";
const svgNS = "http://www.w3.org/2000/svg";
const form = document.getElementById("ask");
const inspection = (window.inspection = {lanes: [], server: [], running: false, before: 0});

function newLane(path, index) {
  const lane = {path, index, status: null, contentType: "", headersAt: null, firstByteAt: null,
                doneAt: null, total: 0, chunks: [], events: [], error: null};
  const box = document.createElement("section");
  box.className = "lane-" + index;
  box.innerHTML = "<h2></h2><dl></dl><h3>Chunks</h3><div class='chunks'><table>" +
    "<thead><tr><th>#</th><th>at ms</th><th>bytes</th><th>so far</th></tr></thead>" +
    "<tbody></tbody></table></div><h3 hidden>Events</h3><ol class='events'></ol>" +
    "<details><summary>Response headers</summary><dl class='headers'></dl></details>";
  box.querySelector("h2").textContent = path;
  document.getElementById("lanes").append(box);
  lane.box = box;
  return lane;
}

function ms(value) { return value === null ? "..." : value.toFixed(1) + " ms"; }

function describe(lane) {
  const figures = {
    "status": lane.error ? "failed: " + lane.error : (lane.status ?? "..."),
    "headers at": ms(lane.headersAt),
    "first byte (TTFB)": ms(lane.firstByteAt),
    "total": lane.doneAt === null ? "still arriving" : ms(lane.doneAt),
    "bytes": lane.total.toLocaleString(),
    "chunks": String(lane.chunks.length),
  };
  if (lane.contentType.startsWith("text/event-stream")) figures.events = String(lane.events.length);
  const list = lane.box.querySelector("dl:not(.headers)");
  list.replaceChildren();
  for (const [name, value] of Object.entries(figures)) {
    const term = document.createElement("dt"), detail = document.createElement("dd");
    term.textContent = name;
    detail.textContent = value;
    detail.dataset.figure = name;
    list.append(term, detail);
  }
}

function addChunkRow(lane, chunk) {
  const row = lane.box.querySelector("tbody").insertRow();
  for (const value of [lane.chunks.length, chunk.at.toFixed(1), chunk.bytes, chunk.total]) {
    row.insertCell().textContent = String(value);
  }
}

function parseEvents(lane, text, at) {
  // The WHATWG event stream format: fields until a blank line dispatches (lesson 04).
  lane.pending = (lane.pending || "") + text;
  const lines = lane.pending.split(/\r\n|\r|\n/);
  lane.pending = lines.pop();
  lane.current = lane.current || {data: [], event: "message", id: null};
  for (const line of lines) {
    if (line === "") {
      if (lane.current.data.length) {
        const event = {at, event: lane.current.event, id: lane.current.id,
                       data: lane.current.data.join("\n")};
        lane.events.push(event);
        const item = document.createElement("li");
        item.textContent = `${at.toFixed(1)} ms  ${event.event}: ${event.data.slice(0, 120)}`;
        lane.box.querySelector(".events").append(item);
        lane.box.querySelector("h3[hidden]")?.removeAttribute("hidden");
      }
      lane.current = {data: [], event: "message", id: null};
      continue;
    }
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "data") lane.current.data.push(value);
    else if (field === "event") lane.current.event = value;
    else if (field === "id") lane.current.id = value;
  }
}

async function watch(lane, options) {
  const started = inspection.started;
  try {
    const signal = inspection.controller.signal;  // the Stop button aborts it
    const response = await fetch(lane.path, {...options, cache: "no-store", signal});
    lane.status = response.status;
    lane.contentType = response.headers.get("content-type") || "";
    lane.headersAt = performance.now() - started;
    lane.headers = [...response.headers];
    const shown = lane.box.querySelector("dl.headers");
    for (const [name, value] of lane.headers) {
      const term = document.createElement("dt"), detail = document.createElement("dd");
      term.textContent = name;
      detail.textContent = value;
      shown.append(term, detail);
    }
    describe(lane);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const {done, value} = await reader.read();
      const at = performance.now() - started;
      if (done) break;
      lane.total += value.length;
      const chunk = {at, bytes: value.length, total: lane.total};
      lane.chunks.push(chunk);
      if (lane.firstByteAt === null) lane.firstByteAt = at;
      addChunkRow(lane, chunk);
      if (lane.contentType.startsWith("text/event-stream")) {
        parseEvents(lane, decoder.decode(value, {stream: true}), at);
      }
      describe(lane);
      draw();
    }
    lane.doneAt = performance.now() - started;
  } catch (error) {
    lane.error = error.name === "AbortError" ? "stopped" : String(error);
    lane.doneAt = performance.now() - started;
  }
  describe(lane);
  draw();
}

// Ticks at round numbers, 0/20/40/60/80 rather than 0/18/35/53/70: the step is 1, 2 or 5
// times a power of ten, the smallest such that about `count` steps reach `largest` ("nice
// numbers", Paul Heckbert in Graphics Gems, 1990). The figures are whole bytes and
// milliseconds, so no step is below 1. The last tick is the end of the axis.
function niceTicks(largest, count = 5) {
  const rough = largest / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = Math.max(1, [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough));
  const ticks = [];
  for (let n = 0; n * step < largest; n++) ticks.push(n * step);
  ticks.push(ticks.length * step);
  return ticks;
}

// The unit that keeps the byte axis's labels short: [name, bytes in one].
function byteUnit(most) {
  if (most >= 1e7) return ["MB", 1e6];
  if (most >= 1e4) return ["kB", 1e3];
  return ["bytes", 1];
}

function draw() {
  const svg = document.getElementById("timeline");
  const [width, height] = [800, 320];
  const box = {left: 84, right: 770, top: 12, bottom: 268};  // the plot inside its labels
  const now = performance.now() - inspection.started;
  const lanes = inspection.lanes;
  const mostBytes = Math.max(1, ...lanes.map((l) => l.total));
  const [unit, perUnit] = byteUnit(mostBytes);
  const times = niceTicks(Math.max(100, ...lanes.map((l) => l.doneAt ?? now)));
  const sizes = niceTicks(mostBytes / perUnit);
  const [longest, most] = [times.at(-1), sizes.at(-1) * perUnit];
  const x = (t) => box.left + (t / longest) * (box.right - box.left);
  const y = (b) => box.bottom - (b / most) * (box.bottom - box.top);
  svg.replaceChildren();
  const add = (name, attributes, text) => {
    const node = document.createElementNS(svgNS, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
    return node;
  };
  for (const size of sizes) {  // a grid line and a label at each round number of bytes
    add("line", {x1: box.left, y1: y(size * perUnit), x2: box.right, y2: y(size * perUnit),
                 stroke: size ? "#e2e2e2" : "#888"});
    add("text", {x: box.left - 8, y: y(size * perUnit) + 4, "text-anchor": "end",
                 "font-size": 12, class: "tick", "data-axis": "y"}, size.toLocaleString());
  }
  for (const time of times) {  // a tick mark and a label at each round number of ms
    add("line", {x1: x(time), y1: box.bottom, x2: x(time), y2: box.bottom + 5, stroke: "#888"});
    add("text", {x: x(time), y: box.bottom + 19, "text-anchor": "middle", "font-size": 12,
                 class: "tick", "data-axis": "x"}, time.toLocaleString());
  }
  add("line", {x1: box.left, y1: box.bottom, x2: box.left, y2: box.top, stroke: "#888"});
  add("text", {x: (box.left + box.right) / 2, y: height - 10, "text-anchor": "middle",
               "font-size": 13, class: "axis-label", "data-axis": "x"}, "ms since the request");
  add("text", {x: 0, y: 0, transform: `translate(18 ${(box.top + box.bottom) / 2}) rotate(-90)`,
               "text-anchor": "middle", "font-size": 13, class: "axis-label", "data-axis": "y"},
      `${unit} received`);
  lanes.forEach((lane) => {
    const color = lane.index === 0 ? "#1f77b4" : "#d62728";
    let points = `${x(0)},${y(0)}`, previous = 0;
    const step = Math.max(1, Math.ceil(lane.chunks.length / 2000));  // keep the SVG light
    lane.chunks.forEach((chunk, n) => {
      if (n % step && n !== lane.chunks.length - 1) return;
      points += ` ${x(chunk.at)},${y(previous)} ${x(chunk.at)},${y(chunk.total)}`;
      previous = chunk.total;
    });
    const end = lane.doneAt ?? now;
    points += ` ${x(end)},${y(previous)}`;
    add("polyline", {points, fill: "none", stroke: color, "stroke-width": 2,
                     "data-lane": lane.index});
    lane.chunks.forEach((chunk, n) => {
      if (n % step) return;
      add("circle", {cx: x(chunk.at), cy: y(chunk.total), r: 3, fill: color, class: "chunk",
                     "data-lane": lane.index});
    });
  });
  const running = lanes.filter((l) => l.doneAt === null).length;
  document.getElementById("summary").textContent = running
    ? `Watching ${running} stream(s): ${Math.round(now)} ms so far.`
    : `Done: ${lanes.map((l) => `${l.path} ${l.total.toLocaleString()} bytes in ` +
       `${l.chunks.length} chunk${l.chunks.length === 1 ? "" : "s"}, first byte ` +
       `${ms(l.firstByteAt)}, total ${ms(l.doneAt)}`).join("; ")}.`;
}

// How long the page goes on asking /stats after the watch, at most, for the server to close
// the streams watched here: longer than the course's heartbeats (15 s).
const SETTLE_MS = 60_000;

async function readStats() {
  try {
    const stats = await (await fetch("/stats", {cache: "no-store"})).json();
    return {open: stats.open_streams, rss: stats.rss_bytes};
  } catch (error) {
    return null;  // the server went away: keep the last figures
  }
}

function showServer(sample, watching) {
  const before = inspection.before;
  const note = watching ? ", the ones watched here included"
    : sample.open > before ? " (it closes a stream stopped here at its next write, when it" +
      " finds the client gone)"
    : before ? ` (${before} open before this watch began)` : "";
  document.getElementById("server").textContent = `Server: ${sample.open} open stream(s)` +
    `${note}; ${(sample.rss / 1048576).toFixed(1)} MiB resident.`;
}

// The server counts a stream open until it closes it, and it learns that a client has gone
// only when a write fails, at its next chunk or heartbeat: a stream that ended here may stay
// open there for a while. So after the watch the page asks again until the count is back
// where it was before the watch began (or SETTLE_MS have passed).
async function pollStats() {
  if (inspection.polling) return;  // a second Watch: the loop already running serves it too
  inspection.polling = true;
  let ended = null;
  for (;;) {
    const watching = inspection.running;  // read before asking: a sample after the end counts
    ended = watching ? null : ended ?? performance.now();
    const sample = await readStats();
    if (sample) {
      inspection.server.push({at: performance.now() - inspection.started, ...sample});
      showServer(sample, watching);
      if (!watching && sample.open <= inspection.before) break;
    }
    if (ended !== null && performance.now() - ended > SETTLE_MS) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  inspection.polling = false;
  inspection.serverSettled = true;
}

async function start() {
  const field = (id) => document.getElementById(id).value;
  const paths = [field("path"), field("path2")].filter((p) => p);
  if (!paths.length) return;
  const options = field("method") === "POST"
    ? {method: "POST", body: field("body"), headers: {"Content-Type": "application/json"}}
    : {method: "GET"};
  inspection.before = (await readStats())?.open ?? 0;  // others' streams, not this watch's
  inspection.lanes = paths.map(newLane);
  inspection.running = true;
  inspection.serverSettled = false;
  inspection.controller = new AbortController();
  inspection.started = performance.now();
  const watching = inspection.lanes.map((lane) => watch(lane, options));
  pollStats();  // after the watched requests are on their way, so they go first
  const ticking = setInterval(draw, 100);  // the time axis moves while bytes wait
  await Promise.all(watching);
  clearInterval(ticking);
  inspection.running = false;
  draw();
}

document.getElementById("stop").addEventListener("click", () => inspection.controller?.abort());
// Watch on a GET reloads the page at its new address, and the watching begins once the
// page has loaded, so that its own loading is not in the figures. A POST never begins on
// load, since a link or a frame on any site can fill this form in: only the Watch button
// of this very page sends it.
const asked = (id) => document.getElementById(id).value;
if (asked("path") && asked("method") === "GET") window.addEventListener("load", start);
form.addEventListener("submit", (event) => {
  if (asked("method") !== "POST") return;
  event.preventDefault();
  history.replaceState(null, "", "/inspect?" + new URLSearchParams(new FormData(form)));
  start();
});
"""
