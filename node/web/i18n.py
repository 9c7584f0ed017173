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


def from_environment(environ: dict[str, str]) -> str:
    """The language of a terminal (``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``, ``LANG``), if we have it."""
    for variable in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        for tag in environ.get(variable, "").split(":"):
            code = tag.split("_")[0].split(".")[0].lower()
            if code in ("c", "posix"):
                return DEFAULT
            if code and (LOCALE_DIR / code / "LC_MESSAGES" / "amparo.po").is_file():
                return code
            if code == DEFAULT:
                return DEFAULT
    return DEFAULT


def countries_of(tags: str) -> tuple[str, ...]:
    """The countries named in language tags (``es-MX,es;q=0.9`` or ``es_MX.UTF-8``):
    where a person most likely is, when nothing better says which country a
    region name means (``protocol.regions.resolve``'s ``near``)."""
    out = []
    for part in tags.replace(":", ",").split(","):
        tag = part.split(";")[0].split(".")[0].strip().replace("_", "-")
        pieces = tag.split("-")
        if len(pieces) > 1 and len(pieces[1]) == 2 and pieces[1].isalpha():
            out.append(pieces[1].upper())
    return tuple(dict.fromkeys(out))
