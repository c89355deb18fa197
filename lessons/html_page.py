"""The frame every page of the course server shares (the index, the lesson pages, the
inspector), so that each page says only its own title, style and body; and the headers
every page goes out with, so that no other site can frame it or slip a script into it.

The lessons' demo pages (lessons 02, 04, 06, 08, 10, 11) keep their whole HTML in their
own module on purpose: each is one file a learner can copy.

**What a page may do** (:func:`page_headers`). A page of the course carries a
``Content-Security-Policy`` that lists exactly the scripts and styles written in it, by
their SHA-256 (CSP Level 3, "hash-source"), and nothing else: a script that found its way
into the page any other way does not run. Its requests go to this server only
(``connect-src 'self'``), and ``frame-ancestors 'self'`` lets no other site's page frame
it, so none can dress it up and trick a click (clickjacking; the CSP directive replaces
``X-Frame-Options``). ``X-Content-Type-Options: nosniff`` holds the browser to the
``Content-Type`` given (Fetch standard, "X-Content-Type-Options header").
https://www.w3.org/TR/CSP3/
"""

import base64
import hashlib
import re
from html import escape

INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)
# What every page may load besides its own scripts and styles: images (the benchmark
# plots, the empty icon) and media (lesson 02's video) from this server, and requests to it.
PAGE_POLICY = (
    "default-src 'none'; script-src {scripts}; style-src {styles}; img-src 'self' data:;"
    " media-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none';"
    " frame-ancestors 'self'"
)


def page_headers(html: str) -> list[tuple[str, str]]:
    """The headers that go with the page ``html``: a Content-Security-Policy that allows
    its own inline ``<script>`` and ``<style>`` blocks (by hash) and nothing else, and
    ``X-Content-Type-Options: nosniff``.

    >>> policy = dict(page_headers("<style>p {}</style><p>no script</p>"))
    >>> policy["Content-Security-Policy"].split("; ")[1:3]  # doctest: +ELLIPSIS
    ["script-src 'none'", "style-src 'sha256-...='"]
    """
    hashes: dict[str, list[str]] = {"script": [], "style": []}
    for kind, content in INLINE.findall(html):
        digest = base64.b64encode(hashlib.sha256(content.encode()).digest()).decode()
        hashes[kind].append(f"'sha256-{digest}'")
    policy = PAGE_POLICY.format(
        scripts=" ".join(hashes["script"]) or "'none'",
        styles=" ".join(hashes["style"]) or "'none'",
    )
    return [("Content-Security-Policy", policy), ("X-Content-Type-Options", "nosniff")]


def html_page(title: str, style: str, body: str) -> str:
    """A whole HTML page with ``title`` (escaped here), ``style`` (CSS) and ``body`` (HTML).

    The head is what every page of the course needs: UTF-8, the width of the screen it is
    on (so a phone does not show a shrunken desktop page), and an empty icon, so that the
    browser asks for no ``/favicon.ico`` (a 404 in every server log).

    >>> print(html_page("A & B", "p { color: red; }", "<p>hi</p>"), end="")  # doctest: +ELLIPSIS
    <!doctype html>
    ...<title>A &amp; B</title>
    <style>
    p { color: red; }
    </style>
    </head>
    <body>
    <p>hi</p>
    </body>
    </html>
    """
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'
        f"<title>{escape(title)}</title>\n<style>\n{style.strip()}\n</style>\n</head>\n"
        f"<body>\n{body.strip()}\n</body>\n</html>\n"
    )
