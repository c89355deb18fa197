"""Evaluate a request's preconditions (``If-Match``, ``If-None-Match``...) in RFC 9110's order.

A client that holds a copy of a file sends what it knows of that copy back as
preconditions, and the server answers from them before it sends anything:

============================  ===================================  =====================
header (checked in order)     true when                            if false
============================  ===================================  =====================
``If-Match``                  the ETag matches *strongly*, or      412 Precondition
                              the header is ``*``                  Failed
``If-Unmodified-Since``       not modified after the date          412
(only without ``If-Match``)
``If-None-Match``             *no* ETag matches, weakly            304 Not Modified
                              (``*`` matches any)                  (GET, HEAD), else 412
``If-Modified-Since``         modified after the date              304 (GET, HEAD)
(only without
``If-None-Match``)
``If-Range``, then ``Range``  see :mod:`streamlib.ranges`          the whole file, 200
============================  ===================================  =====================

The first two protect a write from overwriting someone else's change ("only if it is
still the version I read"); the next two save a download ("only if it changed since my
copy"). An ETag comparison is *strong* when both tags are strong and equal, *weak* when
they are equal after dropping ``W/``. A date that does not parse is ignored, as if the
header were absent. https://www.rfc-editor.org/rfc/rfc9110#section-13.2.2

werkzeug parses the headers (``parse_etags``, ``parse_date``); its own
``is_resource_modified`` answers a different question (should the body be sent?) and
treats a failed ``If-Match`` as "not modified", which is why the order is written out here.
"""

from datetime import datetime
from typing import NamedTuple

from werkzeug.http import parse_date, parse_etags, unquote_etag

SAFE_METHODS = ("GET", "HEAD")


class Verdict(NamedTuple):
    """What a precondition decided: ``status`` (304 or 412) and the ``header`` that decided."""

    status: int
    header: str


def evaluate_preconditions(environ: dict, etag: str, last_modified: datetime) -> Verdict | None:
    """Return the 304 or 412 that the request's preconditions call for, or None to go on.

    environ: the request's environ (its ``If-*`` headers and method are read).
    etag: the resource's current strong entity tag, quoted (``'"5f3a-1000"'``).
    last_modified: the resource's modification time, whole seconds, timezone-aware.

    None means every precondition present is true: send the resource (and only then look
    at ``Range``). The checks run in the order of RFC 9110 section 13.2.2.

    >>> from datetime import UTC
    >>> changed = datetime(2026, 1, 1, tzinfo=UTC)
    >>> stale = {"REQUEST_METHOD": "GET", "HTTP_IF_MATCH": '"old"'}
    >>> evaluate_preconditions(stale, '"new"', changed)
    Verdict(status=412, header='If-Match')
    >>> cached = {"REQUEST_METHOD": "GET", "HTTP_IF_NONE_MATCH": '"new"'}
    >>> evaluate_preconditions(cached, '"new"', changed)
    Verdict(status=304, header='If-None-Match')
    """
    method = environ["REQUEST_METHOD"]
    tag, weak = unquote_etag(etag)
    if_match = _header(environ, "HTTP_IF_MATCH")
    if if_match is not None:
        # contains() compares strongly: W/"x" in the header never matches; * matches
        if weak or not parse_etags(if_match).contains(tag):
            return Verdict(412, "If-Match")
    else:
        since = _date(environ, "HTTP_IF_UNMODIFIED_SINCE")
        if since is not None and last_modified > since:
            return Verdict(412, "If-Unmodified-Since")
    if_none_match = _header(environ, "HTTP_IF_NONE_MATCH")
    if if_none_match is not None:
        if parse_etags(if_none_match).contains_weak(tag):
            return Verdict(304 if method in SAFE_METHODS else 412, "If-None-Match")
    elif method in SAFE_METHODS:
        since = _date(environ, "HTTP_IF_MODIFIED_SINCE")
        if since is not None and last_modified <= since:
            return Verdict(304, "If-Modified-Since")
    return None


def _header(environ: dict, key: str) -> str | None:
    value = environ.get(key, "").strip()
    return value or None  # an empty field is the same as no field


def _date(environ: dict, key: str) -> datetime | None:
    value = _header(environ, key)
    try:
        return parse_date(value) if value else None
    except (ValueError, OverflowError):  # a date no calendar holds: ignored, like any bad date
        return None
