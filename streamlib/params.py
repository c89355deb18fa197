"""Read numbers from a query string, with bounds, or answer 400 saying why.

A streaming endpoint must check its parameters *before* it starts the stream: once the
status line has gone out, a bad value can no longer become a clean 400. So every course
endpoint reads its parameters first, then calls ``start_response``, then returns its
generator.
"""

import math
import re
from collections.abc import Callable, Mapping
from typing import TypeVar

from werkzeug.exceptions import BadRequest

Number = TypeVar("Number", int, float)

# Plain ASCII numbers only: Python's int() and float() also take "1_000", " 4 ", "٣" and
# "infinity", which no client means to send.
INTEGER = re.compile(r"[+-]?[0-9]+")
NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def int_param(args: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """Return the integer query parameter ``name``, or ``default`` when it is absent.

    args: the parsed query string (``werkzeug.Request.args`` or any mapping of str).
    name: the parameter's name, used in the error message.
    default: the value when the parameter is absent.
    low, high: the accepted range, both ends included.

    Raises ``werkzeug.exceptions.BadRequest`` (a 400) whose one-line description says
    which parameter, what it accepts and what came:

    >>> int_param({"n": "abc"}, "n", 0, 0, 9)
    Traceback (most recent call last):
    ...
    werkzeug.exceptions.BadRequest: 400 Bad Request: n: expected an integer from 0 to 9, got 'abc'
    """
    return _bounded(args, name, default, low, high, INTEGER, int, "an integer")


def float_param(
    args: Mapping[str, str], name: str, default: float, low: float, high: float
) -> float:
    """Return the number query parameter ``name``, or ``default`` when it is absent.

    Same contract as :func:`int_param`; ``nan`` and ``inf`` are refused, so that a
    value like ``delay=1e999`` is a 400 and not a stream that never ends.

    >>> float_param({"delay": "0.25"}, "delay", 0.0, 0.0, 10.0)
    0.25
    """
    return _bounded(args, name, default, low, high, NUMBER, float, "a number")


MAX_STREAM_SECONDS = 600.0  # no demo stream may tie up a server thread for longer


def check_duration(name: str, count: int, what: str, gap: float, first_after: float = 0.0) -> None:
    """Refuse, with a 400 naming ``name``, a stream that would run longer than
    ``MAX_STREAM_SECONDS``: ``count`` items ``gap`` seconds apart, the first one
    ``first_after`` seconds after the request.

    This is the one rule for every finite stream of the course. Each parameter may be in
    range and their product still absurd: 100,000 ticks one second apart. A stream holds
    a server thread (a sync worker, even) for all that time. The 400 reads:
    ``interval: 10000 ticks 1 s apart would take 9999 s; keep it under 600 s``. Endless
    streams (the SSE clock without a count, the broadcast room) are endless on purpose and
    say so where they are listed; their cost is one heartbeat now and then.

    >>> check_duration("interval", 10, "ticks", 1.0)  # 9 s: fine
    >>> check_duration("rate", 600, "tokens", 1.0, first_after=10.0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    werkzeug.exceptions.BadRequest: 400 Bad Request: rate: 600 tokens 1 s apart after 10 s ...
    """
    total = first_after + max(count - 1, 0) * gap
    if total > MAX_STREAM_SECONDS:
        after = f" after {first_after:g} s" if first_after else ""
        raise BadRequest(
            f"{name}: {count} {what} {gap:g} s apart{after} would take {total:.0f} s;"
            f" keep it under {MAX_STREAM_SECONDS:.0f} s"
        )


def _bounded(
    args: Mapping[str, str],
    name: str,
    default: Number,
    low: Number,
    high: Number,
    pattern: re.Pattern[str],
    convert: Callable[[str], Number],
    kind: str,
) -> Number:
    raw = args.get(name)
    if raw is None:
        return default
    if pattern.fullmatch(raw):
        try:
            value = convert(raw)
        except ValueError:  # over CPython's 4,300-digit limit for int(): far out of range
            value = math.inf
        if low <= value <= high:  # False for nan; inf is out of any range
            return value
    shown = raw if len(raw) <= 40 else raw[:40] + "..."
    span = f"{_plain(low)} to {_plain(high)}"
    raise BadRequest(f"{name}: expected {kind} from {span}, got {shown!r}")


def _plain(bound: float) -> str:
    """A bound as a person writes it: 1073741824, not 1.07374e+09; 0.5, not 0.500000."""
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"
