"""``%%needs PROGRAM PACKAGE``: run a notebook cell only where a program is installed.

Some sections of the notebooks drive real programs from Debian's packages: nginx (lesson
07), curl (HTTP/2 in lesson 07), redis-server (lesson 08). A learner without them should
still be able to run the notebook top to bottom, and read what to install::

    %load_ext lab.notebook

    %%needs nginx nginx-light
    with spawn_nginx(...) as nginx:
        ...

Where the program is missing the cell prints one line, ``nginx is not installed, so this
part is skipped: apt-get install nginx-light``, and does nothing else. The tests use the
same :func:`find_program`, and ``STREAMLIB_HIDE_PROGRAMS=nginx,curl`` plays a machine
without them.
"""

import os
import shutil


def find_program(program: str) -> str | None:
    """The path of ``program``, or None if it is not installed (or hidden for a test).

    Debian puts nginx in ``/usr/sbin``, which is not on every user's ``PATH``.
    """
    hidden = os.environ.get("STREAMLIB_HIDE_PROGRAMS", "").split(",")
    if program in hidden:
        return None
    return shutil.which(program) or next(
        (p for p in (f"/usr/sbin/{program}", f"/usr/bin/{program}") if os.path.exists(p)), None
    )


def missing_note(program: str, package: str) -> str:
    """The one line a notebook prints for a part it skips."""
    return (
        f"{program} is not installed, so this part is skipped: apt-get install {package}"
        " (or open the course in its devcontainer; see the README)"
    )


def needs(line: str, cell: str) -> None:
    """The ``%%needs PROGRAM PACKAGE [PROGRAM PACKAGE...]`` cell magic: run ``cell`` only
    if every PROGRAM is installed; otherwise print what to install for each missing one."""
    from IPython import get_ipython

    words = line.split()
    pairs = list(zip(words[::2], words[1::2], strict=True))
    missing = [missing_note(p, package) for p, package in pairs if find_program(p) is None]
    if missing:
        print("\n".join(missing))
        return
    get_ipython().run_cell(cell)


def load_ipython_extension(ipython) -> None:
    """Called by ``%load_ext lab.notebook``: registers ``%%needs``."""
    ipython.register_magic_function(needs, magic_kind="cell", magic_name="needs")
