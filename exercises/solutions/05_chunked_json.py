"""Exercise 05, reference solution: stream a JSON array, element by element.

Write ``stream_json_array(items)``: a generator of bytes that, joined, make one JSON array
of ``items``, sent as each item comes.

Read first: lesson 05, 'A streamed JSON array' (the page ``/lessons/5``), and notebook 05,
'Rows in hand while the rest is still coming' and 'When a row fails after the 200'.

Task 1. Valid JSON whatever the count: ``[]`` for no items, ``[1]`` for one, commas only
        between elements. Encode each item with ``json.dumps``.
Task 2. One element at a time: yield ``[`` at once, then each element (with its comma) as
        soon as ``items`` gives it. Never build the whole list or the whole string.
Task 3. An item that cannot be encoded (``json.dumps`` raises ``TypeError``) ends the
        stream right there, *without* the closing ``]``: the 200 has gone, so an invalid
        document is the only honest way to tell the client the list is incomplete.
        End quietly (no exception out of the generator), and encode nothing after it.

Grade your work:   python -m pytest exercises/test_05_chunked_json.py
"""

import json
from collections.abc import Iterable, Iterator
from typing import Any


def stream_json_array(items: Iterable[Any]) -> Iterator[bytes]:
    """Yield a JSON array of ``items``, one element at a time."""
    yield b"["  # Task 2: something at once
    separator = b""
    for item in items:
        try:
            encoded = json.dumps(item).encode()
        except TypeError:
            return  # Task 3: stop here, unclosed; the caller sees an invalid document
        yield separator + encoded  # Task 1: a comma before every element but the first
        separator = b","
    yield b"]"
