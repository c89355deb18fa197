"""streamlib: stream HTTP responses with WSGI.

A WSGI app streams by returning an iterable that yields its body piece by piece; the
server sends each piece as soon as it comes. These are the pieces the course teaches, one
concern per module, each one file to read and copy into an app (werkzeug is all it needs):

- files: :func:`iter_file` and :func:`file_body` stream a file in fixed-size chunks, or a
  byte range of it (:func:`requested_range`, RFC 9110), answering conditional requests
  (:func:`evaluate_preconditions`), with names held to one folder (:func:`resolve_under`).
- time: :func:`paced` beats on schedule, without drift.
- events: :func:`event_stream` and :func:`format_event` make Server-Sent Events, with
  heartbeats; :func:`parse_events` reads them back, as a browser does.
- JSON: :func:`iter_ndjson` and :func:`iter_json_array` stream rows; :func:`parse_ndjson`
  and :func:`parse_json_array` read them as they come.
- the client: :func:`client_watch` notices it left without a write.
- input: :func:`int_param` and :func:`float_param` bound query values, :func:`read_json`
  a JSON body, :func:`store_body` an upload streamed to disk; :func:`host_refusal` and
  :func:`cross_site_refusal` say who may talk to a local server.
- :func:`gzip_responses` compresses a stream and still flushes it; :class:`StreamStats`
  counts the streams open; :func:`call_app` calls an app in-process, PEP 3333 checked.

The advanced parts are imported by their module, not from here: :mod:`streamlib.ticker`
and :mod:`streamlib.fanout` (one clock, one loop for many streams),
:mod:`streamlib.fanout_worker` (a gunicorn worker class; needs gevent and gunicorn),
:mod:`streamlib.broadcast` (a room shared by processes through Redis),
:mod:`streamlib.openai_chat` (the OpenAI chat wire format), :mod:`streamlib.resumable`
(resumable uploads). The course's instruments, which run, load and watch servers, are
the package :mod:`lab` beside this one; nothing here imports it.
"""

from streamlib.bodies import read_json
from streamlib.compress import gzip_responses
from streamlib.conditional import evaluate_preconditions
from streamlib.disconnect import client_watch
from streamlib.files import file_body, iter_file
from streamlib.json_stream import iter_json_array, iter_ndjson, parse_json_array, parse_ndjson
from streamlib.origins import cross_site_refusal, host_refusal
from streamlib.params import float_param, int_param
from streamlib.paths import resolve_under
from streamlib.ranges import requested_range
from streamlib.sse import SSE_HEADERS, event_stream, format_event, parse_events
from streamlib.stats import StreamStats
from streamlib.testing import FakeClock, WSGIResponse, call_app, make_environ
from streamlib.timing import paced
from streamlib.uploads import store_body

__all__ = [
    "SSE_HEADERS",
    "FakeClock",
    "StreamStats",
    "WSGIResponse",
    "call_app",
    "client_watch",
    "cross_site_refusal",
    "evaluate_preconditions",
    "event_stream",
    "file_body",
    "float_param",
    "format_event",
    "gzip_responses",
    "host_refusal",
    "int_param",
    "iter_file",
    "iter_json_array",
    "iter_ndjson",
    "make_environ",
    "paced",
    "parse_events",
    "parse_json_array",
    "parse_ndjson",
    "read_json",
    "requested_range",
    "resolve_under",
    "store_body",
]
