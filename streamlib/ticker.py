"""One timer for every stream: a ticker that wakes all the streams waiting on it at once.

Lesson 04's clock gives every stream its own ``sleep`` until the next event is due. With
thousands of streams that is thousands of timers, each firing on its own, each event
formatted once per stream. A :class:`Ticker` keeps one timer, in one thread, for every
stream of a process; at each tick it wakes them all with one ``threading.Event`` (under
gunicorn's gevent worker a thread is a greenlet and that event is gevent's, so a tick
is one timer and one wake-up call for the whole worker). The thread runs only while some
stream listens, and a stream listens inside ``with ticker.listening():``, so a stream
that ends, however it ends, stops counting.

    >>> ticker = Ticker(interval=0.01)
    >>> with ticker.listening():
    ...     first = ticker.latest()
    ...     ticker.wait_after(first, timeout=1.0)
    True
"""

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Ticker:
    """Tick number n when n x ``interval`` seconds since the epoch have passed.

    interval: seconds between ticks. Tick numbers are those of lesson 04's clock, so
    tick n is when event n is due.
    on_tick: called in the ticker's thread after each tick's waiters are woken, with the
        numbers of the ticks that came (one, or several after a late wake-up), for whoever
        keeps waiters of their own (lesson 08's broadcast wakes its followers; lesson 07's
        clock sends each tick's event to an audience, ``streamlib.fanout``).
    """

    def __init__(self, interval: float, on_tick: Callable[[range], None] | None = None) -> None:
        self.interval = interval
        self.on_tick = on_tick
        self._lock = threading.Lock()
        self._listeners = 0
        self._running = False  # whether the thread runs (it may outlive the last listener)
        # (the last tick's number, the event its waiters wait on): replaced together, at
        # each tick, so a waiter never sees a number and an event from different ticks
        self._state = (self._last_due(), threading.Event())

    def _last_due(self) -> int:
        return math.floor(time.time() / self.interval)

    def latest(self) -> int:
        """The number of the last tick (the last event due)."""
        return self._state[0]

    def wait_after(self, tick: int, timeout: float | None) -> bool:
        """Wait until a tick later than ``tick``: True once there is one, False on timeout.

        Returns at once if there already is one. The event is taken with the number, so a
        tick that comes between this check and the wait still wakes this waiter. With
        ``timeout`` None it waits for the tick however long: no timer of its own, which
        with thousands of waiters is what a wake-up costs most (lesson 07).
        """
        latest, next_tick = self._state
        return latest > tick or next_tick.wait(timeout)

    @contextmanager
    def listening(self) -> Iterator["Ticker"]:
        """Count the caller as a listener while inside; the first one starts the thread."""
        with self._lock:
            self._listeners += 1
            if not self._running:
                self._running = True
                self._state = (self._last_due(), self._state[1])
                threading.Thread(target=self._run, name="ticker", daemon=True).start()
        try:
            yield self
        finally:
            with self._lock:
                self._listeners -= 1

    def _run(self) -> None:
        while True:
            tick, woken = self._state
            due = (tick + 1) * self.interval
            while (wait := due - time.time()) > 0:
                time.sleep(wait)
            with self._lock:
                if self._listeners == 0:  # nobody left: stop, and the next listener restarts
                    self._running = False
                    return
                # a late wake-up (a busy or suspended process) jumps to the last tick due
                self._state = (latest := max(tick + 1, self._last_due()), threading.Event())
            woken.set()  # after the swap: a waiter woken now finds the new tick
            if self.on_tick is not None:
                self.on_tick(range(tick + 1, latest + 1))
