"""A real browser, driven from Python: Debian's Chromium, headless, through Playwright.

Playwright's Python package brings its driver but no browser here: :func:`chromium_page`
launches the machine's own Chromium (``apt-get install chromium``; nothing is downloaded).
The tests drive the demo pages with it, and lesson 10's notebook shows what Chromium does
with ten EventSources over HTTP/1.1 and over HTTP/2.
"""

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from lab.notebook import find_program

T = TypeVar("T")

# Flags for a headless Chromium in a container with no network beyond loopback.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--mute-audio",
    "--autoplay-policy=no-user-gesture-required",
]


@contextmanager
def chromium_page(**options: Any) -> Iterator[Any]:
    """A fresh page (Playwright's ``Page``) in a fresh headless Chromium, closed afterwards.

    options: for Playwright's ``new_context``, such as ``ignore_https_errors=True`` (lesson
        10's certificate comes from a CA that this Chromium was never told to trust).
    """
    from playwright.sync_api import sync_playwright

    program = find_program("chromium")
    if program is None:
        raise FileNotFoundError("chromium is not installed: apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=program, args=CHROMIUM_FLAGS)
        try:
            yield browser.new_context(**options).new_page()  # page.context.new_page(): a tab
        finally:
            browser.close()


def wait_until(page: Any, expression: str, timeout: float = 30_000, every: float = 0.05) -> Any:
    """Evaluate ``expression`` in ``page`` until it is truthy, and return its value.

    timeout: milliseconds to wait, as Playwright counts them; then ``TimeoutError``.
    every: seconds between two looks.

    Playwright's own ``wait_for_function`` polls its predicate through ``eval`` inside the
    page, which the course's pages forbid (their Content-Security-Policy allows their own
    scripts only, ``lessons.html_page``). ``page.evaluate`` comes from outside, through the
    DevTools protocol, which the policy does not govern: so this polls from Python.
    """
    from playwright.sync_api import Error

    deadline = time.monotonic() + timeout / 1000
    while True:
        try:
            if value := page.evaluate(expression):
                return value
        except Error as error:  # the page is navigating: ask the next one
            if "context was destroyed" not in str(error) and "navigat" not in str(error):
                raise
        if time.monotonic() > deadline:
            raise TimeoutError(f"{expression} still false after {timeout:.0f} ms")
        time.sleep(every)


def in_a_thread(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)``, run in a thread of its own. Playwright's sync API refuses to run
    in a thread whose asyncio loop is running, as a Jupyter kernel's is."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args).result()
