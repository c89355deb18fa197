"""trace_memory sees a child process's peak, even one freed before the trace ends."""

import subprocess
import sys
import time

import pytest

from lab import peak_rss_bytes, reset_peak_rss, trace_memory

# Once started, the child says "ready"; it allocates 100 MiB when it reads a line,
# frees it, and says "done".
CHILD = """
import sys
print("ready", flush=True)
sys.stdin.readline()
block = b'x' * (100 * 1024 * 1024)  # written, so every page is resident
del block
print("done", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def child():
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline() == "ready\n"
    yield process
    process.kill()
    process.wait()


def test_a_freed_spike_still_shows_as_the_peak(child):
    with trace_memory([child.pid]) as memory:
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline() == "done\n"
    assert memory.growth_bytes >= 95 * 1024 * 1024
    if memory.exact:  # Linux: the kernel's high-water mark, so the spike cannot be missed
        assert memory.growth_bytes < 110 * 1024 * 1024


def test_a_quiet_process_shows_no_growth(child):
    with trace_memory([child.pid], interval=0.005) as memory:
        time.sleep(0.05)
    assert memory.growth_bytes < 1024 * 1024
    assert memory.samples, "the sampler took no sample"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux's")
def test_reset_peak_brings_the_high_water_mark_down(child):
    child.stdin.write("go\n")
    child.stdin.flush()
    child.stdout.readline()
    assert peak_rss_bytes(child.pid) >= 100 * 1024 * 1024
    assert reset_peak_rss(child.pid)
    assert peak_rss_bytes(child.pid) < 50 * 1024 * 1024
