"""Pages no other site can drive, tried in Chromium as a hostile page would (issue 29).

The course already refuses other sites' POSTs and foreign Host headers (test_origins.py).
These tests go through the course's own pages instead: a page on another site that links
to, or frames, the inspector filled in with a POST; and a file uploaded to the course and
opened from it. Whatever they try, nothing reaches the broadcast room, and the course's
own pages still run every script they were written with.

The hostile page is served from ``localhost`` while the course is asked at ``127.0.0.1``:
two sites, as far as the browser is concerned (a site is a scheme and a registrable
domain, and for a host with none, such as these two, the host itself; the port is not part
of it: HTML, "same site").
"""

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest
import requests
from real_programs import chromium_page

from lab import serve
from lab.browser import wait_until
from lessons import spawn_course

pytestmark = [pytest.mark.live, pytest.mark.browser]

BODY = json.dumps({"text": "sent by another site"})


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Iterator[str]:
    files = tmp_path_factory.mktemp("files")
    with spawn_course("--files", str(files)) as process:
        yield process.url


@pytest.fixture
def page():
    with chromium_page() as page:
        yield page


@contextmanager
def broadcast_heard(course: str) -> Iterator[list[str]]:
    """The texts posted to the broadcast room while the block runs (and a moment after)."""
    heard: list[str] = []
    stop = threading.Event()

    def listen() -> None:
        with requests.get(course + "/broadcast?heartbeat=0.2", stream=True, timeout=10) as room:
            for line in room.iter_lines(chunk_size=None):
                if line.startswith(b"data:"):
                    heard.append(json.loads(line[5:])["text"])
                if stop.is_set():
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    time.sleep(0.3)  # listening before anything is sent
    try:
        yield heard
    finally:
        time.sleep(1.0)
        stop.set()
        listener.join(timeout=5)


@contextmanager
def hostile_site(html: str) -> Iterator[str]:
    """A page of another site: ``html`` at ``http://localhost:PORT/``."""

    def app(environ: dict, start_response) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [html.encode()]

    with serve(app) as url:
        yield url.replace("127.0.0.1", "localhost")


def posting_inspector(course: str) -> str:
    return f"{course}/inspect?path=%2Fbroadcast&method=POST&body={quote(BODY, safe='')}"


def test_a_link_from_another_site_to_a_filled_in_inspector_posts_nothing(course, page):
    """Issue 29, item 1: the inspector posted its body on page load, from the course's own
    origin, so the cross-site checks passed and the room heard another site."""
    script = f"<script>location.href = {json.dumps(posting_inspector(course))};</script>"
    with broadcast_heard(course) as heard, hostile_site(script) as site:
        page.goto(site + "/")
        page.wait_for_url(f"{course}/inspect*")
        page.wait_for_load_state("load")
        time.sleep(1.5)  # when the page used to start watching on its own
        shown = page.text_content("#summary")
    assert heard == []
    assert "press Watch" in shown  # the page is there, filled in, waiting for the learner
    with broadcast_heard(course) as heard:
        page.click("#watch")  # the learner reads it and chooses to send it: then it goes
        wait_until(page, "window.inspection.lanes.length > 0")
    assert heard == ["sent by another site"]


def test_another_site_cannot_frame_the_course(course, page):
    """Issue 29, item 2: any site could frame the course's pages (no frame-ancestors)."""
    frame = f'<iframe src="{posting_inspector(course)}" width="800" height="600"></iframe>'
    with broadcast_heard(course) as heard, hostile_site(frame) as site:
        page.goto(site + "/")
        time.sleep(2.0)
        inspectors = [
            f for f in page.frames if f.url.startswith(course) and f.query_selector("#ask")
        ]
    assert heard == [] and inspectors == []


@pytest.mark.parametrize(
    "name, document",
    [
        (
            "page.html",
            "<!doctype html><title>uploaded</title><script>{script}</script>",
        ),
        (
            "drawing.svg",
            '<svg xmlns="http://www.w3.org/2000/svg"><title>uploaded</title>'
            "<script>{script}</script></svg>",
        ),
    ],
)
def test_an_uploaded_page_runs_no_script_as_the_course(course, page, name, document):
    """Issue 29, item 3: PUT /uploads/x.html with a script, then GET /files/uploads/x.html:
    it was served as text/html and the script ran as the course's origin."""
    script = (
        "document.title = 'ran';"
        "fetch('/broadcast', {method: 'POST', headers: {'Content-Type': 'application/json'},"
        f" body: {json.dumps(BODY)}}});"
    )
    uploaded = document.replace("{script}", script)
    stored = requests.put(f"{course}/uploads/{name}", data=uploaded.encode(), timeout=10)
    assert stored.status_code in (200, 201)
    with broadcast_heard(course) as heard:
        page.goto(f"{course}/files/uploads/{name}")
        time.sleep(1.0)
        title = page.evaluate("document.title")
    assert heard == [] and title != "ran"


COURSE_PAGES = [
    "/",
    "/inspect?path=%2Fticks%3Fcount%3D2%26interval%3D0.1",
    *[f"/lessons/{number:02d}" for number in range(1, 12)],
    "/demo/events?count=2",
    "/demo/chat",
    "/demo/video",
    "/demo/many?n=2",
    "/demo/upload",
    "/demo/broadcast",
]


def test_every_page_of_the_course_runs_under_its_own_policy(course, page):
    """The policy lists each page's scripts and styles by hash: a page whose own script or
    style it refused would show it in the console."""
    refused: list[tuple[str, str]] = []
    page.on(
        "console",
        lambda message: (
            refused.append((page.url, message.text))
            if "Content Security Policy" in message.text
            else None
        ),
    )
    for path in COURSE_PAGES:
        page.goto(course + path)
        page.wait_for_load_state("load")
    assert refused == []
