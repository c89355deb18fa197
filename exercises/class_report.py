"""Who passes what: one table for a class, from each learner's grading report.

Each learner grades their work with a JUnit XML report named after them::

    python -m pytest exercises --junitxml=results/ada.xml

The instructor collects the files and runs::

    python exercises/class_report.py results/*.xml

which prints a Markdown table (a row per learner, a column per exercise, *tasks* passed out
of tasks graded) and, under it, the tasks the class missed most, each with the lesson
section its graders' hints send learners to: the sections to go over again.

A task is the ``N`` of a grader test named ``test_taskN_...``; an exercise's task may have
several tests, and it passes when all of them pass. A test that was skipped (a program
missing on the learner's machine, such as redis-server) counts as neither passed nor
failed; a task whose tests were all skipped is shown apart.
"""

import argparse
import re
import sys
import xml.etree.ElementTree as ElementTree
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
GRADER = re.compile(r"test_(\d\d)_\w+")  # the grader's module: test_01_buffered_vs_streamed
TASK = re.compile(r"test_task(\d+)_")
SECTION = re.compile(r"lesson (\d\d), '([^']+)'")  # as the graders' hints name them
NOT_STARTED = "not started"


@dataclass(frozen=True)
class Result:
    """One grader test of one learner: exercise ``"01"``, test name, outcome, and the
    lesson section its failure's hint names, if any."""

    exercise: str
    test: str
    outcome: str  # "passed", "failed" or "skipped"
    section: str = ""

    @property
    def task(self) -> str:
        """The task the test grades (``"3"``), or its name if it names none."""
        found = TASK.search(self.test)
        return found[1] if found else self.test


def read_report(path: Path) -> list[Result]:
    """The grader tests in one learner's JUnit XML report (``pytest --junitxml``).

    A test case with a ``<failure>`` or ``<error>`` failed, one with ``<skipped>`` was
    skipped, any other passed. Test cases that are not graders (no ``test_NN_`` module)
    are left out.
    """
    results = []
    for case in ElementTree.parse(path).iter("testcase"):
        grader = GRADER.search(case.get("classname", ""))
        if grader is None:
            continue
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        section = ""
        if problem is not None:
            outcome = "failed"
            said = (problem.get("message") or "") + (problem.text or "")
            named = SECTION.search(said)
            section = f"lesson {named[1]}, '{named[2]}'" if named else ""
            if said.startswith("not started yet"):  # the stub's NotImplementedError
                section = NOT_STARTED
        elif case.find("skipped") is not None:
            outcome = "skipped"
        else:
            outcome = "passed"
        results.append(Result(grader[1], case.get("name", ""), outcome, section))
    return results


def task_outcomes(results: list[Result]) -> dict[tuple[str, str], str]:
    """Each task's outcome, by ``(exercise, task)``: failed if any of its tests failed,
    skipped if all were skipped, else passed."""
    outcomes: dict[tuple[str, str], str] = {}
    for result in results:
        key = (result.exercise, result.task)
        seen = outcomes.get(key)
        if result.outcome == "failed" or seen == "failed":
            outcomes[key] = "failed"
        elif result.outcome == "passed" or seen == "passed":
            outcomes[key] = "passed"
        else:
            outcomes[key] = "skipped"
    return outcomes


def cell(results: list[Result]) -> str:
    """``"3/3"``: tasks passed out of tasks graded; ``"2/2, 1 skipped"``; ``"-"`` if none."""
    if not results:
        return "-"
    outcomes = list(task_outcomes(results).values())
    passed = outcomes.count("passed")
    graded = len(outcomes) - outcomes.count("skipped")
    skipped = outcomes.count("skipped")
    return f"{passed}/{graded}" + (f", {skipped} skipped" if skipped else "")


def class_table(reports: dict[str, list[Result]]) -> str:
    """The Markdown table of a class: ``reports`` maps each learner to their results."""
    exercises = sorted({r.exercise for results in reports.values() for r in results})
    lines = [
        "| learner | " + " | ".join(exercises) + " | all |",
        "|---|" + "---:|" * (len(exercises) + 1),
    ]
    for learner, results in sorted(reports.items()):
        cells = [cell([r for r in results if r.exercise == e]) for e in exercises]
        lines.append(f"| {learner} | " + " | ".join(cells) + f" | {cell(results)} |")
    return "\n".join(lines)


def most_missed(reports: dict[str, list[Result]], limit: int = 10) -> list[tuple[str, str, int]]:
    """The tasks most learners failed, most first: ``(exercise, task, learners)``."""
    failed = Counter(
        key
        for results in reports.values()
        for key, outcome in task_outcomes(results).items()
        if outcome == "failed"
    )
    return [(exercise, task, count) for (exercise, task), count in failed.most_common(limit)]


def section_to_reread(reports: dict[str, list[Result]], exercise: str, task: str) -> str:
    """The lesson section the failed tests of a task point to most often, or ``""``."""
    named = Counter(
        r.section
        for results in reports.values()
        for r in results
        if r.exercise == exercise and r.task == task and r.section
    )
    return named.most_common(1)[0][0] if named else ""


def task_title(exercise: str, task: str) -> str:
    """The first sentence of ``Task N.`` in the exercise's docstring, for the report."""
    for path in HERE.glob(f"{exercise}_*.py"):
        found = re.search(rf"^Task {task}\.\s+(.+?\.)(\s|$)", path.read_text(), re.S | re.M)
        if found:
            return " ".join(found[1].split()).replace("\\\\", "\\")
    return ""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python exercises/class_report.py", description="Who passes what, for a class."
    )
    parser.add_argument("reports", nargs="+", type=Path, help="JUnit XML files, one a learner")
    args = parser.parse_args(argv)
    reports = {path.stem: read_report(path) for path in args.reports}
    print(class_table(reports))
    missed = most_missed(reports)
    if missed:
        print(f"\nMost missed, of {len(reports)} learners:\n")
        for exercise, task, learners in missed:
            title = task_title(exercise, task)
            section = section_to_reread(reports, exercise, task)
            line = f"- {learners} x task {task} of exercise {exercise}"
            line += f" ({title})" if title else ""
            if section == NOT_STARTED:
                line += ": not started yet"
            elif section:
                line += f": go over {section} again"
            print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
