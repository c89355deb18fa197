"""Grader for exercise 08: ``python -m pytest exercises/test_08_fan_out.py``.

Tests are named after the tasks in ``exercises/08_fan_out.py``. Each starts a real
redis-server (Debian's ``redis-server`` package) on a free loopback port.
"""

import os
import shutil
import threading
import time

import pytest
from grading import Happened, tutor

from lab import free_port

EXERCISE = "08_fan_out"
# The section each task's hint sends a learner to when no test says more.
TASK_SECTIONS = {
    1: "lesson 08, 'Resuming'",
    2: "lesson 08, 'The fix: a broker every process reads'",
    3: "lesson 08, 'When Redis goes away'",
}
STREAM = "room"


@pytest.fixture
def redis_folder(tmp_path):
    if shutil.which("redis-server") is None:
        message = "redis-server is not installed: apt-get install redis-server"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    return tmp_path / "redis"


def connect(url: str):
    import redis

    return redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)


def event(entry_id: str, data: str) -> bytes:
    return f"id: {entry_id}\ndata: {data}\n\n".encode()


HEARTBEAT = b": heartbeat\n\n"
UNAVAILABLE = b"event: broker\ndata: unavailable\n\n"


def test_task1_sends_each_message_after_last_id_oldest_first(exercise, redis_folder):
    from lab.redis_server import spawn_redis

    with spawn_redis(folder=redis_folder) as server:
        redis = connect(server.url)
        ids = [redis.xadd(STREAM, {"data": f"m{n}"}) for n in range(3)]
        events = exercise.follow_stream(redis, STREAM, last_id=ids[0], heartbeat_ms=200)
        got = [next(events), next(events)]
        events.close()
    expected = [event(ids[1], "m1"), event(ids[2], "m2")]
    assert got == expected, tutor(
        f"follow_stream(redis, 'room', last_id={ids[0]!r}) with m0, m1, m2 in the stream",
        got,
        repr(expected),
        "Task 1 and lesson 08, 'Resuming': XREAD returns the entries after the id you give it,"
        " oldest first; each"
        " becomes 'id: ...\\ndata: ...\\n\\n'.",
    )


def test_task1_without_last_id_only_later_messages_are_sent(exercise, redis_folder):
    from lab.redis_server import spawn_redis

    with spawn_redis(folder=redis_folder) as server:
        redis = connect(server.url)
        redis.xadd(STREAM, {"data": "old"})
        events = exercise.follow_stream(redis, STREAM, heartbeat_ms=200)
        first = next(events)  # nothing new yet: a heartbeat, and the place is pinned
        new_id = redis.xadd(STREAM, {"data": "new"})
        second = next(events)
        events.close()
    assert (first, second) == (HEARTBEAT, event(new_id, "new")), tutor(
        "follow_stream(redis, 'room') with 'old' in the stream, then added 'new' between"
        " two next() calls",
        [first, second],
        repr([HEARTBEAT, event(new_id, "new")]),
        "Task 1 and lesson 08, 'Resuming': '$' means 'after the newest entry *at the time of this"
        " XREAD*': pass it"
        " on every call and a message added between two calls is skipped. Look up the"
        " newest id once (XREVRANGE ... COUNT 1) and carry on from there.",
    )


def test_task2_waits_with_block_and_beats_when_quiet(exercise, redis_folder):
    from lab.redis_server import spawn_redis

    with spawn_redis(folder=redis_folder) as server:
        redis = connect(server.url)
        redis.xadd(STREAM, {"data": "old"})
        before = redis.info("commandstats").get("cmdstat_xread", {}).get("calls", 0)
        events = exercise.follow_stream(redis, STREAM, heartbeat_ms=300)
        started = time.monotonic()
        beats = [next(events) for _ in range(3)]
        elapsed = time.monotonic() - started
        events.close()
        reads = redis.info("commandstats").get("cmdstat_xread", {}).get("calls", 0) - before
    assert beats == [HEARTBEAT] * 3 and elapsed >= 0.8 and reads <= 4, tutor(
        "next() three times on follow_stream(redis, 'room', heartbeat_ms=300) with nothing new",
        Happened(f"{beats!r} after {elapsed:.2f} s, with {reads} XREAD calls"),
        "three heartbeats, about 0.9 s, and one XREAD per heartbeat",
        "Task 2 and lesson 08, 'The fix: a broker every process reads': let Redis do the waiting:"
        " xread(..., block=heartbeat_ms) returns an empty"
        " list after that long with nothing new. A loop that asks again and again burns"
        " CPU on both sides.",
    )


def test_task2_a_message_wakes_it_at_once(exercise, redis_folder):
    from lab.redis_server import spawn_redis

    with spawn_redis(folder=redis_folder) as server:
        redis = connect(server.url)
        events = exercise.follow_stream(redis, STREAM, last_id="0-0", heartbeat_ms=5000)
        added = []
        later = threading.Timer(0.2, lambda: added.append(redis.xadd(STREAM, {"data": "hi"})))
        later.start()
        started = time.monotonic()
        got = next(events)
        elapsed = time.monotonic() - started
        later.join()
        events.close()
    assert got == event(added[0], "hi") and elapsed < 2, tutor(
        "next() on follow_stream(heartbeat_ms=5000) while a message is added 0.2 s later",
        Happened(f"{got!r} after {elapsed:.2f} s"),
        "the message, well before the 5 s heartbeat",
        "Task 2 and lesson 08, 'The fix: a broker every process reads': XREAD BLOCK answers as"
        " soon as an entry arrives, not at the end of the block.",
    )


def test_task3_survives_a_redis_restart_and_resumes_after_the_last_id(exercise, redis_folder):
    from lab.redis_server import spawn_redis

    port = free_port()
    with spawn_redis(port, redis_folder) as server:
        redis = connect(server.url)
        events = exercise.follow_stream(redis, STREAM, heartbeat_ms=200, retry_delay=0.1)
        first = next(events)
        assert first == HEARTBEAT, tutor(
            "follow_stream on an empty stream with heartbeat_ms=200",
            first,
            repr(HEARTBEAT),
            "Task 2 and lesson 08, 'The fix: a broker every process reads': an XREAD that"
            " blocked for heartbeat_ms and found nothing is a heartbeat.",
        )
        first_id = redis.xadd(STREAM, {"data": "before"})
        got = [next(events)]
        server.kill()  # a crash: the stream is in Redis's append-only file
        got.append(next(events))
        waiting = threading.Thread(target=lambda: got.append(next(events)), daemon=True)
        waiting.start()  # while Redis is down, it should retry quietly
        time.sleep(0.5)
    with spawn_redis(port, redis_folder):
        later = [redis.xadd(STREAM, {"data": f"after{n}"}) for n in range(2)]
        waiting.join(timeout=10)
        while len([piece for piece in got if piece.startswith(b"id: ")]) < 3 and len(got) < 12:
            got.append(next(events))
        events.close()
    messages = [piece for piece in got if piece.startswith(b"id: ")]
    expected = [event(first_id, "before"), *(event(i, f"after{n}") for n, i in enumerate(later))]
    assert messages == expected and got.count(UNAVAILABLE) == 1, tutor(
        "follow_stream through a Redis crash and restart, two messages added meanwhile",
        got,
        f"each message once, in order, {expected!r}, and one {UNAVAILABLE!r}",
        "Task 3 and lesson 08, 'When Redis goes away': catch redis.exceptions.ConnectionError, say"
        " so once, sleep retry_delay and"
        " try again; keep the id of the last message you sent, and read after it.",
    )
