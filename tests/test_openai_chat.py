"""lab.fake_llm and streamlib.openai_chat, read by the official openai client.

A small app built from the two modules is served on a real socket, and ``openai.OpenAI``
talks to it as it would to the real API: streamed and not, with usage, with errors.
"""

import json

import openai
import pytest

from lab import serve
from lab.fake_llm import pace, reply_tokens
from streamlib import FakeClock, call_app
from streamlib.openai_chat import (
    ChatRequestError,
    completion,
    completion_chunks,
    error_body,
    parse_chat_request,
    usage,
)
from streamlib.sse import parse_events


def test_the_reply_is_made_from_the_prompt_and_always_the_same():
    tokens, reason = reply_tokens("Tell me about streams", 100)
    assert "".join(tokens).startswith("You said: Tell me about streams.")
    assert reason == "stop" and (tokens, reason) == reply_tokens("Tell me about streams", 100)
    assert reply_tokens("other", 100) != (tokens, reason)
    assert reply_tokens("Tell me about streams", 3) == (tokens[:3], "length")


def test_tokens_come_at_the_model_s_pace_and_only_when_asked_for():
    fake = FakeClock()
    tokens = pace(["a", "b", "c"], 0.5, 10.0, fake.clock, fake.sleep)
    assert fake.sleeps == []
    assert list(tokens) == ["a", "b", "c"]
    assert fake.sleeps == pytest.approx([0.5, 0.1, 0.1])


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"[1]", None),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "model"),
        (b'{"model": "m"}', "messages"),
        (b'{"model": "m", "messages": []}', "messages"),
        (b'{"model": "m", "messages": [{"role": "user"}]}', "messages[0]"),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
            "stream",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}',
            "max_tokens",
        ),
    ],
)
def test_a_bad_request_is_refused_naming_the_parameter(body, param):
    with pytest.raises(ChatRequestError) as refused:
        parse_chat_request(body)
    assert refused.value.param == param


def chat_app(environ, start_response):
    """The smallest OpenAI-compatible endpoint these modules make."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    try:
        request = parse_chat_request(environ["wsgi.input"].read(length))
    except ChatRequestError as error:
        start_response("400 Bad Request", [("Content-Type", "application/json")])
        return [json.dumps(error_body(str(error), param=error.param)).encode()]
    tokens, reason = reply_tokens(request.prompt, request.max_tokens)
    if request.prompt == "fail":
        tokens = fail_after(tokens, 2)
    prompt_tokens = len(request.prompt.split())
    if request.stream:
        start_response(
            "200 OK", [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")]
        )
        return completion_chunks(
            "chatcmpl-1", 1700000000, request, pace(tokens, 0, 1000), reason, prompt_tokens
        )
    text = "".join(tokens)
    body = completion(
        "chatcmpl-1", 1700000000, request.model, text, reason, usage(prompt_tokens, len(tokens))
    )
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]


def fail_after(tokens, count):
    for n, token in enumerate(tokens):
        if n == count:
            raise RuntimeError("the model fell over")
        yield token


@pytest.fixture(scope="module")
def client():
    with serve(chat_app) as url:
        yield openai.OpenAI(base_url=url + "/v1", api_key="not-needed", max_retries=0)


MESSAGES = [{"role": "user", "content": "Tell me about streams"}]
EXPECTED, _ = reply_tokens("Tell me about streams", 256)


def test_the_openai_client_streams_every_token_then_the_usage(client):
    stream = client.chat.completions.create(
        model="fake", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert deltas[0].role == "assistant"
    assert "".join(d.content or "" for d in deltas) == "".join(EXPECTED)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert {c.id for c in chunks} == {"chatcmpl-1"} and {c.created for c in chunks} == {1700000000}
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == len(EXPECTED)


def test_the_openai_client_reads_a_whole_answer_and_its_length_limit(client):
    answer = client.chat.completions.create(model="fake", messages=MESSAGES, max_tokens=4)
    assert answer.choices[0].message.content == "".join(EXPECTED[:4])
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage.completion_tokens == 4


def test_the_openai_client_raises_a_bad_request_with_our_message(client):
    with pytest.raises(openai.BadRequestError, match="max_tokens: expected an integer"):
        client.chat.completions.create(model="fake", messages=MESSAGES, max_tokens=0)


def test_the_openai_client_raises_a_mid_stream_failure(client):
    stream = client.chat.completions.create(
        model="fake", messages=[{"role": "user", "content": "fail"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIError, match="generation failed: the model fell over"):
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 3  # the role chunk and two tokens came before the error


def test_the_stream_is_valid_sse_ending_in_done_and_closing_its_tokens():
    closed = []

    def tokens():
        try:
            yield from ["a", "b", "c"]
        finally:
            closed.append(True)

    request = parse_chat_request(
        json.dumps({"model": "m", "messages": MESSAGES, "stream": True}).encode()
    )
    chunks = completion_chunks("id", 1, request, tokens(), "stop", 3)
    events = list(parse_events(chunks))
    assert events[-1].data == "[DONE]" and closed == [True]
    early = completion_chunks("id", 1, request, tokens(), "stop", 3)
    next(early), next(early)
    early.close()  # the server, when the client leaves: the generation stops too
    assert closed == [True, True]


def test_a_wsgi_validator_finds_nothing_wrong(client):
    body = json.dumps({"model": "m", "messages": MESSAGES, "stream": True}).encode()
    response = call_app(
        chat_app, "/v1/chat/completions", "POST", {"Content-Type": "application/json"}, body
    )
    assert response.read().endswith(b"data: [DONE]\n\n")
