"""Every route of every lesson, through ``wsgiref.validate``: read in part, HEAD, bad input.

``call_app`` wraps the app in the validator, which raises AssertionError on anything
PEP 3333 forbids, and refuses hop-by-hop headers. A later lesson's routes are checked
here as soon as the lesson lists them.
"""

import json
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from urllib3 import encode_multipart_formdata

from lessons import load_lessons
from streamlib import call_app

ROUTES = [
    pytest.param(route, id=f"{lesson.name}:{route.path}")
    for lesson in load_lessons()
    for route in lesson.routes
]


def example_path(route) -> str:
    return route.example or route.path


def call_example(course_app, route, path: str | None = None, method: str | None = None):
    """Call a route with its example (and its example body, for a POST)."""
    headers = {"Content-Type": "application/json"} if route.example_body else None
    return call_app(
        course_app,
        path or example_path(route),
        method or route.methods[0],
        headers,
        route.example_body,
    )


# A room is quiet until someone posts, and so is an upload's progress until it starts:
# read their heartbeats, sent a tenth of a second apart.
QUICKER = {
    "/broadcast": "/broadcast?heartbeat=0.1",
    "/upload-progress?id=demo": "/upload-progress?id=demo&heartbeat=0.1",
}
FORM, FORM_TYPE = encode_multipart_formdata([("file", ("pep3333.txt", b"hello"))])
# Routes that take a body of their own kind (lesson 11): the request each is tried with.
UPLOADS = {
    "/uploads/<name>": ("/uploads/pep3333.txt", "PUT", {}, b"hello"),
    "/uploads-buffered/<name>": ("/uploads-buffered/pep3333.txt", "PUT", {}, b"hello"),
    "/uploads": ("/uploads?id=pep3333", "POST", {"Content-Type": FORM_TYPE}, FORM),
}


@pytest.mark.parametrize("route", ROUTES)
def test_a_route_read_in_part_then_closed_is_valid_wsgi(course_app, stats, route):
    if route.path == "/resumable/<upload_id>":  # an upload's address: made by starting one
        started = {"Upload-Complete": "?0", "Content-Length": "0"}
        made = call_app(course_app, "/uploads/pep3333.bin", "POST", started)
        made.read()
        at = made.header("Location")
        appended = {"Content-Type": "application/partial-upload", "Upload-Offset": "0"}
        response = call_app(course_app, at, "PATCH", {**appended, "Upload-Complete": "?1"}, b"x")
    elif route.path in UPLOADS:
        response = call_app(course_app, *UPLOADS[route.path])
    else:
        response = call_example(course_app, route, QUICKER.get(example_path(route)))
    for _ in range(3):
        try:
            assert isinstance(response.next_piece(), bytes)
        except StopIteration:
            break
    response.close()
    assert 200 <= response.status_code < 300, response.status
    assert stats.snapshot()["open_streams"] == 0


@pytest.mark.parametrize("route", [r for r in ROUTES if "GET" in r.values[0].methods])
def test_a_route_answers_head_with_headers_only(course_app, route):
    response = call_app(course_app, example_path(route), "HEAD")
    assert response.read() == b""
    assert response.status_code == 200


def first_pieces(response, most: int = 3) -> bytes:
    """Up to ``most`` pieces of the body, then close it: some streams never end."""
    pieces = []
    try:
        for _ in range(most):
            pieces.append(response.next_piece())
    except StopIteration:
        pass
    finally:
        response.close()
    return b"".join(pieces)


@pytest.mark.parametrize("route", [r for r in ROUTES if "?" in (r.values[0].example or "")])
@pytest.mark.parametrize("garbage", ["", "x", "-1", "1e999", "nan", "%00", "9" * 40])
def test_a_bad_query_parameter_is_a_400_that_names_it(course_app, route, garbage):
    url = urlsplit(route.example)
    for name, _ in parse_qsl(url.query):
        if name in route.free_text:
            continue  # any text is a fine prompt
        query = urlencode({**dict(parse_qsl(url.query)), name: garbage})
        response = call_example(course_app, route, f"{url.path}?{query}")
        body = first_pieces(response).decode()
        if garbage == "" and response.status_code == 200:
            continue  # an empty value may mean the default, as /events?count= means "no end"
        assert response.status_code == 400, f"{name}={garbage!r} gave {response.status}"
        if response.header("Content-Type") == "application/json":  # OpenAI's shape (lesson 06)
            body = "400 Bad Request: " + json.loads(body)["error"]["message"]
        assert body.startswith(f"400 Bad Request: {name}: "), body
