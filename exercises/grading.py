"""Helpers shared by the graders: tutor-style messages and a cursor-like row source."""

import threading
from collections.abc import Iterator


class Happened(str):
    """What a grader saw happen, in words (not a value the code returned)."""


def tutor(called: str, got: object, expected: str, hint: str) -> str:
    """A grader's failure message: what was called, what came back (or, for
    :class:`Happened`, what happened), what was expected, and where in the lesson to look."""
    came = f"Then {got}" if isinstance(got, Happened) else f"It returned {got!r}"
    return f"\n  Called {called}.\n  {came},\n  but the tests expected {expected}.\n  Hint: {hint}"


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
