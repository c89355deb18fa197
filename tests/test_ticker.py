"""streamlib.ticker: one timer wakes every waiting stream, on time, and stops when unheard."""

import threading
import time

from streamlib.ticker import Ticker


def ticker_threads() -> int:
    return sum(1 for thread in threading.enumerate() if thread.name == "ticker")


def test_ticks_come_one_by_one_each_when_due():
    ticker = Ticker(interval=0.05)
    seen = []
    with ticker.listening():
        tick = ticker.latest()
        while len(seen) < 5:
            assert ticker.wait_after(tick, timeout=1.0)
            tick = ticker.latest()
            seen.append((tick, time.time()))
    numbers = [number for number, _ in seen]
    assert numbers == list(range(numbers[0], numbers[0] + 5))
    for number, woken in seen:
        assert number * 0.05 <= woken < number * 0.05 + 0.04  # never early, soon after


def test_one_tick_wakes_every_waiter():
    ticker = Ticker(interval=0.2)
    woken = []
    with ticker.listening():
        start = ticker.latest()
        waiters = [
            threading.Thread(target=lambda: woken.append(ticker.wait_after(start, timeout=2)))
            for _ in range(50)
        ]
        for waiter in waiters:
            waiter.start()
        for waiter in waiters:
            waiter.join(3)
        # Under load (two test workers) a second tick may come before this check.
        assert woken == [True] * 50 and ticker.latest() in (start + 1, start + 2)


def test_without_a_timeout_a_waiter_waits_for_the_tick_however_long():
    ticker = Ticker(interval=0.3)
    woken = []
    with ticker.listening():
        start = ticker.latest()
        waiter = threading.Thread(
            target=lambda: woken.append((ticker.wait_after(start, None), time.time()))
        )
        waiter.start()
        waiter.join(3)  # bounded here, not in the wait
        assert not waiter.is_alive()
    [(ticked, at)] = woken
    assert ticked and at >= (start + 1) * 0.3 and ticker.latest() >= start + 1


def test_a_tick_already_past_returns_at_once_and_none_coming_times_out():
    ticker = Ticker(interval=3600.0)  # the next tick is up to an hour away
    assert ticker.wait_after(ticker.latest() - 1, timeout=5.0)  # no waiting
    started = time.monotonic()
    assert not ticker.wait_after(ticker.latest(), timeout=0.1)
    assert time.monotonic() - started < 1.0


def test_the_thread_stops_with_its_last_listener_and_a_new_one_restarts_just_one():
    before = ticker_threads()
    ticker = Ticker(interval=0.3)  # long enough to come back while the thread still sleeps
    with ticker.listening(), ticker.listening():
        assert ticker_threads() == before + 1  # two listeners, one thread
    with ticker.listening():  # back at once, before the thread woke to find nobody
        assert ticker_threads() == before + 1
        tick = ticker.latest()
        assert ticker.wait_after(tick, timeout=1.0) and ticker.latest() == tick + 1
    deadline = time.monotonic() + 2
    while ticker_threads() > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ticker_threads() == before


def test_on_tick_hears_every_tick_number_once_in_order():
    heard: list[int] = []
    ticker = Ticker(interval=0.02, on_tick=lambda ticks: heard.extend(ticks))
    with ticker.listening():
        first = ticker.latest()
        deadline = time.monotonic() + 5
        while len(heard) < 5 and time.monotonic() < deadline:
            ticker.wait_after(ticker.latest(), timeout=1.0)
    assert heard[:5] == list(range(first + 1, first + 6))
