"""Regions: ISO 3166-1 alpha-2 countries, ISO 3166-2 subdivisions, or ``*``.

Two checks, for two audiences:

* **The wire** (``check_wire``, used by the alert decoder) accepts any *well
  formed* code, by syntax alone: ``MX`` (two upper-case letters) or ``MX-OAX``
  (a country code, a hyphen, one to three upper-case letters or digits, as
  ISO 3166-2 writes them), or ``*``. Whether the code is in this node's copy of
  the standard is not asked: ISO adds and renames subdivisions, and a
  ``pycountry`` update on one node must never make it refuse (and blame the
  relays of) alerts that the rest of the mesh accepts.
* **People** (``check``, used where a person types a code: composing an alert,
  subscriptions, filters, configuration) also require the code to be in the
  catalogue, and suggest close codes for a typo.
* **What people type** (``resolve``): ``mx-oax``, ``Oaxaca`` or ``Estado de
  México`` become the code they stand for, before any envelope is made; a name
  that fits several regions is refused with the candidates, and suggestions for
  a name that fits none rank by similarity within the likely country (the
  node's own, the regions already in use, the country prefix typed), so
  "Oaxka" suggests MX-OAX and never a region of Azerbaijan.

The catalogue (``pycountry``) names codes and helps people search. Matching is
hierarchical: a subscription to ``MX`` matches an alert for ``MX-OAX``, and a
subdivision matches its parent subdivisions (``FR-75C`` is inside ``FR-IDF``);
a code the catalogue does not know is still inside its country and ``*``.
"""

from __future__ import annotations

import difflib
import gettext
import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from protocol.errors import BadField

EVERYWHERE = "*"
MAX_REGION_CHARS = 10
_WELL_FORMED = re.compile(r"[A-Z]{2}(-[A-Z0-9]{1,3})?")


def is_well_formed(code: object) -> bool:
    """What the wire accepts: ``*``, ``CC`` or ``CC-XXX`` by syntax alone."""
    return isinstance(code, str) and (code == EVERYWHERE or _WELL_FORMED.fullmatch(code) is not None)


def is_known(code: str) -> bool:
    """Well formed and in this node's catalogue (for people, never for the wire)."""
    return code == EVERYWHERE or _country(code) is not None or _subdivision(code) is not None


def check_wire(code: object, field: str = "region") -> str:
    """Return ``code`` if it is well formed, else ``BadField`` (with suggestions
    from the catalogue when a close code exists: they only help the reader)."""
    if not isinstance(code, str) or not code or len(code) > MAX_REGION_CHARS:
        raise BadField("must be an ISO 3166 code such as MX or MX-OAX, or *", field=field)
    if is_well_formed(code):
        return code
    hint = suggest(code)
    extra = f"; did you mean {', '.join(hint)}?" if hint else ""
    raise BadField(f"{code!r} is not a well-formed ISO 3166 code (MX, MX-OAX or *){extra}", field=field)


def check(code: object, field: str = "region") -> str:
    """Return ``code`` if it is a region a person may use here: well formed and
    known to the catalogue; else ``BadField`` naming it, with suggestions."""
    if not isinstance(code, str) or not code or len(code) > MAX_REGION_CHARS:
        raise BadField("must be an ISO 3166 code such as MX or MX-OAX, or *", field=field)
    if is_well_formed(code) and is_known(code):
        return code
    hint = suggest(code)
    extra = f"; did you mean {', '.join(hint)}?" if hint else ""
    raise BadField(f"unknown region {code!r}{extra}", field=field)


def suggest(code: str, limit: int = 3) -> list[str]:
    """Close known codes for a mistyped one (``MX-OAXX`` → ``MX-OAX``)."""
    upper = code.upper()
    if upper != code and is_known(upper):
        return [upper]
    return difflib.get_close_matches(upper, _all_codes(), n=limit, cutoff=0.6)


def ancestors(code: str) -> tuple[str, ...]:
    """``code`` and every region containing it, ending with ``*``."""
    chain = [code]
    sub = _subdivision(code)
    while sub is not None and sub.parent_code:
        chain.append(sub.parent_code)
        sub = _subdivision(sub.parent_code)
    if "-" in code:
        chain.append(code.split("-", 1)[0])
    if code != EVERYWHERE:
        chain.append(EVERYWHERE)
    return tuple(dict.fromkeys(chain))


def matches(subscription: str, alert_region: str) -> bool:
    """True when an alert for ``alert_region`` falls inside ``subscription``."""
    return subscription in ancestors(alert_region)


def name(code: str) -> str:
    if code == EVERYWHERE:
        return "everywhere"
    found = _country(code) or _subdivision(code)
    return str(found.name) if found is not None else code


def search(text: str, limit: int = 10) -> list[tuple[str, str]]:
    """Regions whose name, in any language pycountry has a translation for,
    contains ``text`` (accents and case ignored): ``[(code, English name)]``.

    Best first: exact names, then names starting with ``text``, then the rest;
    countries before subdivisions. So ``Oaxaca``, ``oaxaca`` and a code such as
    ``mx-oax`` all find ``MX-OAX``, and ``Alemania`` or ``Deutschland`` find ``DE``.
    """
    needle = _fold(text)
    if not needle:
        return []
    ranked: dict[str, tuple[int, int, str]] = {}
    for folded, code in _name_index():
        if needle not in folded:
            continue
        rank = 0 if folded == needle else 1 if folded.startswith(needle) else 2
        key = (rank, 0 if "-" not in code else 1, code)
        if code not in ranked or key < ranked[code]:
            ranked[code] = key
    best = sorted(ranked.values())[:limit]
    return [(code, name(code)) for _, _, code in best]


def load_catalogue() -> None:
    """Read the country and subdivision catalogue now instead of at first use.

    pycountry reads it lazily: about 0.1 s of pure Python, with the GIL held, on
    this project's test host and more on a small board. A node's first use is
    storing the first alert with a subdivision after a start (``ancestors``, in
    the writer thread), so that alert's acknowledgement and the event loop
    waited for it at every node it crossed; a node calls this before it listens."""
    _country("MX")
    _subdivision("MX-CMX")


def _pycountry() -> Any:
    """The catalogue, imported on first use: checking a code's syntax (the wire)
    never needs it, and the command line starts faster without it."""
    import pycountry

    return pycountry


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.strip())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


@lru_cache(maxsize=1)
def _name_index() -> tuple[tuple[str, str], ...]:
    """(folded name, code) for every English name, code and translation.

    Built once, on first search, from pycountry's own data and its gettext
    catalogues (about a second); regions validation never needs it.
    """
    english: dict[str, set[str]] = {}
    for c in _pycountry().countries:
        for label in (c.name, getattr(c, "official_name", None), getattr(c, "common_name", None)):
            if label:
                english.setdefault(label, set()).add(c.alpha_2)
    for s in _pycountry().subdivisions:
        english.setdefault(s.name, set()).add(s.code)
    pairs = {(_fold(label), code) for label, codes in english.items() for code in codes}
    pairs |= {(_fold(code), code) for codes in english.values() for code in codes}
    for translated, codes in _translations(english):
        pairs |= {(_fold(translated), code) for code in codes}
    return tuple(sorted(pairs))


def _translations(english: dict[str, set[str]]) -> list[tuple[str, set[str]]]:
    out: list[tuple[str, set[str]]] = []
    base = _pycountry().LOCALES_DIR
    for language in sorted(os.listdir(base)):
        for domain in ("iso3166-1", "iso3166-2"):
            try:
                catalog = gettext.translation(domain, base, languages=[language])
            except OSError:
                continue
            items = getattr(catalog, "_catalog", {}).items()
            out += [(str(t), english[str(m)]) for m, t in items if isinstance(m, str) and m in english and t]
    return out


def _country(code: str) -> Any:
    if len(code) != 2 or not code.isascii() or not code.isupper():
        return None
    return _pycountry().countries.get(alpha_2=code)


@lru_cache(maxsize=4096)
def _subdivision(code: str) -> Any:
    if "-" not in code or not code.isascii() or code != code.upper():
        return None  # pycountry matches case-insensitively; the wire has one spelling
    return _pycountry().subdivisions.get(code=code)


@lru_cache(maxsize=1)
def _all_codes() -> list[str]:
    return [c.alpha_2 for c in _pycountry().countries] + [s.code for s in _pycountry().subdivisions]


# -- what people type --------------------------------------------------------------------

MAX_TYPED_CHARS = 100
RESOLVE_LANGUAGES = ("es", "pt", "fr")  # besides English and the local names pycountry gives
# Common forms people write that no catalogue name matches (folded: no accents, lower case).
ALIASES = {
    "estado de mexico": "MX-MEX",
    "edomex": "MX-MEX",
    "cdmx": "MX-CMX",
    "df": "MX-CMX",
    "distrito federal": "MX-CMX",
    "ciudad de mexico": "MX-CMX",
    "mexico city": "MX-CMX",
}
# "Estado de Oaxaca", "State of Oaxaca": a word for a subdivision before its name.
_SUBDIVISION_WORDS = re.compile(
    r"^(estado|departamento|provincia|region|municipio|state|province|department) (de |del |of )?"
)


@dataclass(frozen=True)
class Resolved:
    """What a person typed and the code it stands for. ``how`` says why:
    ``code`` (typed as the wire writes it), ``case`` (a code in other letters:
    ``mx-oax``) or ``name`` (``Oaxaca``), so an interface can tell the person."""

    typed: str
    code: str
    how: str

    @property
    def changed(self) -> bool:
        return self.how != "code"

    def to_doc(self) -> dict[str, str]:
        return {"typed": self.typed, "code": self.code, "how": self.how, "name": label(self.code)}


class UnknownRegion(BadField):
    """Text that names no region, or (``ambiguous``) more than one. ``candidates``
    are ``(code, label)`` pairs, best first, so an interface can say them in the
    person's language; the message says them in English, in the person's words."""

    def __init__(self, typed: str, candidates: list[tuple[str, str]], *, ambiguous: bool = False) -> None:
        self.typed, self.candidates, self.ambiguous = typed, candidates, ambiguous
        listed = ", ".join(f"{code} ({name})" for code, name in candidates)
        if ambiguous:
            message = f"{typed!r} names more than one region: {listed}; give the code"
        elif candidates:
            message = f"unknown region {typed!r}: did you mean {listed}?"
        else:
            message = f"unknown region {typed!r}: give an ISO 3166 code such as MX or MX-OAX, or a region's name"
        super().__init__(message)


def resolve(text: object, near: Iterable[str] = ()) -> Resolved:
    """The region a person means by ``text``: a code in any letters, or a name
    (any accents and case; English, Spanish, Portuguese, French or local), else
    ``UnknownRegion`` with suggestions. ``near`` are regions the person is likely
    to mean (the node's watched regions, the alert's other regions): they settle
    a name several countries share ("Córdoba") and rank suggestions."""
    typed = text.strip() if isinstance(text, str) else ""
    if not typed or len(typed) > MAX_TYPED_CHARS:
        raise UnknownRegion(str(text)[:MAX_TYPED_CHARS] if isinstance(text, str) else "", [])
    upper = typed.upper()
    if is_well_formed(upper) and is_known(upper):
        return Resolved(typed, upper, "code" if upper == typed else "case")
    countries = _likely_countries(upper, near)
    code = _by_name(typed, countries)
    if code is not None:
        return Resolved(typed, code, "name")
    raise UnknownRegion(typed, [(c, label(c)) for c in _suggestions(typed, countries)])


def label(code: str, language: str = "en") -> str:
    """A region as people say it: ``Oaxaca, Mexico`` (``Oaxaca, México`` in Spanish)."""
    if code == EVERYWHERE:
        return "everywhere"
    sub = _subdivision(code)
    country = _country(code.split("-", 1)[0])
    if sub is None:
        return _country_name(country, language) if country is not None else code
    return f"{sub.name}, {_country_name(country, language)}" if country is not None else str(sub.name)


def _country_name(country: Any, language: str) -> str:
    english = str(getattr(country, "common_name", None) or country.name)
    if language == "en":
        return english
    try:
        catalog = gettext.translation("iso3166-1", _pycountry().LOCALES_DIR, languages=[language])
    except OSError:
        return english
    return catalog.gettext(str(country.name))


def _likely_countries(upper: str, near: Iterable[str]) -> tuple[str, ...]:
    """Countries a person most likely means: the prefix typed, then ``near``'s."""
    typed = [upper.split("-", 1)[0]] if re.fullmatch(r"[A-Z]{2}-\w*", upper) else []
    codes = [*typed, *(r.split("-", 1)[0] for r in near if r != EVERYWHERE)]
    return tuple(dict.fromkeys(c for c in codes if _country(c) is not None))


def _by_name(typed: str, countries: tuple[str, ...]) -> str | None:
    """The one region whose name is ``typed`` (else one whose name starts with it);
    ``UnknownRegion`` (ambiguous) when several fit and nothing settles it."""
    needle = _fold(typed)
    if needle in ALIASES:
        return ALIASES[needle]
    stripped = _SUBDIVISION_WORDS.sub("", needle)
    only_subdivisions = stripped != needle
    index = _resolve_index()
    exact = sorted({code for name, code in index if name == stripped})
    starting = sorted({code for name, code in index if len(stripped) >= 4 and name.startswith(stripped)})
    for found in (exact, starting):
        if only_subdivisions:
            found = [c for c in found if "-" in c]
        if found:
            return _settle(typed, found, countries)
    return None


def _settle(typed: str, found: list[str], countries: tuple[str, ...]) -> str:
    """One of several regions with the name typed, or ``UnknownRegion``."""
    if len(found) > 1 and countries:
        inside = [c for c in found if c.split("-", 1)[0] in countries]
        found = inside or found
    nations = [c for c in found if "-" not in c]
    if len(nations) == 1 and all(c == nations[0] or c.startswith(nations[0] + "-") for c in found):
        return nations[0]  # "México": the country, not its state of that name (Estado de México)
    if len(found) == 1:
        return found[0]
    raise UnknownRegion(typed, [(c, label(c)) for c in found[:6]], ambiguous=True)


def _suggestions(typed: str, countries: tuple[str, ...], limit: int = 3) -> list[str]:
    """Close regions by name (and by code), within the likely countries when there are any."""
    needle = _SUBDIVISION_WORDS.sub("", _fold(typed))
    pool = [(name, code) for name, code in _resolve_index() if not countries or code.split("-", 1)[0] in countries]
    scored: dict[str, float] = {}
    for name, code in pool:
        matcher = difflib.SequenceMatcher(None, needle, name)
        if matcher.real_quick_ratio() >= 0.6 and matcher.quick_ratio() >= 0.6:
            score = matcher.ratio()
            if score >= 0.6 and score > scored.get(code, 0.0):
                scored[code] = score
    best = sorted(scored, key=lambda c: (-scored[c], c))
    by_code = difflib.get_close_matches(typed.upper(), [c for _, c in pool], n=limit, cutoff=0.75)
    return list(dict.fromkeys([*best, *by_code]))[:limit]


@lru_cache(maxsize=1)
def _resolve_index() -> tuple[tuple[str, str], ...]:
    """(folded name, code): English and local names of every country and
    subdivision, and their names in ``RESOLVE_LANGUAGES``. Smaller than the
    search index (every language), so resolving a name stays quick."""
    english: dict[str, set[str]] = {}
    for c in _pycountry().countries:
        for name in (c.name, getattr(c, "official_name", None), getattr(c, "common_name", None)):
            if name:
                english.setdefault(name, set()).add(c.alpha_2)
    for s in _pycountry().subdivisions:
        english.setdefault(s.name, set()).add(s.code)
    pairs = {(_fold(name), code) for name, codes in english.items() for code in codes}
    for language in RESOLVE_LANGUAGES:
        for domain in ("iso3166-1", "iso3166-2"):
            try:
                catalog = gettext.translation(domain, _pycountry().LOCALES_DIR, languages=[language])
            except OSError:
                continue
            for source, codes in english.items():
                translated = catalog.gettext(source)
                if translated != source:
                    pairs |= {(_fold(translated), code) for code in codes}
    pairs |= {(alias, code) for alias, code in ALIASES.items()}
    return tuple(sorted(pairs))
