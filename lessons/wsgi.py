"""The whole course as one WSGI app object, for any WSGI server.

    gunicorn --bind 127.0.0.1:8000 --worker-class gevent --no-control-socket lessons.wsgi:app

is what ``python -m lessons --server gunicorn`` runs (it prints the exact command).
Environment variables shape the app, each the twin of a flag of the course's own command
line: ``STREAMLIB_FILES``, the folder ``/files/`` serves (``--files``; without it, the
course's sample folder); ``STREAMLIB_UPLOADS``, ``STREAMLIB_MAX_UPLOAD`` and
``STREAMLIB_UPLOAD_EXPIRY``, where lesson 11 stores uploads, the largest it takes in
bytes, and the seconds an unfinished upload is kept (``--uploads``, ``--max-upload``,
``--upload-expiry``); ``STREAMLIB_BODY_TIMEOUT``, the seconds a request body may stall
(``--body-timeout``);
``STREAMLIB_REDIS``, the Redis broker of lesson 08 (``--redis``);
``STREAMLIB_PROXY_SECRET``, what nginx sends with the path of a body it stored
(``--nginx-stores-uploads``; the course makes a new one each run);
``STREAMLIB_ALLOW_HOSTS``, host names to answer besides loopback (``--allow-host``);
``STREAMLIB_CORS``, origins whose pages may read and post (``--cors``); and
``STREAMLIB_LESSONS``, which lessons to mount, such as ``04_server_sent_events``. The
last three are comma-separated lists.
"""

import os

from lessons import load_lesson, load_lessons
from lessons.course import build_app


def listed(variable: str) -> tuple[str, ...]:
    """The comma-separated values of environment variable ``variable`` (none if unset)."""
    return tuple(value for value in os.environ.get(variable, "").split(",") if value)


settings = {
    name: value
    for name, value in [
        ("course.files", os.environ.get("STREAMLIB_FILES")),
        ("course.uploads", os.environ.get("STREAMLIB_UPLOADS")),
        ("course.max_upload", int(os.environ.get("STREAMLIB_MAX_UPLOAD") or 0)),
        ("course.upload_expiry", int(os.environ.get("STREAMLIB_UPLOAD_EXPIRY") or 0)),
        ("course.body_timeout", int(os.environ.get("STREAMLIB_BODY_TIMEOUT") or 0)),
        ("course.redis", os.environ.get("STREAMLIB_REDIS")),
        ("course.proxy_secret", os.environ.get("STREAMLIB_PROXY_SECRET")),
        ("course.allow_hosts", listed("STREAMLIB_ALLOW_HOSTS")),
        ("course.cors", listed("STREAMLIB_CORS")),
    ]
    if value
}
names = listed("STREAMLIB_LESSONS")
lessons = [load_lesson(name).LESSON for name in names] if names else load_lessons()
app = build_app(lessons, settings=settings)
