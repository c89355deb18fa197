"""``python -m bench``: run every benchmark, write ``bench/results/README.md`` and plots.

Each benchmark starts its own servers (fresh processes, on free loopback ports) and
returns a markdown section; this script puts the sections under one heading that says
what machine and versions they were measured on. These machines are noisy: compare
figures from one run with each other, not with another run's.
"""

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from types import ModuleType

from bench import (
    lesson01,
    lesson02,
    lesson03,
    lesson05,
    lesson06,
    lesson07,
    lesson08,
    lesson09,
    lesson11,
)
from lab.nginx import nginx_binary
from lab.serving import unwind_on_sigterm

BENCHMARKS = [
    *(lesson01, lesson02, lesson03, lesson05, lesson06, lesson07, lesson08, lesson09, lesson11)
]


def main(argv: list[str] | None = None) -> None:
    unwind_on_sigterm()
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run every benchmark; write bench/results/README.md and its plots.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results", help="results folder"
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, one repeat: checks the bench runs"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NN",
        help="run only these lessons' benchmarks (such as 07 08) and replace their"
        " sections in an existing results page, keeping the others",
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    chosen = [b for b in BENCHMARKS if not args.only or lesson_number(b) in args.only]
    report = args.out / "README.md"
    kept = report.read_text() if args.only and report.exists() else ""
    top, sections = (kept.split("## Lesson", 1)[0], sections_of(kept)) if kept else ("", {})
    for benchmark in chosen:
        print(f"running {benchmark.__name__} ...", flush=True)
        sections[lesson_number(benchmark)] = benchmark.run(args.out, quick=args.quick)
    if top:  # the kept sections were measured as the old heading says; these are new
        remade = ", ".join(lesson_number(b) for b in chosen)
        older = tuple(f"Lesson {lesson_number(b)} remade" for b in chosen)
        kept_lines = [line for line in top.rstrip("\n").split("\n") if not line.startswith(older)]
        top = "\n".join(kept_lines) + (
            f"\nLesson {remade} remade by `python -m bench --only {remade.replace(',', '')}`"
            f" on {datetime.date.today().isoformat()}, on the same kind of machine.\n\n"
        )
    ordered = [sections[n] for n in sorted(sections)]
    report.write_text((top or header(args.quick)) + "\n".join(ordered))
    print(f"wrote {report}")


def lesson_number(benchmark: ModuleType) -> str:
    """``"07"`` for ``bench.lesson07``."""
    return benchmark.__name__.removeprefix("bench.lesson")


def sections_of(report: str) -> dict[str, str]:
    """The sections of a results page by lesson number, each from its ``## Lesson NN``."""
    parts = re.split(r"^(?=## Lesson \d\d)", report, flags=re.MULTILINE)[1:]
    return {part[len("## Lesson ") :][:2]: part.rstrip("\n") + "\n" for part in parts}


def header(quick: bool) -> str:
    versions = ", ".join(f"{name} {version(name)}" for name in ("werkzeug", "gunicorn"))
    versions += f", {nginx_version()}"
    return (
        "# Benchmark results\n\n"
        f"Measured by `python -m bench{' --quick' if quick else ''}` on"
        f" {datetime.date.today().isoformat()}: {platform.system()} {platform.machine()},"
        f" {os.cpu_count()} cores, Python {sys.version.split()[0]}, {versions}.\n"
        "Every figure comes from fresh server processes on loopback; compare figures"
        " within this page, not across runs.\n\n"
    )


def nginx_version() -> str:
    try:
        shown = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True)
    except FileNotFoundError:
        return "no nginx"
    return shown.stderr.strip().replace("nginx version: ", "").replace("/", " ")


if __name__ == "__main__":
    main()
