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

SENTENCES = [  # what the fake model knows: short, true sentences about streaming
    "Streaming sends each piece of an answer as soon as it is ready.",
    "The first byte can leave long before the last one is made.",
    "A generator holds one piece in memory, not the whole body.",
    "The server calls close() when the client goes away, so cleanup runs in a finally.",
    "Server-Sent Events are lines of text that a browser reads as they come.",
    "A proxy that buffers holds every piece back until the end.",
    "Heartbeats keep a quiet connection open and show when a client has left.",
    "Chunked encoding frames a body whose length nobody knows yet.",
    "A client that reads slowly makes the server wait, and memory stays flat.",
    "Tokens that arrive one by one let a reader start before the answer is done.",
    "Stopping the generation when the user leaves saves the work nobody will read.",
    "The same stream works with curl, requests, a browser and the openai client.",
]


def reply_tokens(prompt: str, max_tokens: int, length: int | None = None) -> tuple[list[str], str]:
    """Return the reply's tokens and why it ends: ``"stop"``, or ``"length"`` if cut.

    prompt: the user's text; the reply echoes its first words, then continues with
        sentences about streaming, picked by a random generator seeded from the prompt,
        so it is always the same.
    max_tokens: the most tokens to return.
    length: how long the model "wants" to answer, in tokens, to make long answers on
        purpose; by default the first whole sentence to reach 16 to 39 tokens (a target
        chosen from the prompt), so 16 to 53 tokens in all.

    Tokens carry their leading space, as real models' tokens do: joined, they make text.

    >>> reply_tokens("hello there", 4)
    (['You', ' said', ':', ' hello'], 'length')
    """
    seed = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:8], "big")
    chooser = random.Random(seed)
    words = prompt.split()[:8]
    target = length if length is not None else 16 + chooser.randrange(24)
    tokens = ["You", " said", ":"] + [f" {word}" for word in words] + ["."]
    unsaid: list[str] = []
    while len(tokens) < target:  # whole sentences: the answer ends where one ends
        unsaid = unsaid or chooser.sample(SENTENCES, len(SENTENCES))
        tokens += [f" {word}" for word in unsaid.pop().split()]
    if length is not None:  # exactly as long as asked, even mid-sentence
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
