"""Grader for exercise 06: ``python -m pytest exercises/test_06_streaming_ai.py``.

Tests are named after the tasks in ``exercises/06_streaming_ai.py``.
"""

import itertools
import json
import threading
import time

import requests
from grading import Happened, serve_exercise, tutor

from streamlib.sse import parse_events

EXERCISE = "06_streaming_ai"
# The section each task's hint sends a learner to when no test says more.
TASK_SECTIONS = {
    1: "lesson 06, 'The first token, or the whole answer'",
    2: "lesson 06, 'The first token, or the whole answer'",
    3: "lesson 06, 'Stopping when the user leaves'",
}


class Model:
    """A token generator that records what it made and whether it was stopped."""

    def __init__(self, tokens, fail_after=None, pause=0.0):
        self.tokens, self.fail_after, self.pause = tokens, fail_after, pause
        self.made, self.stopped = 0, threading.Event()

    def generate(self):
        try:
            for n, token in enumerate(self.tokens):
                if n == self.fail_after:
                    raise RuntimeError("the model fell over")
                time.sleep(self.pause)
                self.made += 1
                yield token
        finally:
            self.stopped.set()


TOKENS = ["Hel", "lo", ' "world"', "\nbye"]
EXPECTED = b"".join(f"data: {json.dumps({'delta': t})}\n\n".encode() for t in TOKENS) + (
    b"data: [DONE]\n\n"
)


def test_task1_a_delta_per_token_then_done(exercise):
    got = b"".join(exercise.relay(Model(TOKENS).generate()))
    events = [e.data for e in parse_events([got])]
    expected_events = [json.dumps({"delta": t}) for t in TOKENS] + ["[DONE]"]
    assert events == expected_events, tutor(
        f"relay(tokens) over {TOKENS!r} and read the events",
        got,
        EXPECTED,
        "Task 1 and lesson 06, 'The first token, or the whole answer': f'data:"
        ' {json.dumps({"delta": token})}\\n\\n\' per token, then'
        " b'data: [DONE]\\n\\n'. json.dumps keeps the newline in a token inside one line.",
    )


def test_task2_each_token_goes_out_as_soon_as_it_is_made(exercise):
    model = Model(TOKENS)
    events = exercise.relay(model.generate())
    first = next(events)
    assert (first, model.made) == (EXPECTED.split(b"\n\n")[0] + b"\n\n", 1), tutor(
        "relay(tokens) and pulled the first event, counting the tokens the model made",
        Happened(f"{first!r} after {model.made} tokens"),
        "the first token's event after exactly one token",
        "Task 2 and lesson 06, 'The first token, or the whole answer': yield inside the loop; do"
        " not collect the tokens first.",
    )


def test_task3_closing_the_stream_stops_the_model(exercise):
    model = Model(TOKENS * 10)
    # Keep a reference to the generation, as a real model client does: otherwise the
    # garbage collector would finalize it the moment relay let go, and hide a missing close.
    generation = model.generate()
    events = exercise.relay(generation)
    next(events), next(events)
    events.close()  # the server, when the client leaves
    still_held = generation  # the reference lives until the check is done
    assert model.stopped.is_set() and model.made == 2 and still_held, tutor(
        "relay(tokens), read two events, then close() as the server does",
        Happened(f"model stopped: {model.stopped.is_set()}, tokens made: {model.made}"),
        "the model stopped after 2 tokens",
        "Task 3 and lesson 06, 'Stopping when the user leaves': in a finally, call tokens.close():"
        " the model generator's"
        " own finally then runs, and it makes nothing more.",
    )


def test_task3_a_failing_model_gets_an_error_event_and_no_done(exercise):
    got = b"".join(exercise.relay(Model(TOKENS, fail_after=2).generate()))
    events = [json.loads(e.data) if e.data != "[DONE]" else "[DONE]" for e in parse_events([got])]
    assert events == [{"delta": "Hel"}, {"delta": "lo"}, {"error": "the model fell over"}], tutor(
        "relay(tokens) with a model raising RuntimeError('the model fell over') at token 3",
        events,
        "the two deltas, then {'error': 'the model fell over'}, and no [DONE]",
        "Task 3 and lesson 06, 'When the model fails': catch the exception around the loop, yield"
        " the error event, and return.",
    )


def test_task3_a_real_server_stops_the_model_when_the_client_leaves(exercise):
    model = Model(["token "] * 1000, pause=0.02)

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        return exercise.relay(model.generate())

    with serve_exercise(app) as url:
        with requests.get(url, stream=True, timeout=5) as response:
            events = parse_events(response.iter_content(chunk_size=None))
            first = list(itertools.islice(events, 3))  # fewer if the stream ends early
        stopped = model.stopped.wait(timeout=5)
    assert len(first) == 3 and stopped and model.made < 20, tutor(
        "relay on a real server; the client read 3 events of 1000 and left",
        Happened(f"model stopped: {stopped}, tokens made: {model.made}"),
        "the model stopped a few tokens after the client left",
        "Task 3 and lesson 06, 'Stopping when the user leaves': the server closes your generator"
        " when its write fails; close tokens then.",
    )
