"""The command line never ignores a flag: a gunicorn flag implies gunicorn, or is refused.

``python -m lessons`` and each lesson alone (``python lessons/NN_slug.py``) share
:mod:`lessons.cli`. A learner of lesson 07 who types ``--worker-class sync`` must watch sync
workers, not werkzeug's dev server, so each rule is checked on the parsed arguments, and on
a real server for the two ways of starting one.
"""

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from lab import free_port, spawn_server
from lessons.cli import GUNICORN_FLAGS, read_command_line

ROOT = Path(__file__).resolve().parent.parent
IMPLIED = "is a gunicorn flag: serving with --server gunicorn."

# A value for each gunicorn flag (none for --no-sendfile, which takes none).
VALUES = {
    "--worker-class": ["sync"],
    "--workers": ["4"],
    "--threads": ["8"],
    "--timeout": ["30"],  # the default value: typed, it still counts
    "--worker-connections": ["10"],
    "--graceful-timeout": ["3"],
    "--no-sendfile": [],
}


def test_every_gunicorn_flag_has_a_value_here():
    assert set(VALUES) == set(GUNICORN_FLAGS)


@pytest.mark.parametrize("flag", GUNICORN_FLAGS)
def test_a_gunicorn_flag_alone_implies_gunicorn_and_says_so(flag):
    args, implied = read_command_line("test", argv=[flag, *VALUES[flag]])
    assert args.server == "gunicorn"
    assert implied[0] == f"{flag} {IMPLIED}"


def test_without_a_gunicorn_flag_werkzeug_stays_and_nothing_is_said():
    args, implied = read_command_line("test", argv=["--port", "8001", "--body-timeout", "5"])
    assert (args.server, implied) == ("werkzeug", [])


def test_several_gunicorn_flags_are_said_in_one_line():
    _, implied = read_command_line("test", argv=["--workers", "4", "--timeout", "60"])
    assert implied == [
        "--workers and --timeout are gunicorn flags: serving with --server gunicorn."
    ]


def test_with_server_gunicorn_given_nothing_needs_saying():
    args, implied = read_command_line("test", argv=["--server", "gunicorn", "--workers", "4"])
    assert (args.server, args.workers, implied) == ("gunicorn", 4, [])


def test_threads_alone_implies_the_worker_with_threads():
    args, implied = read_command_line("test", argv=["--server", "gunicorn", "--threads", "8"])
    assert (args.worker_class, args.threads) == ("gthread", 8)
    assert implied == ["--threads is for gthread workers: --worker-class gthread."]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (
            ["--server", "werkzeug", "--workers", "4"],
            "--workers: only gunicorn reads it; use --server gunicorn, or leave it out",
        ),
        (  # typed with its default value, --server werkzeug still contradicts
            ["--server", "werkzeug", "--worker-class", "gevent"],
            "--worker-class: only gunicorn reads it",
        ),
        (
            ["--worker-class", "sync", "--threads", "8"],
            "--threads: a sync worker has none; use --worker-class gthread",
        ),
        (["--https-port", "9443"], "--https-port is nginx's port for --https: add --https"),
    ],
)
def test_a_flag_the_server_would_not_read_is_refused_with_the_fix(argv, says, capsys):
    with pytest.raises(SystemExit) as exited:
        read_command_line("test", argv=argv)
    assert exited.value.code == 2
    assert says in capsys.readouterr().err


def test_the_refusal_comes_before_anything_is_served():
    done = subprocess.run(
        [sys.executable, "-m", "lessons", "--server", "werkzeug", "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert "error: --workers: only gunicorn reads it" in done.stderr


@pytest.mark.live
@pytest.mark.parametrize(
    ("command", "flags", "worker"),
    [
        (["-m", "lessons"], ["--worker-class", "sync"], "sync"),
        ([str(ROOT / "lessons" / "07_production.py")], ["--threads", "8"], "gthread"),
    ],
    ids=["course", "lesson-07-alone"],
)
def test_the_server_started_is_the_one_the_flags_name(command, flags, worker):
    """What lesson 07's learner types runs gunicorn with that worker, and says so first."""
    port = free_port()
    started = [sys.executable, *command, "--port", str(port), *flags]
    with spawn_server(started, port) as server:
        assert requests.get(server.url + "/stats", timeout=5).status_code == 200
    log = server.log()
    assert log.startswith(f"{flags[0]} {IMPLIED}\n"), log[:300]
    assert f"Using worker: {worker}" in log
    assert f"--worker-class {worker} --workers 1" in log  # the gunicorn command it ran
