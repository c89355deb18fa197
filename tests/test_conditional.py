"""Conditional and range requests on ``/files/``, checked against Go's published tables.

The cases are the facts of two tables in Go's ``net/http`` tests (golang/go,
``src/net/http/fs_test.go``): the ``tests`` map of ``testServeContent`` (preconditions,
If-Range) and ``ServeFileRangeTests`` (byte ranges of an 11-byte file). Go serves the
ETag and modification time a test chooses; here the file's own are used, so each case
is written in terms of them. Left out, on purpose: Go answers several ranges with
``multipart/byteranges``, where the course sends the whole file (lesson 02 says why).

Every case runs for GET and HEAD on the course's three servers: werkzeug (its default),
gunicorn gthread and gunicorn gevent.
"""

import os
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
from conftest import SERVER_KINDS

from lessons import spawn_course
from streamlib.conditional import Verdict, evaluate_preconditions

ELEVEN = b"0123456789\n"  # Go's testdata/file is 11 bytes too
MODIFIED_NS = 1_403_716_338_000_000_123  # 2014-06-25 17:12:18 UTC and 123 ns, as in Go's table
MODIFIED = datetime.fromtimestamp(MODIFIED_NS // 10**9, UTC)


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("conditional")
    (folder / "file").write_bytes(ELEVEN)
    os.utime(folder / "file", ns=(MODIFIED_NS, MODIFIED_NS))
    return folder


@pytest.fixture(scope="module", params=list(SERVER_KINDS))
def file_url(request, folder):
    with spawn_course("--files", str(folder), *SERVER_KINDS[request.param]) as server:
        yield server.url + "/files/file"


@pytest.fixture(scope="module")
def etag(file_url) -> str:
    return requests.get(file_url, timeout=10).headers["ETag"]


# (Go's case name, request headers with ETAG standing for the file's own, status, Content-Range)
SERVE_CONTENT = [
    ("not_modified_modtime", {"If-Modified-Since": http_date(MODIFIED)}, 304, None),
    ("not_modified_etag", {"If-None-Match": "ETAG"}, 304, None),
    ("not_modified_etag_no_seek", {"If-None-Match": '"baz", W/ETAG'}, 304, None),  # weak match
    ("if_none_match_mismatch", {"If-None-Match": "ETAG-CASE"}, 200, None),
    ("if_none_match_malformed", {"If-None-Match": ","}, 200, None),
    ("range_good", {"Range": "bytes=0-4"}, 206, "bytes 0-4/11"),
    ("range_match", {"Range": "bytes=0-4", "If-Range": "ETAG"}, 206, "bytes 0-4/11"),
    ("range_match_weak_etag", {"Range": "bytes=0-4", "If-Range": "W/ETAG"}, 200, None),
    ("range_no_overlap", {"Range": "bytes=11-20"}, 416, "bytes */11"),
    ("range_no_match", {"Range": "bytes=0-4", "If-Range": '"B"'}, 200, None),
    (
        "range_with_modtime_nanos",  # Last-Modified drops the nanoseconds; If-Range matches
        {"Range": "bytes=0-4", "If-Range": http_date(MODIFIED)},
        206,
        "bytes 0-4/11",
    ),
    (
        "range_with_modtime_mismatch",
        {"Range": "bytes=0-4", "If-Range": http_date(MODIFIED + timedelta(seconds=1))},
        200,
        None,
    ),
    ("ifmatch_matches", {"If-Match": '"Z", ETAG'}, 200, None),
    ("ifmatch_star", {"If-Match": "*"}, 200, None),
    ("ifmatch_failed", {"If-Match": '"B"'}, 412, None),
    ("ifmatch_fails_on_weak_etag", {"If-Match": "W/ETAG"}, 412, None),
    ("if_unmodified_since_true", {"If-Unmodified-Since": http_date(MODIFIED)}, 200, None),
    (
        "if_unmodified_since_false",
        {"If-Unmodified-Since": http_date(MODIFIED - timedelta(seconds=2))},
        412,
        None,
    ),
]

# RFC 9110 section 13.2.2's order, where two preconditions disagree (not in Go's table).
PRECEDENCE = [
    ("if_match_before_if_none_match", {"If-Match": '"B"', "If-None-Match": "ETAG"}, 412, None),
    (
        "if_match_hides_if_unmodified_since",
        {"If-Match": "ETAG", "If-Unmodified-Since": http_date(MODIFIED - timedelta(days=1))},
        200,
        None,
    ),
    (
        "if_none_match_hides_if_modified_since",
        {"If-None-Match": '"B"', "If-Modified-Since": http_date(MODIFIED)},
        200,
        None,
    ),
    ("preconditions_before_range", {"If-None-Match": "ETAG", "Range": "bytes=0-4"}, 304, None),
    ("412_before_416", {"If-Match": '"B"', "Range": "bytes=50-"}, 412, None),
    ("bad_date_ignored", {"If-Unmodified-Since": "yesterday"}, 200, None),
]


def with_etag(headers: dict[str, str], etag: str) -> dict[str, str]:
    case_changed = etag.upper() if etag.upper() != etag else etag.lower()
    return {
        name: value.replace("ETAG-CASE", case_changed).replace("ETAG", etag)
        for name, value in headers.items()
    }


@pytest.mark.live
@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize(
    ("case", "headers", "status", "content_range"),
    SERVE_CONTENT + PRECEDENCE,
    ids=[case[0] for case in SERVE_CONTENT + PRECEDENCE],
)
def test_go_serve_content_cases(file_url, etag, method, case, headers, status, content_range):
    r = requests.request(method, file_url, headers=with_etag(headers, etag), timeout=10)
    assert r.status_code == status, f"{case}: {r.status_code} {r.text}"
    assert r.headers.get("Content-Range") == content_range, case
    if status == 206:
        assert r.content == (b"" if method == "HEAD" else ELEVEN[0:5])
    if status == 200:
        assert r.content == (b"" if method == "HEAD" else ELEVEN)
    if status == 304:
        assert r.content == b"" and r.headers["ETag"] == etag  # section 15.4.5
        assert "Content-Length" not in r.headers or r.headers["Content-Length"] == "0"


# Go's ServeFileRangeTests, single ranges: (Range, status, [start, stop) or None)
RANGES = [
    ("", 200, None),
    ("bytes=0-4", 206, (0, 5)),
    ("bytes=2-", 206, (2, 11)),
    ("bytes=-5", 206, (6, 11)),
    ("bytes=3-7", 206, (3, 8)),
    ("bytes=5-1000", 206, (5, 11)),
    ("bytes=0-,1-,2-,3-,4-", 200, None),  # several ranges: Go and the course send it all
    ("bytes=0-9", 206, (0, 10)),
    ("bytes=0-10", 206, (0, 11)),
    ("bytes=0-11", 206, (0, 11)),
    ("bytes=10-11", 206, (10, 11)),
    ("bytes=10-", 206, (10, 11)),
    ("bytes=11-", 416, None),
    ("bytes=11-12", 416, None),
    ("bytes=12-12", 416, None),
    ("bytes=11-100", 416, None),
    ("bytes=12-100", 416, None),
    ("bytes=100-", 416, None),
    ("bytes=100-1000", 416, None),
]


@pytest.mark.live
@pytest.mark.parametrize(("byte_range", "status", "span"), RANGES, ids=[r[0] for r in RANGES])
def test_go_serve_file_range_cases(file_url, byte_range, status, span):
    r = requests.get(file_url, headers={"Range": byte_range} if byte_range else {}, timeout=10)
    assert r.status_code == status, byte_range
    if span is not None:
        start, stop = span
        assert r.content == ELEVEN[start:stop]
        assert r.headers["Content-Range"] == f"bytes {start}-{stop - 1}/11"
    elif status == 416:
        assert r.headers["Content-Range"] == "bytes */11"
    else:
        assert r.content == ELEVEN


def test_the_verdict_names_the_header_that_decided():
    environ = {"REQUEST_METHOD": "GET", "HTTP_IF_MATCH": '"a"', "HTTP_IF_NONE_MATCH": '"a"'}
    assert evaluate_preconditions(environ, '"b"', MODIFIED) == Verdict(412, "If-Match")
    environ = {"REQUEST_METHOD": "GET", "HTTP_IF_NONE_MATCH": "*"}
    assert evaluate_preconditions(environ, '"b"', MODIFIED) == Verdict(304, "If-None-Match")
    environ = {"REQUEST_METHOD": "GET", "HTTP_IF_MATCH": "  "}  # empty: as if absent
    assert evaluate_preconditions(environ, '"b"', MODIFIED) is None
    environ = {"REQUEST_METHOD": "GET", "HTTP_IF_MODIFIED_SINCE": "Mon, 01 Jan 99999 00:00:00 GMT"}
    assert evaluate_preconditions(environ, '"b"', MODIFIED) is None


def test_if_none_match_on_an_unsafe_method_is_a_412():
    environ = {"REQUEST_METHOD": "PUT", "HTTP_IF_NONE_MATCH": "*"}
    assert evaluate_preconditions(environ, '"b"', MODIFIED) == Verdict(412, "If-None-Match")
