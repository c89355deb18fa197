"""The stream inspector as a learner sees it, in Chromium: what its screen shows, measured.

Each test saves a screenshot in its ``tmp_path`` for a human to look at (pytest keeps the
last three runs' under ``/tmp/pytest-of-$USER``), and measures what the screenshot shows
from inside the page (boxes, texts), so that it can fail: headings that overlap, an axis
without a label or with ticks at 0/18/35/53/70, a count of open streams that stays up after
the streams ended (issue 31, point 7).
"""

import itertools
import math
import re
from urllib.parse import quote

import pytest
import requests

from lab.browser import wait_until

LANES = "window.inspection.lanes"
ALL_DONE = f"{LANES}.length > 0 && {LANES}.every(lane => lane.doneAt !== null)"
LAPTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 740}

# The text of each lane's heading (a Range: the h2's box keeps to its column, its text may
# not) and the lane's own box, as [left, top, right, bottom] in CSS pixels.
HEADINGS = """[...document.querySelectorAll('#lanes section')].map(section => {
  const range = document.createRange();
  range.selectNodeContents(section.querySelector('h2'));
  const [t, s] = [range.getBoundingClientRect(), section.getBoundingClientRect()];
  return {text: [t.left, t.top, t.right, t.bottom], lane: [s.left, s.top, s.right, s.bottom]};
})"""
# Every text of the plot: its class, axis, words and box.
PLOT_TEXTS = """[...document.querySelectorAll('#timeline text')].map(node => {
  const box = node.getBoundingClientRect();
  return {kind: node.getAttribute('class'), axis: node.dataset.axis, text: node.textContent,
          box: [box.left, box.top, box.right, box.bottom]};
})"""
UNITS = {"bytes": 1, "kB": 1_000, "MB": 1_000_000}


def inspect_url(base: str, path: str, path2: str) -> str:
    return f"{base}/inspect?path={quote(path, safe='')}&path2={quote(path2, safe='')}"


def overlap(a: list[float], b: list[float]) -> bool:
    """Whether two boxes [left, top, right, bottom] share any area."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def inside(a: list[float], b: list[float], slack: float = 0.5) -> bool:
    """Whether box ``a`` lies within box ``b`` (``slack``: CSS pixels of rounding)."""
    return a[0] >= b[0] - slack and a[2] <= b[2] + slack


def round_scale(ticks: list[float]) -> bool:
    """Whether ``ticks`` are 0, s, 2s, 3s... with a step s of 1, 2 or 5 times a power of ten.

    >>> round_scale([0, 20, 40, 60, 80]), round_scale([0, 18, 35, 53, 70])
    (True, False)
    """
    if len(ticks) < 2 or ticks[0] != 0:
        return False
    step = ticks[1] - ticks[0]
    if step <= 0 or any(b - a != step for a, b in itertools.pairwise(ticks)):
        return False
    mantissa = step / 10 ** math.floor(math.log10(step))
    return any(math.isclose(mantissa, m) for m in (1, 2, 5))


def test_the_round_scale_check_refuses_the_ticks_the_issue_saw():
    assert round_scale([0, 20, 40, 60, 80]) and round_scale([0, 500, 1000])
    for ticks in ([0, 18, 35, 53, 70], [0, 122, 245, 367, 490], [0, 25, 50, 75, 100], [0, 30]):
        assert not round_scale(ticks), ticks


@pytest.fixture(scope="module")
def browser_page():
    from real_programs import chromium_page

    with chromium_page() as page:
        yield page


def watch_two(page, base: str, size: int = 100_000) -> None:
    """Open the inspector on /buffered beside /streamed, as its own example link does, and
    wait until both have arrived."""
    query = f"?size={size}&piece={size // 10}&delay=0.05"
    page.goto(inspect_url(base, "/buffered" + query, "/streamed" + query))
    wait_until(page, ALL_DONE, timeout=20_000)


@pytest.mark.browser
@pytest.mark.live
@pytest.mark.parametrize("screen", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_two_paths_have_headings_that_do_not_overlap(
    course_process, browser_page, screen, tmp_path
):
    """Each lane's heading (its path, a long word without spaces) stays inside its lane."""
    page = browser_page
    page.set_viewport_size(screen)
    try:
        watch_two(page, course_process.url)
        shot = tmp_path / f"inspector-{screen['width']}.png"
        page.screenshot(path=shot, full_page=True)
        first, second = page.evaluate(HEADINGS)
    finally:
        page.set_viewport_size(LAPTOP)
    for heading in (first, second):
        assert inside(heading["text"], heading["lane"]), (heading, f"see {shot}")
    assert not overlap(first["text"], second["text"]), (first, second, f"see {shot}")


@pytest.mark.browser
@pytest.mark.live
def test_the_plot_has_labelled_axes_with_round_ticks(course_process, browser_page, tmp_path):
    """Both axes say what they count and in what unit; their ticks are round numbers from 0
    that reach past the data; no two texts of the plot overlap."""
    page = browser_page
    watch_two(page, course_process.url, size=100_000)
    shot = tmp_path / "inspector-plot.png"
    page.locator("#timeline").screenshot(path=shot)
    texts = page.evaluate(PLOT_TEXTS)
    figures = page.evaluate(f"{LANES}.map(l => [l.total, l.doneAt])")
    labels = {t["axis"]: t["text"] for t in texts if t["kind"] == "axis-label"}
    assert labels.keys() == {"x", "y"}, (texts, f"see {shot}")
    unit = re.fullmatch(r"(bytes|kB|MB) received", labels["y"])
    assert unit and "ms" in labels["x"].split(), labels
    for axis, largest in (("x", max(at for _, at in figures)), ("y", 100_000)):
        shown = [t["text"] for t in texts if t["kind"] == "tick" and t["axis"] == axis]
        ticks = [int(re.sub(r"\D", "", text)) for text in shown]  # "20,000": 20000
        ticks = ticks if axis == "x" else [tick * UNITS[unit[1]] for tick in ticks]
        assert round_scale(sorted(ticks)) and 3 <= len(ticks) <= 7, (axis, ticks, f"see {shot}")
        assert max(ticks) >= largest, (axis, ticks, largest)
    clashes = [
        (a, b) for n, a in enumerate(texts) for b in texts[n + 1 :] if overlap(a["box"], b["box"])
    ]
    assert not clashes, (clashes, f"see {shot}")


@pytest.mark.browser
@pytest.mark.live
@pytest.mark.parametrize(
    "largest", [1, 7, 99, 100, 101, 490, 1_234, 60_000, 99_999, 100_000, 1_000_001]
)
def test_the_pages_tick_maker_gives_round_numbers_past_the_largest_figure(
    course_process, browser_page, largest
):
    page = browser_page
    if "/inspect" not in page.url:
        page.goto(course_process.url + "/inspect")
    ticks = page.evaluate(f"niceTicks({largest})")
    assert round_scale(ticks) and ticks[-1] >= largest > ticks[-2], ticks
    assert len(ticks) <= 7, ticks


@pytest.mark.browser
@pytest.mark.live
def test_the_open_stream_count_goes_back_to_zero_after_both_streams_end(
    course_process, browser_page, tmp_path
):
    """One stream ends by itself; the other, endless, is stopped from the page. The server
    learns that a client left at its next write (a heartbeat, here 3 s after the last),
    and the page keeps asking /stats until it has: the count it shows comes back to zero.
    (The page used to ask for one second more, and went on showing 1 open stream.)"""
    page = browser_page
    endless = "/events?interval=60&heartbeat=3"
    page.goto(inspect_url(course_process.url, "/ticks?count=3&interval=0.2", endless))
    wait_until(page, f"{LANES}.length === 2 && {LANES}[0].doneAt !== null")
    wait_until(page, f"{LANES}[1].chunks.length >= 1")
    page.click("#stop")
    wait_until(page, ALL_DONE)
    shown = wait_until(
        page,
        "document.getElementById('server').textContent.startsWith('Server: 0 open')"
        " && document.getElementById('server').textContent",
        timeout=20_000,
    )
    shot = tmp_path / "inspector-after-stop.png"
    page.screenshot(path=shot, full_page=True)
    assert shown.startswith("Server: 0 open stream(s)"), (shown, f"see {shot}")
    assert page.evaluate("window.inspection.server.at(-1).open") == 0
    assert requests.get(course_process.url + "/stats", timeout=5).json()["open_streams"] == 0
    assert page.evaluate("window.inspection.serverSettled") is True  # and it stopped asking
