"""Real programs the tests drive: Debian's Chromium (through Playwright), nginx, a disk.

Playwright's Python package brings its driver but no browser here: it launches the
machine's Chromium. A test that needs a program calls :func:`need`: under CI (where
``.ci/run`` installs the packages) a missing program fails the test; on a learner's
machine it skips the test, saying what to install.
"""

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lab import browser
from lab.notebook import find_program


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
    """A fresh page in a fresh headless Chromium (``lab.browser``), closed afterwards;
    skipped (failed under CI) where Chromium is not installed."""
    need("chromium", "chromium")
    with browser.chromium_page(**options) as page:
        yield page


def unshare_mount_prefix() -> list[str]:
    """The command prefix that runs a program in a mount namespace of its own, where it
    may mount a tmpfs without touching the machine's mounts (root: ``unshare --mount``;
    others: with a user namespace too, where the kernel allows one), or a skip."""
    for prefix in (["unshare", "--mount"], ["unshare", "--user", "--map-root-user", "--mount"]):
        try:
            done = subprocess.run([*prefix, "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return prefix
    pytest.skip("this machine lets no process mount a tmpfs of its own (unshare --mount)")


@contextmanager
def course_on_a_small_disk(folder: Path, size: int, *flags: str) -> Iterator[tuple[object, Path]]:
    """The course server (``python -m lessons``) storing uploads on a tmpfs of ``size``
    bytes mounted at ``folder`` in its own mount namespace: a disk that fills up for real.

    Yields the server and the folder as this process sees it through the server's root
    (``/proc/PID/root/...``), to look at what is stored.
    """
    from lab import free_port, spawn_server

    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    mount = f'mount -t tmpfs -o size={size} tmpfs "{folder}" && exec "$@"'
    course = [sys.executable, "-m", "lessons", "--port", str(port), "--uploads", str(folder)]
    command = [*unshare_mount_prefix(), "sh", "-c", mount, "sh", *course, *flags]
    with spawn_server(command, port) as server:
        yield server, Path(f"/proc/{server.process.pid}/root{folder}")
