"""exercises/class_report.py: one table for a class, read from the learners' real reports."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GRADERS = ["exercises/test_03_manual_chunks.py", "exercises/test_05_chunked_json.py"]


def grade_into(report: Path, *flags: str) -> None:
    command = [sys.executable, "-m", "pytest", *GRADERS, *flags, f"--junitxml={report}"]
    subprocess.run([*command, "-q", "-p", "no:cacheprovider"], cwd=ROOT, timeout=300)


def test_the_table_shows_who_passes_what_from_real_grading_runs(tmp_path):
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name in ["03_manual_chunks", "05_chunked_json"]:
        shutil.copy(ROOT / "exercises" / f"{name}.py", stubs)
    grade_into(tmp_path / "ada.xml", "--solutions")
    grade_into(tmp_path / "bob.xml", "--exercises-from", str(stubs))
    shown = subprocess.run(
        [sys.executable, "exercises/class_report.py", tmp_path / "ada.xml", tmp_path / "bob.xml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = {line.split(" | ")[0].lstrip("| "): line for line in shown.splitlines()}
    ada, bob = rows["ada"].split(" | "), rows["bob"].split(" | ")
    assert rows["learner"].startswith("| learner | 03 | 05 | all |")
    assert ada[1:] == ["3/3", "3/3", "6/6 |"]  # tasks, not tests: exercises 03 and 05 have 3
    assert bob[1:] == ["0/3", "0/3", "0/6 |"]
    assert "Most missed, of 2 learners:" in shown
    missed = [line for line in shown.splitlines() if line.startswith("- 1 x task 1 of exercise 03")]
    assert missed and missed[0].endswith("): not started yet"), shown  # bob ran the stubs


def test_skipped_tests_are_neither_passed_nor_failed(tmp_path):
    sys.path.insert(0, str(ROOT / "exercises"))
    try:
        import class_report
    finally:
        sys.path.pop(0)
    report = tmp_path / "cy.xml"
    report.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="exercises.test_08_fan_out" name="test_task1_a"/>'
        '<testcase classname="exercises.test_08_fan_out" name="test_task2_b">'
        '<skipped message="redis-server is not installed"/></testcase>'
        '<testcase classname="exercises.test_08_fan_out" name="test_task3_c">'
        '<failure message="no"/></testcase>'
        '<testcase classname="tests.test_other" name="test_not_a_grader"/>'
        "</testsuite></testsuites>"
    )
    results = class_report.read_report(report)
    assert [r.outcome for r in results] == ["passed", "skipped", "failed"]
    assert class_report.cell(results) == "1/2, 1 skipped"
    assert class_report.most_missed({"cy": results}) == [("08", "3", 1)]


def test_a_task_with_several_tests_counts_once_and_fails_if_any_fails(tmp_path):
    sys.path.insert(0, str(ROOT / "exercises"))
    try:
        import class_report
    finally:
        sys.path.pop(0)
    report = tmp_path / "di.xml"
    report.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="exercises.test_02_stream_a_file" name="test_task2_a[1]"/>'
        '<testcase classname="exercises.test_02_stream_a_file" name="test_task2_a[2]">'
        "<failure message=\"Hint: Task 2 and lesson 02, 'Ranges': seek\"/></testcase>"
        '<testcase classname="exercises.test_02_stream_a_file" name="test_task1_b"/>'
        "</testsuite></testsuites>"
    )
    results = class_report.read_report(report)
    assert class_report.cell(results) == "1/2"
    assert class_report.section_to_reread({"di": results}, "02", "2") == "lesson 02, 'Ranges'"
    assert class_report.task_title("02", "2").startswith("Honour the range")
