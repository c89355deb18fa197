"""Grade the exercises: ``python -m pytest exercises`` (all) or one ``test_NN_*.py`` file.

Each grader names its exercise in ``EXERCISE = "NN_slug"`` and gets the learner's module
from the ``exercise`` fixture. Which file that is:

- by default, your work: ``exercises/NN_slug.py``;
- with ``--solutions``, the reference solution: ``exercises/solutions/NN_slug.py``;
- with ``--exercises-from DIR``, ``DIR/NN_slug.py`` (the project's tests use this to
  grade a pristine copy of a stub).
"""

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

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


NOT_STARTED = pytest.StashKey[list[str]]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """A test that fails because its task is still the stub's ``NotImplementedError`` gets
    one line, not a traceback: that is not a mistake, just a task not started."""
    outcome = yield
    report = outcome.get_result()
    excinfo = call.excinfo
    if report.failed and excinfo is not None and excinfo.errisinstance(NotImplementedError):
        report.longrepr = f"not started yet: {excinfo.value}"
        item.config.stash.setdefault(NOT_STARTED, []).append(item.nodeid)


def pytest_unconfigure(config: pytest.Config) -> None:
    """End with where to start: the first exercise not started, its first task, the command.

    Printed last, after pytest's own summary, so that it is what the learner reads.
    """
    waiting = config.stash.get(NOT_STARTED, [])
    terminalreporter = config.pluginmanager.get_plugin("terminalreporter")
    if not waiting or terminalreporter is None:
        return
    graders = sorted({nodeid.split("::")[0] for nodeid in waiting})
    first = graders[0]
    exercise = Path(first).name.removeprefix("test_")
    write = terminalreporter.write_line
    terminalreporter.write_sep("=", "where to start")
    write(f"{len(waiting)} tests wait on tasks not started yet, in {len(graders)} exercise(s).")
    write(f"Start with exercises/{exercise}, Task 1 (its docstring says what to do),")
    write("and grade that task alone as you go:")
    write(f"    python -m pytest {first} -k task1")
