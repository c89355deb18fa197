"""Grader for exercise 11: ``python -m pytest exercises/test_11_uploads.py``.

Tests are named after the tasks in ``exercises/11_uploads.py``. Each hands ``save_upload``
a request body that records how it is read (``Body``), as a server's ``wsgi.input`` would
deliver it, and looks at what is left in the folder afterwards.
"""

import hashlib
import io
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from grading import Happened, must_raise, tutor
from werkzeug.exceptions import BadRequest, LengthRequired, RequestEntityTooLarge

EXERCISE = "11_uploads"
# The section each task's hint sends a learner to when no test says more.
TASK_SECTIONS = {
    1: "lesson 11, 'Where the body ends'",
    2: "lesson 11, 'Refuse before the body comes'",
    3: "lesson 11, 'Never half a file'",
}
REFUSE = (
    "Task 2 and lesson 11, 'Refuse before the body comes': raise werkzeug's"
    " RequestEntityTooLarge; the course answers it with a 413."
)
HALF = (
    "Task 3 and lesson 11, 'Never half a file': a body that ends early is the client's"
    " fault (BadRequest); an error while reading is passed on, after removing what you wrote."
)
PIECE = 64 * 1024
DATA = bytes(range(256)) * 1000  # 256,000 bytes, each position recognisable


class Body(io.RawIOBase):
    """A request body: ``data``, then ``after`` (bytes that belong to no one: the next
    request on the connection). It records every read's size; ``stop_at`` ends it early,
    as a client that goes away; ``on_read`` runs before each read."""

    def __init__(
        self,
        data: bytes,
        after: bytes = b"",
        stop_at: int | None = None,
        on_read: Callable[[int], None] | None = None,
    ) -> None:
        self.stream = io.BytesIO((data + after)[:stop_at] if stop_at is not None else data + after)
        self.sizes: list[int | None] = []
        self.on_read = on_read

    def read(self, size: int | None = -1) -> bytes:
        self.sizes.append(size)
        if self.on_read:
            self.on_read(len(self.sizes))
        return self.stream.read(size)

    @property
    def bytes_read(self) -> int:
        return self.stream.tell()


def environ_for(body: Body, length: int | None, terminated: bool = False) -> dict:
    environ = {"wsgi.input": body, "wsgi.input_terminated": terminated}
    if length is not None:
        environ["CONTENT_LENGTH"] = str(length)
    return environ


def contents(path: Path) -> bytes:
    """What ``path`` holds, or ``b""`` if there is no file there (a wrong answer may remove it)."""
    return path.read_bytes() if path.is_file() else b""


def files_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_task1_stores_the_body_and_returns_its_size_and_sha256(exercise, tmp_path):
    body = Body(DATA)
    got = exercise.save_upload(environ_for(body, len(DATA)), tmp_path / "a.bin", 10**6)
    stored = contents(tmp_path / "a.bin")
    expected = (len(DATA), hashlib.sha256(DATA).hexdigest())
    assert stored == DATA and got == expected and files_in(tmp_path) == ["a.bin"], tutor(
        "save_upload(environ, folder / 'a.bin', 10**6) with a 256,000-byte body",
        got,
        f"{expected}, the file holding the body, and nothing else in the folder",
        "Task 1 and lesson 11, 'Never half a file': write each piece as it comes; update a"
        " hashlib.sha256() with it and count it.",
    )


def test_task1_reads_in_pieces_never_the_whole_body(exercise, tmp_path):
    body = Body(DATA)
    exercise.save_upload(environ_for(body, len(DATA)), tmp_path / "a.bin", 10**6)
    too_big = [size for size in body.sizes if size is None or size < 0 or size > PIECE]
    assert body.sizes and not too_big, tutor(
        "save_upload with a 256,000-byte body",
        Happened(f"it called read() with sizes {body.sizes[:8]}"),
        f"reads of at most {PIECE} bytes each",
        "Task 1 and lesson 11, 'Memory: a piece at a time, or the whole body': read(PIECE), or"
        " less near the end; read() with no size holds the whole body.",
    )


def test_task1_reads_exactly_content_length_and_no_further(exercise, tmp_path):
    body = Body(DATA[:1000], after=b"GET /next HTTP/1.1\r\n")
    size, _ = exercise.save_upload(environ_for(body, 1000), tmp_path / "a.bin", 10**6)
    stored = contents(tmp_path / "a.bin")
    assert (size, stored, body.bytes_read) == (1000, DATA[:1000], 1000), tutor(
        "save_upload with CONTENT_LENGTH 1000 and more bytes waiting on the connection",
        Happened(f"it read {body.bytes_read} bytes and stored {len(stored)}"),
        "exactly 1000 read and stored",
        "Task 1 and lesson 11, 'Where the body ends': read min(PIECE, bytes left) and stop when"
        " none are left.",
    )


def test_task1_reads_a_chunked_body_to_its_end(exercise, tmp_path):
    body = Body(DATA)
    got = exercise.save_upload(environ_for(body, None, terminated=True), tmp_path / "c.bin", 10**6)
    assert got == (len(DATA), hashlib.sha256(DATA).hexdigest()), tutor(
        "save_upload with no CONTENT_LENGTH and wsgi.input_terminated True",
        got,
        "the whole body's size and SHA-256",
        "Task 1 and lesson 11, 'Where the body ends': without a length, read until read() returns"
        " b'' (the server marks the end).",
    )


class MadeBody(io.RawIOBase):
    """A body of ``size`` bytes made as they are read, so that nothing is held but what
    the reader keeps (a network socket is like that; a BytesIO is not)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, size: int | None = -1) -> bytes:
        size = self.left if size is None or size < 0 else min(size, self.left)
        self.left -= size
        return b"x" * size


def test_task1_holds_a_piece_at_a_time_in_memory(exercise, tmp_path):
    size = 32 * 1024 * 1024
    tracemalloc.start()
    try:
        exercise.save_upload(environ_for(MadeBody(size), size), tmp_path / "big.bin", 64 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * PIECE + size // 16, tutor(
        "save_upload with a 32 MiB body",
        Happened(f"Python's memory peaked {peak / 2**20:.1f} MiB above where it started"),
        "a few pieces' worth (under 2.5 MiB)",
        "Task 1 and lesson 11, 'Memory: a piece at a time, or the whole body': write each piece"
        " before reading the next; keep no list of pieces.",
    )


def test_task2_a_content_length_over_the_cap_is_refused_before_a_byte_is_read(exercise, tmp_path):
    body = Body(DATA)
    with must_raise(
        RequestEntityTooLarge, "save_upload with CONTENT_LENGTH 256000 and max_bytes 1000", REFUSE
    ):
        exercise.save_upload(environ_for(body, len(DATA)), tmp_path / "a.bin", 1000)
    assert body.sizes == [] and files_in(tmp_path) == [], tutor(
        "save_upload with CONTENT_LENGTH 256000 and max_bytes 1000",
        Happened(f"it read {body.bytes_read} bytes and left {files_in(tmp_path)}"),
        "RequestEntityTooLarge before the first read, and no file",
        "Task 2 and lesson 11, 'Refuse before the body comes': compare CONTENT_LENGTH with"
        " max_bytes before you read or open anything.",
    )


def test_task2_a_chunked_body_past_the_cap_is_refused_as_it_passes(exercise, tmp_path):
    body = Body(DATA)
    with must_raise(
        RequestEntityTooLarge,
        "save_upload with a 256,000-byte chunked body and max_bytes 1000",
        REFUSE,
    ):
        exercise.save_upload(environ_for(body, None, terminated=True), tmp_path / "c.bin", 1000)
    assert body.bytes_read <= 1000 + PIECE and files_in(tmp_path) == [], tutor(
        "save_upload with a 256,000-byte chunked body and max_bytes 1000",
        Happened(f"it read {body.bytes_read} bytes and left {files_in(tmp_path)}"),
        "RequestEntityTooLarge within a piece of the cap, and no file left",
        "Task 2 and lesson 11, 'Refuse before the body comes': count what has come; raise as soon"
        " as the count passes max_bytes.",
    )


def test_task2_a_body_with_no_end_in_sight_is_a_411(exercise, tmp_path):
    with must_raise(
        LengthRequired,
        "save_upload with neither CONTENT_LENGTH nor wsgi.input_terminated",
        "Task 2 and lesson 11, 'Where the body ends': with neither, the end of the body is not"
        " marked, and reading until b'' could wait for ever.",
    ):
        exercise.save_upload(environ_for(Body(DATA), None), tmp_path / "a.bin", 10**6)


def test_task3_a_body_that_stops_early_leaves_the_old_file_and_nothing_else(exercise, tmp_path):
    (tmp_path / "a.bin").write_bytes(b"the old one")
    body = Body(DATA, stop_at=100_000)
    with must_raise(
        BadRequest,
        "save_upload with CONTENT_LENGTH 256000 whose client stops after 100,000 bytes",
        HALF,
    ):
        exercise.save_upload(environ_for(body, len(DATA)), tmp_path / "a.bin", 10**6)
    kept = contents(tmp_path / "a.bin")
    assert kept == b"the old one" and files_in(tmp_path) == ["a.bin"], tutor(
        "save_upload with CONTENT_LENGTH 256000 whose client stops after 100,000 bytes",
        Happened(f"a.bin then held {kept[:20]!r}..., and the folder {files_in(tmp_path)}"),
        "BadRequest, a.bin as it was, and no other file",
        "Task 3 and lesson 11, 'Never half a file': write to a temporary file"
        " (tempfile.mkstemp(dir=path.parent)); on any error"
        " remove it, and os.replace it onto path only when the body is whole.",
    )


def test_task3_the_file_takes_its_place_only_when_whole(exercise, tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"the old one")
    seen = []

    def look(reads: int) -> None:
        if reads == 3:  # partway through: what would a download of path get now?
            seen.append(contents(target))

    body = Body(DATA, on_read=look)
    exercise.save_upload(environ_for(body, len(DATA)), target, 10**6)
    assert seen == [b"the old one"] and contents(target) == DATA, tutor(
        "save_upload(environ, path, ...) while another request reads path",
        Happened(f"partway through, path held {seen[0][:20] if seen else None!r}..."),
        "the old file until the whole body is in, then the new one",
        "Task 3 and lesson 11, 'Never half a file': write elsewhere in the same folder, then"
        " os.replace(temporary, path).",
    )


def test_task3_any_error_removes_the_temporary_file(exercise, tmp_path):
    def fail(reads: int) -> None:
        if reads == 2:
            raise OSError("the connection was reset")

    body = Body(DATA, on_read=fail)
    with must_raise(OSError, "save_upload whose body's second read raises OSError", HALF):
        exercise.save_upload(environ_for(body, len(DATA)), tmp_path / "a.bin", 10**6)
    assert files_in(tmp_path) == [], tutor(
        "save_upload whose body's second read raises OSError",
        Happened(f"the folder then held {files_in(tmp_path)}"),
        "the error passed on, and nothing left in the folder",
        "Task 3 and lesson 11, 'Never half a file': try/except BaseException: remove the temporary"
        " file, then raise.",
    )
