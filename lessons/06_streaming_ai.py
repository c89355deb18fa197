"""Lesson 06: streaming AI responses. Tokens as they are made, then ``[DONE]``.

A language model makes its answer one token at a time: the first after a pause (reading
the prompt), then tens per second. Sent whole, a 400-token answer keeps the user staring
at nothing for ten seconds; streamed, the first words show after the first pause, and
the answer reads itself out as it is written. That is why every chat interface streams.

**The seed's shape** (``GET /chat?prompt=``): Server-Sent Events, ``data: {"delta": "..."}``
per token, then ``data: [DONE]``, a sentinel that tells the client the answer is complete
(an answer that stops without it was cut off).

**The shape real clients read** (``POST /v1/chat/completions``): OpenAI's chat completions
API, which the official ``openai`` client and most other tools speak. ``streamlib.openai_chat``
writes it: a ``chat.completion`` object, or with ``"stream": true`` a series of
``chat.completion.chunk`` events (role first, a delta per token, a ``finish_reason``, usage
on request) and ``[DONE]``. Errors in the request are 400s in OpenAI's error shape; a
failure mid-answer is an error event, which the client raises.

**Stopping when the user leaves.** Generation costs (on a real model, GPU time), so it
must stop when nobody reads it. The token generator is lazy: the server asks for each
token, and closing the stream closes the generator. But a WSGI app learns that its client
left only when a write fails, up to two tokens late. So before making each token this
lesson also checks the client's socket for end-of-file (``streamlib.disconnect``): the
generation stops at the next token (``generate`` in ``lessons/chat.py``, the endpoint's
code, which lesson 09 serves from Flask and Django too). ``/stats`` counts, per route,
the tokens generated, the generations stopped because the client left, and the tokens
made after it left.

**When the model fails.** The fake model (``lab.fake_llm``) makes deterministic answers
from the prompt, with a realistic pace: ``latency`` seconds before the first token, ``rate``
tokens per second.
Both routes take them as query parameters, with ``length`` for an answer of that many
tokens and ``fail_at`` for a model that breaks down at that token. What the client sees
depends on whether anything was sent yet: a whole (non-streamed) answer is built before
its status, so it becomes a 500 in OpenAI's error shape; a stream has sent its 200 with the
first chunk, so it ends with an error event and no ``[DONE]``. The server's log gets one line
for it, not a traceback: the failure is asked for.

**Who may call it.** The endpoint takes ``application/json`` only (415 otherwise) and
bodies up to 1 MiB (413 above), both in OpenAI's error shape. A POST from another site's
page never reaches it: the course refuses it first, with the plain-text 403 every route
gives. A browser front end on another origin must pass a CORS preflight first
(``application/json`` is not a CORS-safelisted ``Content-Type``: Fetch standard,
"CORS-safelisted request-header"), which the course grants only to ``--cors ORIGIN``; then
``fetch`` can read the stream as it comes, ``response.body.getReader()``, as the demo does.

Try it (``python lessons/06_streaming_ai.py``, or ``python -m lessons``)::

    curl -N 'http://127.0.0.1:8000/chat?prompt=Why+stream%3F'
    curl -N http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \\
      -d '{"model": "fake", "stream": true, "messages": [{"role": "user", "content": "hi"}]}'

and with the official client: ``OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="x")``.
Then open http://127.0.0.1:8000/demo/chat. Notebook: ``notebooks/06_streaming_ai.ipynb``.
Exercise: ``exercises/06_streaming_ai.py``.
"""

import json
from collections.abc import Callable, Iterable, Iterator

from werkzeug.wrappers import Request

from lab.fake_llm import reply_tokens
from lessons.chat import (  # noqa: F401 (the endpoint's code, shared with lesson 09)
    MAX_BODY,
    breaking_at,
    completion_answer,
    generate,
    model_params,
)
from lessons.cli import run_lesson
from lessons.routes import Lesson, Route, send_text
from streamlib.openai_chat import (
    DONE,
)
from streamlib.sse import SSE_HEADERS, event_stream, format_event


def serve_chat(environ: dict, start_response: Callable) -> Iterator[bytes]:
    """``GET /chat?prompt=``: ``data: {"delta": "..."}`` per token, then ``data: [DONE]``."""
    prompt = Request(environ).args.get("prompt", "Hello")
    latency, rate, length, fail_at = model_params(environ)
    tokens, _ = reply_tokens(prompt, 100_000, length)
    start_response("200 OK", SSE_HEADERS)

    def events() -> Iterator[bytes]:
        try:
            made = breaking_at(tokens, fail_at, "/chat")
            for token in generate(environ, "/chat", made, latency, rate):
                yield format_event(json.dumps({"delta": token}))
        except RuntimeError as error:  # after the 200: say it in band, and no [DONE]
            yield format_event(json.dumps({"error": str(error)}))
            return
        yield DONE

    return event_stream(events())


def serve_completions(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """``POST /v1/chat/completions``: OpenAI's chat completions, streamed or whole."""
    answer = completion_answer(environ, "/v1/chat/completions")
    start_response(answer.status, answer.headers)
    return answer.body


DEMO_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>Lesson 06: a streaming chat</title>
<style>body { font: 16px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; }
#answer { white-space: pre-wrap; border: 1px solid #ccc; padding: 1rem; min-height: 6rem; }
textarea { width: 100%; }</style>
</head>
<body>
<nav><a href="/">All lessons</a> ·
<a href="/#06_streaming_ai">Lesson 06: streaming AI responses</a></nav>
<h1>A chat that streams</h1>
<p>The page POSTs to <code>/v1/chat/completions</code> with <code>"stream": true</code> and
reads the answer with <code>fetch</code> and a <code>ReadableStream</code>, rendering each
token as it comes. (<code>EventSource</code> cannot send a POST with a body, so chat pages read
the event stream themselves.) <em>Stop</em> aborts the request; the server notices and stops
generating.</p>
<textarea id="prompt" rows="2">Why do chat interfaces stream their answers?</textarea>
<p><button id="send">Send</button> <button id="stop" disabled>Stop</button>
<span id="status">idle</span> &middot; first token after <span id="ttft">-</span>
&middot; tokens: <span id="count">0</span></p>
<div id="answer"></div>
<script>
const $ = (id) => document.getElementById(id);
let controller = null;
$("send").onclick = async () => {
  controller = new AbortController();
  $("answer").textContent = "";
  $("count").textContent = "0";
  $("status").textContent = "waiting";
  $("send").disabled = true;
  $("stop").disabled = false;
  const started = performance.now();
  try {
    const response = await fetch("/v1/chat/completions" + location.search, {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({model: "fake", stream: true,
                            messages: [{role: "user", content: $("prompt").value}]}),
      signal: controller.signal,
    });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += value;
      const events = buffer.split("\\n\\n");
      buffer = events.pop();
      for (const event of events) {
        const data = event.split("\\n").filter((l) => l.startsWith("data: "))
                          .map((l) => l.slice(6)).join("\\n");
        if (!data) continue;
        if (data === "[DONE]") { $("status").textContent = "done"; continue; }
        const delta = JSON.parse(data).choices?.[0]?.delta?.content;
        if (!delta) continue;
        if ($("count").textContent === "0") {
          $("ttft").textContent = Math.round(performance.now() - started) + " ms";
        }
        const token = document.createElement("span");
        token.dataset.streamed = "";
        token.textContent = delta;
        $("answer").append(token);
        $("count").textContent = String(Number($("count").textContent) + 1);
        $("status").textContent = "streaming";
      }
    }
  } catch (error) {
    $("status").textContent = error.name === "AbortError" ? "stopped" : "error: " + error;
  } finally {
    $("send").disabled = false;
    $("stop").disabled = true;
  }
};
$("stop").onclick = () => controller && controller.abort();
</script>
</body>
</html>
"""


def demo_chat(environ: dict, start_response: Callable) -> list[bytes]:
    """The chat page; its query string (``?rate=5&length=200``) is passed to the API.

    The query is checked here too, so a bad link is a 400 that says why, not a page whose
    every answer fails.
    """
    model_params(environ)
    return send_text(environ, start_response, "text/html", DEMO_PAGE)


LESSON = Lesson(
    number=6,
    slug="streaming_ai",
    title="Streaming AI responses",
    summary=(
        "A fake model's tokens relayed as they are made: the seed's {delta} events and [DONE],"
        " and OpenAI's chat completions wire format, which the official openai client reads."
        " Generation stops when the client leaves; /stats counts the tokens."
    ),
    routes=(
        Route(
            "/chat",
            serve_chat,
            "SSE: a delta per token, then [DONE]",
            "/chat?prompt=Why+stream",
            free_text=("prompt",),
        ),
        Route(
            "/v1/chat/completions",
            serve_completions,
            "OpenAI-compatible chat completions, streamed or whole (POST a JSON body)",
            "/v1/chat/completions?latency=0.05",
            limits="request bodies up to 1 MiB (413 above), in OpenAI's error shape",
            methods=("POST",),
            example_body=(
                b'{"model": "fake", "stream": true,'
                b' "messages": [{"role": "user", "content": "Why stream?"}]}'
            ),
        ),
        Route(
            "/demo/chat",
            demo_chat,
            "a chat page that renders tokens as they come (here 160 tokens at 25 a second,"
            " after 0.8 s, like a real model; the query sets them)",
            "/demo/chat?length=160&rate=25&latency=0.8",
            streams=False,
        ),
    ),
    demos=(
        (
            "/demo/chat?length=160&rate=25&latency=0.8",
            "a streaming chat with a Stop button, paced like a real model",
        ),
    ),
)

if __name__ == "__main__":
    run_lesson(LESSON)
