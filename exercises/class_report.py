"""Who passes what: one table for a class, from each learner's grading report.

Each learner grades their work with a JUnit XML report named after them::

    python -m pytest exercises --junitxml=results/ada.xml

The instructor collects the files and runs::

    python exercises/class_report.py results/*.xml

which prints a Markdown table (a row per learner, a column per exercise, tasks passed out
of tasks graded) and, under it, the tasks the class missed most: the sections to go over
again. A test that was skipped (a program missing on the learner's machine, such as
redis-server) counts as neither passed nor failed, and the cell says so.
"""

import argparse
import re
import sys
import xml.etree.ElementTree as ElementTree
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

GRADER = re.compile(r"test_(\d\d)_\w+")  # the grader's module: test_01_buffered_vs_streamed
TASK = re.compile(r"test_task(\d+)_")


@dataclass(frozen=True)
class Result:
    """One grader test of one learner: exercise ``"01"``, its test name, and its outcome."""

    exercise: str
    test: str
    outcome: str  # "passed", "failed" or "skipped"


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
        if case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        elif case.find("skipped") is not None:
            outcome = "skipped"
        else:
            outcome = "passed"
        results.append(Result(grader[1], case.get("name", ""), outcome))
    return results


def cell(results: list[Result]) -> str:
    """``"3/3"``: tasks passed out of those graded; ``"2/2, 1 skipped"``; ``"-"`` if none."""
    passed = sum(r.outcome == "passed" for r in results)
    graded = sum(r.outcome != "skipped" for r in results)
    skipped = len(results) - graded
    if not results:
        return "-"
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


def most_missed(reports: dict[str, list[Result]], limit: int = 10) -> list[tuple[str, int]]:
    """The tests most learners failed, as ``("01 test_task2_...", learners)``, most first."""
    failed = Counter(
        f"{r.exercise} {r.test}"
        for results in reports.values()
        for r in results
        if r.outcome == "failed"
    )
    return failed.most_common(limit)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path, help="JUnit XML files, one a learner")
    args = parser.parse_args(argv)
    reports = {path.stem: read_report(path) for path in args.reports}
    print(class_table(reports))
    missed = most_missed(reports)
    if missed:
        print(f"\nMost missed, of {len(reports)} learners:\n")
        for test, learners in missed:
            task = TASK.search(test)
            label = f"task {task[1]} of exercise {test[:2]}" if task else test
            print(f"- {learners} x {label}: `{test[3:]}`")


if __name__ == "__main__":
    main(sys.argv[1:])
