"""The command line of the course server (``python -m lessons``) and of each lesson alone.

Both take the same flags; ``--help`` lists them. ``--server werkzeug`` (the default) is
werkzeug's threaded development server; ``--server gunicorn`` runs the very same app
under gunicorn, the way lesson 07 deploys it: it prints the plain ``gunicorn`` command
that serves the same thing, and becomes that command.

No flag is ignored: a gunicorn flag such as ``--worker-class sync`` given without
``--server`` implies ``--server gunicorn`` and says so, and a flag the chosen server would
not read (``--workers 4 --server werkzeug``) is refused with the fix.
"""

import argparse
import errno
import importlib.util
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import psutil

from lab import gunicorn_args
from lab.nginx import https_proxy
from lab.serving import unwind_on_sigterm
from lessons import lesson_names, load_lessons
from lessons.course import build_app
from lessons.folders import upload_folder
from lessons.index_page import curl_commands
from lessons.routes import Lesson, Route
from streamlib.origins import is_loopback, normalize_host

DEFAULT_MAX_UPLOAD = "1G"
DEFAULT_UPLOAD_EXPIRY = 24 * 60 * 60  # seconds: a day to resume an upload (streamlib.resumable)
DEFAULT_BODY_TIMEOUT = 10  # seconds a body may stall (streamlib.uploads.STALL_SECONDS)
# glibc's allocator, for gunicorn's workers (lesson 11): gunicorn's body reader makes a new
# buffer of about 1 MiB at every read; past glibc's defaults (128 KiB, adjusting upwards)
# that memory is handed back to the kernel when freed and faulted in afresh at the next
# read, which took half a worker's time on a 1 GiB upload (perf). Kept in the heap (up to
# 32 MiB of it once freed), it is reused. See mallopt(3), M_MMAP_THRESHOLD, M_TRIM_THRESHOLD.
GLIBC_HEAP = {"MALLOC_MMAP_THRESHOLD_": "4194304", "MALLOC_TRIM_THRESHOLD_": "33554432"}
# --worker-class names that gunicorn knows by a class path (the others are its own)
WORKER_CLASSES = {"fanout": "streamlib.fanout_worker.FanOutWorker"}
# The flags only gunicorn reads: given without --server, they imply --server gunicorn.
GUNICORN_FLAGS = (
    "--worker-class",
    "--workers",
    "--threads",
    "--timeout",
    "--worker-connections",
    "--graceful-timeout",
    "--no-sendfile",
)
# What the course server suggests first (lessons 01, 03, 04 and 06); the index has the rest.
TRY_FIRST = ("/streamed", "/ticks", "/events", "/demo/chat")
DEV_SERVER_NOTE = (
    "This is werkzeug's development server, made for learning; --server gunicorn is the"
    " production one (lesson 07). Ctrl-C stops it."
)


class HelpWithDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's formatter that adds each flag's default to its help, unless the help says
    it in words already: ``--files`` defaults to a folder made on first use, not to "None"."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if "(default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def make_parser(description: str, prog: str = "python -m lessons") -> argparse.ArgumentParser:
    """Return the argument parser shared by the course server and the lessons.

    description: the first line of ``--help``.
    prog: the command as the learner types it, for ``usage:`` (argparse would say
        ``__main__.py``).
    """
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        formatter_class=HelpWithDefaults,  # every flag shows its default
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; anything but loopback exposes every route to the network",
    )
    parser.add_argument(
        "--allow-host",
        metavar="NAME",
        action="append",
        default=[],
        help="also answer requests for this host name (repeatable); others get a 403",
    )
    parser.add_argument(
        "--cors",
        metavar="ORIGIN",
        action="append",
        default=[],
        help="let pages from this origin, such as http://localhost:5173, read and post",
    )
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument(
        "--files",
        metavar="DIR",
        help="the folder that /files/ serves (lesson 02) (default: ~/.cache/streamlib/files,"
        " or $XDG_CACHE_HOME/streamlib/files: a sample folder the course makes on first use)",
    )
    parser.add_argument(
        "--uploads",
        metavar="DIR",
        help="where /uploads/ stores files (lesson 11) (default: uploads/ in the --files folder)",
    )
    parser.add_argument(
        "--max-upload",
        metavar="SIZE",
        type=byte_count,
        default=DEFAULT_MAX_UPLOAD,
        help="the largest upload, in bytes or with K, M or G (lesson 11); larger ones get a 413",
    )
    parser.add_argument(
        "--upload-expiry",
        metavar="SECONDS",
        type=seconds,
        default=DEFAULT_UPLOAD_EXPIRY,
        help="an unfinished resumable upload untouched this long is removed (lesson 11)",
    )
    parser.add_argument(
        "--body-timeout",
        metavar="SECONDS",
        type=seconds,
        default=DEFAULT_BODY_TIMEOUT,
        help="a request body that sends nothing this long is given up: 408 (lesson 11)",
    )
    parser.add_argument(
        "--server",
        choices=("werkzeug", "gunicorn"),
        default="werkzeug",
        help="werkzeug's dev server, or gunicorn as in production (lesson 07)",
    )
    gunicorn = parser.add_argument_group(
        "gunicorn (lesson 07)",
        "These only gunicorn reads: given without --server, any of them implies --server gunicorn.",
    )
    gunicorn.add_argument(
        "--worker-class",
        choices=("sync", "gthread", "gevent", "fanout"),
        default="gevent",
        help="gunicorn's worker class (gevent: a greenlet per connection; fanout: gevent, and"
        " one loop for every stream of a broadcast, streamlib.fanout_worker; see lesson 07)",
    )
    gunicorn.add_argument("--workers", type=int, default=1, help="gunicorn worker processes")
    gunicorn.add_argument(
        "--threads",
        type=int,
        default=64,
        help="threads per gthread worker (given alone, it implies --worker-class gthread)",
    )
    gunicorn.add_argument(
        "--timeout", type=int, default=30, help="gunicorn's worker timeout, seconds"
    )
    gunicorn.add_argument(
        "--worker-connections",
        type=int,
        default=1000,
        help="gunicorn: most connections a gthread or gevent worker holds at once",
    )
    gunicorn.add_argument(
        "--graceful-timeout",
        type=int,
        default=3,  # lesson 07: a stream never finishes, so a deploy should not wait for it
        help="gunicorn: seconds a stopping worker lets open requests run before it is killed",
    )
    gunicorn.add_argument(
        "--no-sendfile",
        action="store_true",
        help="gunicorn: send files through Python instead of sendfile(2)",
    )
    parser.add_argument(
        "--https",
        action="store_true",
        help="also serve HTTPS and HTTP/2 through nginx in front, on this machine's"
        " 127.0.0.1 only, port --https-port (lesson 10)",
    )
    parser.add_argument("--https-port", type=int, default=8443, help="nginx's port for --https")
    parser.add_argument(
        "--nginx-stores-uploads",
        action="store_true",
        help="with --https: nginx stores each PUT to /uploads/ itself, and the app only"
        " renames the file into place (lesson 11)",
    )
    parser.add_argument(
        "--redis",
        metavar="URL",
        type=redis_url,
        help="the Redis broker for lesson 08, such as redis://127.0.0.1:6379/0 (default: none;"
        " the broadcast stays in each process)",
    )
    return parser


def byte_count(text: str) -> int:
    """``--max-upload``: a number of bytes, such as ``1048576``, ``64M`` or ``2G``.

    >>> byte_count("64M"), byte_count("1k"), byte_count("10")
    (67108864, 1024, 10)
    """
    units = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
    number, unit = text[:-1] if text[-1:].isalpha() else text, text[-1:].upper()
    unit = unit if unit.isalpha() else ""
    if not (number.isascii() and number.isdigit()) or unit not in units or len(number) > 15:
        raise argparse.ArgumentTypeError(f"expected bytes such as 1048576, 64M or 2G, got {text!r}")
    return int(number) * units[unit]


def seconds(text: str) -> int:
    """``--upload-expiry``, ``--body-timeout``: a whole number of seconds, at least 1.

    >>> seconds("86400")
    86400
    """
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text[:12]) <= 10**9:
        raise argparse.ArgumentTypeError(f"expected whole seconds from 1, got {text!r}")
    return int(text)


def redis_url(text: str) -> str:
    """``--redis``: a URL redis-py can use, or argparse's error naming what is wrong."""
    from redis import Redis

    try:
        Redis.from_url(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r}: {error}") from None
    return text


def broker_warning(url: str) -> str | None:
    """A line to print if the broker at ``url`` does not answer now, or None. The course
    starts anyway: the broker may come up later, and lesson 08 shows what happens then."""
    from redis import Redis
    from redis.exceptions import RedisError

    try:
        Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
    except RedisError as error:
        return (
            f"Warning: the Redis broker at {url} does not answer ({error});"
            " POST /broadcast is a 503 until it does."
        )
    return None


def main(argv: Sequence[str] | None = None) -> None:
    """Run the course server: every lesson, the index at ``/`` and ``/stats``."""
    args, implied = read_command_line("Serve every lesson of the streamlib course.", argv=argv)
    serve_lessons(load_lessons(), args, implied)


def run_lesson(lesson: Lesson, argv: Sequence[str] | None = None) -> None:
    """Serve one lesson alone, as ``python lessons/NN_slug.py`` does."""
    prog = f"python lessons/{lesson.name}.py"
    description = f"Lesson {lesson.number:02d}: {lesson.title}."
    args, implied = read_command_line(description, prog, argv)
    serve_lessons([lesson], args, implied)


def read_command_line(
    description: str, prog: str = "python -m lessons", argv: Sequence[str] | None = None
) -> tuple[argparse.Namespace, list[str]]:
    """Parse the command line so that no flag given is ignored.

    description, prog: as for :func:`make_parser`.
    argv: the arguments, ``sys.argv[1:]`` when None.

    Returns the arguments and a line to print for each flag that implied another: a
    gunicorn flag (``GUNICORN_FLAGS``) without ``--server`` implies ``--server gunicorn``,
    and ``--threads`` without ``--worker-class`` implies ``gthread``, the worker with
    threads. A flag the chosen server would not read is refused, with the fix (argparse's
    error: usage, the message, exit status 2).
    """
    parser = make_parser(description, prog)
    args = parser.parse_args(argv)
    given = flags_given(make_parser(description, prog), argv)
    implied = []
    for_gunicorn = [flag for flag in GUNICORN_FLAGS if flag in given]
    if for_gunicorn and given.get("--server") == "werkzeug":
        flags, them = " and ".join(for_gunicorn), "it" if len(for_gunicorn) == 1 else "them"
        parser.error(
            f"{flags}: only gunicorn reads {them}; use --server gunicorn, or leave {them} out"
        )
    if for_gunicorn and args.server == "werkzeug":
        args.server = "gunicorn"
        is_one = "is a gunicorn flag" if len(for_gunicorn) == 1 else "are gunicorn flags"
        implied.append(f"{' and '.join(for_gunicorn)} {is_one}: serving with --server gunicorn.")
    if "--threads" in given and "--worker-class" not in given:
        args.worker_class = "gthread"
        implied.append("--threads is for gthread workers: --worker-class gthread.")
    if "--threads" in given and args.worker_class != "gthread":
        parser.error(
            f"--threads: a {args.worker_class} worker has none; use --worker-class gthread"
        )
    if "--https-port" in given and not args.https:
        parser.error("--https-port is nginx's port for --https: add --https")
    if args.nginx_stores_uploads and not args.https:
        parser.error("--nginx-stores-uploads: nginx runs with --https only; add --https")
    # What proves to the app that a stored body's path came from its own nginx (lesson 11)
    args.proxy_secret = secrets.token_urlsafe(24) if args.nginx_stores_uploads else None
    return args, implied


def flags_given(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> dict[str, Any]:
    """The flags typed on the command line, by flag (``"--workers"``), with their values.

    parser: a fresh twin of the parser that read ``argv``; its defaults are removed here.

    A flag typed with its default value counts too (``--server werkzeug``): with every
    default set to ``argparse.SUPPRESS``, only what was typed ends up in the answer.
    """
    for action in parser._actions:  # no public way: set_defaults(x=SUPPRESS) still sets x
        action.default = argparse.SUPPRESS
    typed = vars(parser.parse_args(argv))
    return {"--" + name.replace("_", "-"): value for name, value in typed.items()}


def serve_lessons(
    lessons: Sequence[Lesson], args: argparse.Namespace, implied: Sequence[str] = ()
) -> None:
    """Print what to try, then serve ``lessons`` with the server that ``args`` names.

    implied: lines saying what a flag implied (:func:`read_command_line`), printed once
        the port is known to be free.
    """
    base = f"http://{args.host}:{args.port}"
    if (taken := port_taken(args.host, args.port)) is not None:
        sys.exit(taken)
    for line in implied:
        print(line)
    if not is_loopback(normalize_host(args.host)):
        print(network_warning(args))
    if 8 in {lesson.number for lesson in lessons} and not args.redis:
        print("Lesson 08's broadcast stays in each process: give --redis URL to share it.")
    if args.redis and (warning := broker_warning(args.redis)):
        print(warning)
    where = "The course is" if len(lessons) > 1 else f"Lesson {lessons[0].number:02d} is"
    print(f"{where} at {base}/ ; the index there lists every route and its command. To begin:")
    for command in commands_to_try(lessons, base):
        print(f"  {command}")
    sys.stdout.flush()
    gevent_missing = importlib.util.find_spec("gevent") is None
    if args.server == "gunicorn" and args.worker_class in ("gevent", "fanout") and gevent_missing:
        needs = "needs gevent: python -m pip install 'gunicorn[gevent]'"
        sys.exit(f"--worker-class {args.worker_class} {needs}")
    if not args.https:
        serve_with(lessons, args)
        return
    stores = None
    if args.nginx_stores_uploads:
        incoming = upload_folder(course_settings(args)) / ".incoming"
        incoming.mkdir(mode=0o700, exist_ok=True)
        stores = (incoming, args.proxy_secret, str(args.max_upload))
    with https_proxy(base, port=args.https_port, stores_uploads=stores) as proxy:
        print(https_note(proxy.url.replace("127.0.0.1", "localhost")), flush=True)
        unwind_on_sigterm()  # so that nginx is stopped too
        serve_with(lessons, args, become=False)


def commands_to_try(lessons: Sequence[Lesson], base: str, most: int = 4) -> list[str]:
    """A few commands to begin with, and ``/stats`` last: a screen, not the whole index.

    lessons: what is served; the whole course suggests its ``TRY_FIRST`` routes, a lesson
        alone its own first routes.
    base: the server's URL, such as ``http://127.0.0.1:8000``.
    most: how many commands before ``/stats``.
    """
    routes = [route for lesson in lessons for route in lesson.routes]
    if len(lessons) > 1:
        routes = [route for path in TRY_FIRST for route in routes if route.path == path]
    commands = [command for route in routes for command in route_commands(route, base)]
    return [*commands[:most], f"curl {base}/stats"]


def route_commands(route: Route, base: str) -> list[str]:
    """How to try ``route``: open a demo page in a browser, or the index's curl commands."""
    if route.path.startswith("/demo/"):
        return [f"open {base}{route.example or route.path} in a browser"]
    return curl_commands(route, base)


def serve_with(lessons: Sequence[Lesson], args: argparse.Namespace, become: bool = True) -> None:
    """Serve ``lessons`` on werkzeug's dev server, or on gunicorn as ``args`` say.

    become: let this process become gunicorn (see :func:`become_gunicorn`); with False
        gunicorn runs as a child, so that this process can stop what it started besides.
    """
    if args.server == "werkzeug":
        from werkzeug.serving import make_server

        from lab.devserver import SpecRequestHandler

        app = build_app(lessons, settings=course_settings(args))
        # the handler's own wait for a stalled body, as the app's is under gunicorn
        handler = type("Handler", (SpecRequestHandler,), {"stall_seconds": args.body_timeout})
        # make_server, not run_simple: run_simple prints werkzeug's red warning and its own
        # address lines; the course says the same in one plain line.
        server = make_server(args.host, args.port, app, threaded=True, request_handler=handler)
        print(DEV_SERVER_NOTE, flush=True)
        server.serve_forever()  # until Ctrl-C, which werkzeug's serve_forever ends quietly
    else:
        become_gunicorn(lessons, args, become=become)


def https_note(url: str) -> str:
    """What to tell a learner about the HTTPS URL and its certificate (lesson 10)."""
    from lab.certs import default_folder

    ca = default_folder() / "ca.pem"
    return (
        f"HTTPS and HTTP/2, through nginx: {url}/demo/many?n=10\n"
        f"  Its certificate is signed by the course's own CA, {ca}: a browser warns about it."
        " Click on through the warning (Chromium: Advanced, Proceed), or start Chromium with"
        " --ignore-certificate-errors, or trust that CA in a browser profile kept for the"
        f" course.\n  curl --cacert {ca} -N {url}/ticks?count=3"
    )


def course_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the course reads: ``course.files``, ``course.redis``, and who may
    talk to it, ``course.allow_hosts`` (with the address it listens on) and ``course.cors``."""
    named = {
        "course.files": args.files,
        "course.uploads": args.uploads,
        "course.max_upload": args.max_upload,
        "course.upload_expiry": args.upload_expiry,
        "course.body_timeout": args.body_timeout,
        "course.redis": args.redis,
        "course.proxy_secret": getattr(args, "proxy_secret", None),
        "course.allow_hosts": tuple(served_names(args)),
        "course.cors": tuple(args.cors),
    }
    return {name: value for name, value in named.items() if value}


def served_names(args: argparse.Namespace) -> list[str]:
    """The host names to answer besides loopback: ``--allow-host`` and the address bound
    (every address of the machine's interfaces when bound to all of them)."""
    names = list(args.allow_host)
    if args.host in ("0.0.0.0", "::", ""):
        internet = (socket.AF_INET, socket.AF_INET6)
        names += [
            address.address.split("%")[0]  # fe80::1%eth0: the zone is not part of a Host
            for nic in psutil.net_if_addrs().values()
            for address in nic
            if address.family in internet
        ]
    elif not is_loopback(normalize_host(args.host)):
        names.append(args.host)
    return names


def port_taken(host: str, port: int) -> str | None:
    """What to tell the learner if ``host:port`` cannot be listened on, or None.

    Checked before anything else is printed, so that the answer to "address already in
    use" is the first and only thing the learner reads.
    """
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
            probe.bind((host, port))
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            return (
                f"Port {port} on {host} is taken: another program (another course server?)"
                f" listens there. Stop it, or choose another port: --port {port + 1}"
            )
        if error.errno == errno.EACCES:
            return f"Port {port} needs more rights than yours; choose one above 1023: --port 8000"
        return None  # anything else (an address not on this machine...) the server will say
    return None


def network_warning(args: argparse.Namespace) -> str:
    """What a learner must know before the course listens beyond this machine."""
    folder = args.files or "the course's sample folder"
    return (
        f"Warning: --host {args.host} makes every route reachable from the network, not just"
        f" this machine: /files/ serves {folder} to anyone who can reach port {args.port},"
        " and POST routes make this machine work. Use it on a network you trust, or not at all."
    )


def become_gunicorn(
    lessons: Sequence[Lesson], args: argparse.Namespace, become: bool = True
) -> None:
    """Print the plain ``gunicorn`` command that serves ``lessons`` as ``args`` say; run it.

    The process *becomes* gunicorn (``os.execv``), so that gunicorn imports the app in its
    workers, after a gevent worker has patched the standard library (lesson 07), and so
    that a signal sent to this process reaches gunicorn's arbiter directly. With
    ``become=False`` (``--https``: nginx to stop afterwards) gunicorn runs as a child.
    """
    # gunicorn turns a sync worker with threads > 1 into gthread: pass threads to gthread only
    threads = {"threads": args.threads} if args.worker_class == "gthread" else {}
    connections = (
        {} if args.worker_class == "sync" else {"worker_connections": args.worker_connections}
    )
    command = gunicorn_args(
        "lessons.wsgi:app",
        bind=f"{args.host}:{args.port}",
        worker_class=WORKER_CLASSES.get(args.worker_class, args.worker_class),
        workers=args.workers,
        **threads,
        **connections,
        timeout=args.timeout,
        graceful_timeout=args.graceful_timeout,
        sendfile=not args.no_sendfile,
    )
    env = dict(GLIBC_HEAP)
    if [lesson.name for lesson in lessons] != lesson_names():  # one lesson alone
        env["STREAMLIB_LESSONS"] = ",".join(lesson.name for lesson in lessons)
    if args.files:
        env["STREAMLIB_FILES"] = args.files
    if args.uploads:
        env["STREAMLIB_UPLOADS"] = args.uploads
    if args.max_upload != byte_count(DEFAULT_MAX_UPLOAD):
        env["STREAMLIB_MAX_UPLOAD"] = str(args.max_upload)
    if args.upload_expiry != DEFAULT_UPLOAD_EXPIRY:
        env["STREAMLIB_UPLOAD_EXPIRY"] = str(args.upload_expiry)
    if args.body_timeout != DEFAULT_BODY_TIMEOUT:
        env["STREAMLIB_BODY_TIMEOUT"] = str(args.body_timeout)
    if args.redis:
        env["STREAMLIB_REDIS"] = args.redis
    if getattr(args, "proxy_secret", None):
        env["STREAMLIB_PROXY_SECRET"] = args.proxy_secret
    if names := served_names(args):
        env["STREAMLIB_ALLOW_HOSTS"] = ",".join(names)
    if args.cors:
        env["STREAMLIB_CORS"] = ",".join(args.cors)
    shown = " ".join(f"{name}={shlex.quote(value)}" for name, value in env.items())
    print(f"Running: {shown + ' ' if shown else ''}gunicorn {shlex.join(command)}", flush=True)
    argv = [sys.executable, "-m", "gunicorn", *command]
    if become:
        os.execve(sys.executable, argv, {**os.environ, **env})
    with subprocess.Popen(argv, env={**os.environ, **env}) as gunicorn:

        def pass_on(number: int, frame: object) -> None:
            gunicorn.send_signal(number)  # a deploy's SIGTERM is for gunicorn's arbiter

        signal.signal(signal.SIGTERM, pass_on)
        try:
            gunicorn.wait()
        except KeyboardInterrupt:  # Ctrl-C reached gunicorn too: wait for it to stop
            gunicorn.wait()
