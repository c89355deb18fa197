"""Every command the course prints is run here with the real curl, and does what it says.

A lesson's docstring ends with a "Try it" block: the server to start and curl commands, each
with a comment saying what to see. The index prints one curl command per route (``python -m
lessons`` a few of them). A command that no longer works, or a comment that no longer holds,
is the first thing a learner meets, so each is run against the server its block names, and
checked:

- every command of every docstring has an entry in ``CLAIMS`` (a new or changed command
  without one fails), whose check runs it and asserts what its comment says;
- every command the index prints answers 200 and sends its first bytes within seconds;
- and meanwhile the server logs no traceback: even a failure on purpose (``fail_at``) is
  one line.
"""

import hashlib
import json
import os
import re
import selectors
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from lab import ServerProcess, free_port
from lessons import lesson_names, load_lesson, load_lessons, spawn_course
from lessons.index_page import curl_commands
from streamlib.sse import parse_events
from tests.real_programs import need

pytestmark = pytest.mark.live

PRINTED_PORT = "127.0.0.1:8000"  # the address the lessons print; the tests swap in theirs
PRINTED_HTTPS = "localhost:8443"  # and nginx's, with --https (lesson 10)


@dataclass(frozen=True)
class PrintedCommand:
    lesson: str  # "04"
    server_flags: tuple[str, ...]  # what the block says to start: ("--server", "gunicorn")
    command: str  # as printed, without its comment
    comment: str


def _server_flags(block_heading: str, block: str) -> tuple[str, ...]:
    """The flags of the ``python -m lessons ...`` that a Try-it block says to run."""
    found = re.findall(r"python -m lessons([^`\n]*)", block_heading + "\n" + block)
    return tuple(shlex.split(found[-1])) if found else ()


def printed_commands(lesson: str) -> list[PrintedCommand]:
    """The curl commands in lesson ``lesson``'s docstring: its Try-it blocks, and any whole
    command (with a URL) written inline in the text."""
    text = load_lesson(lesson).__doc__ or ""
    found = []
    heading_and_blocks = re.findall(r"(Try it[^\n]*::)\n\n((?:    .*\n|\n)+)", text)
    default_flags = _server_flags(*heading_and_blocks[0]) if heading_and_blocks else ()
    for heading, block in heading_and_blocks:
        flags = _server_flags(heading, block)
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip().startswith("curl "):
                command, _, comment = line.strip().partition("  # ")
                found.append(PrintedCommand(lesson, flags, command.strip(), comment.strip()))
    for inline in re.findall(r"``(curl [^`]*http://[^`]*)``", text):
        found.append(PrintedCommand(lesson, default_flags, inline, ""))
    return found


ALL_PRINTED = [command for name in lesson_names() for command in printed_commands(name[:2])]


@dataclass
class Output:
    """What a curl run wrote to stdout, and when each piece arrived."""

    pieces: list[tuple[float, bytes]]
    exit_code: int | None

    @property
    def body(self) -> bytes:
        return b"".join(piece for _, piece in self.pieces)

    def arrival_of(self, marker: bytes) -> float:
        """Seconds from the start until ``marker`` had arrived in full."""
        seen = b""
        for when, piece in self.pieces:
            seen += piece
            if marker in seen:
                return when
        raise AssertionError(f"{marker!r} never arrived; got {self.body[:300]!r}")


class Curl:
    """Runs printed commands against a live server, as the learner's shell would."""

    def __init__(self, url: str, folder: Path, https_address: str = PRINTED_HTTPS):
        self.address = url.removeprefix("http://")
        self.https_address = https_address
        self.folder = folder  # the working directory, where ``-o`` writes

    def start(self, command: str) -> subprocess.Popen:
        command = command.replace(PRINTED_PORT, self.address)
        words = shlex.split(command.replace(PRINTED_HTTPS, self.https_address))
        words = [os.path.expanduser(word) for word in words if word != "&"]  # as a shell does
        words[0:1] = [need("curl", "curl"), "-sS"]
        return subprocess.Popen(
            words, cwd=self.folder, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )

    def run(self, command: str, seconds: float = 15.0) -> Output:
        """Run ``command`` until it ends or ``seconds`` pass (then it is stopped)."""
        return self.read(self.start(command), seconds)

    @staticmethod
    def read(
        process: subprocess.Popen, seconds: float, until: bytes | None = None, stop: bool = True
    ) -> Output:
        """Read ``process``'s stdout as it comes, until it ends, ``until`` arrives, or
        ``seconds`` pass; then stop it (unless ``stop`` is false: it goes on)."""
        assert process.stdout is not None
        started, pieces, seen = time.monotonic(), [], b""
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while (left := started + seconds - time.monotonic()) > 0:
                if not selector.select(left):
                    break
                piece = os.read(process.stdout.fileno(), 65536)
                if not piece:
                    break
                pieces.append((time.monotonic() - started, piece))
                seen += piece
                if until is not None and until in seen:
                    break
        if not stop:
            return Output(pieces, None)
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stdout.close()
        return Output(pieces, process.returncode)


def sse_events(body: bytes) -> list:
    """The events an EventSource would dispatch from ``body`` (``streamlib.sse``)."""
    return list(parse_events([body]))


# The checks, one per printed command: each runs it and asserts what its comment says.


def streamed_prints_as_it_comes(curl: Curl, command: str) -> None:
    output = curl.run(command)
    assert len(output.body) == 1_000_000 and output.exit_code == 0
    assert output.arrival_of(b"piece 1 ") < output.pieces[-1][0] / 2, "the start came late"


def buffered_prints_all_at_the_end(curl: Curl, command: str) -> None:
    output = curl.run(command)
    assert len(output.body) == 1_000_000 and output.exit_code == 0
    first, last = output.pieces[0][0], output.pieces[-1][0]
    assert last > 0.3 and first > 0.8 * last, f"first byte at {first:.2f} s, last at {last:.2f}"


def lists_what_is_served(curl: Curl, command: str) -> None:
    assert b"tone.wav" in curl.run(command).body


def writes_100_bytes_to_part(curl: Curl, command: str) -> None:
    headers = curl.run(command).body.decode()
    assert headers.startswith("HTTP/1.1 206"), headers
    assert "Content-Range: bytes 0-99/" in headers
    assert (curl.folder / "part").stat().st_size == 100


def answers_416(curl: Curl, command: str) -> None:
    assert curl.run(command).body.startswith(b"HTTP/1.1 416")


def head_shows_etag_and_accept_ranges(curl: Curl, command: str) -> None:
    headers = curl.run(command).body.decode().lower()
    assert headers.startswith("http/1.1 200") and "\r\netag: " in headers
    assert "\r\naccept-ranges: bytes" in headers


def resumes_a_download(curl: Curl, command: str) -> None:
    whole = requests.get(f"http://{curl.address}/files/tone.wav", timeout=10).content
    (curl.folder / "tone.wav").write_bytes(whole[:1000])  # a download that broke off
    output = curl.run(command)
    assert output.exit_code == 0
    assert (curl.folder / "tone.wav").read_bytes() == whole


def foreign_host_is_refused(curl: Curl, command: str) -> None:
    status = curl.run(command.replace("curl ", "curl -o /dev/null -w '%{http_code}' ", 1)).body
    assert status == b"403"


def ticks_half_a_second_apart(curl: Curl, command: str) -> None:
    output = curl.run(command)
    assert output.body.decode().split() == [word for n in range(10) for word in ("tick", str(n))]
    spread = output.arrival_of(b"tick 9") - output.arrival_of(b"tick 0")
    assert 4.0 < spread < 5.5, f"ticks 0 to 9 took {spread:.2f} s, not 4.5"


def shows_the_chunk_framing(curl: Curl, command: str) -> None:
    body = curl.run(command).body
    assert re.fullmatch(rb"(?:[0-9a-f]+\r\n.*?\r\n)+0\r\n\r\n", body, re.S), body
    assert b"tick 2" in body


def http10_has_no_framing_and_ends_at_close(curl: Curl, command: str) -> None:
    output = curl.run(command)
    assert output.exit_code == 0, "the body ended at close, and curl took that as its end"
    assert output.body == b"tick 0\ntick 1\ntick 2\n"


def five_events_a_second_apart(curl: Curl, command: str) -> None:
    output = curl.run(command)
    ids = [int(event.id) for event in sse_events(output.body)]
    assert len(ids) == 5 and ids == list(range(ids[0], ids[0] + 5))
    spread = output.arrival_of(f"id: {ids[-1]}".encode()) - output.arrival_of(
        f"id: {ids[0]}".encode()
    )
    assert 3.5 < spread < 4.7


def heartbeats_between_events(curl: Curl, command: str) -> None:
    output = curl.run(command, seconds=3.5)  # an endless stream: watch it for a while
    comments = [line for line in output.body.decode().splitlines() if line.startswith(":")]
    assert len(comments) >= 3, f"one at once, then one a second; got {comments}"


def too_old_an_id_starts_fresh(curl: Curl, command: str) -> None:
    ids = [int(event.id) for event in sse_events(curl.run(command).body)]
    assert len(ids) == 3 and ids[0] > 1_000_000, f"not a replay from event 2: {ids}"


def ndjson_rows_half_a_second_apart(curl: Curl, command: str) -> None:
    output = curl.run(command)
    rows = [json.loads(line) for line in output.body.splitlines()]
    assert len(rows) == 5
    assert output.arrival_of(output.body.splitlines()[-1]) - output.pieces[0][0] > 1.5


def array_elements_arrive_one_by_one(curl: Curl, command: str) -> None:
    output = curl.run(command)
    assert len(json.loads(output.body)) == 5
    assert len(output.pieces) >= 5, "the elements came in one piece, not as they were made"


def ends_with_an_error_row(curl: Curl, command: str) -> None:
    rows = [json.loads(line) for line in curl.run(command).body.splitlines()]
    assert "error" in rows[-1] and not any("error" in row for row in rows[:-1])


def leaves_the_array_unclosed(curl: Curl, command: str) -> None:
    body = curl.run(command).body.strip()
    assert body.startswith(b"[") and not body.endswith(b"]")
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)


def chat_streams_deltas_then_done(curl: Curl, command: str) -> None:
    output = curl.run(command)
    data = [event.data for event in sse_events(output.body)]
    assert data[-1] == "[DONE]" and all("delta" in json.loads(item) for item in data[:-1])
    assert output.arrival_of(b"[DONE]") - output.arrival_of(b'"delta"') > 0.5, "not streamed"


def completion_chunks_then_done(curl: Curl, command: str) -> None:
    data = [event.data for event in sse_events(curl.run(command).body)]
    assert data[-1] == "[DONE]"
    chunks = [json.loads(item) for item in data[:-1]]
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks)


def ticks_a_second_apart(curl: Curl, command: str) -> None:
    output = curl.read(curl.start(command), seconds=5, until=b"tick 2\n")
    spread = output.arrival_of(b"tick 2") - output.arrival_of(b"tick 0")
    assert 1.7 < spread < 2.5


def waits_for_the_first_stream(curl: Curl, command: str) -> None:
    """One sync worker: the second request gets nothing while the first stream is held,
    and is served as soon as that stream ends (here: its client leaves)."""
    first = curl.start("curl -N 'http://127.0.0.1:8000/ticks?count=20&interval=1'")
    assert b"tick 0" in curl.read(first, seconds=5, until=b"tick 0", stop=False).body
    second = curl.start(command)
    waited = curl.read(second, seconds=1.5)
    assert waited.body == b"", "the second stream was served alongside the first"
    second = curl.start(command)
    time.sleep(0.5)
    first.kill()
    first.wait()
    served = curl.read(second, seconds=10)
    assert served.body == b"tick 0\ntick 1\n"


def both_listeners_get_the_message(curl: Curl, command: str) -> None:
    listeners = [curl.start(command) for _ in range(2)]
    time.sleep(1.0)  # both subscribed
    requests.post(f"http://{curl.address}/broadcast", json={"text": "ping"}, timeout=10)
    for listener in listeners:
        assert b"ping" in curl.read(listener, seconds=5, until=b"ping").body


def posts_hello_to_both_listeners(curl: Curl, command: str) -> None:
    url = f"http://{curl.address}/broadcast"
    listeners = [curl.start(f"curl -N '{url}'") for _ in range(2)]
    time.sleep(1.0)
    assert curl.run(command).exit_code == 0
    for listener in listeners:
        assert b"hello" in curl.read(listener, seconds=5, until=b"hello").body


def three_events_a_second_apart(curl: Curl, command: str) -> None:
    output = curl.run(command)
    ids = [int(event.id) for event in sse_events(output.body)]
    assert len(ids) == 3 and ids == list(range(ids[0], ids[0] + 3))
    spread = output.arrival_of(f"id: {ids[-1]}".encode()) - output.arrival_of(
        f"id: {ids[0]}".encode()
    )
    assert 1.5 < spread < 2.7, f"the first and last event came {spread:.2f} s apart, not 2"


def gzip_holds_the_events_to_the_end(curl: Curl, command: str) -> None:
    output = curl.run(command)
    ids = [int(event.id) for event in sse_events(output.body)]
    assert len(ids) == 3, output.body
    first, last = output.arrival_of(b"id: "), output.pieces[-1][0]
    assert last > 1.5 and last - first < 0.3, f"first event at {first:.2f} s, last at {last:.2f}"


def greets_ada_three_times(curl: Curl, command: str) -> None:
    assert curl.run(command).body == b"hello Ada (0)\nhello Ada (1)\nhello Ada (2)\n"


def ticks_over_http2_without_chunks(curl: Curl, command: str) -> None:
    assert curl.run(command).body == b"tick 0\ntick 1\ntick 2\n"
    version = curl.run(command.replace("curl ", "curl -o /dev/null -w '%{http_version}' ", 1))
    assert version.body == b"2"


def readme_in(curl: Curl) -> bytes:
    """Put a README.md where the command runs (the learner runs it in the repository)."""
    content = Path("README.md").read_bytes()
    (curl.folder / "README.md").write_bytes(content)
    return content


def status_of(curl: Curl, command: str) -> bytes:
    return curl.run(command.replace("curl ", "curl -o /dev/null -w '%{http_code}' ", 1)).body


def puts_the_file_and_answers_its_sha256(curl: Curl, command: str) -> None:
    """201 for a new file, 200 when the same PUT replaces it; each with the sha256."""
    content = readme_in(curl)
    requests.delete(f"http://{curl.address}/uploads/README.md", timeout=10)  # a new file
    with_status = command.replace("curl ", "curl -w '\\n%{http_code}' ", 1)
    for status in (b"201", b"200"):
        body, _, answered = curl.run(with_status).body.rpartition(b"\n")
        assert answered == status, f"answered {answered!r}, the comment says {status!r}"
        stored = json.loads(body)
        assert stored["size"] == len(content)
        assert stored["sha256"] == hashlib.sha256(content).hexdigest()


def refuses_at_once_without_100(curl: Curl, command: str) -> None:
    output = curl.run(command)
    assert output.body.startswith(b"HTTP/1.1 413") and b"100 Continue" not in output.body
    assert output.pieces[0][0] < 0.9, "curl waits 1 s for a 100 that never comes"


PARTIAL = {"Content-Type": "application/partial-upload"}


def new_upload_of_hi(curl: Curl) -> str:
    """Start a resumable upload of hi.txt as the printed POST does; return its address."""
    url = f"http://{curl.address}/uploads/hi.txt"
    made = requests.post(url, headers={"Upload-Complete": "?0"}, timeout=10)
    return made.headers["Location"]


def answers_201_with_a_location(curl: Curl, command: str) -> None:
    headers = curl.run(command).body.decode()
    assert headers.startswith("HTTP/1.1 201") and "\r\nLocation: /resumable/" in headers


def with_upload(command: str, at: str) -> str:
    """The printed command with its ``/resumable/ID`` made a real upload's address."""
    return command.replace("/resumable/ID", at)


def first_piece_is_held(curl: Curl, command: str) -> None:
    headers = curl.run(with_upload(command, new_upload_of_hi(curl))).body.decode()
    assert headers.startswith("HTTP/1.1 201") and "\r\nUpload-Offset: 6\r\n" in headers


def head_says_six_bytes_are_held(curl: Curl, command: str) -> None:
    at = new_upload_of_hi(curl)
    first = {**PARTIAL, "Upload-Offset": "0", "Upload-Complete": "?0"}
    requests.patch(f"http://{curl.address}{at}", data=b"hello ", headers=first, timeout=10)
    headers = curl.run(with_upload(command, at)).body.decode()
    assert headers.startswith("HTTP/1.1 204") and "\r\nUpload-Offset: 6\r\n" in headers


def last_piece_stores_hello_world(curl: Curl, command: str) -> None:
    at = new_upload_of_hi(curl)
    first = {**PARTIAL, "Upload-Offset": "0", "Upload-Complete": "?0"}
    answer = requests.patch(f"http://{curl.address}{at}", data=b"hello ", headers=first)
    assert answer.status_code == 201
    stored = json.loads(curl.run(with_upload(command, at)).body)
    assert stored["sha256"] == hashlib.sha256(b"hello world").hexdigest()


def form_stores_the_file_under_its_name(curl: Curl, command: str) -> None:
    content = readme_in(curl)
    stored = json.loads(curl.run(command).body)["files"]
    assert [(f["name"], f["size"]) for f in stored] == [("README.md", len(content))]


def delete_removes_it(curl: Curl, command: str) -> None:
    url = f"http://{curl.address}/uploads/hi.txt"
    requests.put(url, data=b"hi", timeout=10)
    assert status_of(curl, command) == b"204"
    assert requests.delete(url, timeout=10).status_code == 404  # nothing left to remove


# Each printed command (its address left out) and the check of what its comment says.
CLAIMS: dict[str, Callable[[Curl, str], None]] = {
    "curl -N '/streamed?size=1000000&delay=0.01'": streamed_prints_as_it_comes,
    "curl -N '/buffered?size=1000000&delay=0.01'": buffered_prints_all_at_the_end,
    "curl -N /files/": lists_what_is_served,
    "curl -D - -r 0-99 -o part /files/tone.wav": writes_100_bytes_to_part,
    "curl -i -r 999999999- /files/tone.wav": answers_416,
    "curl -I /files/tone.wav": head_shows_etag_and_accept_ranges,
    "curl -C - -o tone.wav /files/tone.wav": resumes_a_download,
    "curl -H 'Host: evil.example:8000' /files/": foreign_host_is_refused,
    "curl -N '/ticks?count=10&interval=0.5'": ticks_half_a_second_apart,
    "curl -N --raw '/ticks?count=3'": shows_the_chunk_framing,
    "curl -N --http1.0 '/ticks?count=3'": http10_has_no_framing_and_ends_at_close,
    "curl -N '/events?count=5&interval=1'": five_events_a_second_apart,
    "curl -N '/events?interval=5&heartbeat=1'": heartbeats_between_events,
    "curl -N -H 'Last-Event-ID: 1' '/events?count=3'": too_old_an_id_starts_fresh,
    "curl -N '/ndjson?count=5&delay=0.5'": ndjson_rows_half_a_second_apart,
    "curl -N '/json-array?count=5&delay=0.5'": array_elements_arrive_one_by_one,
    "curl -N '/ndjson?count=5&fail_at=3'": ends_with_an_error_row,
    "curl -N '/json-array?count=5&fail_at=3'": leaves_the_array_unclosed,
    "curl -N '/chat?prompt=Why+stream%3F'": chat_streams_deltas_then_done,
    "curl -N /v1/chat/completions -H 'Content-Type: application/json' -d "
    """'{"model": "fake", "stream": true, "messages": [{"role": "user", "content": "hi"}]}'""": (
        completion_chunks_then_done
    ),
    "curl -N '/ticks?count=20&interval=1' &": ticks_a_second_apart,
    "curl -N '/ticks?count=2'": waits_for_the_first_stream,
    "curl -N '/broadcast'": both_listeners_get_the_message,
    "curl -N '/flask/events?count=3'": three_events_a_second_apart,
    "curl -N '/django/events?count=3'": three_events_a_second_apart,
    "curl -N --compressed '/django/events-gzip?count=3'": gzip_holds_the_events_to_the_end,
    "curl -N '/flask/greetings?name=Ada'": greets_ada_three_times,
    "curl -D - -r 0-99 -o part /django/files/tone.wav": writes_100_bytes_to_part,
    "curl --cacert ~/.cache/streamlib/https/ca.pem -N https://localhost:8443/ticks?count=3": (
        ticks_over_http2_without_chunks
    ),
    "curl /broadcast -H 'Content-Type: application/json' "
    """-d '{"text": "hello"}'""": posts_hello_to_both_listeners,
    "curl -T README.md /uploads/README.md": puts_the_file_and_answers_its_sha256,
    "curl -i -X PUT -H 'Content-Length: 2000000000' -H 'Expect: 100-continue' "
    "/uploads/big.bin": refuses_at_once_without_100,
    "curl -i -X POST -H 'Upload-Complete: ?0' /uploads/hi.txt": answers_201_with_a_location,
    "curl -i -X PATCH -H 'Content-Type: application/partial-upload' -H 'Upload-Offset: 0' "
    "-H 'Upload-Complete: ?0' -d 'hello ' /resumable/ID": first_piece_is_held,
    "curl -I /resumable/ID": head_says_six_bytes_are_held,
    "curl -X PATCH -H 'Content-Type: application/partial-upload' -H 'Upload-Offset: 6' "
    "-H 'Upload-Complete: ?1' -d 'world' /resumable/ID": last_piece_stores_hello_world,
    "curl -F file=@README.md /uploads": form_stores_the_file_under_its_name,
    "curl -X DELETE /uploads/hi.txt": delete_removes_it,
}


def normalized(command: str) -> str:
    """``command`` with its whitespace collapsed and the printed address left out."""
    return " ".join(command.replace(f"http://{PRINTED_PORT}", "").split())


@pytest.fixture(scope="module")
def server_for() -> Iterator[Callable[[tuple[str, ...]], str]]:
    """Start, once per module, each server a Try-it block names; give its URL.
    ``server_for.servers`` holds each one's :class:`lab.ServerProcess`, by its URL."""
    with ExitStack() as stack:
        started: dict[tuple[str, ...], str] = {}
        servers: dict[str, ServerProcess] = {}

        def url_of(flags: tuple[str, ...]) -> str:
            if flags not in started:
                run_with = list(flags)
                if "--redis" in run_with:  # the block's Redis, started for the test
                    need("redis-server", "redis-server")
                    from lab.redis_server import spawn_redis

                    redis_server = stack.enter_context(spawn_redis())
                    run_with[run_with.index("--redis") + 1] = redis_server.url
                if "--https" in run_with:  # nginx on a free port: "localhost:8443" is swapped
                    run_with += ["--https-port", str(https_ports.setdefault(flags, free_port()))]
                server = stack.enter_context(spawn_course(*run_with))
                started[flags], servers[server.url] = server.url, server
            return started[flags]

        https_ports: dict[tuple[str, ...], int] = {}
        url_of.https_ports = https_ports
        url_of.servers = servers
        yield url_of


@contextmanager
def no_traceback_logged(server: ServerProcess) -> Iterator[None]:
    """Fail if ``server`` logs a traceback meanwhile: a printed command, even one that
    fails on purpose (``fail_at``), shows the learner a server that works as meant."""
    before = len(server.log())
    yield
    time.sleep(0.1)  # what the server logs as the stream ends
    logged = server.log()[before:]
    assert "Traceback" not in logged, logged


def test_every_claim_belongs_to_a_printed_command():
    printed = {normalized(found.command) for found in ALL_PRINTED}
    assert {normalized(command) for command in CLAIMS} == printed


@pytest.mark.parametrize(
    "printed", ALL_PRINTED, ids=lambda found: f"{found.lesson} {found.comment or found.command}"
)
def test_a_printed_command_does_what_its_comment_says(printed, server_for, tmp_path):
    checks = {normalized(command): check for command, check in CLAIMS.items()}
    check = checks.get(normalized(printed.command))
    assert check is not None, (
        f"lesson {printed.lesson} prints `{printed.command}`, which no test runs: add a check"
        " of what its comment says to CLAIMS"
    )
    url = server_for(printed.server_flags)
    https_port = server_for.https_ports.get(printed.server_flags)
    https_address = f"localhost:{https_port}" if https_port else PRINTED_HTTPS
    with no_traceback_logged(server_for.servers[url]):
        check(Curl(url, tmp_path, https_address), printed.command)


INDEX_COMMANDS = [
    pytest.param(command, id=command.split("8000", 1)[1][:60])
    for lesson in load_lessons()
    for route in lesson.routes
    for command in curl_commands(route, "http://127.0.0.1:8000")
]


@pytest.mark.parametrize("command", INDEX_COMMANDS)
def test_every_command_the_index_prints_answers_200_at_once(command, server_for, tmp_path):
    """Its status line and headers come within 2 s (they leave with the first piece of body;
    /buffered's first piece is its whole body, after 1.3 s)."""
    curl = Curl(server_for(()), tmp_path)
    readme_in(curl)  # what an upload's command sends, as from the repository's folder
    headers_only = command.replace("curl ", "curl -D - -o /dev/null ", 1)
    # An upload (curl -T) hears "100 Continue" first, then its answer: read to the end.
    until = None if " -T " in command else b"\r\n\r\n"
    with no_traceback_logged(server_for.servers[server_for(())]):
        output = curl.read(curl.start(headers_only), seconds=5, until=until)
    final = re.sub(rb"^(HTTP/1\.1 100 Continue\r\n\r\n)+", b"", output.body)
    assert final.split()[1] in {b"200", b"201"}, output.body[:200]
    assert output.arrival_of(final.split(b"\r\n\r\n")[0]) < 2.0
