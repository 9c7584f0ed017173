"""The phone page's words (issue 16, item 4): every string a person reads on it,
in every state, is a message of the catalog (a fresh extraction of the page's
template and ``node.web.phone``), its script shows only words the page hands it
from the catalog, Spanish leaves no English, and the language follows the
person's, then the browser's."""

from __future__ import annotations

import re
from datetime import UTC, tzinfo
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file

from node.web import i18n, phone

WEB = Path(phone.__file__).parent
SHOWN_ATTRIBUTES = ("aria-label", "placeholder", "title", "alt", "value")


class Words(HTMLParser):
    """The text nodes and the words in attributes of a page (data-* too: the script shows them)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if value and (name.startswith("data-") or (name in SHOWN_ATTRIBUTES and tag != "input")):
                self.found.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.found.append(" ".join(data.split()))


def messages() -> list[str]:
    """The page's messages, extracted as the catalogs are (babel.cfg)."""
    found = [
        m[1]
        for m in extract_from_file(
            "jinja2", WEB / "templates" / "phone.html", options={"extensions": "jinja2.ext.i18n"}
        )
    ]
    found += [m[1] for m in extract_from_file("python", WEB / "phone.py")]
    return [m for m in found if isinstance(m, str)]


def pattern(message: str) -> re.Pattern[str]:
    pieces = re.split(r"%\(\w+\)s", message)
    return re.compile(".+".join(re.escape(p) for p in pieces), re.DOTALL)


def pages(lang: str) -> list[str]:
    """The page in each of its states (what ``checkin_routes.phone`` renders)."""
    zone = i18n_zone()
    common = {"who": "Lucía", "asks_pin": True, "can_check_in": True, "refused": False}
    return [
        phone.render(lang),  # a link that is not valid
        phone.render(lang, **common, message=phone.state_line(lang, "active", 1_800_000_000_000, zone)),
        phone.render(
            lang, **common, message=phone.state_line(lang, "standing", 0, zone), sos_time="14:02 UTC"
        ),
        phone.render(
            lang, **common | {"refused": True}, message=phone.answer_line(lang, "wrong-pin", 0, zone)
        ),
        phone.render(
            lang, **common | {"can_check_in": False}, message=phone.state_line(lang, "stopped", 0, zone)
        ),
    ] + [
        phone.render(lang, **common, message=phone.answer_line(lang, outcome, 1_800_000_000_000, zone))
        for outcome in phone.ANSWER
    ]


def i18n_zone() -> tzinfo:
    return UTC


def seen(html: str) -> list[str]:
    parser = Words()
    parser.feed(html)
    return parser.found


def test_every_string_on_the_page_is_a_catalog_message() -> None:
    known = [pattern(m) for m in messages()]
    assert len(known) > 20
    for html in pages("en"):
        for text in seen(html):
            if text in ("Lucía", "14:02 UTC"):
                continue  # data: the person's name, a time
            assert any(p.fullmatch(text) for p in known), f"not from the catalog: {text!r}"


def test_the_script_shows_no_words_of_its_own() -> None:
    for name in ("phone.js", "phone-sw.js"):
        code = re.sub(r"//[^\n]*", "", (WEB / "static" / name).read_text())  # comments are for developers
        literals = re.findall(r'"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\'|`([^`]*)`', code)
        words = [s for group in literals for s in group if re.search(r"[A-Za-z]{2,}\s+[A-Za-z]{2,}", s)]
        words = [s for s in words if s != "use strict"]  # the directive
        assert words == [], f"{name} writes words a person reads; give them from the catalog: {words}"


def test_spanish_has_no_english_left() -> None:
    spanish = i18n.translations("es")
    english = sorted({m for m in messages() if spanish.gettext(m) != m})
    assert english == sorted(set(messages()))  # every message of the page is translated
    for html in pages("es"):
        text = "\n".join(seen(html))
        for message in english:
            assert not pattern(message).search(text), f"English on the Spanish page: {message!r}"
    assert "Reporte de llegada de Lucía" in pages("es")[1]


@pytest.mark.parametrize(
    ("own", "browser", "shown"),
    [
        ("es", "en-US,en;q=0.9", "es"),
        ("en", "es-MX,es;q=0.9", "en"),
        ("", "es-MX,es;q=0.9", "es"),
        ("", "fr-FR", "en"),
        ("xx", "es", "es"),
    ],
)
def test_the_language_is_the_persons_then_the_browsers(own: str, browser: str, shown: str) -> None:
    assert phone.language(own, browser) == shown
