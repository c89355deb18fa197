"""Each lesson's page at /lessons/NN: its docstring rendered, contents, links, figures."""

import re
from html.parser import HTMLParser
from urllib.parse import unquote

import pytest
from docutils import nodes
from docutils.core import publish_doctree
from hypothesis import given, settings
from hypothesis import strategies as st

from lessons import lesson_names, load_lesson, load_lessons
from lessons.course import build_app
from lessons.pages import DOCUTILS_SETTINGS, bench_section
from lessons.sources import rfc_sections, sources
from streamlib import call_app

LESSONS = load_lessons()


def get(app, path: str):
    response = call_app(app, path)
    return response, response.read()


class Links(HTMLParser):
    """Every ``id`` and ``href`` of a page, and the ``src`` of its images."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        found = dict(attrs)
        if "id" in found:
            self.ids.add(found["id"])
        if tag == "a" and "href" in found:
            self.hrefs.append(found["href"])
        if tag == "img":
            self.images.append(found["src"])


def links_of(html: bytes) -> Links:
    parser = Links()
    parser.feed(html.decode())
    return parser


@pytest.mark.parametrize("name", lesson_names())
def test_every_lesson_docstring_is_valid_restructuredtext(name):
    """A malformed table or an unclosed ``literal`` would show as an error on the page."""
    settings = {**DOCUTILS_SETTINGS, "report_level": 2}
    tree = publish_doctree(load_lesson(name[:2]).__doc__, settings_overrides=settings)
    problems = [message.astext()[:200] for message in tree.findall(nodes.system_message)]
    assert not problems, problems


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.name)
def test_a_lesson_page_has_its_text_contents_routes_and_practice(course_app, lesson):
    response, page = get(course_app, f"/lessons/{lesson.number:02d}")
    links = links_of(page)
    contents = [href[1:] for href in links.hrefs if href.startswith("#")]
    assert response.status == "200 OK" and f"Lesson {lesson.number:02d}" in page.decode()
    assert len(contents) >= 2 and set(contents) <= links.ids, contents  # every anchor exists
    assert f"/lessons/{lesson.number:02d}/exercise.py" in links.hrefs
    assert f"notebooks/{lesson.name}.ipynb" in page.decode()
    first_lead = re.search(r"\*\*(.+?)\.?\*\*", load_lesson(lesson.name).__doc__).group(1)
    assert first_lead.rstrip(".") in page.decode()


def test_pages_link_previous_and_next_in_course_order(course_app):
    numbers = [f"{lesson.number:02d}" for lesson in LESSONS]
    for at, number in enumerate(numbers):
        hrefs = links_of(get(course_app, f"/lessons/{number}")[1]).hrefs
        neighbours = {h for h in hrefs if re.fullmatch(r"/lessons/\d\d", h)}
        expected = {f"/lessons/{n}" for n in numbers[max(0, at - 1) : at + 2] if n != number}
        assert neighbours == expected, (number, neighbours)


def test_every_watch_it_link_opens_the_inspector_on_a_route_that_answers(course_app):
    watched = 0
    for lesson in LESSONS:
        for href in links_of(get(course_app, f"/lessons/{lesson.number:02d}")[1]).hrefs:
            if href.startswith("/inspect?path="):
                inspector, _ = get(course_app, href)
                route = call_app(course_app, unquote(href.removeprefix("/inspect?path=")))
                route.close()
                assert inspector.status == "200 OK" and route.status_code == 200, href
                watched += 1
    assert watched >= 15


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.name)
def test_a_page_shows_the_lessons_measurements_where_the_bench_has_them(course_app, lesson):
    page = get(course_app, f"/lessons/{lesson.number:02d}")[1].decode()
    if bench_section(lesson.number) is None:
        assert "have no section" in page
        return
    assert "<table>" in page and "met" in page and "MISSED" not in page
    image = links_of(page.encode()).images[0]
    response, data = get(course_app, image)
    assert response.header("Content-Type") == "image/png" and data.startswith(b"\x89PNG")


def test_the_index_links_every_lesson_page(course_app):
    hrefs = set(links_of(get(course_app, "/")[1]).hrefs)
    assert {f"/lessons/{lesson.number:02d}" for lesson in LESSONS} <= hrefs
    assert "/inspect" in hrefs


@pytest.mark.parametrize(
    "path", ["/lessons/99", "/lessons/0", "/lessons/abc", "/lessons/04/bench.png", "/lessons/"]
)
def test_what_is_not_a_lesson_page_is_a_404(course_app, path):
    response, body = get(course_app, path)
    assert response.status.startswith("404") and body.startswith(b"404 Not Found")


def test_the_exercise_link_shows_the_exercise_file(course_app):
    response, body = get(course_app, "/lessons/11/exercise.py")
    assert response.header("Content-Type").startswith("text/plain")
    assert b"def save_upload(" in body


def test_pages_answer_head_without_a_body(course_app):
    for path in ["/lessons/02", "/lessons/02/bench.png", "/inspect"]:
        response = call_app(build_app(LESSONS), path, "HEAD")
        assert response.status == "200 OK" and response.read() == b"", path


def test_the_index_has_a_watch_it_link_for_every_route_the_inspector_can_fetch(course_app):
    hrefs = links_of(get(course_app, "/")[1]).hrefs
    watched = {unquote(h.removeprefix("/inspect?path=")) for h in hrefs if "?path=" in h}
    examples = {
        route.example
        for lesson in LESSONS
        for route in lesson.routes
        if route.example and "GET" in route.methods and not route.path.startswith("/demo/")
    }
    assert watched == examples and len(examples) >= 15


@settings(max_examples=150, deadline=None)
@given(
    tail=st.one_of(
        st.integers(-(10**30), 10**30).map(str),
        st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30),
        st.sampled_from(["02/bench.png", "11/exercise.py", "02/../03", "1e3", "٣", "%00"]),
    ),
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT"]),
)
def test_no_lesson_page_path_makes_a_500(tail, method):
    from urllib.parse import quote

    response = call_app(build_app(LESSONS), "/lessons/" + quote(tail, safe="/"), method)
    response.read()
    assert response.status_code in (200, 301, 308, 404, 405), (tail, response.status)


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.name)
def test_a_page_ends_with_a_link_to_every_rfc_section_its_text_cites(course_app, lesson):
    page = get(course_app, f"/lessons/{lesson.number:02d}")[1].decode()
    sources = page[page.index('<h2 id="sources">') :]
    linked = re.findall(r'<a href="(https://[^"]+)" rel="noreferrer">', sources)
    cited = {
        f"https://www.rfc-editor.org/rfc/rfc{rfc}#section-{section}"
        for rfc, section in rfc_sections(load_lesson(lesson.name).__doc__)
    }
    assert linked and cited <= set(linked), cited - set(linked)
    assert len(linked) == len(set(linked))  # each source once


def test_sources_are_listed_in_the_order_the_text_first_cites_them():
    text = (
        "PEP 3333 says so. RFC 9112 section 6.1 and, later, section 6.3. The Fetch standard"
        " agrees (whatwg/fetch issue 568 and pull request 1788); see https://redis.io/commands/xrange/."
        " Not a source: https://127.0.0.1:8443/ticks. Draft -05 again: ietf-draft-05."
    )
    assert [label for label, _ in sources(text)] == [
        "PEP 3333",
        "RFC 9112 section 6.1",
        "RFC 9112 section 6.3",
        "Fetch standard",
        "whatwg/fetch issue 568",
        "whatwg/fetch pull request 1788",
        "redis.io/commands/xrange/",
        "draft-ietf-httpbis-resumable-upload-05",
    ]
