"""Real programs the tests drive: Debian's Chromium (through Playwright) and nginx.

Playwright's Python package brings its driver but no browser here: it launches the
machine's Chromium. A test that needs a program calls :func:`need`: under CI (where
``.ci/run`` installs the packages) a missing program fails the test; on a learner's
machine it skips the test, saying what to install.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from streamlib.notebook import find_program

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


def need(program: str, package: str) -> str:
    """Return the path of ``program``, or skip (fail under CI) saying which package it is in."""
    found = find_program(program)  # the notebooks' %%needs asks the same
    if found is None:
        message = f"{program} is not installed: apt-get install {package}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@contextmanager
def chromium_page() -> Iterator:
    """A fresh page in a fresh headless Chromium, closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = need("chromium", "chromium")
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()
