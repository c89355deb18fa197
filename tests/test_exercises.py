"""The graders grade: each passes on its solution, fails on its stub, and catches wrong answers.

Like exercism's CI, every grader runs in a child pytest against a folder holding one
version of the exercise file: the reference solution, the stub as committed, or a mutant
that gets one thing wrong. The outcome of every grader test is read from a JUnit report.
"""

import ast
import functools
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXERCISES = ROOT / "exercises"
NAMES = sorted(path.stem for path in EXERCISES.glob("[0-9][0-9]_*.py"))
# Plugins a grader does not use, left out of each child pytest: importing Hypothesis alone
# takes about a second, and this file starts some seventy children.
LEAN = ["-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:xdist", "-p", "no:anyio"]


def grade(name: str, folder: Path, tmp_path: Path, only: set[str] | None = None) -> dict[str, str]:
    """Run exercise ``name``'s grader on ``folder/name.py``; return {test: outcome}.

    only: run just the grader tests whose names contain one of these (all when None).
    """
    return {test: outcome for test, (outcome, _) in graded(name, folder, tmp_path, only).items()}


def graded(
    name: str, folder: Path, tmp_path: Path, only: set[str] | None = None
) -> dict[str, tuple[str, str]]:
    """As :func:`grade`, with what the report says of each failed test: {test: (outcome, text)}."""
    report = tmp_path / "report.xml"
    chosen = ["-k", " or ".join(sorted(only))] if only else []
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(EXERCISES / f"test_{name}.py"),
            *chosen,
            "--exercises-from",
            str(folder),
            f"--junitxml={report}",
            *LEAN,
            "-q",
        ],
        cwd=ROOT,
        capture_output=True,
        timeout=300,
    )
    outcomes = {}
    for case in ET.parse(report).iter("testcase"):
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        text = "" if problem is None else (problem.text or problem.get("message") or "")
        outcomes[case.get("name")] = ("passed" if problem is None else "failed", text)
    assert outcomes, f"the grader for {name} collected no test"
    return outcomes


def committed_stub(name: str, folder: Path) -> Path:
    """Copy the stub as committed (a learner may have edited the working copy) to folder."""
    relative = f"exercises/{name}.py"
    shown = subprocess.run(["git", "show", f"HEAD:{relative}"], cwd=ROOT, capture_output=True)
    text = shown.stdout if shown.returncode == 0 else (ROOT / relative).read_bytes()
    (folder / f"{name}.py").write_bytes(text)
    return folder


def test_there_are_exercises():
    from lessons import lesson_names

    assert lesson_names() == NAMES, "every lesson has an exercise, and every exercise a lesson"


@pytest.mark.parametrize("name", NAMES)
def test_every_grader_test_passes_on_the_solution(name, tmp_path):
    outcomes = grade(name, EXERCISES / "solutions", tmp_path)
    assert set(outcomes.values()) == {"passed"}, outcomes


def solution(name: str) -> str:
    return (EXERCISES / "solutions" / f"{name}.py").read_text()


# Wrong answers a learner might write: the exercise, how to make it from the solution, and
# the grader tests (by name, or by name prefix for parametrized ones) it must fail.
MUTANTS = {
    "01:buffered_in_disguise": (
        "01_buffered_vs_streamed",
        lambda s: s + "\nstreamed_report = buffered_report\n",
        {
            "test_task1_sends_the_first_row_before_reading_the_next",
            "test_task1_never_holds_the_whole_report",
            "test_task2_headers_say_plain_text_and_no_length",
            "test_task1_a_real_client_gets_the_first_row_while_the_rest_is_pending",
        },
    ),
    "01:joins_then_yields_once": (
        "01_buffered_vs_streamed",
        lambda s: s.replace(
            "        return report_lines(open_rows)",
            "        return iter([b''.join(report_lines(open_rows))])",
        ),
        {
            "test_task1_sends_the_first_row_before_reading_the_next",
            "test_task1_never_holds_the_whole_report",
            "test_task1_a_real_client_gets_the_first_row_while_the_rest_is_pending",
        },
    ),
    "01:no_finally": (
        "01_buffered_vs_streamed",
        lambda s: s.replace("    finally:\n        rows.close()\n", "    rows.close()\n").replace(
            "    try:\n        for row in rows:", "    if True:\n        for row in rows:"
        ),
        {"test_task3_closes_the_cursor_when_the_client_leaves_early"},
    ),
    "01:opens_the_cursor_before_the_generator_starts": (
        "01_buffered_vs_streamed",
        lambda s: s.replace(
            "        return report_lines(open_rows)",
            "        rows = open_rows()\n        return report_lines(lambda: rows)",
        ),
        {"test_task3_leaves_nothing_open_when_closed_before_the_first_piece"},
    ),
    "01:a_generator_function_app": (  # start_response waits for the first next()
        "01_buffered_vs_streamed",
        lambda s: s.replace(
            "        return report_lines(open_rows)", "        yield from report_lines(open_rows)"
        ),
        {"test_task2_calls_start_response_before_returning_the_body"},
    ),
    "02:imports_the_librarys": (
        "02_stream_a_file",
        lambda s: s + "\nfrom streamlib.files import iter_file  # noqa: E402\n",
        {"test_task1_iter_file_is_your_own"},
    ),
    "02:reads_the_whole_file": (
        "02_stream_a_file",
        lambda s: (
            s
            + """
def iter_file(path, start=0, length=None, chunk_size=65536):
    with open(path, "rb") as file:
        data = file.read()
    data = data[start:] if length is None else data[start : start + length]
    for offset in range(0, len(data), chunk_size):
        yield data[offset : offset + chunk_size]
"""
        ),
        {"test_task1_never_holds_the_whole_file"},
    ),
    "02:opens_before_the_generator_starts": (
        "02_stream_a_file",
        lambda s: (
            s
            + """
def iter_file(path, start=0, length=None, chunk_size=65536):
    file = open(path, "rb")  # opened now, though the generator may never start
    file.seek(start)
    return _chunks(file, length, chunk_size)


def _chunks(file, length, chunk_size):
    with file:
        remaining = length
        while remaining is None or remaining > 0:
            chunk = file.read(chunk_size if remaining is None else min(chunk_size, remaining))
            if not chunk:
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk
"""
        ),
        {"test_task3_leaves_nothing_open_when_closed_before_the_first_chunk"},
    ),
    "02:no_with": (
        "02_stream_a_file",
        lambda s: (
            s
            + """
def iter_file(path, start=0, length=None, chunk_size=65536):
    file = open(path, "rb")
    file.seek(start)
    remaining = length
    while remaining is None or remaining > 0:
        chunk = file.read(chunk_size if remaining is None else min(chunk_size, remaining))
        if not chunk:
            break
        if remaining is not None:
            remaining -= len(chunk)
        yield chunk
    file.close()
"""
        ),
        {"test_task3_closes_the_file_itself_when_the_client_leaves"},
    ),
    "02:if_match_compared_weakly": (
        "02_stream_a_file",
        lambda s: s.replace(
            "not parse_etags(if_match).contains(tag)",
            "not parse_etags(if_match).contains_weak(tag)",
        ),
        {"test_task4_a_failed_if_match_is_a_412[weak]"},
    ),
    "02:if_none_match_first": (
        "02_stream_a_file",
        lambda s: s.replace(
            "    tag = etag.strip('\"')\n",
            "    tag = etag.strip('\"')\n"
            "    if if_none_match is not None and parse_etags(if_none_match).contains_weak(tag):\n"
            "        return 304\n",
        ),
        {"test_task4_if_match_is_checked_before_if_none_match"},
    ),
    "02:ignores_length": (
        "02_stream_a_file",
        lambda s: s.replace("        remaining = length\n", "        remaining = None\n"),
        {"test_task2_sends_exactly_the_range[", "test_task2_chunks_of_a_range_are_chunk_size_too"},
    ),
    "03:sleeps_before_the_first_line": (
        "03_manual_chunks",
        lambda s: s.replace(
            "delay = began + n * interval - clock()", "delay = began + (n + 1) * interval - clock()"
        ),
        {"test_task1_the_first_line_comes_at_once_then_one_per_interval"},
    ),
    "03:sleeps_for_the_interval_and_drifts": (
        "03_manual_chunks",
        lambda s: s.replace(
            "delay = began + n * interval - clock()", "delay = interval if n else 0"
        ),
        {"test_task2_late_wake_ups_do_not_add_up"},
    ),
    "03:never_reports_an_abort": (
        "03_manual_chunks",
        lambda s: s.replace("    except GeneratorExit:", "    except KeyError:"),
        {
            "test_task3_reports_where_it_was_when_the_client_left",
            "test_task3_a_real_server_stops_the_countdown_when_the_client_leaves",
        },
    ),
    "03:reports_liftoff_twice": (
        "03_manual_chunks",
        lambda s: s.replace(
            '    on_stop("liftoff")', '    on_stop("liftoff")\n    on_stop("liftoff")'
        ),
        {"test_task3_reports_liftoff_once"},
    ),
    "04:splits_data_at_lf_only": (
        "04_server_sent_events",
        lambda s: s.replace(
            'LINE_END = re.compile(r"\\r\\n|\\r|\\n")', 'LINE_END = re.compile(r"\\n")'
        ),
        {"test_task1_format_event_writes_the_spec_format["},
    ),
    "04:splits_with_splitlines": (  # even keeping a trailing empty line, as SSE does
        "04_server_sent_events",
        lambda s: s.replace(
            "LINE_END.split(data)",
            '(data.splitlines() + ([""] if data[-1:] in ("\\n", "\\r") or not data else []))',
        ),
        {"test_task1_only_cr_and_lf_end_a_line["},
    ),
    "04:imports_the_librarys": (
        "04_server_sent_events",
        lambda s: s.replace(
            "def make_events_app", "from streamlib.sse import format_event\n\n\ndef make_events_app"
        ),
        {"test_task1_format_event_is_your_own"},
    ),
    "04:copies_the_librarys": (  # pasted, with its names changed
        "04_server_sent_events",
        lambda s: s.replace(
            "def make_events_app", copied_format_event() + "\n\ndef make_events_app"
        ),
        {"test_task1_format_event_is_your_own"},
    ),
    "04:lets_a_newline_into_the_id": (
        "04_server_sent_events",
        lambda s: s.replace("            if re.search(", "            if False and re.search("),
        {"test_task1_an_id_or_event_that_would_break_the_stream_is_refused["},
    ),
    "04:resends_the_last_event_seen": (
        "04_server_sent_events",
        lambda s: s.replace("ids.index(last) + 1 if", "ids.index(last) if"),
        {"test_task3_resumes_after_the_last_event_id[", "test_task3_an_independent_client"},
    ),
    "04:sends_a_connection_header": (
        "04_server_sent_events",
        lambda s: s.replace(
            '("Cache-Control", "no-cache")]',
            '("Cache-Control", "no-cache"), ("Connection", "keep-alive")]',
        ),
        {"test_task2_sends_no_hop_by_hop_header"},
    ),
    "04:a_generator_function_app": (
        "04_server_sent_events",
        lambda s: s.replace("        return (format_event(", "        yield from (format_event("),
        {"test_task2_calls_start_response_before_returning_the_stream"},
    ),
    "04:forgets_cache_control": (
        "04_server_sent_events",
        lambda s: s.replace(', ("Cache-Control", "no-cache")', ""),
        {"test_task2_streams_the_log_with_event_stream_headers"},
    ),
    "05:writes_a_trailing_comma": (
        "05_chunked_json",
        lambda s: s.replace("yield separator + encoded", 'yield encoded + b","'),
        {"test_task1_joins_into_the_same_json[one]", "test_task1_joins_into_the_same_json[three]"},
    ),
    "05:imports_the_librarys": (
        "05_chunked_json",
        lambda s: s + "\nfrom streamlib.json_stream import iter_json_array as stream_json_array\n",
        {"test_task1_stream_json_array_is_your_own"},
    ),
    "05:builds_the_whole_list_first": (
        "05_chunked_json",
        lambda s: s.replace(
            '    yield b"["  # Task 2', '    items = list(items)\n    yield b"["  # Task 2'
        ),
        {"test_task2_sends_the_bracket_and_each_element_as_it_comes"},
    ),
    "05:closes_the_array_after_an_error": (
        "05_chunked_json",
        lambda s: s.replace("            return  # Task 3", "            break  # Task 3"),
        {"test_task3_an_unencodable_item_ends_the_array_unclosed"},
    ),
    "05:lets_the_type_error_out": (
        "05_chunked_json",
        lambda s: s.replace("        except TypeError:", "        except KeyError:"),
        {"test_task3_an_unencodable_item_ends_the_array_unclosed"},
    ),
    "06:forgets_done": (
        "06_streaming_ai",
        lambda s: s.replace('    yield b"data: [DONE]\\n\\n"', "    pass"),
        {"test_task1_a_delta_per_token_then_done"},
    ),
    "06:writes_the_token_unescaped": (
        "06_streaming_ai",
        lambda s: s.replace(
            "yield f\"data: {json.dumps({'delta': token})}\\n\\n\".encode()",
            'yield f\'data: {{"delta": "{token}"}}\\n\\n\'.encode()',
        ),
        {"test_task1_a_delta_per_token_then_done"},
    ),
    "06:collects_the_answer_first": (
        "06_streaming_ai",
        lambda s: s.replace(
            "    try:\n        for token in tokens:",
            "    tokens = iter(list(tokens))\n    try:\n        for token in tokens:",
        ),
        {"test_task2_each_token_goes_out_as_soon_as_it_is_made"},
    ),
    "06:never_stops_the_model": (
        "06_streaming_ai",
        lambda s: s.replace("        tokens.close()  # Task 3", "        pass  # Task 3"),
        {"test_task3_closing_the_stream_stops_the_model"},
    ),
    "06:says_done_after_an_error": (
        "06_streaming_ai",
        lambda s: s.replace("        return\n    finally:", "    finally:"),
        {"test_task3_a_failing_model_gets_an_error_event_and_no_done"},
    ),
    "07:too_few_threads": (
        "07_production",
        lambda s: s.replace("threads = 256", "threads = 100"),
        {"test_task1_one_worker_holds_200_streams_at_once"},
    ),
    "07:gevent_capped_by_worker_connections": (
        "07_production",
        lambda s: s.replace('worker_class = "gthread"', 'worker_class = "gevent"').replace(
            "worker_connections = 1000", "worker_connections = 150"
        ),
        {"test_task1_one_worker_holds_200_streams_at_once"},
    ),
    "07:many_sync_workers": (
        "07_production",
        lambda s: (
            s.replace("workers = 1\n", "workers = 4\n")
            .replace('worker_class = "gthread"', 'worker_class = "sync"')
            .replace("threads = 256", "threads = 1")
        ),  # sync with threads > 1 would be gthread
        {"test_task1_one_worker_holds_200_streams_at_once", "test_task2_a_stream_outlives"},
    ),
    "07:cuts_requests_at_once": (
        "07_production",
        lambda s: s.replace("graceful_timeout = 3", "graceful_timeout = 0"),
        {"test_task3_a_quick_deploy_still_lets_a_short_request_finish"},
    ),
    "08:forgets_the_last_id_sent": (
        "08_fan_out",
        lambda s: s.replace(
            "                last_id = entry_id  # Task 3", "                pass  # Task 3"
        ),
        {"test_task3_survives_a_redis_restart_and_resumes_after_the_last_id"},
    ),
    "08:reads_after_dollar_each_time": (
        "08_fan_out",
        lambda s: s.replace('last_id = newest[0][0] if newest else "0-0"', 'last_id = "$"'),
        {"test_task1_without_last_id_only_later_messages_are_sent"},
    ),
    "08:polls_instead_of_blocking": (
        "08_fan_out",
        lambda s: s.replace("block=heartbeat_ms, count=100", "count=100"),
        {"test_task2_waits_with_block_and_beats_when_quiet"},
    ),
    "08:gives_up_when_redis_goes": (
        "08_fan_out",
        lambda s: s.replace(
            "        except ConnectionError:  # Task 3", "        except KeyError:"
        ),
        {"test_task3_survives_a_redis_restart_and_resumes_after_the_last_id"},
    ),
    "09:forgets_the_event_stream_type": (  # Flask's default: text/html
        "09_flask_and_django",
        lambda s: s.replace('body, content_type="text/event-stream", headers=', "body, headers="),
        {"test_task1_streams_the_log_with_event_stream_headers"},
    ),
    "09:reads_the_header_in_the_generator": (
        "09_flask_and_django",
        lambda s: s.replace(
            '        last_event_id = request.headers.get("Last-Event-ID")'
            "  # Task 2: read in the view\n"
            "        ids = [event_id for event_id, _ in log]\n"
            "        start = ids.index(last_event_id) + 1 if last_event_id in ids else 0\n"
            "        body = (format_event(data, id=event_id) for event_id, data in log[start:])\n",
            "        def lazily():\n"
            '            last_event_id = request.headers.get("Last-Event-ID")  # context gone\n'
            "            ids = [event_id for event_id, _ in log]\n"
            "            start = ids.index(last_event_id) + 1 if last_event_id in ids else 0\n"
            "            for event_id, data in log[start:]:\n"
            "                yield format_event(data, id=event_id)\n"
            "\n"
            "        body = lazily()\n",
        ),
        {"test_task2_resumes_after_the_last_event_id"},
    ),
    "09:joins_into_an_httpresponse": (
        "09_flask_and_django",
        lambda s: s.replace(
            '        return StreamingHttpResponse(lines(), content_type="application/x-ndjson")',
            "        from django.http import HttpResponse\n\n"
            '        return HttpResponse(b"".join(lines()), content_type="application/x-ndjson")',
        ),
        {
            "test_task3_sends_the_first_row_before_reading_the_rest",
            "test_task3_opens_the_cursor_only_when_the_stream_starts",
        },
    ),
    "09:no_finally": (
        "09_flask_and_django",
        lambda s: s.replace(
            "        try:\n            for row in rows:\n"
            '                yield (json.dumps(row) + "\\n").encode()\n'
            "        finally:\n            rows.close()",
            "        for row in rows:\n"
            '            yield (json.dumps(row) + "\\n").encode()\n'
            "        rows.close()",
        ),
        {"test_task3_closes_the_cursor_when_the_client_leaves_early"},
    ),
    "10:no_http2": (
        "10_http2",
        lambda s: s.replace(" ssl http2;", " ssl;"),
        {"test_task1_https_and_http2"},
    ),
    "10:buffers_the_stream": (  # nginx's defaults: buffering on, HTTP/1.0 to the app
        "10_http2",
        lambda s: (
            s.replace("        proxy_buffering off;\n", "")
            .replace("        proxy_http_version 1.1;\n", "")
            .replace('        proxy_set_header Connection "";\n', "")
        ),
        {"test_task2_ticks_arrive_one_at_a_time_over_http2"},
    ),
    "10:host_without_its_port": (
        "10_http2",
        lambda s: s.replace("Host $http_host", "Host $host"),
        {"test_task3_the_app_learns_the_browsers_host_and_scheme"},
    ),
    "11:reads_it_whole": (  # request.get_data(), then write it out
        "11_uploads",
        lambda s: s.replace("data = body.read(wanted)", "data = body.read()"),
        {
            "test_task1_reads_in_pieces_never_the_whole_body",
            "test_task1_reads_exactly_content_length_and_no_further",
            "test_task1_holds_a_piece_at_a_time_in_memory",
        },
    ),
    "11:checks_the_cap_only_while_reading": (
        "11_uploads",
        lambda s: s.replace(
            "    if length is not None and length > max_bytes:\n"
            '        raise RequestEntityTooLarge(f"{length} bytes; at most {max_bytes}")\n',
            "",
        ),
        {"test_task2_a_content_length_over_the_cap_is_refused_before_a_byte_is_read"},
    ),
    "11:writes_in_place": (
        "11_uploads",
        lambda s: s.replace(
            'descriptor, temporary = tempfile.mkstemp(dir=path.parent, suffix=".part")',
            "descriptor, temporary = os.open(path, os.O_WRONLY | os.O_CREAT), path",
        ),
        {
            "test_task3_the_file_takes_its_place_only_when_whole",
            "test_task3_a_body_that_stops_early_leaves_the_old_file_and_nothing_else",
        },
    ),
    "11:leaves_the_part_file": (
        "11_uploads",
        lambda s: s.replace("        os.unlink(temporary)\n", ""),
        {
            "test_task3_any_error_removes_the_temporary_file",
            "test_task2_a_chunked_body_past_the_cap_is_refused_as_it_passes",
        },
    ),
}


def copied_format_event() -> str:
    """``streamlib.sse.format_event``'s code as a learner might paste it, names changed."""
    import inspect

    from streamlib import sse

    code = inspect.getsource(sse.format_event).replace("lines", "parts")
    return f"LINE_BREAK = re.compile({sse.LINE_BREAK.pattern!r})\n\n\n{code}"


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_a_grader_catches_a_wrong_answer_with_a_tutors_message(mutant, tmp_path):
    name, mutate, must_fail = MUTANTS[mutant]
    source = mutate(solution(name))
    assert source != solution(name), f"mutant {mutant} changed nothing: fix its mutation"
    folder = tmp_path / "mutant"
    folder.mkdir()
    (folder / f"{name}.py").write_text(source)
    outcomes = graded(name, folder, tmp_path, only=must_fail)  # the tests it must fail
    failed = {test: text for test, (outcome, text) in outcomes.items() if outcome == "failed"}
    missed = {want for want in must_fail if not any(f.startswith(want) for f in failed)}
    assert not missed, f"{mutant}: the grader should have failed {missed}; it failed {list(failed)}"
    for test, text in failed.items():
        assert not untutored(text), f"{mutant}, {test}: {untutored(text)}:\n{text}"


def untutored(text: str) -> str:
    """What keeps a failure's text from being a tutor's note, or ``""`` if nothing does.

    A tutor's note says what was called and what was expected, and its hint names a section
    of a lesson (``lesson 04, 'The format'``) that exists; it carries none of pytest's own
    words: no traceback, no ``+ where`` from assertion rewriting, no HTML error page.
    """
    for noise in ("Traceback", "\nE  ", "+  where", "assert ", "<!doctype", "<html"):
        if noise in text:
            return f"pytest's or a server's noise ({noise.strip()!r})"
    if "Called " not in text or "Hint: " not in text:
        return "no 'Called ...' and 'Hint: ...'"
    named = SECTION.findall(text)
    if not named:
        return "its hint names no lesson section (lesson NN, 'Section')"
    missing = [f"lesson {n}, {title!r}" for n, title in named if title not in sections(n)]
    return f"it names sections that do not exist: {missing}" if missing else ""


SECTION = re.compile(r"lesson (\d\d), '([^']+)'")


@functools.cache
def sections(number: str) -> set[str]:
    """The sections of lesson ``number``: the bold leads of its text (the page's table of
    contents) and the headings of its notebook."""
    from lessons import load_lesson
    from lessons.pages import text_and_contents

    _, contents = text_and_contents(load_lesson(number).__doc__ or "")
    titles = {title for _, title in contents}
    (notebook,) = (ROOT / "notebooks").glob(f"{number}_*.ipynb")
    for cell in json.loads(notebook.read_text())["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("#"):
                    titles.add(line.lstrip("#").strip())
    return titles


def test_every_task_has_a_wrong_answer_to_catch():
    for name in NAMES:
        tasks = set(re.findall(r"^Task (\d+)\.", (EXERCISES / f"{name}.py").read_text(), re.M))
        caught = {
            found[1]
            for exercise, _, must_fail in MUTANTS.values()
            if exercise == name
            for test in must_fail
            if (found := re.match(r"test_task(\d+)_", test))
        }
        assert tasks and tasks <= caught, f"{name}: no wrong answer for tasks {tasks - caught}"


@pytest.mark.parametrize("name", NAMES)
def test_each_grader_names_a_section_for_every_task(name):
    tasks = re.findall(r"^Task (\d+)\.", (EXERCISES / f"{name}.py").read_text(), re.M)
    grader = (EXERCISES / f"test_{name}.py").read_text()
    listed = ast.literal_eval(grader.split("TASK_SECTIONS = ", 1)[1].split("\n}\n")[0] + "\n}")
    assert sorted(listed) == sorted(map(int, tasks)), f"{name}: TASK_SECTIONS {listed}"


def test_every_section_the_exercises_name_exists():
    """Hints and reading lists name lesson sections; a renamed section must not leave them
    pointing at nothing. Strings are read from each file's syntax tree, so a name split over
    two concatenated literals is read whole."""
    named = []
    for path in sorted(EXERCISES.glob("*.py")) + sorted(EXERCISES.glob("solutions/*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                named += [(path.name, n, title) for n, title in SECTION.findall(node.value)]
    assert len(named) > 40, named
    missing = [(file, n, title) for file, n, title in named if title not in sections(n)]
    assert not missing, missing


@pytest.mark.parametrize("name", NAMES)
def test_each_exercise_says_what_to_read_not_which_file_holds_the_answer(name):
    text = (EXERCISES / f"{name}.py").read_text()
    docstring = ast.get_docstring(ast.parse(text)) or ""
    reading = re.search(r"^Read first: (.+?)\n\n", docstring, re.S | re.M)
    assert reading, f"{name}: its docstring has no 'Read first: ...' paragraph"
    assert SECTION.search(" ".join(reading[1].split())), f"{name}: 'Read first' names no section"
    assert "has everything you need" not in docstring and "streamlib/" not in docstring


def test_untouched_stubs_say_where_to_start_instead_of_a_wall_of_tracebacks(tmp_path):
    """A first run, as a learner makes it: every grader on every stub as the course ships it.

    Every grader test fails (a grader that passes on a stub grades nothing). Each failure is
    one "not started yet" line or a tutor's note; nothing else of pytest's or of the servers'
    makes it to the screen, and the end says where to start.
    """
    stub_folder = tmp_path / "stub"
    stub_folder.mkdir()
    for name in NAMES:
        committed_stub(name, stub_folder)
    report = tmp_path / "report.xml"
    done = subprocess.run(
        [
            *[sys.executable, "-m", "pytest", "exercises", "--exercises-from", str(stub_folder)],
            *[f"--junitxml={report}", *LEAN],
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    cases = list(ET.parse(report).iter("testcase"))
    failed = {"failure", "error"}
    passed = [case.get("name") for case in cases if not failed & {c.tag for c in case}]
    assert len(cases) > 100 and not passed, f"graders that pass on the untouched stubs: {passed}"
    shown = done.stdout
    for noise in ("Traceback", "\nE  ", "+  where", "During handling", "<!doctype", "WARNING"):
        assert noise not in shown, f"{noise!r} in the output:\n{shown}"
    failures = re.split(r"\n_{3,} .+ _{3,}\n", shown.split("= FAILURES =")[1])[1:]
    assert len(failures) > 100
    for failure in failures:
        said = failure.split("\n=")[0].strip()
        assert said.startswith("not started yet: Exercise") or not untutored(said), said
    progress = shown.split("your progress")[1].splitlines()[1 : len(NAMES) + 1]
    assert [line.split()[0] for line in progress] == NAMES, shown[-2000:]
    assert all(line.endswith("not started") for line in progress), progress
    assert shown.splitlines()[-3:] == [
        "Start with exercises/01_buffered_vs_streamed.py, Task 1 (its docstring says what to do),",
        "and grade that task alone as you go:",
        "    python -m pytest exercises/test_01_buffered_vs_streamed.py -k task1",
    ], shown[-600:]


def test_a_half_done_exercise_shows_the_learners_error_and_where_to_carry_on(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    text = solution("05_chunked_json").replace(
        '    yield b"["  # Task 2', '    yield "["  # Task 2: a str, where bytes belong'
    )
    (folder / "05_chunked_json.py").write_text(text)
    grader = "exercises/test_05_chunked_json.py"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", grader, "--exercises-from", str(folder), *LEAN],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    shown = done.stdout
    assert "Traceback" not in shown and "\nE  " not in shown, shown
    assert "TypeError" in shown and "str found" in shown, shown  # what went wrong, in one line
    assert shown.splitlines()[-1] == f"    python -m pytest {grader} -k task1", shown[-600:]
    assert "in progress" in shown


def test_the_stubs_fingerprints_are_the_committed_stubs(tmp_path):
    """grading.STUBS tells an untouched stub from work begun (the progress table)."""
    sys.path.insert(0, str(EXERCISES))
    try:
        import grading
    finally:
        sys.path.pop(0)
    committed = {
        name: grading.stub_sha256(
            committed_stub(name, tmp_path).joinpath(f"{name}.py").read_bytes()
        )
        for name in NAMES
    }
    assert committed == grading.STUBS, f"set STUBS in exercises/grading.py to {committed}"
