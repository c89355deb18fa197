"""Lesson 06: the first token comes at the model's latency, whatever the answer's length.

For answers of 10 to 2,000 tokens (1,000 tokens per second after a 0.3 s start), each on a
fresh server: the streamed first token's time (``GET /chat``), its excess over the model's
latency, and the time to a whole, non-streamed answer (``POST /v1/chat/completions``).
"""

import statistics
import time
from pathlib import Path

import matplotlib
import requests

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.report import targets_and_plot
from lab import observe
from lessons import spawn_course

LATENCY, RATE = 0.3, 1000.0
EXCESS_TARGET_MS = 20.0


def first_token_s(url: str) -> float:
    seen = observe(url)
    return next(chunk.at for chunk in seen.chunks if chunk.at >= LATENCY)


def run(out: Path, quick: bool = False) -> str:
    lengths, repeats = ((10, 100), 1) if quick else ((10, 100, 500, 2000), 5)
    rows = []
    for length in lengths:
        query = f"latency={LATENCY}&rate={RATE}&length={length}"
        with spawn_course() as server:
            first = [first_token_s(f"{server.url}/chat?prompt=x&{query}") for _ in range(repeats)]
            start = time.perf_counter()
            requests.post(
                f"{server.url}/v1/chat/completions?{query}",
                json={
                    "model": "fake",
                    "max_tokens": 4096,
                    "messages": [{"role": "user", "content": "x"}],
                },
            )
            whole = time.perf_counter() - start
        first_ms = statistics.median(first) * 1000
        rows.append((length, first_ms, max(first) * 1000 - LATENCY * 1000, whole * 1000))
        print(f"  {rows[-1]}", flush=True)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot([r[0] for r in rows], [r[1] for r in rows], "o-", label="streamed: first token")
    ax.plot([r[0] for r in rows], [r[3] for r in rows], "o-", label="whole answer")
    ax.set_xscale("log")
    ax.set(xlabel="answer length (tokens)", ylabel="ms until the first text")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "06_streaming_ai.png", dpi=90)
    plt.close(fig)
    checks = [
        (
            f"the first token within {EXCESS_TARGET_MS:.0f} ms of the model's"
            f" {LATENCY * 1000:.0f} ms latency at every length (worst run)",
            all(excess < EXCESS_TARGET_MS for _, _, excess, _ in rows),
        ),
        (
            "a whole answer waits for every token",
            all(r[3] >= LATENCY * 1000 + (r[0] - 1) for r in rows),
        ),
    ]
    lines = [
        "## Lesson 06: first token against the whole answer\n",
        f"The fake model: {LATENCY * 1000:.0f} ms before the first token, then {RATE:.0f} tokens/s."
        f" First token: the median of {repeats} streams (`GET /chat`), and the worst excess over"
        " the latency; whole answer: one `POST /v1/chat/completions` without `stream`.\n",
        "| answer tokens | first token ms | worst excess over latency ms | whole answer ms |",
        "|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {n} | {first:.1f} | {excess:.1f} | {whole:.0f} |" for n, first, excess, whole in rows
    ]
    lines += targets_and_plot(checks, "06_streaming_ai.png", "lesson 06")
    return "\n".join(lines)
