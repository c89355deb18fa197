"""streamlib is the small library the course promises, and the project's imports hold no
circle (issue 33).

- ``pip install .`` brings werkzeug (and MarkupSafe, which werkzeug needs) and nothing else;
- ``import streamlib`` loads none of the course's instruments (``lab``), psutil, requests,
  gevent or gunicorn, and its face is the streaming vocabulary;
- nothing in ``streamlib/`` imports ``lab`` or ``lessons``, at any depth of a module;
- the import picture of ``streamlib``, ``lab``, ``lessons`` and ``bench`` has no circle,
  counting imports inside functions and a lesson loaded by name (``load_lesson("07")``),
  which is how lessons once used each other unseen.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["streamlib", "lab", "lessons", "bench"]
LESSON_MODULES = sorted(path.stem for path in (ROOT / "lessons").glob("[0-9][0-9]_*.py"))


def project_modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).glob("*.py")):
            found[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return found


MODULES = project_modules()


def owner(name: str) -> str | None:
    """The project module that ``name`` (a module, or a name in one) belongs to."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(path: Path) -> set[str]:
    """Every project module ``path`` imports, anywhere in it, and every lesson it loads by
    a literal name."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {owner(alias.name) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in MODULES else owner(node.module))
        elif loads_a_lesson_by_name(node):
            asked = node.args[0].value
            found |= {f"lessons.{n}" for n in LESSON_MODULES if asked in (n, n[:2])}
    return found - {None}


def loads_a_lesson_by_name(node: ast.AST) -> bool:
    """Whether ``node`` is a call ``load_lesson("NN")`` with the lesson's name written out."""
    return (
        isinstance(node, ast.Call)
        and getattr(node.func, "id", "") == "load_lesson"
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
    )


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, round a circle (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = lowest[module] = len(index)
        stack.append(module)
        for other in graph[module]:
            if other not in index:
                visit(other)
                lowest[module] = min(lowest[module], lowest[other])
            elif other in stack:
                lowest[module] = min(lowest[module], index[other])
        if lowest[module] == index[module]:
            group = []
            while (top := stack.pop()) != module:
                group.append(top)
            if group:
                found.append(sorted([module, *group]))

    for module in graph:
        if module not in index:
            visit(module)
    return found


def test_the_project_s_imports_hold_no_circle():
    graph = {name: imports_of(path) - {name} for name, path in MODULES.items()}
    assert circles(graph) == []


def test_the_library_imports_neither_the_instruments_nor_the_lessons():
    reached = {
        name: sorted(m for m in imports_of(MODULES[name]) if m.split(".")[0] in ("lab", "lessons"))
        for name in MODULES
        if name.split(".")[0] == "streamlib"
    }
    assert {name: found for name, found in reached.items() if found} == {}


def test_import_streamlib_loads_no_instrument_and_offers_the_streaming_vocabulary():
    probe = (
        "import sys, json, streamlib\n"
        "from streamlib import event_stream, iter_file, iter_ndjson, paced, store_body\n"
        "heavy = ['lab', 'lessons', 'psutil', 'requests', 'gevent', 'gunicorn']\n"
        "print(json.dumps({'loaded': [m for m in heavy if m in sys.modules],"
        " 'all': streamlib.__all__}))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    seen = json.loads(done.stdout)
    assert seen["loaded"] == []
    for name in ("iter_file", "requested_range", "event_stream", "parse_events", "iter_ndjson"):
        assert name in seen["all"]


@pytest.mark.live
def test_pip_install_of_the_project_brings_werkzeug_and_nothing_else(tmp_path):
    """What ``pip install .`` would install into a bare environment (``--ignore-installed``
    resolves as if nothing were there; ``--dry-run`` installs nothing)."""
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed"]
    command += ["--quiet", "--report", str(report), str(ROOT)]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    installed = {
        item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]
    }
    assert installed == {"streamlib", "werkzeug", "markupsafe"}
