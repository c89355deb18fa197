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


def test_every_relative_link_in_the_readme_and_docs_leads_somewhere():
    pages = [ROOT / "README.md", *ROOT.glob("docs/*.md")]
    broken = [
        f"{page.name}: {target}"
        for page in pages
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text())
        if not (page.parent / target).exists()
    ]
    assert not broken, broken
