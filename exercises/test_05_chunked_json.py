"""Grader for exercise 05: ``python -m pytest exercises/test_05_chunked_json.py``.

Tests are named after the tasks in ``exercises/05_chunked_json.py``.
"""

import json
import tracemalloc

import pytest
from grading import Happened, require_own_work, tutor

EXERCISE = "05_chunked_json"
# The section each task's hint sends a learner to when no test says more.
TASK_SECTIONS = {
    1: "lesson 05, 'A streamed JSON array'",
    2: "lesson 05, 'Rows in hand while the rest is still coming'",
    3: "lesson 05, 'When a row fails after the 200'",
}


@pytest.mark.parametrize(
    "items",
    [[], [1], [1, 2, 3], [{"a": [1, {"b": None}]}, "é", 2.5, True, None], ["[", "]", ","]],
    ids=["empty", "one", "three", "nested", "brackets-in-strings"],
)
def test_task1_joins_into_the_same_json(exercise, items):
    body = b"".join(exercise.stream_json_array(items))
    try:
        parsed = json.loads(body)
    except json.JSONDecodeError as error:
        parsed = f"invalid JSON ({error})"
    assert parsed == items, tutor(
        f"stream_json_array({items!r}) and joined the pieces",
        body,
        f"a JSON array equal to {items!r}",
        "Task 1 and lesson 05, 'A streamed JSON array': '[' first, a comma before every element"
        " but the first, ']' last;"
        " no items gives '[]'.",
    )


def test_task1_stream_json_array_is_your_own(exercise):
    from streamlib.json_stream import iter_json_array as librarys

    list(exercise.stream_json_array([]))  # the stub raises here: not started yet
    require_own_work(exercise.stream_json_array, librarys, "lesson 05, 'A streamed JSON array'")


def test_task2_sends_the_bracket_and_each_element_as_it_comes(exercise):
    produced = []

    def items():
        for n in range(3):
            produced.append(n)
            yield {"n": n}

    pieces = exercise.stream_json_array(items())
    first = next(pieces)
    made_before_first = len(produced)
    second = next(pieces)
    try:
        element = json.loads(second.lstrip(b",[ "))
    except json.JSONDecodeError:
        element = None
    got = (first, made_before_first, len(produced), element)
    assert got == (b"[", 0, 1, {"n": 0}), tutor(
        "stream_json_array(items) and pulled two pieces, counting the items made",
        Happened(
            f"{first!r} after {made_before_first} items, then {second!r} after {len(produced)}"
        ),
        "b'[' before any item is made, then the first element after exactly one",
        "Task 2 and lesson 05, 'Rows in hand while the rest is still coming': yield b'[' at once;"
        " then yield each element as the loop gets it.",
    )


def test_task2_never_holds_the_whole_array(exercise):
    def items():
        for n in range(200_000):
            yield {"n": n, "text": "x" * 40}

    tracemalloc.start()
    try:
        size = sum(len(piece) for piece in exercise.stream_json_array(items()))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size > 10_000_000 and peak < 1024 * 1024, tutor(
        "stream_json_array over 200,000 items (about 12 MB of JSON), measuring memory",
        Happened(f"{size} bytes, with a peak of {peak / 1024 / 1024:.1f} MiB"),
        "under 1 MiB: one element at a time",
        "Task 2 and lesson 05, 'A streamed JSON array': json.dumps(list(items)) or a list of"
        " pieces holds everything.",
    )


def test_task3_an_unencodable_item_ends_the_array_unclosed(exercise):
    encoded_after = []

    class Spy:
        def __iter__(self):
            yield 1
            yield 2
            yield object()  # json.dumps raises TypeError for this
            encoded_after.append("asked for more")
            yield 4

    try:
        body = b"".join(exercise.stream_json_array(Spy()))
        raised = None
    except NotImplementedError:
        raise  # the stub: a task not started yet
    except Exception as error:  # reported to the learner below
        body, raised = b"", error
    assert (raised, body, encoded_after) == (None, b"[1,2", []), tutor(
        "stream_json_array([1, 2, object(), 4]) and joined the pieces",
        Happened(
            f"{body!r}"
            + (f", raising {raised!r}" if raised else "")
            + (", and went on to the next item" if encoded_after else "")
        ),
        "b'[1,2': the elements before the bad one, no closing ']', no exception, nothing more",
        "Task 3 and lesson 05, 'When a row fails after the 200': catch the TypeError from"
        " json.dumps"
        " and return without yielding ']'.",
    )
