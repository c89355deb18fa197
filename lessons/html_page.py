"""The frame every page of the course server shares (the index, the lesson pages, the
inspector), so that each page says only its own title, style and body.

The lessons' demo pages (lessons 02, 04, 06, 08, 10, 11) keep their whole HTML in their
own module on purpose: each is one file a learner can copy.
"""

from html import escape


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
