"""lab: the course's instruments, beside the library (``streamlib``) they measure.

What a lesson, a notebook, a test or a benchmark needs to see a stream stream, and that
no app needs to serve one:

- servers to run and spawn: :func:`serve` (an app on the course's dev server, in a
  thread), :func:`spawn_server` (a server in a child process, stopped afterwards),
  :func:`gunicorn_args` (:mod:`lab.serving`); the dev server held to the specs
  (:mod:`lab.devserver`, with :mod:`lab.framing`);
- clients that observe and load: :func:`observe` (each chunk's arrival, from the client's
  side), :mod:`lab.load` (crowds of streaming clients), :mod:`lab.slow_clients`,
  :mod:`lab.http2` (HTTP/2 frames, read with h2);
- memory: :func:`trace_memory`, :func:`peak_rss_bytes` (:mod:`lab.memory`);
- the programs the course launches: nginx, Redis, Node.js, Chromium
  (:mod:`lab.nginx`, :mod:`lab.redis_server`, :mod:`lab.node_clock`,
  :mod:`lab.node_relay`, :mod:`lab.browser`), and certificates for them (:mod:`lab.certs`);
- a stand-in for a language model (:mod:`lab.fake_llm`), and the notebooks' helpers
  (:mod:`lab.notebook`).

It needs psutil and requests, which the course's requirements install.
"""

from lab.memory import MemoryTrace, peak_rss_bytes, reset_peak_rss, trace_memory
from lab.observe import Chunk, Observation, observe
from lab.serving import ServerProcess, free_port, gunicorn_args, serve, spawn_server

__all__ = [
    "Chunk",
    "MemoryTrace",
    "Observation",
    "ServerProcess",
    "free_port",
    "gunicorn_args",
    "observe",
    "peak_rss_bytes",
    "reset_peak_rss",
    "serve",
    "spawn_server",
    "trace_memory",
]
