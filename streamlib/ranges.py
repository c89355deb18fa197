"""Decide which bytes of a file a request asks for: all of them, one range, or none.

The rules are RFC 9110's: section 14 (ranges) and section 13 (conditional requests).
werkzeug parses the headers; what this module adds is the decision, and one correction:
werkzeug's ``Range.range_for_length`` calls a suffix range longer than the file (``-5000``
on a 1000-byte file) unsatisfiable, but RFC 9110 section 14.1.2 says "the entire
representation is used".
https://www.rfc-editor.org/rfc/rfc9110#section-14
"""

from datetime import datetime

from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.http import is_byte_range_valid, parse_if_range_header, parse_range_header


def requested_range(
    environ: dict, size: int, etag: str, last_modified: datetime
) -> tuple[int, int] | None:
    """Return ``(start, stop)`` of the one byte range to send, or None for the whole file.

    environ: the request's environ (its ``Range`` and ``If-Range`` headers are read).
    size: the file's size in bytes.
    etag: the file's current strong entity tag, quoted (``'"5f3a-1000"'``).
    last_modified: the file's modification time, whole seconds, timezone-aware.

    ``stop`` is exclusive, as in Python slices. Raises werkzeug's
    ``RequestedRangeNotSatisfiable`` (a 416 carrying ``Content-Range: bytes */size``) when
    the one range asked for starts past the end.

    The whole file (None) is sent when: there is no ``Range``; it is malformed or not in
    bytes (RFC 9110 lets a server ignore such a header); ``If-Range`` names another version
    of the file (the client's partial copy is stale); or it asks for several ranges. That
    last one is a choice: the alternative, ``multipart/byteranges``, is rarely used by
    clients and easy to abuse (many small overlapping ranges), so we send the file once.
    """
    byte_ranges = parse_range_header(environ.get("HTTP_RANGE"))
    if byte_ranges is None or byte_ranges.units != "bytes" or len(byte_ranges.ranges) != 1:
        return None
    raw_if_range = environ.get("HTTP_IF_RANGE", "")
    if raw_if_range.lstrip().startswith("W/"):
        return None  # If-Range compares strongly: a weak tag never matches (section 13.1.5)
    if_range = parse_if_range_header(raw_if_range)
    if if_range.etag is not None and f'"{if_range.etag}"' != etag:
        return None
    if if_range.date is not None and if_range.date != last_modified:
        return None
    start, stop = byte_ranges.ranges[0]
    if stop is None:  # "a-" (from a to the end) or "-n" (the last n bytes)
        start, stop = (max(size + start, 0) if start < 0 else start), size
    stop = min(stop, size)
    if not is_byte_range_valid(start, stop, size):
        raise RequestedRangeNotSatisfiable(
            length=size,
            units="bytes",
            description=f"{environ['HTTP_RANGE']} starts past the end of the {size}-byte file",
        )
    return start, stop
