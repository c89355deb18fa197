"""Resumable uploads: a dropped upload goes on from the byte where it stopped.

The server's side of the IETF draft "Resumable Uploads for HTTP" at version -05
(interop version 6, which tus-js-client speaks as ``protocol: "ietf-draft-05"``; its
``"ietf-draft-03"``, interop version 5, works too):
https://datatracker.ietf.org/doc/html/draft-ietf-httpbis-resumable-upload-05

1. **Create.** A request with ``Upload-Complete`` (any method; its body, empty or not, is
   the first part) makes an upload resource; the answer's ``Location`` is its address.
   ``?1`` says the body is the whole upload, ``?0`` that more will follow. A server that
   can sends ``104 Upload Resumption Supported`` with the ``Location`` before it reads the
   body, so even a first request that drops can be resumed.
2. **Ask.** ``HEAD`` on the resource answers ``Upload-Offset``, the bytes the server holds.
3. **Append.** ``PATCH`` with ``Content-Type: application/partial-upload``,
   ``Upload-Offset`` and the next bytes; ``Upload-Complete: ?1`` on the last.
4. **Cancel.** ``DELETE``.

How the server keeps every byte in its place, with requests in several threads and
processes at once:

- An upload is two hidden files in the upload folder: ``.upload-ID.partial`` holds its
  bytes and ``.upload-ID.json`` its state (the final name, the declared length, which
  request may append). ID is 128 random bits: only who was told the address can touch it.
- Every change is made holding an exclusive lock on the state file (``flock``, which
  works across processes), and for one piece at a time: a request waiting for a slow
  client's bytes holds no lock.
- The offset is what the disk holds (``fstat``), never where a request thinks it is.
- The newest request wins. A client whose connection died silently asks ``HEAD`` and
  appends again, while the server may still be waiting on the dead connection. ``HEAD``
  and each new append take the upload from whatever request held it; that one's next
  piece is dropped, not written, and it ends with a 409 that says the offset. So the
  offset ``HEAD`` gives is the one the next append can use (draft section 5: "The offset
  MUST be accepted by a subsequent append"), and so is the one in an append's 409: an
  append takes the upload over even when its offset is refused.
- Done is done. The finished file is renamed into place whole; the state stays, so that
  a client whose last answer was lost hears ``Upload-Complete: ?1``, and an append to a
  finished upload is a 400 that leaves it as it is.
- Nothing lives for ever: an upload nobody touched for ``max_age`` seconds is gone (a
  404), and its files are removed by :func:`reclaim_expired`; ``Upload-Limit: expires=``
  tells the client how long it has.
"""

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import secrets
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from werkzeug.exceptions import BadRequest, HTTPException, NotFound

from streamlib.uploads import refuse_non_file, storage_errors, sync_folder

INTEROP_VERSION = "6"  # draft -04 and -05; the header a client and a 104 carry
# Also spoken: interop version 5, draft -03, whose appends carry no media type
# (tus-js-client's "ietf-draft-03"). Otherwise the same requests and answers.
INTEROP_VERSIONS = ("5", INTEROP_VERSION)
PARTIAL_UPLOAD = "application/partial-upload"  # the media type of an append
PROBLEM_TYPES = "https://iana.org/assignments/http-problem-types#"
MAX_AGE = 24 * 60 * 60  # seconds an untouched upload is kept: a day to resume it


@dataclass
class UploadState:
    """What the state file of one upload holds."""

    name: str  # the file it becomes, in the upload folder
    length: int | None = None  # its final size, once the client has said it
    owner: str | None = None  # the one request that may append now, or none
    size: int | None = None  # once complete: its size and SHA-256 (hex)
    sha256: str | None = None

    @property
    def complete(self) -> bool:
        return self.size is not None


@dataclass(frozen=True)
class Held:
    """Where an upload stands: bytes held, whether complete, the length the client
    declared (if any), and seconds left before it expires."""

    offset: int
    complete: bool
    length: int | None
    expires_in: int

    def headers(self, max_size: int) -> list[tuple[str, str]]:
        """The draft's headers that say so."""
        headers = [
            ("Upload-Offset", str(self.offset)),
            ("Upload-Complete", "?1" if self.complete else "?0"),
            ("Upload-Limit", f"max-size={max_size}, expires={self.expires_in}"),
        ]
        if self.length is not None:
            headers.append(("Upload-Length", str(self.length)))
        return headers


class UploadProblem(HTTPException):
    """An answer the draft gives as problem details (RFC 9457) with the upload's
    offset: a 409 for an append at the wrong offset, a 400 for one to a finished upload.

    It is a WSGI app, as every werkzeug ``HTTPException``: ``return problem(environ,
    start_response)`` sends it.
    """

    def __init__(
        self, code: int, problem: str | None, title: str, held: Held, **fields: object
    ) -> None:
        self.code = code
        super().__init__(title)
        self.held = held
        kind = PROBLEM_TYPES + problem if problem else "about:blank"  # RFC 9457 section 4.2.1
        self.problem = {"type": kind, "title": title, **fields}

    def get_headers(self, environ: object = None, scope: object = None) -> list[tuple[str, str]]:
        return [
            ("Content-Type", "application/problem+json"),
            ("Upload-Offset", str(self.held.offset)),
            ("Upload-Complete", "?1" if self.held.complete else "?0"),
        ]

    def get_body(self, environ: object = None, scope: object = None) -> str:
        return json.dumps(self.problem)


# -- The two files of an upload, and the lock ---------------------------------------------------


def state_path(folder: Path, upload_id: str) -> Path:
    return folder / f".upload-{upload_id}.json"


def data_path(folder: Path, upload_id: str) -> Path:
    return folder / f".upload-{upload_id}.partial"


def read_state(descriptor: int) -> UploadState:
    """The state in the open state file ``descriptor`` (404 if it is damaged)."""
    try:
        return UploadState(**json.loads(os.pread(descriptor, 65536, 0)))
    except (ValueError, TypeError):  # cut short by a crash between its two writes
        raise NotFound("this upload's record is damaged; start a new upload") from None


def write_state(descriptor: int, state: UploadState) -> None:
    """Rewrite the open state file in place (a new file would not carry the lock)."""
    data = json.dumps(asdict(state)).encode()
    os.pwrite(descriptor, data, 0)
    os.ftruncate(descriptor, len(data))


@contextlib.contextmanager
def opened(folder: Path, upload_id: str) -> Iterator[int]:
    """The upload's state file, open (never through a link), or a 404 if there is none."""
    try:
        descriptor = os.open(state_path(folder, upload_id), os.O_RDWR | os.O_NOFOLLOW)
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.ELOOP):
            message = "no such upload: it was finished long ago, cancelled or never made"
            raise NotFound(message) from None
        raise
    try:
        yield descriptor
    finally:
        os.close(descriptor)  # which also lets go of the lock


@contextlib.contextmanager
def locked(descriptor: int) -> Iterator[UploadState]:
    """Hold the upload's lock, and give its state as it is now.

    Waiting for the lock can block a gevent worker: every holder lets go after one
    piece's write, or at the end after a rename and a folder sync, so the wait is
    milliseconds at most.
    """
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    try:
        if os.fstat(descriptor).st_nlink == 0:  # cancelled or reclaimed while we waited
            raise NotFound("the upload was cancelled")
        yield read_state(descriptor)
    finally:
        fcntl.flock(descriptor, fcntl.LOCK_UN)


def held_now(folder: Path, upload_id: str, state: UploadState, max_age: float) -> Held:
    """Where the upload stands, read from the disk (call it holding the lock). An upload
    untouched for ``max_age`` seconds, or whose bytes are gone, is a 404."""
    try:
        if state.complete:
            offset, touched = state.size, os.stat(state_path(folder, upload_id)).st_mtime
        else:
            data = os.lstat(data_path(folder, upload_id))  # never the size a link names
            if not stat.S_ISREG(data.st_mode):
                raise NotFound("this upload's bytes are not a plain file any more")
            offset, touched = data.st_size, data.st_mtime
            touched = max(touched, os.stat(state_path(folder, upload_id)).st_mtime)
    except FileNotFoundError:  # a crash between the rename and the state's write
        raise NotFound("this upload's bytes are gone") from None
    left = max_age - (time.time() - touched)
    if left <= 0:
        raise NotFound(f"the upload expired: nothing came for {max_age:.0f} s")
    return Held(offset, state.complete, state.length, round(left))


def overtaken(folder: Path, upload_id: str, state: UploadState) -> UploadProblem:
    """The 409 for a request a newer one took the upload over from: with the offset, as
    the draft asks of every failed append to an upload still active."""
    held = held_now(folder, upload_id, state, MAX_AGE)  # touched just now: not expired
    title = "a newer request took this upload over; this one ends here"
    return UploadProblem(409, None, title, held)


# -- The four steps ---------------------------------------------------------------------------


def create_upload(folder: Path, name: str, length: int | None = None) -> str:
    """Make a new, empty upload that becomes ``folder / name`` once complete; return its ID.

    length: its final size, if the client said it (``Upload-Length``).
    """
    upload_id = secrets.token_hex(16)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    with storage_errors(folder / name):
        os.close(os.open(data_path(folder, upload_id), flags, 0o600))
        descriptor = os.open(state_path(folder, upload_id), flags, 0o600)
        try:
            write_state(descriptor, UploadState(name=name, length=length))
        finally:
            os.close(descriptor)
    return upload_id


def upload_offset(folder: Path, upload_id: str, max_age: float = MAX_AGE) -> Held:
    """``HEAD``: where the upload stands. Whatever request was still appending to it
    writes nothing more: the offset answered is the one the next append must use."""
    with opened(folder, upload_id) as descriptor, locked(descriptor) as state:
        held = held_now(folder, upload_id, state, max_age)  # before the write touches it
        if state.owner is not None:
            state.owner = None
            write_state(descriptor, state)
        return held


def append_upload(
    folder: Path,
    upload_id: str,
    offset: int,
    complete: bool,
    pieces: Iterable[bytes],
    content_length: int | None = None,
    max_age: float = MAX_AGE,
) -> Held:
    """``PATCH`` (and the body of a creation): append ``pieces`` at ``offset``; with
    ``complete``, finish the upload: check, hash and rename it into place.

    pieces: the request body as it comes (``streamlib.uploads.body_pieces``).
    content_length: the body's declared length, which with ``complete`` fixes the final
        size (the draft: offset plus length), or None for a chunked body.

    Raises ``UploadProblem`` for an append at an offset other than the one held (409) or
    to a finished upload (400) or when a newer request took the upload over meanwhile
    (409), ``BadRequest`` when the bytes would pass the declared length or end short of
    it, and ``NotFound`` for an upload that is not there (any more).
    """
    me = secrets.token_hex(8)
    with opened(folder, upload_id) as descriptor:
        with locked(descriptor) as state:
            held = held_now(folder, upload_id, state, max_age)
            if state.complete:
                raise UploadProblem(400, "completed-upload", "the upload is already complete", held)
            state.owner = me  # from now on, no older request writes a byte
            if complete and content_length is not None:
                state.length = agreed_length(state.length, offset + content_length)
            write_state(descriptor, state)
            if offset != held.offset:
                raise UploadProblem(
                    409,
                    "mismatching-upload-offset",
                    "the upload is not at the offset the request says",
                    held,
                    **{"expected-offset": held.offset, "provided-offset": offset},
                )
        position = append_pieces(folder, upload_id, descriptor, me, offset, pieces)
        if complete:
            finish(folder, upload_id, descriptor, me, position)
        with locked(descriptor) as state:
            return held_now(folder, upload_id, state, max_age)


def agreed_length(recorded: int | None, final: int) -> int:
    """The upload's final size, once two statements of it agree (else a 400)."""
    if recorded is not None and recorded != final:
        raise BadRequest(f"the upload's length is {recorded} bytes, not {final}")
    return final


def append_pieces(
    folder: Path, upload_id: str, descriptor: int, me: str, position: int, pieces: Iterable[bytes]
) -> int:
    """Write each piece at the end of the upload's data while ``me`` still owns it;
    return the offset reached. The lock is held for each write, not while waiting."""
    with storage_errors(folder / upload_id), appending(data_path(folder, upload_id)) as data:
        for piece in pieces:
            with locked(descriptor) as state:
                if state.owner != me:
                    raise overtaken(folder, upload_id, state)
                room = len(piece) if state.length is None else state.length - position
                write_all(data, piece[:room])  # up to the declared length, not past it
                position += min(room, len(piece))
                if room < len(piece):
                    raise BadRequest(f"the upload's length is {state.length} bytes; this is more")
    return position


@contextlib.contextmanager
def appending(path: Path) -> Iterator[int]:
    """The file at ``path`` open to append to (never through a link), closed after."""
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
    try:
        yield descriptor
    finally:
        os.close(descriptor)


def write_all(descriptor: int, data: bytes) -> None:
    """``os.write`` until every byte is written (a write may take fewer, a full disk
    raises ``ENOSPC``)."""
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]


def finish(folder: Path, upload_id: str, descriptor: int, me: str, size: int) -> None:
    """Complete the upload: hash its bytes and sync them to disk, then, if ``me`` still
    owns it and every byte the client declared is in, rename it to its name.

    Hashing reads the whole file, so it runs without the lock, through a descriptor opened
    while holding it: a cancel meanwhile cannot take the bytes from under it, and the
    ownership checked again afterwards says whether they are still the upload's.
    """
    with locked(descriptor) as state:
        if state.owner != me:
            raise overtaken(folder, upload_id, state)
        data = os.open(data_path(folder, upload_id), os.O_RDONLY | os.O_NOFOLLOW)
    try:
        with os.fdopen(data, "rb", closefd=False) as file:
            digest = hashlib.file_digest(file, "sha256").hexdigest()
        os.fsync(data)
    finally:
        os.close(data)
    with locked(descriptor) as state:
        if state.owner != me:
            raise overtaken(folder, upload_id, state)
        if state.length is not None and size != state.length:
            raise BadRequest(f"the upload ended at {size} bytes; it said {state.length}")
        target = folder / state.name
        with storage_errors(target):
            refuse_non_file(target)
            os.replace(data_path(folder, upload_id), target)
            sync_folder(folder)
        state.owner, state.size, state.sha256, state.length = None, size, digest, size
        write_state(descriptor, state)


def upload_record(folder: Path, upload_id: str) -> UploadState:
    """The upload's state as it is now (its name, and once complete its size and hash)."""
    with opened(folder, upload_id) as descriptor, locked(descriptor) as state:
        return state


def cancel_upload(folder: Path, upload_id: str) -> None:
    """``DELETE``: forget the upload and the bytes it holds (not a file it became).
    A request still appending to it writes nothing more."""
    with opened(folder, upload_id) as descriptor, locked(descriptor):
        data_path(folder, upload_id).unlink(missing_ok=True)
        state_path(folder, upload_id).unlink()  # the next locked() sees st_nlink == 0


def reclaim_expired(
    folder: Path, max_age: float = MAX_AGE, now: Callable[[], float] = time.time
) -> int:
    """Remove uploads nobody touched for ``max_age`` seconds, finished or not, and the
    temporary files of uploads cut off by a crash (``.*.part``); return how many.

    An upload some request holds the lock of right now is left alone.
    """
    reclaimed = 0
    for entry in os.scandir(folder):
        path = Path(entry.path)
        try:
            touched = entry.stat(follow_symlinks=False).st_mtime
            if entry.name.startswith(".upload-") and entry.name.endswith(".json"):
                upload_id = entry.name.removeprefix(".upload-").removesuffix(".json")
                data = data_path(folder, upload_id)
                if data.exists():
                    touched = max(touched, data.stat().st_mtime)
                if now() - touched > max_age and remove_unless_busy(folder, upload_id):
                    reclaimed += 1
            elif is_temporary(entry.name) and now() - touched > max_age:
                path.unlink(missing_ok=True)
                reclaimed += 1
        except (FileNotFoundError, NotFound):  # removed by another request meanwhile
            continue
    return reclaimed


def is_temporary(name: str) -> bool:
    """Whether ``name`` is a temporary file of a PUT or a form upload (``.NAME.xyz.part``)."""
    return name.startswith(".") and name.endswith(".part")


def remove_unless_busy(folder: Path, upload_id: str) -> bool:
    """Remove an upload's files unless a request holds its lock; True if removed."""
    with opened(folder, upload_id) as descriptor:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        data_path(folder, upload_id).unlink(missing_ok=True)
        state_path(folder, upload_id).unlink(missing_ok=True)
        return True


__all__ = [
    "INTEROP_VERSION",
    "INTEROP_VERSIONS",
    "MAX_AGE",
    "PARTIAL_UPLOAD",
    "Held",
    "UploadProblem",
    "append_upload",
    "cancel_upload",
    "create_upload",
    "reclaim_expired",
    "upload_offset",
    "upload_record",
]
