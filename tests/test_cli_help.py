"""``--help`` shows each flag's real default, the one docs/server.md states.

argparse shows ``(default: None)`` for a flag whose default is "none given"; for ``--files``
and ``--uploads`` that is a folder the course chooses, which ``--help`` must name as the
docs do.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVER_DOC = ROOT / "docs" / "server.md"


def words(text: str) -> str:
    """``text`` as one line: Markdown's backticks gone, runs of whitespace one space."""
    return " ".join(text.replace("`", "").split())


def help_text(*command: str) -> str:
    """What ``python COMMAND --help`` prints, with lines long enough for a flag's whole help."""
    environ = {**os.environ, "COLUMNS": "1000"}
    environ.pop("XDG_CACHE_HOME", None)  # as on most machines: the default under ~/.cache
    return subprocess.run(
        [sys.executable, *command, "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=environ,
    ).stdout


def help_default(shown: str, flag: str) -> str:
    """What ``--help`` gives as ``flag``'s default: its entry is the line that starts with
    the flag, and the indented line after it if the flag's name is long."""
    entries: list[str] = []
    for line in shown.splitlines():
        if line.startswith("  -"):
            entries.append(line)
        elif line.startswith("   ") and entries:
            entries[-1] += line
    (entry,) = [words(entry) for entry in entries if entry.split()[0] == flag]
    found = re.search(r"\(default: ([^)]*)\)", entry)
    assert found, f"--help shows no default for {flag}: {entry}"
    return found[1]


# Each flag, and where docs/server.md says its default (the first group).
DOC_DEFAULTS = {
    "--files": r"--files DIR \(the folder /files/ serves; by default a sample folder the course"
    r" makes in (\S+)\)",
    "--uploads": r"where uploads go, by default (uploads/ in the --files folder)",
    "--worker-class": r"--worker-class sync\|gthread\|gevent\|fanout \(default (\w+);",
    "--https-port": r"on --https-port, (\d+),",
}


@pytest.mark.parametrize(
    "command", [("-m", "lessons"), ("lessons/11_uploads.py",)], ids=["course", "a lesson"]
)
@pytest.mark.parametrize("flag", DOC_DEFAULTS)
def test_help_gives_the_default_the_docs_give(command, flag):
    documented = re.search(DOC_DEFAULTS[flag], words(SERVER_DOC.read_text()))
    assert documented, f"docs/server.md no longer says {flag}'s default as this test reads it"
    shown = help_default(help_text(*command), flag)
    assert shown.startswith(documented[1]), f"--help: {shown!r}; docs: {documented[1]!r}"


def test_no_default_is_shown_as_none():
    assert "(default: None)" not in help_text("-m", "lessons")
