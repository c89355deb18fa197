"""Grader for exercise 02: ``python -m pytest exercises/test_02_stream_a_file.py``.

Tests are named after the tasks in ``exercises/02_stream_a_file.py``.
"""

import gc
import os
import tracemalloc
import warnings
from pathlib import Path

import psutil
import pytest
from grading import Happened, require_own_work, tutor

EXERCISE = "02_stream_a_file"
# The section each task's hint sends a learner to when no test says more.
TASK_SECTIONS = {
    1: "lesson 02, 'Constant memory'",
    2: "lesson 02, 'Ranges'",
    3: "lesson 01, 'close()'",
    4: "lesson 02, 'Conditional requests'",
}
DATA = bytes(range(256)) * 41  # 10,496 bytes, each position recognisable


@pytest.fixture
def data_file(tmp_path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(DATA)
    return path


def open_paths() -> set[str]:
    """The files this process has open now."""
    return {f.path for f in psutil.Process().open_files()}


def test_task1_sends_the_whole_file_in_chunks_of_chunk_size(exercise, data_file):
    chunks = list(exercise.iter_file(data_file, chunk_size=1000))
    sizes = [len(chunk) for chunk in chunks]
    assert b"".join(chunks) == DATA and sizes == [1000] * 10 + [496], tutor(
        "iter_file(path, chunk_size=1000) on a 10,496-byte file",
        Happened(f"{len(b''.join(chunks))} bytes in chunks of {sizes}"),
        "the file's bytes in chunks of [1000] * 10 + [496]",
        "Task 1 and lesson 02, 'Constant memory': read chunk_size bytes at a time with"
        " file.read(chunk_size) and yield each.",
    )


@pytest.mark.parametrize(
    ("start", "length", "expected"),
    [
        (0, 10, DATA[:10]),
        (100, 2500, DATA[100:2600]),
        (10_000, None, DATA[10_000:]),
        (10_400, 500, DATA[10_400:]),  # the file ends first
        (20_000, 10, b""),  # starts past the end
        (5, 0, b""),
    ],
)
def test_task2_sends_exactly_the_range(exercise, data_file, start, length, expected):
    got = b"".join(exercise.iter_file(data_file, start, length, chunk_size=1000))
    assert got == expected, tutor(
        f"iter_file(path, start={start}, length={length}, chunk_size=1000)",
        Happened(f"{len(got)} bytes starting {got[:4]!r}"),
        f"{len(expected)} bytes starting {expected[:4]!r}",
        "Task 2 and lesson 02, 'Ranges': seek to start, then count down the bytes left"
        " to send; stop when none are left or read() returns b''.",
    )


def test_task2_chunks_of_a_range_are_chunk_size_too(exercise, data_file):
    sizes = [len(c) for c in exercise.iter_file(data_file, 100, 2500, chunk_size=1000)]
    assert sizes == [1000, 1000, 500], tutor(
        "iter_file(path, start=100, length=2500, chunk_size=1000)",
        sizes,
        "chunks of [1000, 1000, 500]",
        "Task 2 and lesson 02, 'Ranges': read min(chunk_size, bytes left) each time.",
    )


def test_task1_iter_file_is_your_own(exercise, tmp_path):
    from streamlib.files import iter_file as librarys

    (tmp_path / "one.bin").write_bytes(b"x")
    list(exercise.iter_file(tmp_path / "one.bin"))  # the stub raises here: not started yet
    require_own_work(exercise.iter_file, librarys, "lesson 02, 'Constant memory'")


def test_task1_never_holds_the_whole_file(exercise, tmp_path):
    path = tmp_path / "big.bin"
    with open(path, "wb") as file:
        for _ in range(64):
            file.write(os.urandom(1024 * 1024))
    tracemalloc.start()
    try:
        size = sum(len(chunk) for chunk in exercise.iter_file(path, chunk_size=65536))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size == 64 * 1024 * 1024, tutor(
        "iter_file on a 64 MiB file with chunk_size=65536 and counted the bytes",
        Happened(f"{size:,} bytes"),
        f"{64 * 1024 * 1024:,}",
        "Task 1 and lesson 02, 'Constant memory': yield every chunk until read() gives b''.",
    )
    assert peak < 1024 * 1024, tutor(
        "iter_file on a 64 MiB file with chunk_size=65536, measuring memory",
        Happened(f"a peak of {peak / 1024 / 1024:.1f} MiB"),
        "under 1 MiB: one 64 KiB chunk at a time",
        "Task 1 and lesson 02, 'Constant memory': file.read() with no size reads it all.",
    )


def test_task3_closes_the_file_after_the_last_chunk(exercise, data_file):
    list(exercise.iter_file(data_file, chunk_size=1000))
    assert str(data_file) not in open_paths(), tutor(
        "iter_file and read every chunk",
        Happened("the file still open"),
        "the file closed",
        "Task 3 and lesson 01, 'close()': open it with a with block.",
    )


def test_task3_closes_the_file_itself_when_the_client_leaves(exercise, data_file):
    chunks = exercise.iter_file(data_file, chunk_size=1000)
    next(chunks)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        chunks.close()  # what the server does when the client hangs up
        gc.collect()
    left_to_gc = [w for w in caught if issubclass(w.category, ResourceWarning)]
    still_open = str(data_file) in open_paths()
    assert not still_open and not left_to_gc, tutor(
        "iter_file, read one chunk, then close() as the server does when the client leaves",
        Happened(
            "the file still open" if still_open else "the file closed by the garbage collector"
        ),
        "your code to close the file",
        "Task 3 and lesson 01, 'close()': close() raises GeneratorExit at the paused yield; a with"
        " block (or try/finally) around the loop closes the file then.",
    )


def test_task3_leaves_nothing_open_when_closed_before_the_first_chunk(exercise, data_file):
    before = open_paths()
    chunks = exercise.iter_file(data_file, chunk_size=1000)
    opened = open_paths() - before
    chunks.close()
    assert not opened and str(data_file) not in open_paths(), tutor(
        "iter_file, then close() before asking for a chunk (a HEAD request, or a client"
        " gone before the first byte)",
        Happened(f"files open after the call: {sorted(opened)}"),
        "nothing opened until the first chunk is asked for",
        "Task 3 and lesson 01, 'close()': a generator function runs nothing until next() is"
        " called, so open the"
        " file inside it; a wrapper function that opens first leaks the file here.",
    )


ETAG = '"5f3a-1000"'


@pytest.mark.parametrize(
    "if_match", ['"other"', 'W/"5f3a-1000"', '"a", "b"', ","], ids=["other", "weak", "list", "bad"]
)
def test_task4_a_failed_if_match_is_a_412(exercise, if_match):
    got = exercise.check_preconditions(if_match, None, ETAG)
    assert got == 412, tutor(
        f"check_preconditions(if_match={if_match!r}, if_none_match=None, etag={ETAG!r})",
        got,
        "412: no tag in If-Match matches the file's strongly",
        "Task 4 and lesson 02, 'Conditional requests': If-Match compares strongly, so a"
        " W/ tag never matches; parse_etags(header).contains(tag) does exactly that.",
    )


@pytest.mark.parametrize("if_match", ["*", ETAG, f'"a", {ETAG}'], ids=["star", "same", "list"])
def test_task4_a_true_if_match_sends_the_file(exercise, if_match):
    got = exercise.check_preconditions(if_match, None, ETAG)
    assert got is None, tutor(
        f"check_preconditions(if_match={if_match!r}, if_none_match=None, etag={ETAG!r})",
        got,
        "None: the file is the version the client means, so send it",
        "Task 4 and lesson 02, 'Conditional requests': * matches any current file, and so does the"
        " file's own tag in a list.",
    )


@pytest.mark.parametrize(
    "if_none_match",
    [ETAG, 'W/"5f3a-1000"', "*", f'"a", {ETAG}'],
    ids=["same", "weak", "star", "list"],
)
def test_task4_a_matching_if_none_match_is_a_304(exercise, if_none_match):
    got = exercise.check_preconditions(None, if_none_match, ETAG)
    assert got == 304, tutor(
        f"check_preconditions(if_match=None, if_none_match={if_none_match!r}, etag={ETAG!r})",
        got,
        "304: the client's copy is current",
        "Task 4 and lesson 02, 'Conditional requests': If-None-Match compares weakly (W/ ignored):"
        " parse_etags(header).contains_weak.",
    )
    other = exercise.check_preconditions(None, '"other"', ETAG)
    assert other is None, tutor(
        f"check_preconditions(if_match=None, if_none_match='\"other\"', etag={ETAG!r})",
        other,
        "None: the client's copy is another version, so send the file",
        "Task 4 and lesson 02, 'Conditional requests': only a matching If-None-Match is a 304.",
    )


def test_task4_if_match_is_checked_before_if_none_match(exercise):
    got = exercise.check_preconditions('"other"', ETAG, ETAG)
    assert got == 412, tutor(
        f"check_preconditions(if_match='\"other\"', if_none_match={ETAG!r}, etag={ETAG!r})",
        got,
        "412: If-Match fails first, before If-None-Match is even looked at",
        "Task 4 and lesson 02, 'Conditional requests': RFC 9110 section 13.2.2 checks If-Match"
        " first.",
    )
