"""Read a JSON request body with limits, or answer a 4xx that says what was wrong.

A request body is the most hostile input a server reads: any size, any bytes, any shape.
Python's ``json.loads`` accepts all of these and then fails in ways a route does not
expect: a 100 MB body is read into memory first; ``[`` 50,000 times raises
``RecursionError``; an integer of 5,000 digits raises ``ValueError`` (CPython's limit on
int conversion, 4,300 digits); ``"\\ud800"`` (half of a surrogate pair) makes a ``str``
that cannot be encoded again. :func:`read_json` turns each of these into a one-line answer:

- more than ``max_bytes``: 413, decided from ``Content-Length`` before a byte is read,
  or as soon as a chunked body passes it (werkzeug's ``Request.stream`` would cut a
  chunked body at the cap without a word, and the cut JSON would be a 400);
- not declared ``application/json``: 415 (:func:`require_json` says why it matters);
- a body the server could not read (a malformed chunk, a client gone mid-body): 400;
- no length and no chunks a server undid: 411; a transfer coding besides chunked: 501;
- not UTF-8, not JSON, nested too deeply, a number too long, a lone surrogate: 400.
"""

import json
from typing import Any

from werkzeug.exceptions import BadRequest, RequestEntityTooLarge, UnsupportedMediaType
from werkzeug.http import parse_options_header

from streamlib.uploads import body_pieces

MAX_JSON_BYTES = 1024 * 1024  # the course's bodies are chat messages: 1 MiB is generous


def require_json(environ: dict) -> None:
    """Raise a 415 unless the request says its body is ``application/json``.

    Not a formality: a page on another site can send a POST with ``text/plain`` or a form
    type without asking anyone (the fetch spec's CORS-safelisted types), but
    ``application/json`` only after a CORS preflight the server can refuse. Insisting on
    it keeps JSON endpoints out of reach of other sites' pages (``streamlib.origins``).
    """
    mimetype, _ = parse_options_header(environ.get("CONTENT_TYPE", ""))
    if mimetype != "application/json":
        got = environ.get("CONTENT_TYPE") or "none"
        raise UnsupportedMediaType(f"Content-Type: expected application/json, got {got}")


def read_bounded(environ: dict, max_bytes: int) -> bytes:
    """Return the request body, at most ``max_bytes`` of it, or raise a 4xx (or the 501
    of ``streamlib.uploads.acceptable_length`` for a coding besides chunked).

    environ: the request's environ.
    max_bytes: the largest body accepted.

    The pieces come from :func:`streamlib.uploads.body_pieces`, whatever framed them
    (``Content-Length``, or chunks the server undid): a 413 before a byte is read for a
    declared length over ``max_bytes``, or once a chunked body passes it; a 400 for a
    body the server could not read or that stopped short; a 408 for one that stalled.
    """
    try:
        return b"".join(body_pieces(environ, max_bytes))
    except RequestEntityTooLarge:
        raise RequestEntityTooLarge(f"the body is over {max_bytes} bytes") from None


def parse_json(raw: bytes) -> Any:
    """Parse ``raw`` as JSON, or raise ``ValueError`` with a one-line reason.

    The value is plain JSON data whose every string can be encoded as UTF-8 again.

    >>> parse_json(b'{"n": 1}')
    {'n': 1}
    >>> parse_json(b"[" * 50_000)
    Traceback (most recent call last):
    ...
    ValueError: JSON nested too deeply
    """
    try:
        data = json.loads(raw.decode("utf-8"))
        json.dumps(data, ensure_ascii=False).encode("utf-8")  # lone surrogates fail here
    except UnicodeEncodeError:
        raise ValueError("a string holds half of a surrogate pair, like \\ud800") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"not UTF-8 ({error.reason} at byte {error.start})") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except ValueError as error:  # JSONDecodeError, or an integer of over 4,300 digits
        raise ValueError(f"not valid JSON: {error}") from None
    return data


def read_json(environ: dict, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Return the request body parsed as JSON, or raise a 4xx naming the problem.

    environ: the request's environ.
    max_bytes: the largest body accepted (413 above it).

    A body that is not declared ``application/json`` is a 415 (see :func:`require_json`).

    >>> from streamlib.testing import make_environ
    >>> json_type = {"Content-Type": "application/json"}
    >>> read_json(make_environ("/", "POST", headers=json_type, body=b'{"n": 1}'))
    {'n': 1}
    """
    require_json(environ)
    raw = read_bounded(environ, max_bytes)
    try:
        return parse_json(raw)
    except ValueError as error:
        raise BadRequest(f"body: {error}") from None
