"""The index and the lesson pages as a learner sees them, in Chromium, on a laptop and on
a phone: every line of code visible, lesson 01's plot there without scrolling.

Each test saves screenshots in its ``tmp_path`` for a human to look at, and measures what
they show from inside the page, so that it can fail (issue 31, point 7).
"""

import pytest

from lessons import load_lessons

PAGES = ["/", *(f"/lessons/{lesson.number:02d}" for lesson in load_lessons())]
SCREENS = {"laptop": {"width": 1366, "height": 768}, "phone": {"width": 375, "height": 740}}

# The <pre> blocks whose text is wider than their box. A box that scrolls sideways counts
# too: its scroll bar is hidden until touched on phones and on many laptops, so the end
# of a line ("# prints as it comes") looks cut off.
CUT_CODE = """[...document.querySelectorAll('pre')]
  .filter(pre => pre.scrollWidth > pre.clientWidth)
  .map(pre => ({text: pre.textContent.slice(0, 80), wide: pre.scrollWidth,
                box: pre.clientWidth}))"""
PLOT = """(() => {
  const image = document.querySelector('img[src$="/bench.png"]');
  return {complete: image.complete, width: image.naturalWidth, loading: image.loading,
          below: image.getBoundingClientRect().top - innerHeight, scrolled: scrollY};
})()"""


@pytest.fixture(scope="module")
def browser_page():
    from real_programs import chromium_page

    with chromium_page() as page:
        refused: list[tuple[str, str]] = []
        page.on(
            "console",
            lambda message: (
                refused.append((page.url, message.text))
                if "Content Security Policy" in message.text
                else None
            ),
        )
        page.refused = refused  # what the pages' policy refused (nothing, unless a style broke)
        yield page


@pytest.mark.browser
@pytest.mark.live
@pytest.mark.parametrize("screen", SCREENS)
def test_no_line_of_code_is_cut_off(course_process, browser_page, screen, tmp_path):
    """On every page, each ``<pre>`` fits its text in its box (long lines wrap)."""
    page = browser_page
    page.set_viewport_size(SCREENS[screen])
    cut = {}
    try:
        for path in PAGES:
            page.goto(course_process.url + path)
            if found := page.evaluate(CUT_CODE):
                cut[path] = found
        page.goto(course_process.url + "/lessons/01")
        shot = tmp_path / f"lesson-01-code-{screen}.png"
        page.locator("pre").first.screenshot(path=shot)
    finally:
        page.set_viewport_size(SCREENS["laptop"])
    assert cut == {}, f"code cut off at {SCREENS[screen]['width']} px: {cut}; see {shot}"
    assert page.refused == []


@pytest.mark.browser
@pytest.mark.live
@pytest.mark.parametrize("screen", SCREENS)
def test_lesson_01s_plot_loads_with_the_page(course_process, browser_page, screen, tmp_path):
    """The benchmark plot sits below the first screen; when the page has loaded it is there,
    with nothing scrolled (a ``loading="lazy"`` image waits until it is scrolled near)."""
    page = browser_page
    page.set_viewport_size(SCREENS[screen])
    try:
        page.goto(course_process.url + "/lessons/01")  # returns at the page's load event
        plot = page.evaluate(PLOT)
        shot = tmp_path / f"lesson-01-{screen}.png"
        page.screenshot(path=shot, full_page=True)
    finally:
        page.set_viewport_size(SCREENS["laptop"])
    assert plot["below"] > 0 and plot["scrolled"] == 0, plot  # out of sight, not scrolled to
    assert plot["loading"] != "lazy", plot
    assert plot["complete"] and plot["width"] > 0, (plot, f"see {shot}")
    assert page.refused == []
