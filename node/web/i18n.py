"""Spanish and English for the dashboard through gettext catalogs: which
language a request reads in. The catalogs themselves are ``node.catalogs``,
shared with the texts sent to people (pages).
"""

from __future__ import annotations

from node.catalogs import DEFAULT, LOCALE_DIR, available, translations

__all__ = ["DEFAULT", "LOCALE_DIR", "N_", "available", "choose", "translations"]


def choose(cookie: str | None, accept_language: str) -> str:
    """The language cookie if set, else the best Accept-Language match."""
    langs = available()
    if cookie in langs:
        return str(cookie)
    weighted = []
    for part in accept_language.split(","):
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            weight = 0.0
        weighted.append((weight, tag.split("-")[0].lower()))
    for _, tag in sorted(weighted, reverse=True):
        if tag in langs:
            return tag
    return DEFAULT


def N_(message: str) -> str:
    """Mark a message for extraction without translating it here: the value is
    translated where it is shown, in the reader's language."""
    return message
