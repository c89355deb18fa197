"""Turn a name from a URL into a path inside one folder, or refuse it.

Serving files is where a web app most often leaks what it should not: ``../`` in any of
its spellings, an absolute path, a NUL byte, a symlink pointing out of the folder. The
rules, in order, each done by a well-tried tool:

1. ``werkzeug.security.safe_join`` normalises the name (``a/../b`` is ``b``) and refuses
   one that still climbs out (``..``) or is absolute.
2. Names starting with a dot (``.env``, ``.git/``) are refused: hidden means private.
3. The joined path is resolved (symlinks followed) and must still lie in the folder.
4. It must be a regular file.
5. A name the system itself refuses (longer than 255 bytes: ``ENAMETOOLONG``) or a loop
   of symlinks is refused too: a 404 like any other, never a 500.
"""

from pathlib import Path

from werkzeug.security import safe_join


def resolve_under(folder: Path, name: str) -> Path | None:
    """Return the regular file ``name`` inside ``folder``, or None if it may not be served.

    folder: the folder being served (trusted).
    name: the untrusted, URL-decoded name from the request, with ``/`` separators.

    >>> resolve_under(Path("/srv/files"), "../etc/passwd") is None
    True
    """
    if "\x00" in name or "\\" in name:
        return None  # NUL ends a C string; a backslash is a separator on Windows
    if any(part.startswith(".") for part in name.split("/")):
        return None
    joined = safe_join(str(folder), name)
    if joined is None:
        return None
    try:
        root = folder.resolve()
        path = Path(joined).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return None
    except (OSError, RuntimeError):  # a name too long for the system, a loop of symlinks
        return None
    return path
