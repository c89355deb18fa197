"""Lesson 08: a broadcast across processes. Lost in-process across two workers; through a
Redis Stream, none lost across workers, reconnects and a Redis restart.

The live tests start real gunicorn servers and a real redis-server on free loopback ports.
"""

import json
import threading
import time

import pytest
import requests
from real_programs import need

from lab import free_port
from lab.browser import wait_until
from lessons import load_lesson, spawn_course
from streamlib import call_app
from streamlib.broadcast import (
    AUDIENCE_HEARTBEAT,
    Broadcast,
    Message,
    encode,
    is_later,
    publish,
    relay,
)
from streamlib.sse import HEARTBEAT

fan_out = load_lesson("08_fan_out")
Listener, listeners_on_both_workers = fan_out.Listener, fan_out.listeners_on_both_workers


# -- the in-process broadcast ------------------------------------------------------------


def test_follow_yields_what_is_added_after_it_was_called_in_batches():
    room = Broadcast()
    room.add(Message("1", "before"))
    live = room.follow(heartbeat=5)  # its place is taken here, not at the first next()
    room.add(Message("2", "a"))
    room.add(Message("3", "b"))
    batch = next(live)
    assert [m.id for m in batch.messages] == ["2", "3"]
    assert batch.encoded == b"id: 2\ndata: a\n\nid: 3\ndata: b\n\n"
    room.add(Message("4", "c"))
    assert [m.id for m in next(live).messages] == ["4"]


def test_clients_woken_together_share_one_batch_encoded_once():
    room = Broadcast()
    first, second = room.follow(heartbeat=5), room.follow(heartbeat=5)
    room.add(Message("1", "a"))
    room.add(Message("2", "b"))
    assert next(first) is next(second)


def test_follow_yields_an_empty_batch_after_a_quiet_heartbeat():
    room = Broadcast()
    live = room.follow(heartbeat=0.05)
    started = time.monotonic()
    assert next(live).messages == []
    assert time.monotonic() - started >= 0.04


def test_a_heartbeat_longer_than_the_pulse_is_counted_from_pulses_not_a_timer():
    room = Broadcast(pulse=0.05)
    live = room.follow(heartbeat=0.3)  # woken by some five pulses, yields after the sixth
    before = set(threading.enumerate())
    started = time.monotonic()
    assert next(live).messages == []
    [pulse] = [thread for thread in threading.enumerate() if thread not in before]
    assert 0.3 <= time.monotonic() - started < 0.6
    room.add(Message("1", "a"))  # a message still comes at once, between pulses
    started = time.monotonic()
    assert [m.id for m in next(live).messages] == ["1"]
    assert time.monotonic() - started < 0.05
    live.close()  # its pulse stops with its last follower
    pulse.join(1.0)
    assert not pulse.is_alive()


def test_a_client_more_than_keep_behind_gets_the_newest_keep():
    room = Broadcast(keep=3)
    live = room.follow(heartbeat=5)
    for n in range(5):
        room.add(Message(str(n), "x"))
    assert [m.id for m in next(live).messages] == ["2", "3", "4"]


def test_a_room_holds_at_most_keep_characters_of_messages_however_long():
    """Issue 29, item 5: 1,000 messages of 10,000 characters were held whatever their size
    (with their encodings: 125 MiB more in a worker for every 1,000)."""
    room = Broadcast(keep=1000, keep_characters=25)
    live = room.follow(heartbeat=5)
    for n in range(5):
        room.add(Message(str(n), "x" * 10))
    assert [m.id for m in next(live).messages] == ["3", "4"]  # 20 characters: a third won't fit
    assert room.messages_after("1") is None and room.messages_after("3") == [Message("4", "x" * 10)]


def test_a_message_longer_than_the_room_is_still_delivered():
    room = Broadcast(keep_characters=5)
    live = room.follow(heartbeat=5)
    room.add(Message("1", "x" * 10))
    assert [m.id for m in next(live).messages] == ["1"]  # it was dropped as it came


def test_messages_after_an_id_held_or_none():
    room = Broadcast()
    for n in range(1, 4):
        room.add(Message(str(n), "x"))
    assert [m.id for m in room.messages_after("1")] == ["2", "3"]
    assert room.messages_after("3") == []
    assert room.messages_after("9") is None


def test_stream_ids_compare_as_numbers_not_text():
    assert is_later("100-0", "99-0") and is_later("5-10", "5-9")
    assert not is_later("5-1", "5-1") and not is_later("99-5", "100-0")


# -- the routes, in-process, through wsgiref.validate ------------------------------------


def post(app, body: bytes):
    return call_app(app, "/broadcast", "POST", {"Content-Type": "application/json"}, body)


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[1, 2]", b'{"text": ""}', b'{"text": 5}', b'{"words": "hi"}'],
    ids=["empty", "not-json", "a-list", "empty-text", "a-number", "no-text"],
)
def test_a_malformed_post_gets_a_one_line_400(course_app, body):
    response = post(course_app, body)
    assert response.status_code == 400
    answer = response.read()
    assert answer.startswith(b"400 Bad Request: body: expected") and answer.count(b"\n") == 1


def test_a_post_too_large_gets_a_413(course_app):
    body = json.dumps({"text": "x" * (fan_out.MAX_BODY + 1)}).encode()
    response = post(course_app, body)
    assert response.status_code == 413
    response.read()


def test_a_post_reaches_a_follower_in_the_same_process(course_app):
    follower = call_app(course_app, "/broadcast?heartbeat=5")
    assert follower.next_piece().startswith(b": connected to process")
    created = post(course_app, b'{"text": "hello"}')
    assert created.status_code == 201
    message_id = json.loads(created.read())["id"]
    piece = follower.next_piece()
    follower.body.close()
    assert piece.startswith(f"id: {message_id}\n".encode()) and b'"text": "hello"' in piece


@pytest.mark.parametrize("last_id", ["abc", "-1", "99999999999999999999999-0", "5\x00"])
def test_a_bad_last_event_id_starts_fresh_never_fails(course_app, last_id):
    follower = call_app(course_app, "/broadcast", headers={"Last-Event-ID": last_id})
    assert follower.status_code == 200
    assert follower.next_piece().startswith(b": connected")
    follower.body.close()


def test_posts_are_not_counted_as_streams(course_app, stats):
    post(course_app, b'{"text": "hello"}').read()
    assert "/broadcast" not in stats.snapshot()["routes"]


# -- live: two gunicorn workers, with and without Redis ----------------------------------


def post_live(url: str, text: str) -> requests.Response:
    return requests.post(url + "/broadcast", json={"text": text}, timeout=10)


def two_workers(*flags: str):
    # gthread: a gevent worker accepts greedily, and one may take every client
    return spawn_course(
        "--server", "gunicorn", "--worker-class", "gthread", "--workers", "2", *flags
    )


def wait_for(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.mark.live
def test_in_process_two_workers_lose_messages():
    texts = [f"m{n}" for n in range(20)]
    with two_workers() as server:
        clients = listeners_on_both_workers(server.url)
        for text in texts:
            assert post_live(server.url, text).status_code == 201
        time.sleep(1.0)
        for client in clients:
            client.close()
    received = [len(c.texts) for c in clients]
    lost = len(texts) * len(clients) - sum(received)
    assert lost > 0, received
    assert all(set(c.texts) <= set(texts) for c in clients)


@pytest.mark.live
def test_through_redis_every_client_of_every_worker_gets_every_message(redis_url):
    texts = [f"m{n}" for n in range(20)]
    with two_workers("--redis", redis_url) as server:
        clients = listeners_on_both_workers(server.url)
        for text in texts:
            assert post_live(server.url, text).status_code == 201
        assert wait_for(lambda: all(len(c.texts) == len(texts) for c in clients))
        for client in clients:
            client.close()
    assert all(c.texts == texts for c in clients), [len(c.texts) for c in clients]


@pytest.mark.live
def test_a_resuming_client_gets_exactly_what_it_missed_from_either_worker(redis_url):
    with two_workers("--redis", redis_url) as server:
        first = Listener(server.url)
        assert first.connected.wait(5)
        posted = [json.loads(post_live(server.url, f"a{n}").text)["id"] for n in range(3)]
        assert wait_for(lambda: len(first.ids) == 3)
        first.close()
        pids = {first.pid}
        # Reconnect until both workers have served one (the kernel may hand several in a row
        # to the same worker), at most 12 times, a tenth of a second apart.
        for round_ in range(12):
            if len(pids) == 2:
                break
            time.sleep(0.1)
            missed = [
                json.loads(post_live(server.url, f"r{round_}-{n}").text)["id"] for n in range(3)
            ]
            resumed = Listener(server.url, last_id=posted[-1])
            assert resumed.connected.wait(5)
            assert wait_for(lambda r=resumed: len(r.ids) >= 3)
            resumed.close()
            assert resumed.ids == missed, (round_, resumed.pid)
            pids.add(resumed.pid)
            posted += missed
    assert len(pids) == 2, "the reconnections all reached one worker"


@pytest.mark.live
def test_a_redis_restart_loses_no_acknowledged_message(tmp_path):
    need("redis-server", "redis-server")
    from lab.redis_server import spawn_redis

    port, folder = free_port(), tmp_path / "redis"
    url = f"redis://127.0.0.1:{port}"
    acknowledged, refused = [], []
    stop = threading.Event()
    with two_workers("--redis", url) as server:

        def publisher() -> None:
            n = 0
            while not stop.is_set():
                response = post_live(server.url, f"p{n}")
                (acknowledged if response.status_code == 201 else refused).append(f"p{n}")
                assert response.status_code in (201, 503), response.text
                n += 1
                time.sleep(0.03)

        with spawn_redis(port, folder) as redis_server:
            clients = listeners_on_both_workers(server.url)
            sender = threading.Thread(target=publisher, daemon=True)
            sender.start()
            time.sleep(1.0)
            redis_server.kill()  # SIGKILL: a crash, no chance to save anything
            time.sleep(1.0)
        with spawn_redis(port, folder):
            time.sleep(1.5)
            stop.set()
            sender.join(timeout=10)
            assert wait_for(lambda: all(set(acknowledged) <= set(c.texts) for c in clients))
        for client in clients:
            client.close()
    assert refused, "the publisher never saw Redis down"
    for client in clients:
        assert set(acknowledged) <= set(client.texts), set(acknowledged) - set(client.texts)
        assert client.broker[:2] == ["unavailable", "available"]


@pytest.mark.live
def test_pubsub_forgets_what_a_reconnecting_subscriber_missed_a_stream_relay_does_not(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    subscriber = client.pubsub(ignore_subscribe_messages=True)
    subscriber.subscribe("room")
    room, stop = Broadcast(), threading.Event()
    threading.Thread(target=relay, args=(client, room, stop), daemon=True).start()
    live = room.follow(heartbeat=0.2)
    time.sleep(0.3)  # the relay has found the stream's end
    client.client_kill_filter(_type="pubsub")  # both lose their connections...
    client.client_kill_filter(_type="normal", skipme=True)
    for n in range(5):  # ...and messages go out while they are away
        client.publish("room", f"m{n}")
        publish(client, f"m{n}")
    subscriber.close()  # its connection was killed: a subscriber connects and subscribes anew
    subscriber = client.pubsub(ignore_subscribe_messages=True)
    subscriber.subscribe("room")
    heard = [subscriber.get_message(timeout=0.2) for _ in range(5)]
    relayed = []
    deadline = time.monotonic() + 5
    while len(relayed) < 5 and time.monotonic() < deadline:
        relayed += [m.data for m in next(live).messages if m.event == "message"]
    stop.set()
    assert [m for m in heard if m] == [], "pub/sub kept nothing for the absent subscriber"
    assert relayed == [f"m{n}" for n in range(5)], "the stream relay resumed after its last id"


@pytest.mark.live
def test_a_post_while_redis_is_down_is_refused_with_a_503():
    port = free_port()
    with spawn_course("--redis", f"redis://127.0.0.1:{port}") as server:
        response = post_live(server.url, "hello")
    assert response.status_code == 503
    assert "the message was not sent" in response.text and response.text.count("\n") == 1


@pytest.mark.browser
def test_two_chromium_pages_each_see_what_both_send_through_redis(redis_url):
    from real_programs import chromium_page

    def send(page, text: str) -> None:
        page.fill("#text", text)
        page.click("button")
        wait_until(page, "document.getElementById('status').textContent === 'sent'")
        page.evaluate("document.getElementById('status').textContent = ''")

    with two_workers("--redis", redis_url) as server, chromium_page() as first:
        second = first.context.browser.new_page()
        for page in (first, second):
            page.goto(server.url + "/demo/broadcast")
            wait_until(page, "document.getElementById('stream').textContent === 'open'")
            assert page.text_content("#broker").startswith("Redis")
        for n in range(3):
            send(first, f"from first {n}")
            send(second, f"from second {n}")
        shown = []
        for page in (first, second):
            wait_until(page, "document.querySelectorAll('li[data-streamed]').length >= 6")
            shown.append(
                page.eval_on_selector_all("li[data-streamed]", "l => l.map(e => e.textContent)")
            )
    expected = [f"from {who} {n}" for n in range(3) for who in ("first", "second")]
    assert shown == [expected, expected]


def test_a_client_ahead_of_its_workers_relay_gets_nothing_twice(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    ids = [publish(client, f"m{n}") for n in range(3)]
    room = Broadcast()  # this worker's relay has not caught up with the stream yet
    events = fan_out.room_events(room, client, last_event_id=ids[1], heartbeat=0.2)
    assert next(events).startswith(f"id: {ids[2]}\n".encode())  # the one it missed
    for n, message_id in enumerate(ids):  # the relay catches up, then a new one comes
        room.add(Message(message_id, f"m{n}"))
    ms, seq = ids[2].split("-")
    room.add(Message(f"{ms}-{int(seq) + 1}", "new"))
    assert next(events) == f"id: {ms}-{int(seq) + 1}\ndata: new\n\n".encode()


def test_a_last_event_id_from_the_future_starts_fresh(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    publish(client, "old")
    room = Broadcast()
    events = fan_out.room_events(room, client, last_event_id="99999999999999-0", heartbeat=5)
    room.add(Message("1700000000000-0", "next"))
    assert next(events) == b"id: 1700000000000-0\ndata: next\n\n"


def test_the_relay_starts_after_the_id_it_is_given_not_when_its_thread_first_runs(redis_url):
    import redis

    from streamlib.broadcast import newest_id

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    publish(client, "before")
    room, stop = Broadcast(), threading.Event()
    after = newest_id(client)  # read while the request is served, before the thread starts
    live = room.follow(heartbeat=0.2)
    publish(client, "early")  # before the relay thread has run at all
    threading.Thread(
        target=relay, args=(client, room, stop), kwargs={"after": after}, daemon=True
    ).start()
    relayed: list[str] = []
    deadline = time.monotonic() + 5
    while len(relayed) < 1 and time.monotonic() < deadline:
        relayed += [m.data for m in next(live).messages if m.event == "message"]
    stop.set()
    assert relayed == ["early"]


@pytest.mark.live
def test_two_separate_servers_share_one_room_through_redis(redis_url):
    """Two gunicorn servers, each with its own arbiter and port (two machines, in all but
    name): a message posted to one reaches the clients of the other."""
    with two_workers("--redis", redis_url) as first, two_workers("--redis", redis_url) as second:
        here, there = Listener(first.url), Listener(second.url)
        assert here.connected.wait(5) and there.connected.wait(5)
        for n in range(3):
            assert post_live(first.url if n % 2 else second.url, f"m{n}").status_code == 201
        assert wait_for(lambda: len(here.texts) == 3 and len(there.texts) == 3)
        here.close()
        there.close()
    assert here.texts == there.texts == ["m0", "m1", "m2"]


@pytest.mark.live
@pytest.mark.parametrize(
    "last_id", ["0-99999999999999999999", "9" * 5000, "1-2-3"], ids=["over-2^64", "long", "three"]
)
def test_a_last_event_id_redis_would_reject_starts_fresh(redis_url, last_id):
    """Redis refuses stream ids past 2^64 - 1 (once a 500 here); such an id starts fresh."""
    headers = {"Last-Event-ID": last_id}
    with (
        spawn_course("--redis", redis_url) as server,
        requests.get(server.url + "/broadcast", headers=headers, stream=True, timeout=10) as got,
    ):
        first = next(got.iter_content(chunk_size=None))
    assert got.status_code == 200 and first.startswith(b": connected")


# -- the audience: a fan-out server's fast path (streamlib.fanout, lesson 07) ----------------


def test_an_audience_member_gets_each_relayed_read_in_one_write_and_a_quiet_heartbeat():
    room = Broadcast()
    writes: list[bytes] = []
    room.audience.members.add(writes.append)
    room.add_all([Message("1-0", "a"), Message("2-0", "b")])
    assert writes == [encode(Message("1-0", "a")) + encode(Message("2-0", "b"))]
    room._on_pulse()  # just sent: no heartbeat yet
    room._audience_heard -= AUDIENCE_HEARTBEAT
    room._on_pulse()
    assert writes[1:] == [HEARTBEAT]


def test_a_follower_is_offered_the_audience_once_caught_up_and_goes_on_if_iterated():
    room = Broadcast()
    live = room.follow(heartbeat=5, offer_audience=True)
    room.add(Message("1-0", "while connecting"))
    assert [m.id for m in next(live).messages] == ["1-0"]  # what came first, first
    assert next(live) is room.audience  # then, with nothing waiting, the marker
    room.add(Message("2-0", "later"))
    assert [m.id for m in next(live).messages] == ["2-0"]  # an ordinary server goes on
