"""What the server prints as it starts fits a screen, in plain lines of the course's own.

The index at ``/`` lists every route and its command; the terminal shows the address, a few
commands to begin with, and one line on which server runs. werkzeug's own banner (a red
"WARNING: This is a development server...", its address lines) is left out: the course's
line says the same, with what to use instead.
"""

import sys
from pathlib import Path

import pytest
import requests

from lab import free_port, spawn_server
from lessons import load_lessons
from lessons.cli import DEV_SERVER_NOTE, TRY_FIRST, commands_to_try

ROOT = Path(__file__).resolve().parent.parent
MOST_COMMANDS = 5  # /stats included


def test_the_course_suggests_one_route_of_each_first_lesson_and_stats():
    base = "http://127.0.0.1:8000"
    commands = commands_to_try(load_lessons(), base)
    assert len(commands) == MOST_COMMANDS and commands[-1] == f"curl {base}/stats"
    for path, command in zip(TRY_FIRST, commands, strict=False):
        assert f"{base}{path}" in command, f"{path} is no route of the course any more"


def started(command: list[str]) -> str:
    """What ``command`` prints until it serves a first request (its start), as a learner's
    terminal shows it: stdout and stderr together."""
    port = free_port()
    with spawn_server([*command, "--port", str(port)], port, ready_path="/stats") as server:
        requests.get(server.url + "/stats", timeout=5)
    log = server.log()
    return log[: log.index("GET /stats")]  # the lines before the first request's


@pytest.mark.live
@pytest.mark.parametrize(
    "command",
    [["-m", "lessons"], [str(ROOT / "lessons" / "11_uploads.py")]],
    ids=["course", "lesson-11-alone"],
)
def test_the_start_fits_a_screen_and_points_at_the_index(command):
    shown = started([sys.executable, *command])
    lines = shown.splitlines()[:-1]  # the last is the start of the first request's line
    commands = [line for line in lines if line.startswith("  ")]
    assert 1 < len(commands) <= MOST_COMMANDS, shown
    assert "the index there lists every route and its command" in shown
    assert len(lines) <= 10, shown
    assert "WARNING: This is a development server" not in shown
    assert " * Running on" not in shown and "\x1b[" not in shown  # werkzeug's, in colour
    assert lines[-1] == DEV_SERVER_NOTE
