"""The examples in the docstrings run as written: the library and the lessons are read as a
textbook, so a ``>>>`` example that no longer holds would teach something false."""

import doctest
import importlib
from pathlib import Path

import pytest

from lessons import load_lesson

ROOT = Path(__file__).resolve().parent.parent


def modules_with_examples() -> list:
    found = []
    for path in sorted((ROOT / "streamlib").glob("*.py")) + sorted((ROOT / "lessons").glob("*.py")):
        if ">>>" not in path.read_text(encoding="utf-8"):
            continue
        if path.parent.name == "lessons" and path.stem[:2].isdigit():
            found.append(pytest.param(lambda stem=path.stem: load_lesson(stem), id=path.name))
        else:
            name = f"{path.parent.name}.{path.stem}".removesuffix(".__init__")
            found.append(pytest.param(lambda name=name: importlib.import_module(name), id=name))
    return found


@pytest.mark.parametrize("load", modules_with_examples())
def test_every_docstring_example_holds(load):
    module = load()
    found = doctest.DocTestFinder().find(module)
    assert sum(len(test.examples) for test in found) > 0, "the examples are not in docstrings"
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # +SKIP ones are shown only
    assert result.failed == 0
