"""Grade the exercises: ``python -m pytest exercises`` (all) or one ``test_NN_*.py`` file.

Each grader names its exercise in ``EXERCISE = "NN_slug"`` and gets the learner's module
from the ``exercise`` fixture. Which file that is:

- by default, your work: ``exercises/NN_slug.py``;
- with ``--solutions``, the reference solution: ``exercises/solutions/NN_slug.py``;
- with ``--exercises-from DIR``, ``DIR/NN_slug.py`` (the project's tests use this to
  grade a pristine copy of a stub).
"""

import importlib.util
import re
import textwrap
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import grading
import pytest
from grading import Happened

HERE = Path(__file__).parent


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("exercises", "streamlib exercises")
    group.addoption(
        "--solutions", action="store_true", help="grade the reference solutions instead"
    )
    group.addoption("--exercises-from", metavar="DIR", help="grade the exercise files in DIR")


def pytest_report_header(config: pytest.Config) -> str:
    return f"grading: {exercise_folder(config)}"


def exercise_folder(config: pytest.Config) -> Path:
    if config.getoption("--exercises-from"):
        return Path(config.getoption("--exercises-from"))
    return HERE / "solutions" if config.getoption("--solutions") else HERE


@pytest.fixture(scope="module")
def exercise(request: pytest.FixtureRequest) -> ModuleType:
    """The module under grading, loaded from its file (names like ``01_x`` can't be imported)."""
    name = request.module.EXERCISE
    path = exercise_folder(request.config) / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"exercise_{name}", path)
    assert spec and spec.loader, f"no exercise file at {path}"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# What the report says of a failed test, as a tutor would: the grader's own message (what was
# called, what came back, what was expected, the lesson section to read) and, where the
# learner's code raised, that exception and the line of the exercise that raised it.
# pytest's traceback, its assertion rewriting (``+ where ...``) and the server's log of the
# same error are left out: they describe the grader, not the learner's work.

HINT = re.compile(r"\n *Hint: ")
NOT_STARTED_YET = "not started yet: "
OUTCOMES = pytest.StashKey[dict[str, dict[str, str]]]()  # grader file -> {test id: outcome}


def pytest_configure(config: pytest.Config) -> None:
    config.option.reportchars = ""  # the progress table at the end replaces pytest's list


def pytest_runtest_setup(item: pytest.Item) -> None:
    grading.server_errors.clear()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Rewrite a failed grader test's report into the tutor's words (see above)."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.excinfo is not None and hasattr(item.module, "EXERCISE"):
        said = tutor_report(item, call.excinfo)
        if said is not None:
            report.longrepr = said
            report.sections = []
    if report.when == "call" or report.failed or report.skipped:
        outcomes = item.config.stash.setdefault(OUTCOMES, {})
        by_test = outcomes.setdefault(item.nodeid.split("::")[0], {})
        if report.failed and str(report.longrepr).startswith(NOT_STARTED_YET):
            by_test[item.nodeid] = "not started"
        elif report.failed or report.skipped or item.nodeid not in by_test:
            by_test[item.nodeid] = report.outcome


def tutor_report(item: pytest.Item, excinfo: pytest.ExceptionInfo) -> str | None:
    """The failure in the tutor's words, or None to leave pytest's report (a grader bug)."""
    exercise_file = exercise_folder(item.config) / f"{item.module.EXERCISE}.py"
    errors = [*causes(excinfo.value), *grading.server_errors]
    for error in errors:
        if isinstance(error, NotImplementedError):  # the stub: a task not started yet
            return f"{NOT_STARTED_YET}{error}"
    learners = [(e, where) for e in errors if (where := where_raised(e, exercise_file))]
    told = tutors_words(str(excinfo.value))
    if told:
        for error, where in learners[:1]:
            told += f"\n  Your code raised {type(error).__name__}: {error}\n    at {where}"
        return told
    called, hint = grader_statement(item, excinfo), task_hint(item)
    if learners:
        error, where = learners[0]
        raised = Happened(f"your code raised {type(error).__name__}: {error}\n    at {where}")
        return grading.tutor(called, raised, "no exception there", hint)
    if isinstance(excinfo.value, StopIteration):
        ended = Happened("your generator had ended: there was no next piece")
        return grading.tutor(called, ended, "another piece", hint)
    if not isinstance(excinfo.value, AssertionError):
        stopped = Happened(f"it stopped on {type(excinfo.value).__name__}: {excinfo.value}")
        return grading.tutor(called, stopped, "an answer it could check", hint)
    return None


def tutors_words(said: str) -> str:
    """The tutor's message in an exception's text, without what pytest added, or ``""``.

    pytest indents a failed ``assert``'s message and follows it with an ``assert ...`` line
    and its ``+ where`` explanation: the message ends with the line that holds the hint.
    """
    hint = HINT.search(said)
    if not hint:
        return ""
    end = said.find("\n", hint.end())
    told = said if end == -1 else said[:end]
    return "\n" + textwrap.indent(textwrap.dedent(told).strip("\n"), "  ")


def grader_statement(item: pytest.Item, excinfo: pytest.ExceptionInfo) -> str:
    """The grader's own line where the test failed, as ``Called ...`` shows it."""
    in_grader = [entry for entry in excinfo.traceback if entry.path == item.path]
    entry = in_grader[-1] if in_grader else excinfo.traceback[-1]
    return " ".join(str(entry.statement).split()) or item.name


def task_hint(item: pytest.Item) -> str:
    """``Task N and lesson NN, 'Section'.`` for the task a grader test checks, from its
    grader's ``TASK_SECTIONS``."""
    found = re.match(r"test_task(\d+)_", item.name)
    task = int(found[1]) if found else 1
    section = getattr(item.module, "TASK_SECTIONS", {}).get(task)
    return f"Task {task} and {section}." if section else f"Task {task} in the exercise's docstring."


def causes(error: BaseException) -> list[BaseException]:
    """``error`` and the exceptions it was raised from or while handling, innermost last."""
    chain = []
    while error is not None and error not in chain:
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


def where_raised(error: BaseException, exercise_file: Path) -> str:
    """``"exercises/NN_x.py, line 7: yield row"``: the last line of the exercise file in
    ``error``'s traceback, or ``""`` if the exercise's code did not raise it."""
    mine = exercise_file.resolve()
    lines = [
        (frame.lineno, frame.line)
        for frame in traceback.extract_tb(error.__traceback__)
        if Path(frame.filename).resolve() == mine
    ]
    if isinstance(error, SyntaxError) and error.filename and Path(error.filename).resolve() == mine:
        lines.append((error.lineno, error.text))  # raised while loading the file, not in it
    if not lines:
        return ""
    number, text = lines[-1]
    return f"{shown(exercise_file)}, line {number}: {(text or '').strip()}"


def shown(path: Path) -> str:
    """``path`` as the learner would type it: relative to the current folder if inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def pytest_unconfigure(config: pytest.Config) -> None:
    """End with each exercise's progress and where to go next.

    Printed last, after pytest's own summary, so that it is what the learner reads. An
    exercise is *not started* while its file is the stub as the course ships it, or while
    every test that failed met the stub's ``NotImplementedError``.
    """
    outcomes = config.stash.get(OUTCOMES, {})
    terminalreporter = config.pluginmanager.get_plugin("terminalreporter")
    if not outcomes or terminalreporter is None:
        return
    write = terminalreporter.write_line
    terminalreporter.write_sep("=", "your progress")
    next_step = None
    for grader, by_test in sorted(outcomes.items()):
        name = Path(grader).name.removeprefix("test_").removesuffix(".py")
        counted = list(by_test.values())
        passed, graded = counted.count("passed"), len(counted) - counted.count("skipped")
        state = progress(config, name, counted)
        write(f"  {name:<26} {passed:>3} of {graded:<3} tests passed   {state}")
        if next_step is None and state != "done":
            next_step = (grader, name, first_failing_task(by_test), state)
    if next_step is None:
        write("Every exercise graded here passes. Well done.")
        return
    grader, name, task, state = next_step
    verb = "Start with" if state == "not started" else "Carry on with"
    write(f"{verb} exercises/{name}.py, Task {task} (its docstring says what to do),")
    write("and grade that task alone as you go:")
    write(f"    python -m pytest {grader} -k task{task}")


def progress(config: pytest.Config, name: str, counted: list[str]) -> str:
    """``"done"``, ``"not started"`` or ``"in progress"`` for one exercise's outcomes."""
    if "failed" not in counted and "not started" not in counted:
        return "done"
    path = exercise_folder(config) / f"{name}.py"
    if "failed" not in counted or grading.is_untouched_stub(path):
        return "not started"
    return "in progress"


def first_failing_task(by_test: dict[str, str]) -> str:
    """The lowest task number among the failed tests (``test_task2_...`` is task 2)."""
    tasks = [
        int(found[1])
        for test, outcome in by_test.items()
        if outcome in ("failed", "not started") and (found := re.search(r"::test_task(\d+)_", test))
    ]
    return str(min(tasks)) if tasks else "1"
