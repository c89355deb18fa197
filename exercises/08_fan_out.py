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

import time  # noqa: F401 (Task 3 needs it)
from collections.abc import Iterator
from typing import Any

from redis.exceptions import ConnectionError  # noqa: F401 (Task 3 needs it)


def follow_stream(
    redis: Any,
    stream: str,
    last_id: str | None = None,
    heartbeat_ms: int = 15000,
    retry_delay: float = 0.5,
) -> Iterator[bytes]:
    """Yield an SSE event for each message of ``stream`` after ``last_id``, as they come."""
    raise NotImplementedError("Exercise 08: write follow_stream (see the tasks at the top)")
