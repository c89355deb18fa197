"""Lesson 06, streaming AI: the seed's shape, the openai client, first tokens, cancellation."""

import json
import time

import openai
import pytest
import requests

from lab import observe
from lab.browser import wait_until
from lab.fake_llm import reply_tokens
from lessons import load_lesson
from streamlib import call_app
from streamlib.sse import parse_events

lesson = load_lesson("06")
MESSAGES = [{"role": "user", "content": "Why stream?"}]


def test_chat_sends_a_delta_per_token_then_done(course_app):
    body = call_app(course_app, "/chat?prompt=Why+stream&latency=0&rate=10000").read()
    events = [e.data for e in parse_events([body])]
    tokens, _ = reply_tokens("Why stream", 100_000)
    assert body.startswith(b": connected\n")
    assert events[-1] == "[DONE]"
    assert [json.loads(data)["delta"] for data in events[:-1]] == tokens


@pytest.mark.parametrize(
    ("query", "says"),
    [("rate=0", "rate: expected"), ("latency=-1", "latency: expected"), ("length=0", "length:")],
)
def test_bad_model_settings_are_a_400(course_app, query, says):
    response = call_app(course_app, f"/chat?{query}")
    assert response.status_code == 400 and says in response.read().decode()


def test_a_bad_request_body_is_a_400_in_openai_s_shape(course_app):
    response = call_app(
        course_app, "/v1/chat/completions", "POST", {"Content-Type": "application/json"}, b"{oops"
    )
    error = json.loads(response.read())["error"]
    assert response.status_code == 400 and error["type"] == "invalid_request_error"
    assert error["message"].startswith("body: not valid JSON")


@pytest.fixture(params=["", "/flask", "/django"])
def client(request, live_url):
    """The official client, pointed at the course's endpoint and at lesson 09's Flask and
    Django mounts of it: all three must read alike."""
    base_url = f"{live_url}{request.param}/v1"
    return openai.OpenAI(base_url=base_url, api_key="not-needed", max_retries=0)


@pytest.mark.live
def test_the_official_openai_client_streams_from_the_course(client):
    stream = client.chat.completions.create(
        model="fake",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        extra_query={"latency": 0, "rate": 10_000},
    )
    chunks = list(stream)
    expected, _ = reply_tokens("Why stream?", 256)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "".join(expected)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert len({c.id for c in chunks}) == 1 and chunks[-1].usage.completion_tokens == len(expected)


@pytest.mark.live
def test_the_official_openai_client_reads_a_whole_answer(client):
    answer = client.chat.completions.create(
        model="fake", messages=MESSAGES, max_tokens=5, extra_query={"latency": 0, "rate": 10_000}
    )
    expected, _ = reply_tokens("Why stream?", 5)
    assert answer.choices[0].message.content == "".join(expected)
    assert answer.choices[0].finish_reason == "length"
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.chat.completions.create(model="fake", messages=MESSAGES, max_tokens=0)


@pytest.mark.live
def test_a_model_failing_mid_answer_reaches_the_openai_client_as_an_api_error(client, caplog):
    stream = client.chat.completions.create(
        model="fake",
        messages=MESSAGES,
        stream=True,
        extra_query={"latency": 0, "rate": 10_000, "fail_at": 3},
    )
    received = []
    with pytest.raises(openai.APIError, match="generation failed: the model broke down at token 3"):
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 4  # the role chunk and three tokens came first
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(
            model="fake", messages=MESSAGES, extra_query={"latency": 0, "fail_at": 3}
        )
    route = client.base_url.path.rstrip("/") + "/chat/completions"
    meant = f"{route}: the model broke down at token 3, on purpose (fail_at)"
    logged = [record.getMessage() for record in caplog.records]
    assert [line for line in logged if "on purpose" in line] == [meant, meant]
    assert "Traceback" not in caplog.text  # on purpose: a line each (Django adds its "500")


@pytest.mark.parametrize("route", ["/chat", "/v1/chat/completions"])
def test_a_stream_closed_by_the_server_counts_as_a_generation_stopped(course_app, stats, route):
    """A failed write makes the server close the stream before ``gone()`` has seen
    anything: that must count as stopped too, or /stats says the model ran to the end."""
    query = "?prompt=x&latency=0&rate=10000&length=50"
    if route == "/chat":
        response = call_app(course_app, route + query)
    else:
        body = json.dumps({"model": "fake", "stream": True, "messages": MESSAGES}).encode()
        headers = {"Content-Type": "application/json"}
        response = call_app(course_app, route + query, "POST", headers, body)
    for _ in range(3):
        response.next_piece()
    response.close()
    entry = stats.snapshot()["routes"][route]
    assert entry["generations_stopped"] == 1 and entry["tokens_generated"] < 50


def test_the_seed_route_reports_a_failure_in_band_with_no_done(course_app, caplog):
    body = call_app(course_app, "/chat?prompt=x&latency=0&rate=10000&fail_at=2").read()
    events = [e.data for e in parse_events([body])]
    assert json.loads(events[-1]) == {"error": "the model broke down at token 2"}
    assert "[DONE]" not in events and len(events) == 3
    meant = "/chat: the model broke down at token 2, on purpose (fail_at)"
    assert [record.getMessage() for record in caplog.records] == [meant]
    assert "Traceback" not in caplog.text


@pytest.mark.live
def test_the_first_token_waits_for_the_model_not_for_the_answer(live_url):
    # The first token cannot come before the model's latency; and it must not wait for
    # the rest: 2,000 tokens at 1,000/s take 2 s, the first still comes at about 0.2 s.
    first = {}
    for length in (10, 2000):
        seen = observe(f"{live_url}/chat?prompt=x&latency=0.2&rate=1000&length={length}")
        token_reads = [c for c in seen.chunks if c.at >= 0.2]
        first[length] = token_reads[0].at
        assert seen.total_time >= 0.2 + (length - 1) / 1000
    assert all(0.2 <= at < 0.2 + 0.5 for at in first.values()), first
    assert abs(first[2000] - first[10]) < 0.2, first


def wait_closed(stats, route, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = stats.snapshot()["routes"].get(route, {})
        if entry.get("streams_started") and not entry.get("open_streams"):
            return entry
        time.sleep(0.02)
    raise AssertionError(f"{route} still open: {stats.snapshot()}")


@pytest.mark.live
@pytest.mark.parametrize("route", ["/chat", "/v1/chat/completions"])
def test_generation_stops_within_two_tokens_of_the_client_leaving(live_url, stats, route):
    query = "?prompt=x&latency=0&rate=50&length=1000"
    if route == "/chat":
        response = requests.get(live_url + route + query, stream=True, timeout=10)
    else:
        body = {"model": "fake", "stream": True, "messages": MESSAGES}
        response = requests.post(live_url + route + query, json=body, stream=True, timeout=10)
    received = 0
    for event in parse_events(response.iter_content(chunk_size=None)):
        data = json.loads(event.data)
        if data.get("delta") or (
            data.get("choices") and data["choices"][0]["delta"].get("content")
        ):
            received += 1
        if received == 5:
            break
    response.close()  # the user closed the tab
    entry = wait_closed(stats, route)
    assert entry["generations_stopped"] == 1
    assert entry["tokens_generated"] - received <= 2, entry
    assert entry.get("tokens_after_disconnect", 0) <= 2, entry


@pytest.mark.browser
def test_chromium_renders_tokens_as_they_come_and_stop_stops_the_model(live_url, stats):
    from real_programs import chromium_page

    route = "/v1/chat/completions"
    with chromium_page() as page:
        page.goto(live_url + "/demo/chat?latency=0.1&rate=20&length=200")
        page.click("#send")
        page.wait_for_selector("#answer span[data-streamed]")
        generated_when_first_shown = stats.snapshot()["routes"][route]["tokens_generated"]
        wait_until(page, "document.querySelectorAll('#answer span[data-streamed]').length >= 5")
        page.click("#stop")
        wait_until(page, "document.getElementById('status').textContent === 'stopped'")
        shown = page.eval_on_selector_all("#answer span[data-streamed]", "spans => spans.length")
        entry = wait_closed(stats, route)
        time.sleep(0.3)  # had the model gone on, it would have made 6 more tokens by now
        final = stats.snapshot()["routes"][route]
    assert generated_when_first_shown < 200, "the first token showed before the last was made"
    assert (
        final["generations_stopped"] == 1 and entry["tokens_generated"] == final["tokens_generated"]
    )
    assert final["tokens_generated"] - shown <= 2, (final, shown)
