"""What a lesson's text cites, found in its words: for the page's "Sources" list and the tests.

The lessons cite as people write, not in a bibliography: "RFC 9110 section 14.1.2",
"section 6.1 of RFC 9112", "(section 6.3: ...)" after a sentence that named the RFC,
"PEP 3333", "the Fetch standard". :func:`rfc_sections` reads those forms;
:func:`sources` turns every citation it knows into a link, in the order the text makes
them, so a reader can check each claim where it was made. ``tests/test_citations.py``
checks each RFC section against the RFC's table of contents.
"""

import re

SECTION = r"(?P<section>\d+(?:\.\d+)*)"
# "RFC 9110 section 14.1.2", "RFC 9110, §14.1.2", "RFC 9110's section 14", "RFC 9112 6.1",
# "RFC 9113 (section 6.5.2)"
RFC_THEN_SECTION = re.compile(
    r"RFC ?(?P<rfc>\d{3,5})\b(?:'s|,)?:? ?\(?(?:(?:[Ss]ections?|§) ?|(?=\d+\.\d))" + SECTION
)
SECTION_OF_RFC = re.compile(r"(?:[Ss]ection|§) ?" + SECTION + r",? of \[?RFC ?(?P<rfc>\d{3,5})\b")
LINK = re.compile(r"rfc(?P<rfc>\d{3,5})(?:\.html)?#section-" + SECTION)
BARE_SECTION = re.compile(r"(?:[Ss]ection|§) ?" + SECTION)
# What a bare "section N" may belong to; only an RFC's number makes it an RFC section.
DOCUMENT = re.compile(
    r"RFC ?(\d{3,5})\b|\b(?:draft|PEP|[Ss]pec|standard|HTML|Fetch|CSP|ASGI|WSGI)\b"
)
NAMED_WITHIN = 1000  # characters before a bare section: a long paragraph, or one and a table

RFC = re.compile(r"\bRFC ?(\d{3,5})\b")
PEP = re.compile(r"\bPEP ?(\d{1,4})\b")
DRAFT = re.compile(r"(?:draft|at version) ?-(\d\d)\b")  # "draft -05", "ietf-draft-03"
CHROME_FEATURE = re.compile(r"chromestatus\.com feature (\d+)")
# "whatwg/fetch issue 568 and pull request 1788"
FETCH_THREADS = re.compile(r"whatwg/fetch (?:(?:issues?|pull requests?) \d+(?:,? (?:and )?)?)+")
THREAD = re.compile(r"(issue|pull request)s? (\d+)")
URL = re.compile(r"https://(?!localhost|127\.0\.0\.1)[^\s<>`'\"()]+")
NAMED = {  # a standard the text names in words, and where to read it
    "Fetch standard": "https://fetch.spec.whatwg.org/",
    "WHATWG spec": "https://html.spec.whatwg.org/multipage/server-sent-events.html",
    "CSP Level 3": "https://www.w3.org/TR/CSP3/",
}


def rfc_sections(text: str) -> list[tuple[int | None, str]]:
    """Every ``(rfc, section)`` that ``text`` cites, in the order it cites them.

    A bare "section 14.2" cites the document named last before it, within about a
    paragraph: that RFC, or None when nothing is named (a section of what?). One that
    follows a draft, a PEP or a WHATWG spec is not an RFC's, and is left out.

    >>> rfc_sections("RFC 9112 section 6.1 asks it; a server MAY refuse it (section 6.3).")
    [(9112, '6.1'), (9112, '6.3')]
    """
    text = " ".join(text.split())  # a citation may break across lines
    found: dict[int, tuple[int | None, str]] = {}  # by where its section number starts
    for pattern in (RFC_THEN_SECTION, SECTION_OF_RFC, LINK):
        for match in pattern.finditer(text):
            found[match.start("section")] = (int(match["rfc"]), match["section"].rstrip("."))
    for match in BARE_SECTION.finditer(text):
        if match.start("section") in found:
            continue
        named = list(DOCUMENT.finditer(text, max(0, match.start() - NAMED_WITHIN), match.start()))
        if not named or named[-1][1]:
            rfc = int(named[-1][1]) if named else None
            found[match.start("section")] = (rfc, match["section"].rstrip("."))
    return [found[start] for start in sorted(found)]


def sources(text: str) -> list[tuple[str, str]]:
    """``(label, url)`` for every source ``text`` cites that has a public address: RFCs and
    their sections, PEPs, the resumable uploads drafts, named WHATWG and W3C standards,
    Chrome features, whatwg/fetch threads, and ``https://`` addresses written out (this machine's
    are examples, not sources). First citation first, each once."""
    flat = " ".join(text.split())
    found: list[tuple[int, str, str]] = []  # (where it is first cited, label, url)
    cited = rfc_sections(flat)
    for match in RFC.finditer(flat):
        rfc = int(match[1])
        if any(r == rfc for r, _ in cited):  # listed section by section, where it is named
            for section in dict.fromkeys(s for r, s in cited if r == rfc):
                url = f"https://www.rfc-editor.org/rfc/rfc{rfc}#section-{section}"
                found.append((match.start(), f"RFC {rfc} section {section}", url))
        else:
            found.append((match.start(), f"RFC {rfc}", f"https://www.rfc-editor.org/rfc/rfc{rfc}"))
    for match in PEP.finditer(flat):
        url = f"https://peps.python.org/pep-{int(match[1]):04d}/"
        found.append((match.start(), f"PEP {match[1]}", url))
    for match in DRAFT.finditer(flat):
        name = f"draft-ietf-httpbis-resumable-upload-{match[1]}"
        found.append((match.start(), name, f"https://datatracker.ietf.org/doc/html/{name}"))
    for match in CHROME_FEATURE.finditer(flat):
        url = f"https://chromestatus.com/feature/{match[1]}"
        found.append((match.start(), f"Chrome Platform Status, feature {match[1]}", url))
    for match in FETCH_THREADS.finditer(flat):
        for kind, number in THREAD.findall(match[0]):
            path = "pull" if kind == "pull request" else "issues"
            url = f"https://github.com/whatwg/fetch/{path}/{number}"
            found.append((match.start(), f"whatwg/fetch {kind} {number}", url))
    for match in URL.finditer(flat):
        url = match[0].rstrip(".,;:")
        found.append((match.start(), url.removeprefix("https://"), url))
    for name, url in NAMED.items():
        if (where := flat.find(name)) >= 0:
            found.append((where, name, url))
    listed: dict[str, str] = {}  # url -> label, first citation first
    for _, label, url in sorted(found, key=lambda item: item[0]):
        listed.setdefault(url, label)
    return [(label, url) for url, label in listed.items()]
