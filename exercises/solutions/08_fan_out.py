"""Exercise 08: follow a Redis Stream as Server-Sent Events, and lose nothing.

Write ``follow_stream``: a generator of SSE bytes that relays a Redis Stream to one client.
``redis`` is a ``redis.Redis`` client made with ``decode_responses=True``; each entry of the
stream has one field, ``data``. The grader starts a real redis-server for you.

Read first: lesson 08, 'The fix: a broker every process reads', 'Resuming' and 'When Redis
goes away' (the page ``/lessons/8``), and notebook 08, 'Redis crashes mid-broadcast'.

Task 1. Yield one event per message after ``last_id`` (not including it), oldest first:
        ``id: <the entry's id>\\ndata: <its data>\\n\\n``. With ``last_id`` None, start after
        the newest message there is now: only messages added later are sent.
Task 2. Wait for new messages with ``redis.xread(..., block=heartbeat_ms)``, never by
        polling in a loop. When nothing came, yield ``: heartbeat\\n\\n``.
Task 3. Survive the broker. When Redis is unreachable (``redis.exceptions.ConnectionError``),
        yield ``event: broker\\ndata: unavailable\\n\\n`` once, then retry, sleeping
        ``retry_delay`` seconds between tries, until it answers again. Then carry on after
        the last id you sent: every message added meanwhile arrives, none twice.

Grade your work:   python -m pytest exercises/test_08_fan_out.py
"""

import time
from collections.abc import Iterator
from typing import Any

from redis.exceptions import ConnectionError


def follow_stream(
    redis: Any,
    stream: str,
    last_id: str | None = None,
    heartbeat_ms: int = 15000,
    retry_delay: float = 0.5,
) -> Iterator[bytes]:
    """Yield an SSE event for each message of ``stream`` after ``last_id``, as they come."""
    broker_down = False
    while True:
        try:
            if last_id is None:  # Task 1: "$" would be re-read on every call: pin it down
                newest = redis.xrevrange(stream, count=1)
                last_id = newest[0][0] if newest else "0-0"
            replies = redis.xread({stream: last_id}, block=heartbeat_ms, count=100)  # Task 2
        except ConnectionError:  # Task 3
            if not broker_down:
                broker_down = True
                yield b"event: broker\ndata: unavailable\n\n"
            time.sleep(retry_delay)
            continue
        broker_down = False
        if not replies:
            yield b": heartbeat\n\n"
            continue
        for _, entries in replies:
            for entry_id, fields in entries:
                yield f"id: {entry_id}\ndata: {fields['data']}\n\n".encode()
                last_id = entry_id  # Task 3: resume after the last one sent
