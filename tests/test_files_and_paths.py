"""streamlib.files and streamlib.paths on their own, without a server."""

import psutil
import pytest

from streamlib.files import file_body, iter_file
from streamlib.paths import resolve_under

DATA = bytes(range(256)) * 40  # 10,240 bytes


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(DATA)
    return path


def is_open(path) -> bool:
    return str(path) in {f.path for f in psutil.Process().open_files()}


@pytest.mark.parametrize(
    ("start", "length", "chunk", "sizes"),
    [
        (0, None, 4096, [4096, 4096, 2048]),
        (100, 5000, 4096, [4096, 904]),
        (10_000, None, 4096, [240]),
        (10_240, None, 4096, []),
        (0, 0, 4096, []),
    ],
)
def test_iter_file_sends_the_range_in_chunks(data_file, start, length, chunk, sizes):
    chunks = list(iter_file(data_file, start, length, chunk))
    assert [len(c) for c in chunks] == sizes
    end = None if length is None else start + length
    assert b"".join(chunks) == DATA[start:end]


def test_iter_file_opens_nothing_until_asked_and_closes_when_closed(data_file):
    chunks = iter_file(data_file, chunk_size=1000)
    assert not is_open(data_file), "opened before the first chunk was asked for"
    next(chunks)
    assert is_open(data_file)
    chunks.close()  # the server, when the client hangs up
    assert not is_open(data_file), "close() left the file open"


def test_file_body_uses_the_wrapper_only_to_the_end_of_the_file(data_file):
    class Wrapper:
        def __init__(self, file, block_size):
            self.file = file

        def close(self):
            self.file.close()

    environ = {"wsgi.file_wrapper": Wrapper}
    whole = file_body(environ, data_file, 0, len(DATA))
    assert isinstance(whole, Wrapper) and whole.file.tell() == 0
    whole.close()
    tail = file_body(environ, data_file, 10_000, 240)
    assert isinstance(tail, Wrapper) and tail.file.tell() == 10_000
    tail.close()
    middle = file_body(environ, data_file, 100, 10)
    assert b"".join(middle) == DATA[100:110], "a range that stops early must be the generator"
    assert b"".join(file_body({}, data_file, 0, 5)) == DATA[:5]


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "secret.txt").write_text("secret")
    served = tmp_path / "served"
    (served / "sub").mkdir(parents=True)
    (served / "a.txt").write_text("a")
    (served / "sub" / "b.txt").write_text("b")
    (served / ".env").write_text("hidden")
    (served / "out").symlink_to(tmp_path / "secret.txt")
    (served / "in").symlink_to(served / "a.txt")
    return served


@pytest.mark.parametrize(("name", "expected"), [("a.txt", "a.txt"), ("sub/b.txt", "sub/b.txt")])
def test_resolve_under_finds_files_inside(folder, name, expected):
    assert resolve_under(folder, name) == (folder / expected).resolve()


def test_resolve_under_follows_a_link_that_stays_inside(folder):
    assert resolve_under(folder, "in") == (folder / "a.txt").resolve()


@pytest.mark.parametrize(
    "name",
    [
        "../secret.txt",
        "sub/../../secret.txt",
        "/etc/passwd",
        "out",
        ".env",
        "sub/.x",
        "a.txt\x00",
        "..\\secret.txt",
        "",
        "sub",
        "missing.txt",
        "sub/",
    ],
)
def test_resolve_under_refuses(folder, name):
    assert resolve_under(folder, name) is None
