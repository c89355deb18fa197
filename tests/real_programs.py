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

from streamlib import browser
from streamlib.notebook import find_program


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
def chromium_page(**options) -> Iterator:
    """A fresh page in a fresh headless Chromium (``streamlib.browser``), closed afterwards;
    skipped (failed under CI) where Chromium is not installed."""
    need("chromium", "chromium")
    with browser.chromium_page(**options) as page:
        yield page
