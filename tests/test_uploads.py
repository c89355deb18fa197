"""Request bodies streamed to disk (``streamlib.uploads``, for lesson 11): exact bytes, a
size cap enforced before or while reading, and never a partial file left as if complete."""

import hashlib
import io
import tracemalloc

import pytest
import requests
from werkzeug.exceptions import BadRequest, LengthRequired, RequestEntityTooLarge

from lab import serve
from streamlib.uploads import STORE_PIECE, body_pieces, store_body

MIB = 1024 * 1024


class CountingInput(io.RawIOBase):
    """A ``wsgi.input`` of ``size`` bytes made as they are read (nothing held), which
    counts what was read; ``stop_at`` ends it early, as a client that goes away."""

    def __init__(self, size: int, stop_at: int | None = None) -> None:
        self.size, self.stop_at, self.served = size, stop_at, 0

    def read(self, n: int = -1) -> bytes:
        end = self.size if self.stop_at is None else self.stop_at
        n = end - self.served if n < 0 else min(n, end - self.served)
        self.served += n
        return b"x" * n


def environ_for(body, length: int | None, terminated: bool = False) -> dict:
    environ = {"wsgi.input": body, "wsgi.input_terminated": terminated}
    if length is not None:
        environ["CONTENT_LENGTH"] = str(length)
    return environ


def test_a_body_is_stored_whole_with_its_hash(tmp_path):
    data = bytes(range(256)) * 1000
    stored = store_body(environ_for(io.BytesIO(data), len(data)), tmp_path / "up.bin", MIB)
    assert stored.size == len(data) and (tmp_path / "up.bin").read_bytes() == data
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert [p.name for p in tmp_path.iterdir()] == ["up.bin"]  # no temporary file left


def test_too_long_a_content_length_is_a_413_before_a_byte_is_read(tmp_path):
    body = CountingInput(2 * MIB)
    with pytest.raises(RequestEntityTooLarge):
        store_body(environ_for(body, 2 * MIB), tmp_path / "big", MIB)
    assert body.served == 0 and list(tmp_path.iterdir()) == []


def test_a_chunked_body_past_the_cap_is_a_413_and_leaves_nothing(tmp_path):
    body = CountingInput(3 * MIB)
    with pytest.raises(RequestEntityTooLarge):
        store_body(environ_for(body, None, terminated=True), tmp_path / "big", MIB)
    assert body.served <= MIB + STORE_PIECE and list(tmp_path.iterdir()) == []


def test_a_client_that_stops_halfway_leaves_the_old_file_as_it_was(tmp_path):
    (tmp_path / "doc").write_bytes(b"the old version")
    with pytest.raises(BadRequest, match="stopped after 500000 of 1000000"):
        store_body(environ_for(CountingInput(10**6, stop_at=500_000), 10**6), tmp_path / "doc", MIB)
    assert [p.name for p in tmp_path.iterdir()] == ["doc"]
    assert (tmp_path / "doc").read_bytes() == b"the old version"


@pytest.mark.parametrize("length", ["-1", "1e3", "٣", "0x10", "9" * 40, " 5"])
def test_a_content_length_that_is_not_a_plain_number_is_a_400(length):
    environ = {"wsgi.input": io.BytesIO(b"12345"), "CONTENT_LENGTH": length}
    with pytest.raises(BadRequest):
        list(body_pieces(environ, MIB))


class BrokenChunks(io.RawIOBase):
    """A server's reader of a malformed chunked body: it fails when read, with a type of
    its own (as gunicorn's ``InvalidChunkSize``, which is no ``OSError``)."""

    def read(self, n: int = -1) -> bytes:
        raise type("InvalidChunkSize", (Exception,), {})("fffffffffffffffffff")


def test_a_body_the_server_cannot_read_is_a_400_and_stores_nothing(tmp_path):
    environ = environ_for(BrokenChunks(), None, terminated=True)
    with pytest.raises(BadRequest, match="could not be read: InvalidChunkSize"):
        store_body(environ, tmp_path / "x.bin", MIB)
    assert list(tmp_path.iterdir()) == []


def test_a_chunked_body_the_server_left_chunked_is_a_411():
    """wsgiref hands the app a chunked body as it came, with no end marked."""
    environ = {**environ_for(io.BytesIO(b"3\r\nabc\r\n0\r\n\r\n"), None)}
    environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    with pytest.raises(LengthRequired):
        list(body_pieces(environ, MIB))


def test_a_request_with_neither_length_nor_chunks_has_an_empty_body():
    """RFC 9112 section 6.3: such a request's body is zero bytes long (curl -X POST)."""
    assert list(body_pieces(environ_for(io.BytesIO(b"next request"), None), MIB)) == []


def test_storing_64_mib_holds_a_piece_at_a_time(tmp_path):
    tracemalloc.start()
    try:
        stored = store_body(
            environ_for(CountingInput(64 * MIB), 64 * MIB), tmp_path / "f", 65 * MIB
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stored.size == 64 * MIB and (tmp_path / "f").stat().st_size == 64 * MIB
    assert peak < 4 * STORE_PIECE, f"peak {peak} bytes while storing 64 MiB"


@pytest.mark.live
def test_werkzeugs_server_hands_a_chunked_body_over_and_marks_its_end(tmp_path):
    """requests sends a generator as ``Transfer-Encoding: chunked``; the dev server undoes
    the chunks and sets ``wsgi.input_terminated``."""
    seen = {}

    def upload(environ, start_response):
        seen["terminated"] = environ.get("wsgi.input_terminated")
        stored = store_body(environ, tmp_path / "up", MIB)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [stored.sha256.encode()]

    pieces = [b"a" * 1000, b"b" * 70_000, b"c"]
    with serve(upload) as url:
        answer = requests.put(url + "/", data=iter(pieces), timeout=10)
    assert answer.text == hashlib.sha256(b"".join(pieces)).hexdigest()
    assert seen["terminated"] is True and (tmp_path / "up").read_bytes() == b"".join(pieces)


@pytest.mark.live
@pytest.mark.parametrize("worker_class", ["sync", "gthread", "gevent"])
def test_gunicorn_hands_a_chunked_body_over_and_refuses_one_past_the_cap(tmp_path, worker_class):
    """Every gunicorn worker class undoes the chunks and marks the body's end, so the same
    ``store_body`` serves both kinds of body; past the cap the answer is a 413."""
    import sys
    from pathlib import Path

    from lab import free_port, spawn_server

    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"]
    command += ["--worker-class", worker_class, "--chdir", str(Path(__file__).parent)]
    env = {"UPLOAD_FOLDER": str(tmp_path)}
    pieces = [b"a" * 1000, b"b" * 70_000, b"c"]
    with spawn_server([*command, "upload_echo:app"], port, env=env) as server:
        seen = requests.put(server.url + "/", data=iter(pieces), timeout=10).json()
        too_big = requests.put(server.url + "/", data=iter([b"x" * MIB, b"y"]), timeout=10)
    assert seen["sha256"] == hashlib.sha256(b"".join(pieces)).hexdigest()
    assert seen["input_terminated"] is True and seen["content_length"] == ""
    assert too_big.status_code == 413
