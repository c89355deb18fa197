"""The graders grade: each passes on its solution, fails on its stub, and catches wrong answers.

Like exercism's CI, every grader runs in a child pytest against a folder holding one
version of the exercise file: the reference solution, the stub as committed, or a mutant
that gets one thing wrong. The outcome of every grader test is read from a JUnit report.
"""

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXERCISES = ROOT / "exercises"
NAMES = sorted(path.stem for path in EXERCISES.glob("[0-9][0-9]_*.py"))


def grade(name: str, folder: Path, tmp_path: Path) -> dict[str, str]:
    """Run exercise ``name``'s grader on ``folder/name.py``; return {test: outcome}."""
    report = tmp_path / "report.xml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(EXERCISES / f"test_{name}.py"),
            "--exercises-from",
            str(folder),
            f"--junitxml={report}",
            "-p",
            "no:cacheprovider",
            "-q",
        ],
        cwd=ROOT,
        capture_output=True,
        timeout=300,
    )
    outcomes = {}
    for case in ET.parse(report).iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        outcomes[case.get("name")] = "failed" if failed else "passed"
    assert outcomes, f"the grader for {name} collected no test"
    return outcomes


def committed_stub(name: str, folder: Path) -> Path:
    """Copy the stub as committed (a learner may have edited the working copy) to folder."""
    relative = f"exercises/{name}.py"
    shown = subprocess.run(["git", "show", f"HEAD:{relative}"], cwd=ROOT, capture_output=True)
    text = shown.stdout if shown.returncode == 0 else (ROOT / relative).read_bytes()
    (folder / f"{name}.py").write_bytes(text)
    return folder


def test_there_are_exercises():
    assert "01_buffered_vs_streamed" in NAMES


@pytest.mark.parametrize("name", NAMES)
def test_every_grader_test_passes_on_the_solution(name, tmp_path):
    outcomes = grade(name, EXERCISES / "solutions", tmp_path)
    assert set(outcomes.values()) == {"passed"}, outcomes


@pytest.mark.parametrize("name", NAMES)
def test_every_grader_test_fails_on_the_untouched_stub(name, tmp_path):
    stub_folder = tmp_path / "stub"
    stub_folder.mkdir()
    outcomes = grade(name, committed_stub(name, stub_folder), tmp_path)
    assert set(outcomes.values()) == {"failed"}, outcomes


# Wrong answers a learner might write, and the grader tests each must fail.
SOLUTION_01 = (EXERCISES / "solutions" / "01_buffered_vs_streamed.py").read_text()
MUTANTS_01 = {
    "buffered_in_disguise": (
        SOLUTION_01 + "\nstreamed_report = buffered_report\n",
        {
            "test_task1_sends_the_first_row_before_reading_the_next",
            "test_task1_never_holds_the_whole_report",
            "test_task2_headers_say_plain_text_and_no_length",
            "test_task1_a_real_client_gets_the_first_row_while_the_rest_is_pending",
        },
    ),
    "joins_then_yields_once": (
        SOLUTION_01.replace(
            "        return report_lines(open_rows)",
            "        return iter([b''.join(report_lines(open_rows))])",
        ),
        {
            "test_task1_sends_the_first_row_before_reading_the_next",
            "test_task1_never_holds_the_whole_report",
            "test_task1_a_real_client_gets_the_first_row_while_the_rest_is_pending",
        },
    ),
    "no_finally": (
        SOLUTION_01.replace("    finally:\n        rows.close()\n", "    rows.close()\n").replace(
            "    try:\n        for row in rows:", "    if True:\n        for row in rows:"
        ),
        {"test_task3_closes_the_cursor_when_the_client_leaves_early"},
    ),
    "opens_the_cursor_before_the_generator_starts": (
        SOLUTION_01.replace(
            "        return report_lines(open_rows)",
            "        rows = open_rows()\n        return report_lines(lambda: rows)",
        ),
        {"test_task3_leaves_nothing_open_when_closed_before_the_first_piece"},
    ),
}


@pytest.mark.parametrize("mutant", sorted(MUTANTS_01))
def test_grader_01_catches_a_wrong_answer(mutant, tmp_path):
    source, must_fail = MUTANTS_01[mutant]
    assert source != SOLUTION_01, f"mutant {mutant} changed nothing: fix its replace()"
    folder = tmp_path / mutant
    folder.mkdir()
    (folder / "01_buffered_vs_streamed.py").write_text(source)
    outcomes = grade("01_buffered_vs_streamed", folder, tmp_path)
    failed = {test for test, outcome in outcomes.items() if outcome == "failed"}
    assert must_fail <= failed, f"{mutant}: these should have failed: {must_fail - failed}"
