"""Lesson 09, beside the course: lesson 04's clock as an ASGI app (Starlette) for uvicorn.

    uvicorn lessons.asgi_clock:app --port 8001

ASGI is WSGI's asynchronous successor: an app is a coroutine that receives the request as
messages and sends the response as messages, and one event loop runs every request of a
process. The stream is an async generator that ``await``s its waits, so a thousand
streams are a thousand suspended generators on one loop: no thread, no greenlet each.

The difference that matters most for streams is how the app learns that its client left.
A WSGI app learns it when a write fails, which after a clean close is the second write,
so a quiet stream outlives its client by up to two heartbeats (lesson 04). An ASGI server
answers the app's waiting ``receive()`` with an ``http.disconnect`` message as soon as the
socket closes (ASGI spec, "Disconnect - receive event"), and Starlette's
``StreamingResponse`` keeps one waiting while it streams: it cancels the generator, whose
``finally`` runs at once, with nothing written. (uvicorn announces ASGI spec 2.3 for HTTP;
with a server that announces 2.4, Starlette stops listening and, like WSGI, learns at a
failed write.) ``/stats`` counts this process's streams, as the course's ``/stats`` does,
so the notebook can time the cleanup against the course's.

The same bytes as lesson 04's ``/events``, and the same parameters, checked the same way;
and, like every server of the course, it answers only to this machine's names (a foreign
``Host`` is DNS rebinding: ``streamlib.origins``).
"""

import asyncio
import time
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from werkzeug.exceptions import Forbidden, HTTPException

from lessons.routes import plain_error
from streamlib.clock import clock_event, clock_params, first_event_id
from streamlib.origins import host_refusal
from streamlib.sse import HEARTBEAT, SSE_HEADERS, format_event

streams = {"open_streams": 0, "streams_closed": 0}  # this process's, for /stats


async def clock_events(
    first_id: int, count: int | None, interval: float, heartbeat: float, retry: int
) -> AsyncIterator[bytes]:
    """Lesson 04's clock as an async generator: the hello comment, then event n when due
    (n x interval seconds since the epoch), and a heartbeat after each quiet spell."""
    streams["open_streams"] += 1
    try:
        yield format_event(comment="connected", retry=retry)
        last = None if count is None else first_id + count
        n = first_id
        while last is None or n < last:
            wait = n * interval - time.time()
            if wait > heartbeat:
                await asyncio.sleep(heartbeat)
                yield HEARTBEAT
                continue
            await asyncio.sleep(max(0.0, wait))
            yield clock_event(n, interval)
            n += 1
    finally:  # however it ends: done, or cancelled when the client's disconnect arrives
        streams["open_streams"] -= 1
        streams["streams_closed"] += 1


def check_host(request: Request) -> None:
    """Refuse (403) a ``Host`` that is not one of this machine's names."""
    host = request.headers.get("host")
    if host_refusal({} if host is None else {"HTTP_HOST": host}):
        raise Forbidden(f"Host {host!r} is not one of this machine's names")


async def plain_text_error(request: Request, error: HTTPException) -> Response:
    """Any HTTP error as the course's one line of text, ``400 Bad Request: count: ...``."""
    text, headers = plain_error(error)
    return PlainTextResponse(text, status_code=error.code or 400, headers=dict(headers))


async def events(request: Request) -> Response:
    """``GET /events?count=&interval=1&heartbeat=15&retry=1000``: lesson 04's clock."""
    check_host(request)
    asked = clock_params(request.query_params)
    last_event_id = request.headers.get("last-event-id")
    first = first_event_id(last_event_id, time.time(), asked.interval)
    body = clock_events(first, asked.count, asked.interval, asked.heartbeat, asked.retry)
    return StreamingResponse(body, headers=dict(SSE_HEADERS))


async def stats(request: Request) -> Response:
    """``GET /stats``: this process's open and closed streams."""
    check_host(request)
    return JSONResponse(streams)


app = Starlette(
    routes=[Route("/events", events), Route("/stats", stats)],
    exception_handlers={HTTPException: plain_text_error},  # werkzeug's, raised by the checks
)
