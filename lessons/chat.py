"""The fake model's chat endpoint (lesson 06), framework-agnostic: lesson 06 serves it from
the course, lesson 09 from Flask and Django.

:func:`completion_answer` reads an OpenAI-compatible chat request and answers it, streamed
or whole, as an :class:`Answer` any framework can send; :func:`generate` paces the fake
model's tokens and stops making them when the client leaves.
"""

import json
import logging
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request

from lab.fake_llm import pace, reply_tokens
from streamlib import float_param, int_param
from streamlib.bodies import read_bounded, require_json
from streamlib.disconnect import client_watch
from streamlib.openai_chat import (
    ChatRequestError,
    completion,
    completion_chunks,
    error_body,
    parse_chat_request,
    usage,
)
from streamlib.params import check_duration
from streamlib.sse import SSE_HEADERS

MAX_BODY = 1024 * 1024  # bytes in one request: a long conversation fits; 100 MB is a 413
logger = logging.getLogger("lessons")


def model_params(environ: dict) -> tuple[float, float, int | None, int | None]:
    """``latency`` (s before the first token), ``rate`` (tokens/s), ``length`` (tokens),
    and ``fail_at``: the token at which the model breaks down, to see a mid-answer error."""
    args = Request(environ).args
    latency = float_param(args, "latency", 0.3, 0.0, 10.0)
    rate = float_param(args, "rate", 30.0, 1.0, 10_000.0)
    length = int_param(args, "length", 0, 1, 100_000) if "length" in args else None
    fail_at = int_param(args, "fail_at", 0, 0, 100_000) if "fail_at" in args else None
    if length is not None:  # a reply's own length is 16 to 53 tokens: always short enough
        check_duration("length", length, "tokens", 1 / rate, first_after=latency)
    return latency, rate, length, fail_at


def breaking_at(tokens: list[str], fail_at: int | None, route: str) -> Iterator[str]:
    """The tokens, with a ``RuntimeError`` instead of token number ``fail_at``.

    route: the path asked, for the one line the server logs: the failure is on purpose,
    and its traceback would tell the learner nothing.
    """
    for n, token in enumerate(tokens):
        if n == fail_at:
            logger.warning("%s: the model broke down at token %d, on purpose (fail_at)", route, n)
            raise RuntimeError(f"the model broke down at token {n}")
        yield token


def generate(
    environ: dict, route: str, tokens: Iterable[str], latency: float, rate: float
) -> Iterator[str]:
    """Pace ``tokens`` like a model, counting them in ``/stats``; stop when the client goes.

    Before each token, the client's socket is checked (``client_watch``): a client that
    has gone gets no more tokens made for it. A failed write closes this generator too
    (the server calls ``close()``, which raises ``GeneratorExit`` at the ``yield``):
    both count as a generation stopped.
    """
    stats = environ.get("course.stats")
    count = stats.add if stats is not None else (lambda *args: None)
    gone = client_watch(environ)
    try:
        for token in pace(tokens, latency, rate):
            if gone():
                count(route, "generations_stopped")
                count(route, "tokens_after_disconnect")  # this one was made for nobody
                return
            count(route, "tokens_generated")
            yield token
    except GeneratorExit:  # closed before the last token: the client went while we wrote
        count(route, "generations_stopped")
        raise


class Answer(NamedTuple):
    """What a route answers, before any framework wraps it: status, headers, body."""

    status: str
    headers: list[tuple[str, str]]
    body: Iterable[bytes]


def json_answer(status: str, value: object) -> Answer:
    """``status`` with ``value`` as a JSON body, whole: its length is known."""
    body = json.dumps(value).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    return Answer(status, headers, [body])


def api_error(status: str, message: str, param: str | None = None) -> Answer:
    """``status`` with OpenAI's error object, which its clients raise as an error."""
    return json_answer(status, error_body(message, param=param))


def completion_answer(environ: dict, route: str) -> Answer:
    """Answer a chat completion request: streamed (SSE) or whole, or OpenAI's error.

    environ: the request's WSGI environ, whose body is read here (at most ``MAX_BODY``).
    route: the path its tokens are counted under in ``/stats``.

    Any framework can send what this returns (lesson 09 does, in Flask and Django): the
    body is the same generator whichever sends it.
    """
    try:
        latency, rate, length, fail_at = model_params(environ)
        require_json(environ)  # 415 otherwise: no other site's page can post here unasked
        request = parse_chat_request(read_bounded(environ, MAX_BODY))
    except ChatRequestError as error:
        return api_error("400 Bad Request", str(error), error.param)
    except HTTPException as error:  # 413 too large, or 400 unreadable: in OpenAI's shape too
        return api_error(f"{error.code} {error.name}", error.description or error.name)
    tokens, finish_reason = reply_tokens(request.prompt, request.max_tokens, length)
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    prompt_tokens = sum(len(m["content"].split()) for m in request.messages)
    made = generate(environ, route, breaking_at(tokens, fail_at, route), latency, rate)
    if request.stream:
        chunks = completion_chunks(
            completion_id, created, request, made, finish_reason, prompt_tokens
        )
        return Answer("200 OK", SSE_HEADERS, chunks)
    try:
        text = "".join(made)  # a whole answer: nothing can be sent before the last token
    except RuntimeError as error:  # nothing sent yet: a real error status is still possible
        return json_answer("500 Internal Server Error", error_body(str(error), "server_error"))
    counts = usage(prompt_tokens, len(tokens))
    return json_answer(
        "200 OK", completion(completion_id, created, request.model, text, finish_reason, counts)
    )
