"""A fake language model: deterministic tokens from the prompt, at a realistic pace.

The course streams "AI" answers without weights, a GPU or a network: the answer is made
from the prompt (the same prompt always gives the same tokens, so tests can expect them),
and the pacing imitates a real model: a wait before the first token (the time to read
the prompt), then a steady number of tokens per second.
"""

import hashlib
import random
import time
from collections.abc import Callable, Iterable, Iterator

VOCABULARY = [
    "stream",
    "chunk",
    "token",
    "byte",
    "socket",
    "server",
    "client",
    "generator",
    "yield",
    "close",
    "buffer",
    "latency",
    "memory",
    "event",
    "header",
    "status",
    "response",
    "request",
    "proxy",
    "worker",
    "thread",
    "schedule",
    "heartbeat",
]


def reply_tokens(prompt: str, max_tokens: int, length: int | None = None) -> tuple[list[str], str]:
    """Return the reply's tokens and why it ends: ``"stop"``, or ``"length"`` if cut.

    prompt: the user's text; the reply echoes its first words, then continues with words
        drawn by a random generator seeded from the prompt, so it is always the same.
    max_tokens: the most tokens to return.
    length: how long the model "wants" to answer, in tokens (default: 13 to 36, chosen
        from the prompt), to make long answers on purpose.

    Tokens carry their leading space, as real models' tokens do: joined, they make text.

    >>> reply_tokens("hello there", 4)
    (['You', ' said', ':', ' hello'], 'length')
    """
    seed = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:8], "big")
    chooser = random.Random(seed)
    words = prompt.split()[:8]
    length = length if length is not None else 12 + chooser.randrange(24)
    tokens = ["You", " said", ":"] + [f" {word}" for word in words] + ["."]
    while len(tokens) < length - 1:
        tokens.append(f" {chooser.choice(VOCABULARY)}")
    tokens.append(".")
    tokens = tokens[: max(length, 1)]
    if len(tokens) > max_tokens:
        return tokens[:max_tokens], "length"
    return tokens, "stop"


def pace(
    tokens: Iterable[str],
    first_token_latency: float,
    tokens_per_second: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[str]:
    """Yield ``tokens`` as a model would make them: the first after ``first_token_latency``
    seconds, then ``tokens_per_second``. Nothing is made before it is asked for, so a
    consumer that stops asking (a closed stream) stops the generation."""
    start = clock()
    for n, token in enumerate(tokens):
        due = start + first_token_latency + n / tokens_per_second
        if (wait := due - clock()) > 0:
            sleep(wait)
        yield token
