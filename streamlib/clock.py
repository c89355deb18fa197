"""A clock as an event stream: one event a tick, each with its time, resumable.

Event n of the clock is due at ``n * interval`` seconds since the epoch: its id is n and
its data ``{"time": <ms>}``. Ids that count time make resuming exact: a client that
reconnects with ``Last-Event-ID: n`` gets event n + 1 next, the ones it missed at once
(up to :data:`REPLAY_LIMIT` of them), then each as it falls due, with a heartbeat comment
in every silence longer than ``heartbeat`` (lesson 04). The WHATWG HTML standard,
"Server-sent events", says what the browser does with ids and ``retry``:
https://html.spec.whatwg.org/multipage/server-sent-events.html
"""

import json
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from typing import NamedTuple

from werkzeug.wrappers import Request

from streamlib.params import float_param, int_param
from streamlib.sse import SSE_HEADERS, event_stream, format_event

REPLAY_LIMIT = 1000  # events: how far back a reconnecting client may resume
MAX_EVENTS = 1_000_000  # the most events one request may ask for
EVENT_ID = re.compile(r"[0-9]{1,18}")  # the clock's ids: ASCII digits, far fewer than 18


def first_event_id(last_event_id: str | None, now: float, interval: float) -> int:
    """The id of the first event to send: the one after ``last_event_id``, or the next due.

    last_event_id: the ``Last-Event-ID`` header, if the client sent one.
    now: the time, seconds since the epoch; interval: seconds between events.

    >>> first_event_id(None, 100.5, 1.0), first_event_id("98", 100.5, 1.0)
    (101, 99)
    >>> first_event_id("not a number", 100.5, 1.0), first_event_id("5000", 100.5, 1.0)
    (101, 101)
    >>> first_event_id("9" * 5000, 100.5, 1.0)  # not one of ours: int() would even refuse it
    101
    """
    due_next = math.ceil(now / interval)
    if last_event_id is None or not EVENT_ID.fullmatch(last_event_id):
        return due_next
    after = int(last_event_id) + 1
    if after > due_next or due_next - after > REPLAY_LIMIT:
        return due_next  # from the future, or too old to replay: start fresh
    return after


def clock_event(n: int, interval: float) -> bytes:
    """Event ``n`` of the clock: id n, and as data the time it is due, ``{"time": <ms>}``.

    >>> clock_event(3, 0.5)
    b'id: 3\\ndata: {"time": 1500}\\n\\n'
    """
    return format_event(json.dumps({"time": round(n * interval * 1000)}), id=str(n))


def clock_events(
    first_id: int,
    count: int | None,
    interval: float,
    heartbeat: float,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[bytes | None]:
    """Yield clock events from ``first_id``, each when due, and None after each idle heartbeat.

    Event n is due at n x interval seconds since the epoch; its id is n and its data
    ``{"time": <ms since the epoch>}``. Events already due (a resumed stream) come at once.

    first_id: the first event's number (see :func:`first_event_id`).
    count: how many events, or None for no end.
    interval: seconds between events; heartbeat: the longest silence, in seconds.
    clock, sleep: the wall clock and how to wait; tests pass fake ones.
    """
    last = None if count is None else first_id + count
    n = first_id
    while last is None or n < last:
        due = n * interval
        while (wait := due - clock()) > 0:
            if wait > heartbeat:
                sleep(heartbeat)
                yield None  # nothing for a heartbeat's length: event_stream sends a comment
            else:
                sleep(wait)
        yield clock_event(n, interval)
        n += 1


class ClockParams(NamedTuple):
    """What a request asks of the clock: how many events (None: no end), the seconds
    between them and between heartbeats, and the reconnection delay in ms."""

    count: int | None
    interval: float
    heartbeat: float
    retry: int


def clock_params(args: Mapping[str, str]) -> ClockParams:
    """The clock's parameters from a request's query ``args``, each checked: a bad one
    raises werkzeug's ``BadRequest``, saying what was wrong."""
    return ClockParams(
        count=int_param(args, "count", -1, 0, MAX_EVENTS) if args.get("count") else None,
        interval=float_param(args, "interval", 1.0, 0.01, 3600.0),
        heartbeat=float_param(args, "heartbeat", 15.0, 0.1, 300.0),
        retry=int_param(args, "retry", 1000, 0, 600_000),
    )


def clock_stream(args: Mapping[str, str], last_event_id: str | None) -> Iterator[bytes]:
    """The SSE clock that a request's query ``args`` and ``Last-Event-ID`` header ask for.

    Every parameter is checked now, before the stream starts, so that a bad one is a 400
    while a status can still be sent. Any framework can serve what this returns: lesson 09
    does it in Flask, Django and Starlette.
    """
    asked = clock_params(args)
    first = first_event_id(last_event_id, time.time(), asked.interval)
    events = clock_events(first, asked.count, asked.interval, asked.heartbeat)
    return event_stream(events, retry=asked.retry)


def serve_clock(environ: dict, start_response: Callable) -> Iterator[bytes]:
    """The clock as a WSGI app: ``GET /events?count=&interval=1&heartbeat=15&retry=1000``
    (lesson 04's route)."""
    body = clock_stream(Request(environ).args, environ.get("HTTP_LAST_EVENT_ID"))
    start_response("200 OK", SSE_HEADERS)
    return body
