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
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from bench import lesson01, lesson02, lesson03, lesson05, lesson06, lesson07
from streamlib.nginx import nginx_binary

BENCHMARKS = [lesson01, lesson02, lesson03, lesson05, lesson06, lesson07]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results", help="results folder"
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, one repeat: checks the bench runs"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    sections = []
    for benchmark in BENCHMARKS:
        print(f"running {benchmark.__name__} ...", flush=True)
        sections.append(benchmark.run(args.out, quick=args.quick))
    (args.out / "README.md").write_text(header(args.quick) + "\n".join(sections))
    print(f"wrote {args.out / 'README.md'}")


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
