"""Exercise 06: relay a model's tokens as Server-Sent Events, and stop it when nobody reads.

Write ``relay(tokens)``: a generator of SSE bytes for a chat page, fed by a model's token
generator.

Read first: lesson 06, 'Stopping when the user leaves' and 'When the model fails' (the page
``/lessons/6``), and notebook 06, 'The first token, or the whole answer'.

Task 1. For each token yield ``data: {"delta": TOKEN}`` and a blank line, the value
        written with ``json.dumps`` (a token may hold quotes or a newline), then
        ``data: [DONE]`` and a blank line: the sign that the answer is complete.
Task 2. Relay each token as soon as the model makes it: never wait for the whole answer.
Task 3. The model costs money while it runs. When the server closes your generator (the
        client left), close ``tokens`` too, so that the model stops. And if the model fails
        mid-answer (it raises), send ``data: {"error": MESSAGE}`` and stop, with no
        ``[DONE]``: a client must not take half an answer for a whole one.

Grade your work:   python -m pytest exercises/test_06_streaming_ai.py
"""

from collections.abc import Iterator


def relay(tokens: Iterator[str]) -> Iterator[bytes]:
    """Yield ``data: {"delta": ...}`` per token, then ``data: [DONE]``."""
    raise NotImplementedError("Exercise 06: write relay (see the tasks at the top)")
