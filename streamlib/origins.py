"""Who may talk to a local server: a Host allow-list and cross-site request checks.

A server on 127.0.0.1 is out of the network's reach, not out of the browser's. Any page
the learner visits can make their browser send requests to it, two ways:

- **DNS rebinding.** The page's own name (``evil.example``) is made to resolve to
  127.0.0.1. The browser then treats the local server as part of ``evil.example``: the
  page may read every answer, ``/files/`` included. Only the ``Host`` header tells
  the two apart: it says ``evil.example``. So a local server answers only the host
  names it knows (``localhost``, loopback addresses, the address it listens on, and
  names added on purpose), as Jupyter, Vite and webpack-dev-server do.
- **Cross-site requests.** A page may *send* a POST anywhere without asking, if it
  looks like a form: ``Content-Type`` ``text/plain``, ``application/x-www-form-urlencoded``
  or ``multipart/form-data`` (the fetch spec's "CORS-safelisted" types). It cannot read
  the answer, but the server does the work. So a request that changes something or
  starts work is refused when the browser says it comes from another site:
  ``Sec-Fetch-Site: cross-site``, or an ``Origin`` that is not the server's own. And a
  JSON endpoint insists on ``application/json``, which a page can only send to another
  origin after a CORS preflight that this server does not grant.

Each check returns the reason to refuse, or None; the course turns a reason into a 403,
or a 400 for a ``Host`` that is not a host at all (:func:`malformed_host`).
"""

import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# RFC 9110 section 7.2: Host = uri-host [ ":" port ], where (RFC 3986 sections 3.2.2-3.2.3)
# a host is an IP-literal in brackets, or a reg-name (which an IPv4 address also is), and a
# port is digits. Nothing else, nothing after: "127.0.0.1:8000.evil.example" is no Host.
HOST_VALUE = re.compile(
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)"
    r"(?::(?P<port>[0-9]*))?"
)


def normalize_host(host: str) -> str:
    """A host name as compared: lower case, no port, no brackets, no trailing dot.

    >>> normalize_host("LocalHost.:8000"), normalize_host("[::1]:8000"), normalize_host("::1")
    ('localhost', '::1', '::1')
    """
    host = host.strip().lower()
    if host.startswith("["):  # an IPv6 literal, maybe with a port: [::1]:8000
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:  # name:port or IPv4:port (a bare IPv6 address has several)
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (normalized) names this machine's loopback interface."""
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):  # RFC 6761: *.localhost
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def malformed_host(environ: dict) -> str | None:
    """Why the request's ``Host`` is not a host and an optional port, or None if it is.

    RFC 9112 section 3.2 asks a 400 for a Host with an invalid value. Checked before the
    name is compared, so that what is compared is a name: ``localhost:80@evil.example``
    and ``[::1]evil.example`` are neither this server nor any other.

    >>> malformed_host({"HTTP_HOST": "127.0.0.1:8000.evil.example"}) is not None
    True
    """
    raw = environ.get("HTTP_HOST")
    if raw is None:
        return None
    found = HOST_VALUE.fullmatch(raw)
    if found is not None and found["host"].startswith("["):
        try:
            ipaddress.IPv6Address(found["host"][1:-1])
        except ValueError:
            found = None
    if found is None:
        return f"Host {raw[:60]!r} is not a host and an optional port (RFC 9110 section 7.2)"
    return None


def host_refusal(environ: dict, allowed: Iterable[str] = ()) -> str | None:
    """Why the request's ``Host`` is refused, or None if it names this server.

    environ: the request's environ (its ``HTTP_HOST``).
    allowed: more host names or addresses to accept, such as the address the server
        listens on or names given with ``--allow-host``.

    A request without ``Host`` (HTTP/1.0 allows that; no browser does it) is accepted:
    DNS rebinding needs a browser, and a browser always sends one.
    """
    raw = environ.get("HTTP_HOST")
    if raw is None:
        return None
    if problem := malformed_host(environ):
        return problem
    host = normalize_host(raw)
    if is_loopback(host) or host in {normalize_host(name) for name in allowed}:
        return None
    return (
        f"Host {raw!r} is not this server's name; if you meant to reach it by that name,"
        f" start it with --allow-host {host or 'NAME'}"
    )


def cross_site_refusal(environ: dict, trusted_origins: Iterable[str] = ()) -> str | None:
    """Why a state-changing request is refused as cross-site, or None.

    environ: the request's environ: its method, ``Host``, ``Origin``, ``Sec-Fetch-Site``.
    trusted_origins: other origins allowed to send such requests (``--cors ORIGIN``),
        such as ``http://localhost:5173``.

    Safe methods (GET, HEAD, OPTIONS) pass: they must not change anything. For the
    others, the browser's own word decides: ``Sec-Fetch-Site: cross-site`` is refused,
    and so is an ``Origin`` whose host and port are not the ``Host`` asked for. A
    request with neither header (curl, requests, openai) does not come from a page.
    """
    if environ["REQUEST_METHOD"] not in UNSAFE_METHODS:
        return None
    origin = environ.get("HTTP_ORIGIN")
    if origin is not None and origin.rstrip("/") in {o.rstrip("/") for o in trusted_origins}:
        return None
    if environ.get("HTTP_SEC_FETCH_SITE", "").lower() == "cross-site":
        return "a cross-site request (Sec-Fetch-Site: cross-site) may not change anything here"
    if origin is None:
        return None
    parts = urlsplit(origin)
    host = environ.get("HTTP_HOST", "")
    if origin == "null" or parts.netloc.lower() != host.lower():
        return f"Origin {origin!r} is not this server ({host}); --cors ORIGIN trusts one"
    return None


def cors_headers(environ: dict, trusted_origins: Iterable[str]) -> list[tuple[str, str]]:
    """The CORS headers that let a trusted origin's page read this answer, or none.

    Only an ``Origin`` named in ``trusted_origins`` gets ``Access-Control-Allow-Origin``,
    and it gets its own name back, never ``*``. ``Vary: Origin`` tells caches that the
    answer depends on it.
    """
    origin = environ.get("HTTP_ORIGIN")
    if origin is None or origin.rstrip("/") not in {o.rstrip("/") for o in trusted_origins}:
        return []
    return [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
