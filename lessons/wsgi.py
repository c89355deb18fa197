"""The whole course as one WSGI app object, for any WSGI server.

    gunicorn --worker-class gthread --threads 64 --bind 127.0.0.1:8000 lessons.wsgi:app

is what ``python -m lessons --server gunicorn`` runs. The folder ``/files/`` serves comes
from the ``STREAMLIB_FILES`` environment variable (``--files`` on the course's own command
line); without it, the course's sample folder.
"""

import os

from lessons import load_lessons
from lessons.course import build_app

files = os.environ.get("STREAMLIB_FILES")
app = build_app(load_lessons(), settings={"course.files": files} if files else {})
