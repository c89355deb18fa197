"""A WSGI app for tests/test_uploads.py to run under gunicorn: it stores the request body
with ``streamlib.uploads`` in ``$UPLOAD_FOLDER`` and answers what it saw."""

import json
import os
from pathlib import Path

from werkzeug.exceptions import HTTPException

from streamlib.uploads import store_body


def app(environ, start_response):
    try:
        stored = store_body(environ, Path(os.environ["UPLOAD_FOLDER"]) / "up", 1024 * 1024)
    except HTTPException as error:
        return error(environ, start_response)
    seen = {
        "sha256": stored.sha256,
        "size": stored.size,
        "input_terminated": environ.get("wsgi.input_terminated"),
        "content_length": environ.get("CONTENT_LENGTH", ""),
    }
    body = json.dumps(seen).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
