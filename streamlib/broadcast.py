"""Broadcast messages to every client: within one process, and across processes with Redis.

A broadcast (a chat room, a live log) sends every message to every client. Within one
process that takes a log of recent messages and a way to wake every waiting client at once:
:class:`Broadcast`.
But a gunicorn server runs several worker processes, and a message posted to one worker
never reaches the clients of another. So the messages go through a broker that every
process reads: :func:`publish` appends each to a Redis Stream, and :func:`relay`, one
thread per process, reads the stream after the last message it has and adds what it reads
to that process's :class:`Broadcast`.

Why a stream and not Redis pub/sub? Pub/sub hands a message to whoever is subscribed at
that instant and forgets it: a subscriber that is reconnecting, after a network blip or a
Redis restart, misses whatever was published meanwhile. A stream is a log, so the relay
asks for "everything after the last id I have" and a reconnect loses nothing. A client's
``Last-Event-ID`` is a position in that same log. Redis streams:
https://redis.io/docs/latest/develop/data-types/streams/
"""

import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from streamlib.fanout import Audience
from streamlib.sse import HEARTBEAT, format_event
from streamlib.ticker import Ticker

STREAM = "streamlib:broadcast"
AUDIENCE_HEARTBEAT = 15.0  # seconds: the heartbeat of every client in a room's audience


@dataclass(frozen=True)
class Message:
    """One broadcast message: its id (a position in the log), its data, its SSE event type.

    A message with the event type ``broker`` and no id tells clients that the broker went
    away (data ``unavailable``) or came back (``available``).
    """

    id: str
    data: str
    event: str = "message"


# Recent messages only: every follower woken by a message asks for it within a pulse.
# (4,096 here held a gevent worker 125 MiB more for every 1,000 messages of 10,000
# characters, for good: tests/test_soak.py, lesson 07.)
@lru_cache(maxsize=64)
def encode(message: Message) -> bytes:
    """The SSE event for ``message``, encoded once and shared by every client that sends it.

    A broker message carries no id: it is not a place to resume from.
    """
    if message.event == "message":
        return format_event(message.data, id=message.id)
    return format_event(message.data, event=message.event)


class Batch(NamedTuple):
    """The messages a client gets in one write, and their SSE events, joined.

    Every client woken by the same messages gets the same batch, so its bytes are encoded
    and joined once for all of them, not once per client.
    """

    messages: list[Message]
    encoded: bytes


NOTHING_NEW = Batch([], b"")


class Broadcast:
    """The recent messages of one process, and a way for each client to wait for the next.

    keep: how many recent messages to hold, for clients that resume after a reconnect.
    keep_characters: and at most this many characters of them: what bounds the memory a
        room holds, whatever the messages' sizes (1,000 of 10,000 characters each would
        be 10 to 40 MB).
    pulse: seconds between the wake-ups of every follower, with or without a message,
        by which a follower counts its way to its heartbeat.

    >>> room = Broadcast()
    >>> room.add(Message("1", "hello"))
    >>> room.messages_after("0") is None, room.messages_after("1")
    (True, [])
    """

    def __init__(
        self, keep: int = 1000, keep_characters: int = 1_000_000, pulse: float = 1.0
    ) -> None:
        self._recent: deque[Message] = deque()
        self._keep, self._keep_characters = keep, keep_characters
        self._characters = 0  # in the messages held
        self._lock = threading.Lock()
        self._count = 0  # messages ever added here: a client's place is a count
        # Set by the next add or pulse, which puts a fresh one in its place. One event for every
        # waiter, not a Condition: under gevent, waking 1,000 waiters took 7 us each with
        # an Event, 19 us with Condition.notify_all (bench/results, lesson 07's "where
        # the microseconds go"; streamlib.ticker does the same for a clock).
        self._next_add = threading.Event()
        # A follower waits with no timeout of its own: under gevent a timeout is a timer
        # started and stopped per follower per wait (a wait with a timeout took 12.8 us a
        # client, against 6.8 without: bench/results, lesson 07's "where the microseconds
        # go"). One pulse wakes every
        # follower instead, while any follows, and each counts its way to its heartbeat.
        self._pulse = Ticker(pulse, on_tick=lambda ticks: self._on_pulse())
        self._batches_made: dict[tuple[int, int], Batch] = {}  # (from, to) count -> batch
        # Under streamlib.fanout_worker, the followers that caught up are this audience's
        # members: each add writes its messages to all of them in one loop (lesson 07).
        self.audience = Audience()
        self._audience_heard = time.monotonic()  # when the audience was last sent anything

    def add(self, message: Message) -> None:
        """Add ``message`` and wake every client waiting in :meth:`follow`."""
        self.add_all([message])

    def add_all(self, messages: list[Message]) -> None:
        """Add ``messages``, wake every follower once, and send them to the audience.

        The audience gets them joined, in one write per member: a relay that hands over
        everything it read at once sends fewer, larger writes the busier the process is.
        """
        if not messages:
            return
        with self._lock:
            self._count += len(messages)
            self._recent.extend(messages)
            self._characters += sum(len(message.data) for message in messages)
            while len(self._recent) > 1 and (  # the newest message stays, however long
                len(self._recent) > self._keep or self._characters > self._keep_characters
            ):
                self._characters -= len(self._recent.popleft().data)
        self._wake_followers()
        if self.audience.members:
            self.audience.send(b"".join(encode(message) for message in messages))
            self._audience_heard = time.monotonic()

    def _on_pulse(self) -> None:
        self._wake_followers()
        if self.audience.members and time.monotonic() - self._audience_heard >= AUDIENCE_HEARTBEAT:
            self.audience.send(HEARTBEAT)
            self._audience_heard = time.monotonic()

    def _wake_followers(self) -> None:
        with self._lock:
            woken, self._next_add = self._next_add, threading.Event()
        woken.set()

    def messages_after(self, message_id: str) -> list[Message] | None:
        """The messages held after the one with ``message_id``, or None if it is not held
        (too old, or never seen in this process): then ask the broker."""
        with self._lock:
            ids = [message.id for message in self._recent]
            if message_id not in ids:
                return None
            return list(self._recent)[ids.index(message_id) + 1 :]

    def follow(
        self, heartbeat: float = 15.0, offer_audience: bool = False
    ) -> Iterator[Batch | Audience]:
        """Return batches of the messages added from this call on, as they come.

        heartbeat: seconds to wait before yielding an empty batch, so that the caller can
            send a heartbeat (and learn whether its client is still there).
        offer_audience: once caught up, with nothing waiting, yield :attr:`audience` once:
            a fan-out server takes the client over there (``streamlib.fanout``; its
            members beat every :data:`AUDIENCE_HEARTBEAT` s). Iterated further, it goes on.

        The place is taken now, not when iteration starts (a generator's body runs only at
        its first ``next``): a client that catches up on missed messages first and follows
        afterwards misses nothing that arrives in between. A batch holds every message
        added since the last one, so a client that was slow to be woken gets several in
        one write instead of falling behind. A client further behind than the messages held
        (``keep``, ``keep_characters``) loses the oldest.
        Clients woken together get the very same :class:`Batch`, encoded once.
        """
        with self._lock:
            seen = self._count
        return self._batches(seen, heartbeat, offer_audience)

    def _batches(self, seen: int, heartbeat: float, offer: bool) -> Iterator[Batch | Audience]:
        # The pulse wakes a waiter at least this often; a shorter heartbeat needs a timeout.
        timeout = heartbeat if heartbeat < self._pulse.interval else None
        last_yield = time.monotonic()
        with self._pulse.listening():
            while True:
                with self._lock:  # the count and the event to wait on, taken together
                    count, next_add = self._count, self._next_add
                if offer and count == seen:  # caught up: from here on, the audience's
                    offer = False
                    yield self.audience
                    continue  # still iterated: carry on here
                timed_out = count == seen and not next_add.wait(timeout)
                with self._lock:
                    batch, seen = self._batch_after(seen), self._count
                now = time.monotonic()
                if batch.messages or timed_out or now - last_yield >= heartbeat:
                    last_yield = now
                    yield batch

    def _batch_after(self, seen: int) -> Batch:
        """The batch of messages after count ``seen`` (hold the lock): made by the first
        client to ask, and kept for the others (the last few ranges only)."""
        if seen == self._count:
            return NOTHING_NEW
        batch = self._batches_made.get((seen, self._count))
        if batch is None:
            new = min(self._count - seen, len(self._recent))
            messages = [self._recent[-n] for n in range(new, 0, -1)]  # from the right end
            batch = Batch(messages, b"".join(encode(message) for message in messages))
            if len(self._batches_made) >= 16:  # each may hold every message held
                self._batches_made.clear()
            self._batches_made[seen, self._count] = batch
        return batch


def publish(redis: Any, data: str, stream: str = STREAM, keep: int = 10_000) -> str:
    """Append ``data`` to the Redis stream and return its id (``1732512345678-0``).

    redis: a ``redis.Redis`` client made with ``decode_responses=True``.
    keep: about how many messages the stream keeps (``XADD MAXLEN ~``: Redis trims only
        whole blocks, so a few tens more may stay, says its ``XTRIM`` documentation); older
        ones are gone even for a resuming client.

    Once this returns, the message is acknowledged: it is in the log every process reads.
    """
    return redis.xadd(stream, {"data": data}, maxlen=keep, approximate=True)


def missed(redis: Any, after_id: str, stream: str = STREAM, limit: int = 1000) -> list[Message]:
    """The messages of the stream after ``after_id``, oldest first, at most ``limit``.

    ``XRANGE`` with ``(`` before the start id makes the range exclude it (Redis 6.2 and
    later: redis.io/docs, "XRANGE", "Exclusive ranges"; Debian 12 ships 7.0).
    """
    entries = redis.xrange(stream, min=f"({after_id}", count=limit)
    return [Message(message_id, fields["data"]) for message_id, fields in entries]


def newest_id(redis: Any, stream: str = STREAM) -> str:
    """The id of the stream's newest message, or ``"0-0"`` (before any) if it has none.

    ``XREVRANGE ... COUNT 1``: read it *before* answering a client, to pin down "from
    now on". (``$`` in XREAD means "after the newest message at the time of this call",
    so reading with ``$`` a moment later would skip what came in between.)
    """
    newest = redis.xrevrange(stream, count=1)
    return newest[0][0] if newest else "0-0"


def is_later(message_id: str, than: str) -> bool:
    """Whether stream id ``message_id`` comes after ``than`` (``ms-seq``, compared as numbers).

    >>> is_later("1700000000000-1", "1700000000000-0"), is_later("99-0", "100-0")
    (True, False)
    """
    return tuple(map(int, message_id.split("-"))) > tuple(map(int, than.split("-")))


def relay(
    redis: Any,
    broadcast: Broadcast,
    stop: threading.Event,
    stream: str = STREAM,
    block_ms: int = 1000,
    after: str | None = None,
) -> None:
    """Copy the stream's new messages into ``broadcast`` until ``stop`` is set.

    after: the id to start after, such as :func:`newest_id` read before the thread was
        started; None starts after the newest message when the thread first runs, which
        may be a moment late (a thread starts when the scheduler gets to it).

    Run it in one thread per process. It starts after ``after``, then asks
    Redis for what comes after the last id it has (``XREAD BLOCK``: Redis answers as soon
    as there is something, or after ``block_ms`` with nothing). When Redis is away, it
    tells the clients (a ``broker`` message), waits 0.1 s, 0.2 s, 0.4 s... up to 2 s
    between tries, and carries on after the last id it had: nothing in between is lost.
    """
    from redis.exceptions import ConnectionError, TimeoutError  # only lesson 08 needs redis

    last = after
    delay, broker_up = 0.1, True
    while not stop.is_set():
        try:
            if last is None:
                last = newest_id(redis, stream)
            replies = redis.xread({stream: last}, block=block_ms, count=1000)
        except (ConnectionError, TimeoutError):
            if broker_up:
                broadcast.add(Message("", "unavailable", event="broker"))
                broker_up = False
            stop.wait(delay)
            delay = min(delay * 2, 2.0)
            continue
        if not broker_up:
            broadcast.add(Message("", "available", event="broker"))
            broker_up, delay = True, 0.1
        for _, entries in replies:  # all that was read, added at once
            broadcast.add_all(
                [Message(message_id, fields["data"]) for message_id, fields in entries]
            )
            if entries:
                last = entries[-1][0]
