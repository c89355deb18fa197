"""Helpers shared by the graders: tutor-style messages, a server that keeps the learner's
errors for the report, and a cursor-like row source."""

import ast
import hashlib
import inspect
import textwrap
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from lab import serve


class Happened(str):
    """What a grader saw happen, in words (not a value the code returned)."""


def tutor(called: str, got: object, expected: str, hint: str) -> str:
    """A grader's failure message: what was called, what came back (or, for
    :class:`Happened`, what happened), what was expected, and where in the lesson to look."""
    came = f"Then {got}" if isinstance(got, Happened) else f"It returned {got!r}"
    return f"\n  Called {called}.\n  {came},\n  but the tests expected {expected}.\n  Hint: {hint}"


@contextmanager
def must_raise(expected: type[Exception], called: str, hint: str) -> Iterator[None]:
    """``pytest.raises`` with a tutor's message: the block must raise ``expected``.

    Nothing raised, or another exception, fails with what happened and the ``hint``. The
    stub's ``NotImplementedError`` passes through, so the report says "not started yet".
    """
    try:
        yield
    except expected:
        return
    except NotImplementedError:
        raise
    except Exception as error:
        happened = Happened(f"it raised {type(error).__name__}: {error}")
    else:
        happened = Happened("it raised nothing")
    raise AssertionError(tutor(called, happened, f"a {expected.__name__}", hint))


# Exceptions the learner's code raised inside a server thread during the current test. The
# server answers them with a 500 or a cut stream, which is all the client sees; the report
# (conftest.py) shows the exception itself, which is what the learner needs to read.
server_errors: list[BaseException] = []


def recording_errors(app: Callable) -> Callable:
    """Wrap a WSGI app so that an exception from calling it, iterating its body or closing
    it is kept in ``server_errors`` (and raised on, so that the server behaves as usual)."""

    def recorded(environ: dict, start_response: Callable) -> Iterable[bytes]:
        try:
            body = app(environ, start_response)
        except Exception as error:
            server_errors.append(error)
            raise
        return _recorded_body(body)

    return recorded


def _recorded_body(body: Iterable[bytes]) -> Iterator[bytes]:
    try:
        for piece in body:  # noqa: UP028 (yield from would close the body, and finally again)
            yield piece
    except Exception as error:
        server_errors.append(error)
        raise
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            try:
                close()
            except Exception as error:
                server_errors.append(error)
                raise


@contextmanager
def serve_exercise(app: Callable) -> Iterator[str]:
    """``lab.serve`` for an app built from the learner's code: yields the base URL, and
    keeps what the app raises in ``server_errors`` for the report."""
    with serve(recording_errors(app)) as url:
        yield url


class Rows:
    """Rows of a report, read like a database cursor: iterate, then ``close()``.

    The counters let a grader see what a stream did with it: how many rows it pulled, and
    whether it closed the cursor. With a ``gate``, the cursor stops after ``gate_after``
    rows until the gate is set, like a slow query, so a test can check what the client
    has received while the rest is still pending, without sleeping.
    """

    def __init__(
        self, rows: list[bytes], gate: threading.Event | None = None, gate_after: int = 1
    ) -> None:
        self._rows = iter(rows)
        self.gate, self.gate_after = gate, gate_after
        self.pulled = 0
        self.exhausted = False
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        assert not self.closed, "a row was read after the cursor was closed"
        if self.gate is not None and self.pulled == self.gate_after:
            assert self.gate.wait(timeout=30), "the test never opened the gate"
        try:
            row = next(self._rows)
        except StopIteration:
            self.exhausted = True
            raise
        self.pulled += 1
        return row

    def close(self) -> None:
        self.closed = True


class RowSource:
    """A callable that opens a new :class:`Rows` cursor on each call and remembers them."""

    def __init__(self, rows: list[bytes], **cursor_options: object) -> None:
        self.rows, self.options = rows, cursor_options
        self.opened: list[Rows] = []

    def __call__(self) -> Rows:
        cursor = Rows(self.rows, **self.options)
        self.opened.append(cursor)
        return cursor


def borrowed(function: Callable, library_function: Callable) -> str:
    """How ``function`` came from the course's library, or ``""`` if it is the learner's own.

    ``"imported"`` if it is the library's function (imported, or assigned to the task's
    name); ``"copied"`` if its code has the library function's shape: the same syntax tree
    once docstrings are dropped and every name is numbered in order of first use, so
    renaming the variables does not hide a copy.
    """
    if function is library_function or getattr(function, "__module__", "").startswith("streamlib"):
        return "imported"
    try:
        copied = shape(function) == shape(library_function)
    except (OSError, TypeError, SyntaxError):  # no source to read: not a copy we can see
        return ""
    return "copied" if copied else ""


def require_own_work(function: Callable, library_function: Callable, section: str) -> None:
    """Fail with a tutor's note if ``function`` is ``library_function``, imported or pasted.

    section: the lesson section that teaches it, as a hint names it: ``lesson 04, 'The format'``.
    """
    how = borrowed(function, library_function)
    library = f"{library_function.__module__}.{library_function.__name__}"
    if how:
        raise AssertionError(
            tutor(
                f"{function.__name__}, and compared it with {library}",
                Happened(f"it is the library's, {how}"),
                f"a {function.__name__} you wrote",
                f"Task 1 and {section}: writing it is the exercise; the course's own is there"
                " to compare with once yours passes.",
            )
        )


def shape(function: Callable) -> str:
    """``function``'s syntax tree without its docstring and with its names numbered."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    definition = tree.body[0]
    body = definition.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        definition.body = body[1:]
    definition.name, definition.returns, definition.decorator_list = "f", None, []
    numbers: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            node.id = numbers.setdefault(node.id, f"n{len(numbers)}")
        elif isinstance(node, ast.arg):
            node.arg, node.annotation = numbers.setdefault(node.arg, f"n{len(numbers)}"), None
    return ast.dump(tree, include_attributes=False)


def stub_sha256(text: bytes) -> str:
    """The SHA-256 of an exercise file's text, with Windows line ends read as ``\\n``."""
    return hashlib.sha256(text.replace(b"\r\n", b"\n")).hexdigest()


def is_untouched_stub(path: Path) -> bool:
    """Whether ``path`` is still the exercise's stub exactly as the course ships it."""
    return path.is_file() and stub_sha256(path.read_bytes()) == STUBS.get(path.stem)


# The SHA-256 of each stub as the course ships it (tests/test_exercises.py checks them).
STUBS = {
    "01_buffered_vs_streamed": "217f5f520b3b992b05d62bf59ab2701aba6a5234c1a774d40608ab948e81eb10",
    "02_stream_a_file": "4f9ff145aee881515ace6b95aa2c4f4fe7f3f75162c68cd55b1ffa5e7eeafb98",
    "03_manual_chunks": "6e902ec23de3b8ed1f2f0ca93209a1a25418d5b7ab2fe6daf9006840ad3bd97e",
    "04_server_sent_events": "c81f7ffb7ab64a767e334150a6a61df487d60d2376371f5cb9ae7e85ef5c214b",
    "05_chunked_json": "218a8c22f734710a78ded1d83bac0a1daa33ad3653ad309ef600220807b8c4bf",
    "06_streaming_ai": "26d2e2e1148c33a62919f3403088b1a42cb2c965ab0fa9ea5d5c7164c6f922fc",
    "07_production": "80b6e3477735755dd0508b5ac126c07d73e004f80c58fd3b3a6fcefca52aa980",
    "08_fan_out": "681ebd63fcdf76c16d949ffb91db15e06a3057117b80ec816c591017e3cf41dd",
    "09_flask_and_django": "376c5a67e3c6f64fda9a8c0e617a7dd75c4df53db6aa6f6d94d1ed844a348e87",
    "10_http2": "fc01493706760efeec4a25ae8e3a3d5ae3ac3cd0c6e397323c545877e34e5c0e",
    "11_uploads": "368a9b67bcf56ae475acbe38d2c2680f2f200a5aa692f8dc1774743ae9355879",
}
