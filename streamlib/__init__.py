"""streamlib: stream HTTP responses with WSGI, and see them stream.

A WSGI app streams by returning an iterable that produces its body piece by piece; the
server sends each piece as soon as the app yields it. This package holds the small helpers
the course is built on, one concern per module:

- :mod:`streamlib.serving`: run an app on a real server (thread, child process, gunicorn).
- :mod:`streamlib.observe`: watch a response arrive from the client's side.
- :mod:`streamlib.memory`: measure a server process's peak memory.
- :mod:`streamlib.stats`: count the streams a server opens and closes.
- :mod:`streamlib.params`: read query parameters with bounds, or answer 400.
- :mod:`streamlib.testing`: call an app in-process, with PEP 3333 checked.
"""

from streamlib.memory import MemoryTrace, peak_rss_bytes, reset_peak_rss, trace_memory
from streamlib.observe import Chunk, Observation, observe
from streamlib.params import float_param, int_param
from streamlib.serving import ServerProcess, free_port, gunicorn_args, serve, spawn_server
from streamlib.stats import StreamStats
from streamlib.testing import FakeClock, WSGIResponse, call_app, make_environ

__all__ = [
    "Chunk",
    "FakeClock",
    "MemoryTrace",
    "Observation",
    "ServerProcess",
    "StreamStats",
    "WSGIResponse",
    "call_app",
    "float_param",
    "free_port",
    "gunicorn_args",
    "int_param",
    "make_environ",
    "observe",
    "peak_rss_bytes",
    "reset_peak_rss",
    "serve",
    "spawn_server",
    "trace_memory",
]
