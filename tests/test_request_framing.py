"""Where a request body ends, decided as strict parsers decide it (``lab.framing``).

Every case of ``framing_cases.py`` (llhttp's and Go's published tests) is sent raw to an
app that stores the body with ``streamlib.uploads.store_body``: on the course's dev server,
and on gunicorn, which the course also runs. A refused request gets a 4xx or 501 and stores
nothing; an accepted one stores exactly the body the table says.
"""

import hashlib
import io
import re
import socket
import sys
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest
from framing_cases import CASES, with_host
from werkzeug.exceptions import HTTPException

from lab import free_port, serve, spawn_server
from lab.framing import ChunkedBody, MalformedBody, framing_problem
from streamlib.uploads import store_body

HERE = Path(__file__).parent
IDS = [name for name, *_ in CASES]

# Where gunicorn 27 parts from Go's strict reading, and the course's: it takes leading zeros
# past 16 hex digits, as llhttp does. Nothing is stored wrongly: the size is the same.
GUNICORN_TAKES = {"TestParseHexUint '00000000000000001'"}
# And it takes a chunk of 2**64 bytes as a body to wait for: no answer, and nothing stored.
GUNICORN_WAITS = {"TestParseHexUint '10000000000000000'"}


def exchange(port: int, raw: bytes, timeout: float = 5) -> tuple[int, bytes, int]:
    """Send ``raw`` and read until the server closes: (status, body, answers counted);
    status 0 if nothing came within ``timeout`` seconds."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        answer = b""
        try:
            while data := sock.recv(65536):
                answer += data
        except (ConnectionResetError, TimeoutError):
            pass
    status = int(answer[9:12]) if answer.startswith(b"HTTP/1.") else 0
    return status, answer.partition(b"\r\n\r\n")[2], len(re.findall(rb"HTTP/1\.1 \d{3} ", answer))


def assert_framed_as_published(
    port: int, folder: Path, raw: bytes, expected, name: str, waits: bool = False
) -> None:
    """``expected``: the bytes to store, or "reject": a 4xx or 501 (with ``waits``: no
    answer at all), and nothing stored."""
    for stored in folder.iterdir():
        stored.unlink()
    status, body, answers = exchange(port, with_host(raw), timeout=2 if waits else 5)
    if expected == "reject":
        refused = status == 0 if waits else 400 <= status < 500 or status == 501
        assert refused, f"{name}: {status} {body[:80]!r}"
        assert not (folder / "up").exists(), f"{name}: a body it could not frame was stored"
        assert answers <= 1, f"{name}: a second request was read after a broken body"
    else:
        assert status == 200, f"{name}: {status} {body[:200]!r}"
        assert (folder / "up").read_bytes() == expected
        assert hashlib.sha256(expected).hexdigest().encode() in body


def storing(folder: Path):
    """The app under test: ``store_body`` to ``folder / "up"``, answering the SHA-256."""

    def app(environ: dict, start_response) -> list[bytes]:
        try:
            stored = store_body(environ, folder / "up", 1024 * 1024)
        except HTTPException as error:
            return error(environ, start_response)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [stored.sha256.encode()]

    return app


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory) -> Iterator[tuple[int, Path]]:
    folder = tmp_path_factory.mktemp("framed")
    with serve(storing(folder)) as url:
        yield int(url.rsplit(":", 1)[1]), folder


@pytest.mark.live
@pytest.mark.parametrize("name, source, raw, expected, note", CASES, ids=IDS)
def test_the_dev_server_frames_each_published_case_strictly(
    dev_server, name, source, raw, expected, note
):
    port, folder = dev_server
    assert_framed_as_published(port, folder, raw, expected, name)


@pytest.mark.live
def test_gunicorn_frames_the_same_cases_and_stores_nothing_it_cannot_frame(tmp_path):
    """gunicorn's own parser, with the app's check of transfer codings (``gzip, chunked``
    is passed on still encoded by gunicorn: the app answers 501)."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"]
    command += ["--worker-class", "sync", "--chdir", str(HERE), "upload_echo:app"]
    with spawn_server(command, port, env={"UPLOAD_FOLDER": str(tmp_path)}):
        for name, _, raw, expected, _ in CASES:
            taken = b"a" if name in GUNICORN_TAKES else expected
            waits = name in GUNICORN_WAITS
            assert_framed_as_published(port, tmp_path, raw, taken, name, waits)


def headers_of(*lines: str) -> Message:
    message = Message()
    for line in lines:
        name, _, value = line.partition(": ")
        message[name] = value
    return message


@pytest.mark.parametrize(
    "version, lines, status",
    [
        ("HTTP/1.1", ["Host: a", "Content-Length: 3"], None),
        ("HTTP/1.1", ["Host: a", "Content-Length:  3 "], None),  # whitespace around: fine
        ("HTTP/1.1", ["Host: a", "Transfer-Encoding: Chunked"], None),  # names ignore case
        ("HTTP/1.0", ["Content-Length: 3"], None),  # HTTP/1.0 needs no Host
        ("HTTP/1.1", ["Content-Length: 3"], 400),  # RFC 9112 section 3.2
        ("HTTP/1.1", ["Host: a", "Host: b"], 400),
        ("HTTP/1.1", ["Host: a", "Content-Length: 3", "Content-Length: 3"], 400),
        ("HTTP/1.1", ["Host: a", "Content-Length: 3, 3"], 400),
        ("HTTP/1.0", ["Transfer-Encoding: chunked"], 400),  # RFC 9112 section 6.1
        ("HTTP/1.1", ["Host: a", "Transfer-Encoding: gzip, chunked"], 501),
        ("HTTP/1.1", ["Host: a", "Transfer-Encoding: chunked, gzip"], 400),
    ],
)
def test_framing_problems_are_found_in_the_headers_alone(version, lines, status):
    problem = framing_problem(version, headers_of(*lines))
    assert (problem and problem[0]) == status


def test_a_chunk_size_that_promises_more_than_16_hex_digits_fails_before_any_wait():
    """The 20-digit size that made the dev server wait 10 s for bytes never coming."""
    body = ChunkedBody(io.BufferedReader(io.BytesIO(b"f" * 20 + b"\r\nabc")))
    with pytest.raises(MalformedBody, match="1 to 16 hex digits"):
        body.read(10)


def test_trailer_fields_are_read_and_dropped_and_the_body_ends_after_them():
    raw = b"3\r\nabc\r\n0\r\nX-Checksum: 1\r\n\r\nGET /next HTTP/1.1\r\n"
    source = io.BufferedReader(io.BytesIO(raw))
    assert ChunkedBody(source).read() == b"abc"
    assert source.read() == b"GET /next HTTP/1.1\r\n"  # the next request is left in place
