"""The lessons of the course, one module each: ``lessons/NN_slug.py``.

A lesson module holds a WSGI app per route, a ``LESSON`` that describes them, and a
``__main__`` block that serves the lesson alone. Module names start with a digit, so
they cannot be written in an ``import`` statement; :func:`load_lesson` imports them for
the course server, the pages and the tests. A lesson never loads another: what two
lessons share is in the library (``streamlib.timing``'s ticks, ``streamlib.clock``), in
the instruments (``lab.nginx``'s proxy config) or in a module of this package that both
import by name:

- :mod:`lessons.routes`: ``Lesson``, ``Route`` and the small answers (the wiring's leaf);
- :mod:`lessons.folders`: the folders ``/files/`` serves and uploads go to (02, 09, 11);
- :mod:`lessons.chat`: the fake model's chat endpoint (06, 09).

The course server is :mod:`lessons.course` (with its pages, :mod:`lessons.pages`,
:mod:`lessons.index_page`, :mod:`lessons.inspector`); ``python -m lessons`` is
:mod:`lessons.cli`. No two of these import each other round a circle (a test checks).
"""

import importlib
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).parent


def lesson_names() -> list[str]:
    """The lesson modules' names in course order, e.g. ``["01_buffered_vs_streamed"]``."""
    return sorted(path.stem for path in HERE.glob("[0-9][0-9]_*.py"))


def load_lesson(name: str) -> ModuleType:
    """Import the lesson module ``name`` (``"01_buffered_vs_streamed"``, or just ``"01"``)."""
    matches = [found for found in lesson_names() if found == name or found[:2] == name]
    if len(matches) != 1:
        raise LookupError(f"no single lesson called {name!r}; there are {lesson_names()}")
    return importlib.import_module(f"lessons.{matches[0]}")


def load_lessons() -> list:
    """Return the ``LESSON`` of every lesson module, in course order."""
    return [load_lesson(name).LESSON for name in lesson_names()]


def spawn_course(*flags: str, port: int | None = None):
    """Start the course server (``python -m lessons``) in a child process on a free port.

    flags: more command-line flags, such as ``"--server", "gunicorn"``.
    port: a port of your choice instead, e.g. to start a server again where it was.

    A context manager yielding a :class:`streamlib.ServerProcess`; the notebooks use it
    so that the server's memory is measured apart from the notebook's own.

    >>> with spawn_course() as server:                 # doctest: +SKIP
    ...     observe(server.url + "/streamed")
    """
    import sys

    from lab import free_port, spawn_server

    port = port or free_port()
    return spawn_server([sys.executable, "-m", "lessons", "--port", str(port), *flags], port)
