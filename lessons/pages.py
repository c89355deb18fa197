"""Each lesson as a page at ``/lessons/NN``: its text, routes, measurements and exercise.

A lesson's text is its module's docstring, written in reStructuredText, so the page is
rendered by docutils, the library made for it (Python's own documentation tools build on
it). The table of contents lists the bold lead of each paragraph (``**Ranges.**``), which
is how the lessons mark their topics. The measurements are the lesson's section of
``bench/results/README.md`` (Markdown, written by ``python -m bench``), rendered by
mistune. Every route with an example gets a "watch it" link to the stream inspector, and
every RFC section, PEP, draft and standard the text cites gets a link under "Sources"
(``lessons.sources``), so a claim can be checked where it is made.
"""

import re
from collections.abc import Callable, Sequence
from html import escape
from pathlib import Path
from urllib.parse import quote

import mistune
from docutils import io, nodes
from docutils.core import publish_doctree, publish_parts
from werkzeug.exceptions import NotFound

from lessons import load_lesson
from lessons.html_page import html_page
from lessons.routes import Lesson, send_text
from lessons.sources import sources

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
# Docstrings are the course's own text, but a page never runs what it renders.
DOCUTILS_SETTINGS = {
    "raw_enabled": False,
    "file_insertion_enabled": False,
    "report_level": 5,  # the tests check that no docstring has an error; learners see none
    "warning_stream": False,
}
WORDS_A_MINUTE = 200
MARKDOWN = mistune.create_markdown(escape=True, plugins=["table"])

STYLE = """\
  body { font: 16px/1.55 system-ui, sans-serif; max-width: 52rem; margin: 1.5rem auto;
         padding: 0 1rem; }
  code, pre, .literal { background: #f4f4f4; padding: 0 .2rem; }
  pre { padding: .5rem; white-space: pre-wrap; overflow-wrap: anywhere; }  /* no line hidden */
  table { border-collapse: collapse; display: block; overflow-x: auto; }
  td, th { border: 1px solid #ddd; padding: .2rem .5rem; text-align: left; }
  .align-right { text-align: right; } .align-center { text-align: center; }
  nav a { margin-right: 1rem; } img { max-width: 100%; height: auto; }
  .watch { display: inline-block; padding: .1rem .6rem; border: 1px solid #36c;
           border-radius: .3rem; text-decoration: none; }
  .watch:focus { outline: 3px solid #fa0; }
"""

BODY = """\
<nav aria-label="lessons"><a href="/">All lessons</a>{previous}{next}</nav>
<h1>Lesson {number:02d}: {title}</h1>
<p><em>{summary}</em></p>
<p>Reading: about {minutes} min. {notebook_time}Run it alone:
<code>python lessons/{name}.py</code>.</p>
<nav aria-label="contents"><h2>Contents</h2><ol>{contents}</ol></nav>
<article>{text}</article>
<h2 id="routes">Its routes</h2>
<ul>{routes}</ul>
<h2 id="measured">Measured</h2>
{measured}
<h2 id="practise">Practise</h2>
<p>The notebook measures every claim above on a live server:
<code>jupyter lab notebooks/{name}.ipynb</code>.</p>
<p>The exercise: <a href="/lessons/{number:02d}/exercise.py">exercises/{name}.py</a>; grade
it with <code>python -m pytest exercises/test_{name}.py</code>.</p>
<h2 id="sources">Sources</h2>
{sources}
"""


def text_and_contents(docstring: str) -> tuple[str, list[tuple[str, str]]]:
    """A lesson docstring as HTML, and its contents: (anchor, title) for each paragraph
    that starts with a bold lead, which gets that anchor. The first line, which repeats
    the lesson's title, is left to the page's heading."""
    tree = publish_doctree(docstring, settings_overrides=DOCUTILS_SETTINGS)
    first = next(iter(tree.findall(nodes.paragraph)), None)
    if first is not None and first.astext().startswith("Lesson "):
        first.parent.remove(first)  # "Lesson NN: title. ...": the page's heading says it
    contents = []
    for paragraph in tree.findall(nodes.paragraph):
        lead = paragraph.children[0] if paragraph.children else None
        if isinstance(lead, nodes.strong):
            title = lead.astext().rstrip(".")
            anchor = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
            paragraph["ids"].append(anchor)
            contents.append((anchor, title))
    parts = publish_parts(
        source=tree,
        source_class=io.DocTreeInput,
        reader="doctree",
        writer="html5",
        settings_overrides=DOCUTILS_SETTINGS,
    )
    return parts["body"], contents


def bench_section(number: int) -> str | None:
    """The lesson's section of the committed benchmark results (Markdown), or None."""
    report = RESULTS / "README.md"
    if not report.exists():
        return None
    found = re.search(
        rf"^## Lesson {number:02d}\b.*?(?=^## Lesson |\Z)", report.read_text(), re.M | re.S
    )
    return found.group(0) if found else None


def bench_plot(number: int) -> Path | None:
    """The lesson's benchmark plot, ``bench/results/NN_*.png``, if there is one."""
    return next(iter(sorted(RESULTS.glob(f"{number:02d}_*.png"))), None)


def measured_html(number: int) -> str:
    """The benchmark's table, targets and plot for lesson ``number``, as HTML."""
    section = bench_section(number)
    if section is None:
        return (
            "<p>This lesson's figures are in its notebook; the benchmarks"
            f" (<code>python -m bench</code>) have no section {number:02d}.</p>"
        )
    without_images = "\n".join(
        line for line in section.splitlines()[1:] if not line.startswith("![")
    )
    # Loaded with the page (no loading="lazy"): the plot is what a reader of the figures
    # comes for, and a lazy image waits until it is scrolled near.
    plot = (
        f'<p><img src="/lessons/{number:02d}/bench.png" alt="the benchmark of lesson'
        f' {number:02d}"></p>'
        if bench_plot(number)
        else ""
    )
    return aligned_by_class(MARKDOWN(without_images)) + plot


def aligned_by_class(html: str) -> str:
    """mistune's table cells with their alignment as a class instead of a ``style``
    attribute, which the page's Content-Security-Policy would refuse (``style-src`` lists
    the page's own ``<style>`` block only)."""
    return re.sub(r' style="text-align:(left|center|right)"', r' class="align-\1"', html)


def notebook_time(name: str) -> str:
    """ "Its notebook runs in about N s." from the notebook's first cell, or nothing."""
    notebook = ROOT / "notebooks" / f"{name}.ipynb"
    stated = (
        re.search(r"takes about (\d+ (?:s|min))\.", notebook.read_text())
        if notebook.exists()
        else None
    )
    return f"Its notebook runs in about {stated.group(1)}. " if stated else ""


def route_items(lesson: Lesson) -> str:
    """One list item per route: methods, path, what it does, and a "watch it" link for a
    route the inspector can fetch as it stands (a GET example)."""
    items = []
    for route in lesson.routes:
        limits = f" <em>({escape(route.limits)})</em>" if route.limits else ""
        line = (
            f"<code>{' '.join(route.methods)} {escape(route.path)}</code>: {escape(route.summary)}"
        )
        if route.path.startswith("/demo/"):
            line += f' <a href="{escape(route.example or route.path)}">open the page</a>'
        elif route.example and "GET" in route.methods:
            href = "/inspect?path=" + quote(route.example, safe="")
            line += f' <a class="watch" href="{escape(href)}">watch it</a>'
        items.append(f"<li>{line}{limits}</li>")
    for path, label in lesson.demos:
        items.append(f'<li>Demo: <a href="{escape(path)}">{escape(label)}</a></li>')
    return "".join(items)


def sources_html(docstring: str) -> str:
    """The sources ``docstring`` cites, as a list of links (``noreferrer``: the course's
    own addresses stay on this machine)."""
    cited = sources(docstring)
    if not cited:
        return "<p>This lesson cites no published source; its notebook measures its claims.</p>"
    items = "".join(
        f'<li><a href="{escape(url)}" rel="noreferrer">{escape(label)}</a></li>'
        for label, url in cited
    )
    return f"<ul>{items}</ul>"


def render_lesson_page(lesson: Lesson, lessons: Sequence[Lesson]) -> str:
    """The page of ``lesson``, with links to the lessons before and after it in ``lessons``."""
    docstring = load_lesson(lesson.name).__doc__ or ""
    text, contents = text_and_contents(docstring)
    numbers = [other.number for other in lessons]
    at = numbers.index(lesson.number)
    previous = lessons[at - 1] if at > 0 else None
    following = lessons[at + 1] if at + 1 < len(lessons) else None
    body = BODY.format(
        number=lesson.number,
        name=lesson.name,
        title=escape(lesson.title),
        summary=escape(lesson.summary),
        minutes=max(1, round(len(docstring.split()) / WORDS_A_MINUTE)),
        notebook_time=notebook_time(lesson.name),
        previous=link(previous, "previous: ", rel="prev"),
        next=link(following, "next: ", rel="next"),
        contents="".join(f'<li><a href="#{a}">{escape(t)}</a></li>' for a, t in contents),
        text=text,
        routes=route_items(lesson),
        measured=measured_html(lesson.number),
        sources=sources_html(docstring),
    )
    return html_page(f"Lesson {lesson.number:02d}: {lesson.title}", STYLE, body)


def link(lesson: "Lesson | None", prefix: str, rel: str) -> str:
    if lesson is None:
        return ""
    return (
        f'<a rel="{rel}" href="/lessons/{lesson.number:02d}">{prefix}'
        f"{lesson.number:02d}. {escape(lesson.title)}</a>"
    )


def lesson_of(environ: dict, lessons: Sequence[Lesson]) -> Lesson:
    """The lesson that ``/lessons/<number>`` names, or a 404."""
    number = environ["wsgiorg.routing_args"][1]["number"]
    found = next((lesson for lesson in lessons if lesson.number == number), None)
    if found is None:
        raise NotFound(f"no lesson {number}; the index at / lists them")
    return found


def page_routes(lessons: Sequence[Lesson]) -> dict[str, Callable]:
    """The course's own pages for ``lessons``: each lesson's page, its benchmark plot and
    its exercise stub, by werkzeug rule."""

    def page(environ: dict, start_response: Callable) -> list[bytes]:
        html = render_lesson_page(lesson_of(environ, lessons), lessons)
        return send_text(environ, start_response, "text/html", html)

    def plot(environ: dict, start_response: Callable) -> list[bytes]:
        found = bench_plot(lesson_of(environ, lessons).number)
        if found is None:
            raise NotFound("this lesson has no benchmark plot")
        data = found.read_bytes()
        start_response(
            "200 OK", [("Content-Type", "image/png"), ("Content-Length", str(len(data)))]
        )
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [data]

    def exercise(environ: dict, start_response: Callable) -> list[bytes]:
        stub = ROOT / "exercises" / f"{lesson_of(environ, lessons).name}.py"
        if not stub.exists():
            raise NotFound("no exercise file here")
        return send_text(environ, start_response, "text/plain", stub.read_text())

    return {
        "/lessons/<int:number>": page,
        "/lessons/<int:number>/bench.png": plot,
        "/lessons/<int:number>/exercise.py": exercise,
    }
