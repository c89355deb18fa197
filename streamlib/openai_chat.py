"""The OpenAI chat completions wire format: what the official ``openai`` client reads.

A request is a JSON body (``model``, ``messages``, ``stream``, ``max_tokens``,
``stream_options``). A non-streamed answer is one ``chat.completion`` object. A streamed
answer is Server-Sent Events, each ``data:`` a ``chat.completion.chunk``:

1. the first delta carries the role (``{"role": "assistant", "content": ""}``);
2. then one delta per token (``{"content": " word"}``);
3. then an empty delta with ``finish_reason`` (``"stop"``, or ``"length"`` when
   ``max_tokens`` cut the answer);
4. with ``stream_options.include_usage``, a chunk with no choices and the token counts;
5. and ``data: [DONE]``.

Every chunk repeats the same ``id`` and ``created``. A failure mid-stream is sent as
``data: {"error": {...}}``, which the client raises as ``openai.APIError``. Careful with
SSE extras: the client parses every message it decodes as JSON, so a ``retry:`` hint (a
message with no data) would break it. So would an ``id:``: the client keeps the last id
and then turns every later blank line, even the one that ends a comment, into a message
with empty data (``openai`` 3.63.0, ``_streaming.SSEDecoder.decode``). Comments are safe
in a stream without ids, which is what this one is.
"""

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from streamlib.bodies import parse_json
from streamlib.sse import format_event

DONE = format_event("[DONE]")


class ChatRequestError(ValueError):
    """A request the API refuses: a 400 whose body is :func:`error_body`."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def error_body(message: str, kind: str = "invalid_request_error", param: str | None = None) -> dict:
    """An OpenAI-style error object: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}


@dataclass(frozen=True)
class ChatRequest:
    """The parts of a chat completions request the course's fake model uses."""

    model: str
    messages: list[dict]
    stream: bool = False
    max_tokens: int = 256
    include_usage: bool = False

    @property
    def prompt(self) -> str:
        """The last user message's text."""
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "user"), "")


def parse_chat_request(body: bytes) -> ChatRequest:
    """Read and check a chat completions request body; raise ``ChatRequestError`` if wrong.

    >>> body = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
    >>> parse_chat_request(body).prompt
    'hi'
    """
    try:
        data = parse_json(body)
    except ValueError as error:
        raise ChatRequestError(f"body: {error}") from None
    if not isinstance(data, dict):
        raise ChatRequestError("the body must be a JSON object")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise ChatRequestError("model: expected a non-empty string", "model")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ChatRequestError("messages: expected a non-empty array", "messages")
    for index, message in enumerate(messages):
        if not (
            isinstance(message, dict)
            and isinstance(message.get("role"), str)
            and isinstance(message.get("content"), str)
        ):
            raise ChatRequestError(
                f"messages[{index}]: expected an object with a string role and content",
                f"messages[{index}]",
            )
    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise ChatRequestError("stream: expected true or false", "stream")
    max_tokens = data.get("max_tokens", data.get("max_completion_tokens", 256))
    if (
        not isinstance(max_tokens, int)
        or isinstance(max_tokens, bool)
        or not 1 <= max_tokens <= 4096
    ):
        raise ChatRequestError("max_tokens: expected an integer from 1 to 4096", "max_tokens")
    options = data.get("stream_options") or {}
    if not isinstance(options, dict):
        raise ChatRequestError("stream_options: expected an object", "stream_options")
    include_usage = options.get("include_usage", False)
    if not isinstance(include_usage, bool):
        raise ChatRequestError(
            "stream_options.include_usage: expected true or false", "stream_options.include_usage"
        )
    return ChatRequest(model, messages, stream, max_tokens, include_usage)


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion(
    completion_id: str, created: int, model: str, text: str, finish_reason: str, counts: dict
) -> dict:
    """A whole, non-streamed ``chat.completion`` object."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": counts,
    }


def completion_chunks(
    completion_id: str,
    created: int,
    request: ChatRequest,
    tokens: Iterable[str],
    finish_reason: str,
    prompt_tokens: int,
) -> Iterator[bytes]:
    """Yield the SSE events of a streamed answer, ``[DONE]`` last (see the module doc).

    tokens: the answer's tokens, produced lazily: each is sent as soon as it comes.
    finish_reason: what ends the answer if ``tokens`` runs out normally.
    prompt_tokens: for the usage chunk.

    If ``tokens`` raises, an error event is sent instead of the end, and no ``[DONE]``.
    Closing this generator closes ``tokens``, which stops the generation.
    """

    def chunk(delta: dict, reason: str | None = None) -> bytes:
        body: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": request.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}],
        }
        if request.include_usage:
            body["usage"] = None
        return format_event(json.dumps(body))

    sent = 0
    try:
        yield chunk({"role": "assistant", "content": ""})
        for token in tokens:
            sent += 1
            yield chunk({"content": token})
    except Exception as error:  # the model failed mid-answer: tell the client, in its shape
        yield format_event(json.dumps(error_body(f"generation failed: {error}", "server_error")))
        return
    finally:
        close = getattr(tokens, "close", None)
        if close is not None:
            close()
    yield chunk({}, finish_reason)
    if request.include_usage:
        last = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": request.model,
            "choices": [],
            "usage": usage(prompt_tokens, sent),
        }
        yield format_event(json.dumps(last))
    yield DONE
