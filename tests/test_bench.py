"""The benchmark runs end to end (small sizes, one repeat) and reports its targets.

Timing targets are judged by the benchmark itself, not here: this test only proves
that ``python -m bench`` still works, so its committed results can be remade.
"""

import contextlib
import subprocess
import sys
from pathlib import Path

import psutil
from real_programs import need

ROOT = Path(__file__).resolve().parent.parent


def test_python_dash_m_bench_quick_writes_a_table_a_plot_and_its_targets(tmp_path):
    need("nginx", "nginx-light")  # lesson 02 compares with it
    need("redis-server", "redis-server")  # lesson 08 broadcasts through it
    need("node", "nodejs")  # lesson 07 compares with it
    subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    report = (tmp_path / "README.md").read_text()
    assert "## Lesson 01: buffered vs streamed" in report
    assert report.count("| werkzeug | streamed |") == 2
    assert report.count("| gunicorn sync | buffered |") == 2
    assert "Targets:" in report and "buffered server peak memory grows" in report
    assert (tmp_path / "01_buffered_vs_streamed.png").stat().st_size > 10_000
    assert "## Lesson 02: sending a file" in report
    for server in [
        "nginx, sendfile",
        "gunicorn sync, --no-sendfile",
        "werkzeug dev server, iter_file",
    ]:
        assert report.count(f"| {server} |") == 2, server
    assert (tmp_path / "02_stream_a_file.png").stat().st_size > 10_000
    assert "## Lesson 03: ticks on schedule" in report
    assert report.count("| gunicorn gthread |") == 1
    assert (tmp_path / "03_manual_chunks.png").stat().st_size > 10_000
    assert "## Lesson 05: a million rows" in report
    assert report.count("| NDJSON, parsed row by row |") == 1
    assert (tmp_path / "05_chunked_json.png").stat().st_size > 10_000
    assert "## Lesson 06: first token against the whole answer" in report
    assert (tmp_path / "06_streaming_ai.png").stat().st_size > 10_000
    assert "## Lesson 07: SSE fan-out by worker class" in report
    assert "| gevent | 60 |" in report and "| sync | 60 | 1 |" in report
    for server in [
        "Node 20, a timer per connection",
        "gevent, one ticker (/shared-events)",
        "fan-out worker, one loop (/shared-events)",
        "one loop, not WSGI (CPython's floor)",
    ]:
        assert f"| {server} | 60 | 60 |" in report, server
    assert "Against Node, its p99 as a multiple of Node's in the same round" in report
    assert "| wake | one shared event (Ticker) |" in report
    assert (tmp_path / "07_production.png").stat().st_size > 10_000
    assert "## Lesson 08: a broadcast through Redis" in report
    for server in [
        "gunicorn gevent, 2 workers",
        "fan-out worker, 2 workers",
        "Node 20, one reader writing to every client",
        "CPython's floor, one loop (bench.one_loop)",
    ]:
        assert report.count(f"| {server} | 50 |") == 1, server
    assert "**The floor.** One pass of writes" in report
    assert "Part of that pass is the clients' TCP receive" in report
    assert (tmp_path / "08_fan_out.png").stat().st_size > 10_000
    assert "## Lesson 09: Flask and Django, and WSGI against ASGI" in report
    for server in ["asyncio + h11", "uvloop + httptools"]:
        assert report.count(f"| uvicorn + Starlette, {server} (ASGI) | 60 | 60 |") == 1, server
    assert (tmp_path / "09_flask_and_django.png").stat().st_size > 10_000
    assert "## Lesson 11: storing an upload" in report
    assert report.count("| nginx, dav_methods PUT | 4 MiB | ") == 1
    assert report.count("| buffered: read whole, gunicorn sync | 4 MiB | ") == 1
    assert (tmp_path / "11_uploads.png").stat().st_size > 10_000


def test_the_committed_results_cover_every_benchmark_and_meet_every_target():
    report = (ROOT / "bench" / "results" / "README.md").read_text()
    assert "--quick" not in report, "commit the results of a full run"
    for lesson in ["01", "02", "03", "05", "06", "07", "08", "09", "11"]:
        assert f"## Lesson {lesson}" in report
    assert report.count("- met:") >= 20
    assert "MISSED" not in report


def test_only_remakes_the_chosen_sections_and_keeps_the_rest(tmp_path, monkeypatch):
    import types

    from bench import __main__ as bench_main

    fake = types.ModuleType("bench.lesson07")
    fake.run = lambda out, quick=False: "## Lesson 07: new figures\n"
    monkeypatch.setattr(bench_main, "BENCHMARKS", [fake])
    page = "# Benchmark results\n\nMeasured on a day.\n\n"
    page += "## Lesson 01: kept\n\nold one\n\n## Lesson 07: old figures\n\nold seven\n"
    (tmp_path / "README.md").write_text(page)
    for _ in range(2):
        bench_main.main(["--only", "07", "--out", str(tmp_path)])
    report = (tmp_path / "README.md").read_text()
    assert "## Lesson 01: kept\n\nold one" in report and "old seven" not in report
    assert report.index("## Lesson 01") < report.index("## Lesson 07: new figures")
    assert report.startswith("# Benchmark results\n\nMeasured on a day.\n")
    assert report.count("Lesson 07 remade by `python -m bench --only 07`") == 1


def fake_queues(tmp_path: Path, masks: dict[str, str]) -> Path:
    """A folder shaped like /sys/class/net/lo/queues: rx-N/rps_cpus files holding ``masks``."""
    for queue, mask in masks.items():
        (tmp_path / queue).mkdir()
        (tmp_path / queue / "rps_cpus").write_text(mask + "\n")
    return tmp_path


def test_loopback_receive_moves_to_the_spare_cores_and_back(tmp_path):
    from bench.cores import can_pin, loopback_receive_on_spare_cores, read_mask, spare_cores

    queues = fake_queues(tmp_path, {"rx-0": "0", "rx-1": "00000000,00000000"})
    spare = sum(1 << core for core in spare_cores())
    with loopback_receive_on_spare_cores(queues) as steered:
        inside = [read_mask(queues / queue / "rps_cpus") for queue in ("rx-0", "rx-1")]
    assert steered == can_pin()
    assert inside == ([spare, spare] if can_pin() else [0, 0])
    assert spare & 1 == 0 or not can_pin(), "never core 0, the servers'"
    assert (queues / "rx-0" / "rps_cpus").read_text() == "0"
    assert (queues / "rx-1" / "rps_cpus").read_text() == "00000000,00000000"


def test_loopback_receive_left_alone_where_a_mask_cannot_be_written(tmp_path):
    from bench.cores import loopback_receive_on_spare_cores

    queues = fake_queues(tmp_path, {"rx-0": "0"})
    (queues / "rx-1" / "rps_cpus").mkdir(parents=True)  # reads and writes fail, as without root
    with loopback_receive_on_spare_cores(queues) as steered:
        pass
    assert steered is False
    assert (queues / "rx-0" / "rps_cpus").read_text() == "0", "what was written is put back"
    with loopback_receive_on_spare_cores(tmp_path / "none") as steered:
        assert steered is False, "no such setting: nothing steered"


def test_a_bench_stopped_with_sigterm_stops_the_servers_it_started(tmp_path):
    import signal
    import time

    need("redis-server", "redis-server")
    command = [sys.executable, "-m", "bench", "--only", "08", "--quick", "--out", str(tmp_path)]
    bench = psutil.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(is_gunicorn(p) for p in started):
            time.sleep(0.2)
            started = bench.children(recursive=True)  # Redis first, then the servers
        assert any(is_gunicorn(p) for p in started), "the bench started no server in 60 s"
        bench.send_signal(signal.SIGTERM)
        assert bench.wait(timeout=30) == 128 + signal.SIGTERM
        _, left = psutil.wait_procs(started, timeout=15)
        assert not left, f"still running after the bench: {left}"
    finally:
        for process in [bench, *started]:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()


def is_gunicorn(process) -> bool:
    """Whether ``process`` runs gunicorn (False once it has gone)."""
    try:
        return "gunicorn" in " ".join(process.cmdline())
    except psutil.Error:
        return False
