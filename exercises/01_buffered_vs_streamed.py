"""Exercise 01: turn a buffered app into a streaming one.

``buffered_report`` below is a working WSGI app. It reads rows from a cursor (think of a
slow database query), builds a whole text report, and only then sends it:

    report
    <row 1>
    <row 2>
    ...
    total: N rows

Write ``streamed_report``: the same report, but sent as it is made.

Read first: lesson 01, 'Buffered', 'Streamed', 'Content-Length', 'A generator is lazy' and
'close()' (the page ``/lessons/1`` of ``python -m lessons``), and notebook 01, where the
section on ``close()`` runs what Task 3 asks about.

Task 1. Send the report piece by piece: the ``report`` line at once, then each row as
        soon as the cursor gives it, then the ``total`` line. The bytes must be the same
        as ``buffered_report``'s. Never hold the whole report in memory.
Task 2. Send the right headers: ``Content-Type: text/plain; charset=utf-8`` and no
        ``Content-Length`` (you don't know it when the headers go out). Call
        ``start_response`` in the app, before it returns the body.
Task 3. Close the cursor however the stream ends: after the last row, and when the
        client leaves early (the server then calls ``close()`` on your iterable). And
        leave nothing open if the server closes your iterable before reading anything.

Grade your work:   python -m pytest exercises/test_01_buffered_vs_streamed.py
"""

from collections.abc import Callable, Iterable, Iterator


def buffered_report(open_rows: Callable[[], Iterator[bytes]]) -> Callable:
    """Return a WSGI app that sends the whole report once every row is read.

    open_rows: opens a cursor, an iterator of rows (bytes ending in a newline) that has a
        ``close()`` method.
    """

    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        rows = open_rows()
        try:
            lines = [b"report\n"]
            for row in rows:
                lines.append(row)
        finally:
            rows.close()
        lines.append(f"total: {len(lines) - 1} rows\n".encode())
        body = b"".join(lines)
        start_response(
            "200 OK",
            [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
        )
        return [body]

    return app


def streamed_report(open_rows: Callable[[], Iterator[bytes]]) -> Callable:
    """Return a WSGI app that sends the same report as ``buffered_report``, as it is made.

    open_rows: as for ``buffered_report``.
    """
    raise NotImplementedError("Exercise 01: write streamed_report (see the tasks at the top)")
