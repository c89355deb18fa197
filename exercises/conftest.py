"""Grade the exercises: ``python -m pytest exercises`` (all) or one ``test_NN_*.py`` file.

Each grader names its exercise in ``EXERCISE = "NN_slug"`` and gets the learner's module
from the ``exercise`` fixture. Which file that is:

- by default, your work: ``exercises/NN_slug.py``;
- with ``--solutions``, the reference solution: ``exercises/solutions/NN_slug.py``;
- with ``--exercises-from DIR``, ``DIR/NN_slug.py`` (the project's tests use this to
  grade a pristine copy of a stub).
"""

import importlib.util
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
