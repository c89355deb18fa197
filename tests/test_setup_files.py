"""The machine's packages are listed once, in apt.txt, and every installer reads that list.

CI (``.ci/run``), the devcontainer and Binder (which reads ``apt.txt`` by convention)
install the same Debian packages; every program a test or notebook needs comes from one of
them. A package added to a test but not to ``apt.txt`` would pass here and fail on a
learner's devcontainer: this test catches it.
"""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (ROOT / "apt.txt").read_text().split()


def packages_the_course_needs() -> set[str]:
    named = set()
    for path in [*ROOT.glob("tests/*.py"), *ROOT.glob("exercises/*.py")]:
        named |= {m[1] for m in re.finditer(r'need\("[\w-]+", "([\w-]+)"\)', path.read_text())}
    for path in ROOT.glob("notebooks/*.ipynb"):
        for line in re.findall(r"%%needs ([\w -]+)", path.read_text()):
            named |= set(line.split()[1::2])
    return named


def test_every_package_a_test_or_notebook_needs_is_in_apt_txt():
    needed = packages_the_course_needs()
    assert needed and needed <= set(PACKAGES), needed - set(PACKAGES)


def test_ci_and_the_devcontainer_install_from_apt_txt():
    assert "mapfile -t packages < apt.txt" in (ROOT / ".ci" / "run").read_text()
    devcontainer = json.loads((ROOT / ".devcontainer" / "devcontainer.json").read_text())
    assert "xargs -a apt.txt apt-get install" in devcontainer["postCreateCommand"]
    assert "pip install -r requirements.txt" in devcontainer["postCreateCommand"]
    assert "apt.txt" in (ROOT / "README.md").read_text()


# How docs/install.md names the program each package of apt.txt installs.
PROGRAM_NAMES = {
    "nginx-light": "nginx",
    "chromium": "Chromium",
    "curl": "curl",
    "redis-server": "Redis",
    "nodejs": "Node.js",
}


def test_the_install_page_names_every_program_apt_txt_installs():
    assert set(PROGRAM_NAMES) == set(PACKAGES), "name the new package's program here"
    page = " ".join((ROOT / "docs" / "install.md").read_text().split())
    listed = re.search(r"listed in `apt.txt`: ([^(]+?) \(", page)
    assert listed, "docs/install.md no longer lists apt.txt's programs as this test reads it"
    named = re.split(r", | and ", listed[1])
    assert named == [PROGRAM_NAMES[package] for package in PACKAGES]


def test_the_readme_names_the_lessons_whose_page_has_no_benchmark_plot():
    """Step 1 of "Do a lesson" says what a lesson's page shows: the lessons it names as
    having no benchmark are exactly those whose page shows none."""
    from lessons import load_lessons
    from lessons.pages import bench_plot

    readme = " ".join((ROOT / "README.md").read_text().split())
    said = re.search(r"lessons (\d\d) and (\d\d) have no benchmark", readme)
    assert said, "the README no longer says which lessons have no benchmark"
    without = [lesson.number for lesson in load_lessons() if bench_plot(lesson.number) is None]
    assert [int(number) for number in said.groups()] == without


def test_every_relative_link_in_the_readme_and_docs_leads_somewhere():
    pages = [ROOT / "README.md", *ROOT.glob("docs/*.md")]
    broken = [
        f"{page.name}: {target}"
        for page in pages
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text())
        if not (page.parent / target).exists()
    ]
    assert not broken, broken


# What requirements-lessons.txt promises: the lessons, exercises and graders run with it alone.
IMPORT_EVERYTHING_WITHOUT = """
import importlib, pkgutil, sys
for name in sys.argv[1:]:
    sys.modules[name] = None  # importing it now raises ImportError, as if not installed
import lab, lessons, streamlib
modules = [f"lessons.{name}" for name in lessons.lesson_names()]
for package in (lessons, streamlib, lab):
    modules += [f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__)]
sys.path[:0] = ["exercises", "exercises/solutions"]
modules += [path.stem for path in sorted(__import__("pathlib").Path("exercises").glob("test_*.py"))]
for module in modules:
    if module not in ("lab.notebook", "lessons.__main__"):  # notebook-only; runs the server
        importlib.import_module(module)
from lessons.course import build_app
from streamlib import StreamStats
build_app(lessons.load_lessons(), StreamStats())
print(len(modules), "modules")
"""


def requirement_closure(requirements_file: Path) -> set[str]:
    """The distributions a requirements file installs: those it names, with their
    dependencies (and the extras it asks for), read from what is installed here."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    lines = [line.split("#")[0].strip() for line in requirements_file.read_text().splitlines()]
    todo = [Requirement(line) for line in lines if line and not line.startswith(("-r", "-e"))]
    found = {"streamlib"}  # the -e . line: this project
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue  # not for this platform
        found.add(name)
        for dependency in map(Requirement, requires):
            extras = [{"extra": extra} for extra in requirement.extras] or [{"extra": ""}]
            wanted = dependency.marker is None or any(map(dependency.marker.evaluate, extras))
            if wanted and canonicalize_name(dependency.name) not in found:
                todo.append(dependency)
    return found


def test_the_lessons_and_graders_need_nothing_outside_requirements_lessons_txt():
    """Every lesson, library and grader module imports with every other package hidden."""
    import subprocess
    import sys
    from importlib import metadata

    from packaging.utils import canonicalize_name

    allowed = requirement_closure(ROOT / "requirements-lessons.txt")
    assert {"werkzeug", "gunicorn", "gevent", "requests", "pytest"} <= allowed
    hidden = sorted(
        module
        for module, dists in metadata.packages_distributions().items()
        if not {canonicalize_name(dist) for dist in dists} & allowed
        and module not in sys.stdlib_module_names
    )
    assert {"matplotlib", "playwright", "hypothesis", "IPython"} <= set(hidden)
    imported = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING_WITHOUT, *hidden],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert imported.returncode == 0, imported.stderr[-2000:]


def test_each_lighter_requirements_file_builds_on_the_one_before():
    assert "-r requirements-lessons.txt" in (ROOT / "requirements-notebooks.txt").read_text()
    assert "-r requirements-notebooks.txt" in (ROOT / "requirements.txt").read_text()


def test_ci_runs_exactly_the_readme_s_test_command():
    first_block = (ROOT / "README.md").read_text().split("```")[1]
    test_command = first_block.strip().splitlines()[-1].split("#")[0].strip()
    assert test_command.startswith("python -m pytest"), test_command
    ci_lines = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci_lines[-1] == test_command


def test_pyproject_names_its_license_the_current_way():
    """A TOML table (``{ text = "MIT" }``) makes setuptools warn twice on every install."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"


def test_the_graders_run_on_the_lessons_install_without_pytest_xdist():
    """pytest's settings must name no option of a plugin that requirements-lessons.txt
    leaves out: an ``addopts`` of ``--dist`` stopped every grader there with 'unrecognized
    arguments'."""
    import subprocess
    import sys

    collected = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider"),
            *("--collect-only", "-q", "exercises/test_01_buffered_vs_streamed.py"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert collected.returncode == 0, collected.stdout[-1000:] + collected.stderr[-1000:]
