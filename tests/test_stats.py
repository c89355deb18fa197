"""StreamStats counts a stream as closed exactly when its iterable's close() is called."""

import threading

from streamlib import StreamStats


def test_a_stream_is_open_until_closed_and_its_own_close_runs(stats: StreamStats):
    released = []

    def stream():
        try:
            yield b"a"
            yield b"b"
        finally:
            released.append(True)

    body = stats.track("/x", stream())
    assert next(iter(body)) == b"a"
    assert stats.snapshot()["routes"]["/x"] == {
        "open_streams": 1,
        "streams_started": 1,
        "streams_closed": 0,
    }
    body.close()
    assert released == [True], "the generator's finally did not run"
    assert stats.snapshot()["open_streams"] == 0
    assert stats.snapshot()["streams_closed"] == 1


def test_a_stream_closed_before_its_first_piece_still_counts_as_closed(stats: StreamStats):
    body = stats.track("/x", iter([b"never read"]))
    body.close()
    assert stats.snapshot()["routes"]["/x"]["streams_closed"] == 1


def test_counts_are_per_route_and_add_up(stats: StreamStats):
    for route in ["/a", "/a", "/b"]:
        stats.track(route, [b""])
    snapshot = stats.snapshot()
    assert snapshot["streams_started"] == 3
    assert snapshot["open_streams"] == 3
    assert snapshot["routes"]["/a"]["streams_started"] == 2


def test_counting_from_many_threads_loses_nothing(stats: StreamStats):
    def open_and_close():
        for _ in range(500):
            stats.track("/x", [b""]).close()

    threads = [threading.Thread(target=open_and_close) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert stats.snapshot()["routes"]["/x"] == {
        "open_streams": 0,
        "streams_started": 4000,
        "streams_closed": 4000,
    }
