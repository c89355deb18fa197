"""Real servers on loopback: serve() in a thread, spawn_server() in a child, observe()."""

import sys
import threading

import pytest
import requests

from lab import free_port, observe, serve, spawn_server


def gated_app(gate: threading.Event):
    """Sends b"first", waits for ``gate``, then sends b"second"."""

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])

        def body():
            yield b"first"
            gate.wait(timeout=10)
            yield b"second"

        return body()

    return app


def test_observe_records_each_piece_when_it_arrives():
    gate = threading.Event()
    with serve(gated_app(gate)) as url:
        timer = threading.Timer(0.3, gate.set)  # the second piece leaves 0.3 s later
        timer.start()
        seen = observe(url, keep_body=True)
        timer.join()
    assert seen.status == 200
    assert seen.body == b"firstsecond"
    assert [chunk.size for chunk in seen.chunks] == [5, 6]
    assert seen.chunks[1].at - seen.chunks[0].at >= 0.25
    assert seen.ttfb == seen.chunks[0].at
    assert seen.total_bytes == 11
    times, received = seen.bytes_over_time()
    assert received == [0, 5, 11] and times[0] == 0.0


def test_observe_can_hang_up_early_like_a_client_that_leaves():
    gate = threading.Event()
    try:
        with serve(gated_app(gate)) as url:
            seen = observe(url, max_chunks=1)
    finally:
        gate.set()
    assert [chunk.size for chunk in seen.chunks] == [5]


def test_one_open_stream_does_not_block_another():
    gate = threading.Event()
    try:
        with serve(gated_app(gate)) as url, requests.get(url, stream=True, timeout=5) as first:
            assert first.raw.read1(100) == b"first"  # this stream now waits on the gate
            second = observe(url + "/", max_chunks=1, timeout=5)
            assert second.status == 200 and second.chunks
    finally:
        gate.set()


def test_spawn_server_says_why_when_the_server_dies_at_start():
    port = free_port()
    with pytest.raises(RuntimeError, match=r"(?s)exited with code 3.*boom"):  # noqa: SIM117
        with spawn_server([sys.executable, "-c", "print('boom'); raise SystemExit(3)"], port):
            pass


def test_spawn_server_gives_up_after_its_timeout():
    port = free_port()
    with pytest.raises(TimeoutError, match="no answer"):  # noqa: SIM117
        with spawn_server(
            [sys.executable, "-c", "import time; time.sleep(30)"], port, ready_timeout=0.5
        ):
            pass


def test_spawn_server_does_not_take_another_server_on_its_port_for_its_own():
    """Two tests may be handed the same free port. The one whose server cannot bind must not
    pass for ready because the other's server answers there."""

    def other(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"not the spawned server"]

    with serve(other) as url:
        port = int(url.rsplit(":", 1)[1])
        assert requests.get(url, timeout=5).ok  # something answers on the port
        with pytest.raises(TimeoutError, match="another process may hold the port"):  # noqa: SIM117
            with spawn_server(
                [sys.executable, "-c", "import time; time.sleep(30)"], port, ready_timeout=1
            ):
                pass
