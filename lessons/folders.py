"""The folders the course serves and stores in: ``/files/`` (lesson 02) and the uploads
(lesson 11), from the command line's ``--files`` and ``--uploads``, or a sample folder the
course makes on first use.

Course wiring, not library: an app of your own knows its folders. Lessons 02, 09 and 11
read them here.
"""

import math
import os
import struct
import tempfile
import wave
from collections.abc import Callable
from pathlib import Path

CLIP_NAME = "tone.wav"
CLIP_SECONDS = 600  # long enough that a browser fetches it in ranges rather than whole
CLIP_RATE = 8000  # samples per second, 16-bit mono: 16 KB a second


def served_folder(environ: dict) -> Path:
    """The folder ``/files/`` serves: ``--files DIR``, or the course's sample folder."""
    configured = environ.get("course.files")
    return Path(configured) if configured else sample_folder()


def sample_folder() -> Path:
    """Return the course's sample folder, creating it and its files on first use.

    It lives in the user's cache (``$XDG_CACHE_HOME`` or ``~/.cache``), under
    ``streamlib/files``: a short text file and a tone clip for the media demo.
    """
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = cache / "streamlib" / "files"
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "hello.txt").exists():
        _write_atomically(folder / "hello.txt", lambda f: f.write(b"Hello from lesson 02.\n"))
    if not (folder / CLIP_NAME).exists():
        _write_atomically(folder / CLIP_NAME, _write_tone)
    return folder


def _write_atomically(path: Path, write: Callable) -> None:
    # Several gunicorn workers may create the folder at once: write aside, then rename.
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as part:
        write(part)
    os.replace(part.name, path)


def _write_tone(file: object) -> None:
    """Write a WAV clip of a 400 Hz tone, made with the standard library's ``wave``."""
    period = CLIP_RATE // 400  # samples per cycle: 20, so one cycle repeats exactly
    cycle = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * n / period))) for n in range(period)
    )
    with wave.open(file, "wb") as clip:
        clip.setnchannels(1)
        clip.setsampwidth(2)
        clip.setframerate(CLIP_RATE)
        clip.writeframes(cycle * (CLIP_SECONDS * CLIP_RATE // period))


def upload_folder(environ: dict) -> Path:
    """Where uploads go: ``--uploads DIR``, or ``uploads/`` inside the folder ``/files/``
    serves (lesson 02), so that ``/files/uploads/NAME`` sends a stored file back."""
    configured = environ.get("course.uploads")
    folder = Path(configured) if configured else served_folder(environ) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
