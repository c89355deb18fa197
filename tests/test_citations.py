"""Every RFC section the course cites exists, in the RFC it names.

A citation is a claim a reader checks: ``RFC 9110 section 14.1.3`` sends them to a section
that is not there (it was, once, in this course). The sections are in
``tests/rfc_sections.py``, read from the RFCs themselves; the citations are found by
``lessons.sources``, which also lists them on each lesson's page.
"""

import ast
import json
import re
import tokenize
from decimal import Decimal
from pathlib import Path

import pytest

from lessons.sources import rfc_sections as citations
from tests.rfc_sections import SECTIONS

ROOT = Path(__file__).resolve().parent.parent
READ = ["README.md", "docs", "lessons", "streamlib", "lab", "notebooks", "exercises", "bench"]
SUFFIXES = {".py", ".md", ".ipynb", ".html", ".js", ".txt"}


def text_of(path: Path) -> str:
    """The prose and code of a file: a notebook's cell sources, anything else as it is."""
    if path.suffix == ".ipynb":
        return "\n".join("".join(cell["source"]) for cell in json.loads(path.read_text())["cells"])
    return path.read_text(errors="replace")


def course_files() -> list[Path]:
    files = []
    for name in READ:
        path = ROOT / name
        candidates = [path] if path.is_file() else sorted(path.rglob("*"))
        files += [p for p in candidates if p.suffix in SUFFIXES and p.is_file()]
    return files


def test_the_reader_finds_each_form_of_citation():
    text = (
        "RFC 9110 section 14.1.2; RFC 9112, §6.1. RFC 9113 (section\n6.5.2), RFC 9112 7.1,"
        " section 11.5 of RFC 4918 and rfc9110.html#section-13.2.2"
    )
    assert sorted(citations(text)) == sorted(
        [
            (9110, "14.1.2"),
            (9112, "6.1"),
            (9113, "6.5.2"),
            (9112, "7.1"),
            (4918, "11.5"),
            (9110, "13.2.2"),
        ]
    )


def test_a_bare_section_cites_the_document_named_before_it():
    assert citations("RFC 9110 asks it. A server MAY ignore it (section 14.2).") == [(9110, "14.2")]
    assert citations("The draft says so (section 4.2).") == []
    assert citations("A 304 carries only validators (section 15.4.5).") == [(None, "15.4.5")]


def wrong_citations(text: str) -> list[str]:
    """The RFC sections ``text`` cites that are not in the RFC, or not said of any RFC."""
    return [
        f"RFC {rfc} section {section}" if rfc else f"section {section} of no RFC named before it"
        for rfc, section in citations(text)
        if rfc is None or section not in SECTIONS.get(rfc, {})
    ]


def test_a_section_that_does_not_exist_is_caught():
    assert wrong_citations("ranges: RFC 9110 section 14.1.3") == ["RFC 9110 section 14.1.3"]
    assert wrong_citations("ranges: RFC 9110 section 14.1.2; its 416 (section 15.5.17)") == []
    assert wrong_citations("cut short (section 6.3)") == ["section 6.3 of no RFC named before it"]


def test_the_course_cites_rfc_sections():
    cited = {c for path in course_files() for c in citations(text_of(path))}
    assert len(cited) >= 20, cited


@pytest.mark.parametrize("path", course_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_rfc_section_cited_exists(path):
    wrong = wrong_citations(text_of(path))
    assert not wrong, f"{path.name} cites what is not in tests/rfc_sections.py: {wrong}"


# Figures: a sentence that says where it was measured (the benchmark) must quote what the
# benchmark's committed results say, to the precision it quotes.
RESULTS = ROOT / "bench" / "results" / "README.md"
CITES_THE_BENCHMARK = re.compile(r"bench/results|the benchmark|python -m bench")
FIGURE = re.compile(r"(?<![\w.-])\d[\d,]*(?:\.\d+)?(?=x?(?:[^\w-]|$))")  # "0.60x" too


def prose_of(path: Path) -> str:
    """What a reader reads as text: a notebook's Markdown cells, a module's docstrings and
    comments, anything else whole."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    if path.suffix != ".py":
        return path.read_text()
    tree = ast.parse(path.read_text())
    documented = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    nodes = [node for node in ast.walk(tree) if isinstance(node, documented)]
    docstrings = [ast.get_docstring(node) or "" for node in nodes]
    with path.open("rb") as source:
        tokens = tokenize.tokenize(source.readline)
        comments = " ".join(t.string.lstrip("# ") for t in tokens if t.type == tokenize.COMMENT)
    return "\n\n".join([*docstrings, comments])


def sentences_citing_the_benchmark(text: str) -> list[str]:
    found = []
    for paragraph in re.split(r"\n\s*\n", text):
        for sentence in re.split(r"(?<=[.;])\s+(?=[A-Z(`])", " ".join(paragraph.split())):
            if CITES_THE_BENCHMARK.search(sentence):
                found.append(sentence)
    return found


def part_cited(sentence: str, results: str) -> str:
    """The part of ``results`` the sentence points to: a subsection whose title it quotes
    ("where the microseconds go"), else the section of the lesson it names, else all."""
    for title in re.findall(r"^### (.+)$", results, re.M):
        if title.lower() in sentence.lower():
            return results.split(f"### {title}")[1].split("\n#")[0]
    if named := re.search(r"lesson (\d\d)", sentence, re.I):
        found = re.search(rf"^## Lesson {named[1]}\b.*?(?=^## |\Z)", results, re.M | re.S)
        if found:
            return found[0]
    return results


def figures_not_in(sentence: str, results: str) -> list[str]:
    """The figures of ``sentence`` that no figure of the part of ``results`` it points to
    rounds to."""
    part = part_cited(sentence, results)
    measured = [Decimal(figure.replace(",", "")) for figure in FIGURE.findall(part)]
    missing = []
    for figure in FIGURE.findall(re.sub(r"lesson \d\d", "", sentence, flags=re.I)):
        claimed = Decimal(figure.replace(",", ""))
        step = Decimal(1).scaleb(claimed.as_tuple().exponent)  # 12.8 -> 0.1
        if not any(abs(value - claimed) <= step / 2 for value in measured):
            missing.append(figure)
    return missing


def test_a_figure_the_benchmark_never_measured_is_caught():
    results = "| wake | one shared event | 6.82 |\n| write | sendall | 25.21 |"
    assert figures_not_in("6.8 us a client in bench/results", results) == []
    assert figures_not_in("25 us (bench/results), not 31", results) == ["31"]


def test_a_figure_is_checked_against_the_part_of_the_results_the_sentence_names():
    results = "## Lesson 07\n\n| a | 17.3 |\n\n### Where the microseconds go\n\n| wake | 19.24 |\n"
    quoted = 'waking took {} us (bench/results, lesson 07\'s "where the microseconds go")'
    assert figures_not_in(quoted.format(19), results) == []
    assert figures_not_in(quoted.format(17), results) == ["17"]  # 17.3 is another table's


@pytest.mark.parametrize(
    "path",
    [p for p in course_files() if p != RESULTS and "bench" not in p.relative_to(ROOT).parts],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_every_figure_credited_to_the_benchmark_is_in_its_results(path):
    results = RESULTS.read_text()
    wrong = {
        sentence: missing
        for sentence in sentences_citing_the_benchmark(prose_of(path))
        if (missing := figures_not_in(sentence, results))
    }
    assert not wrong, f"{path.name}: figures not in bench/results/README.md: {wrong}"
