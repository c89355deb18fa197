"""The whole course as one WSGI app object, for any WSGI server.

    gunicorn --worker-class gevent --bind 127.0.0.1:8000 lessons.wsgi:app

is what ``python -m lessons --server gunicorn`` runs (it prints the exact command). Three
environment variables shape the app: ``STREAMLIB_FILES``, the folder ``/files/`` serves
(``--files`` on the course's own command line; without it, the course's sample folder),
``STREAMLIB_REDIS``, the Redis broker of lesson 08 (``--redis``), and
``STREAMLIB_LESSONS``, which lessons to mount, such as ``04_server_sent_events``
(comma-separated; without it, all of them).
"""

import os

from lessons import load_lesson, load_lessons
from lessons.course import build_app

settings = {
    name: value
    for name, value in [
        ("course.files", os.environ.get("STREAMLIB_FILES")),
        ("course.redis", os.environ.get("STREAMLIB_REDIS")),
    ]
    if value
}
names = [name for name in os.environ.get("STREAMLIB_LESSONS", "").split(",") if name]
lessons = [load_lesson(name).LESSON for name in names] if names else load_lessons()
app = build_app(lessons, settings=settings)
