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
from functools import lru_cache
from typing import Any

import pycountry

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
    for c in pycountry.countries:
        for label in (c.name, getattr(c, "official_name", None), getattr(c, "common_name", None)):
            if label:
                english.setdefault(label, set()).add(c.alpha_2)
    for s in pycountry.subdivisions:
        english.setdefault(s.name, set()).add(s.code)
    pairs = {(_fold(label), code) for label, codes in english.items() for code in codes}
    pairs |= {(_fold(code), code) for codes in english.values() for code in codes}
    for translated, codes in _translations(english):
        pairs |= {(_fold(translated), code) for code in codes}
    return tuple(sorted(pairs))


def _translations(english: dict[str, set[str]]) -> list[tuple[str, set[str]]]:
    out: list[tuple[str, set[str]]] = []
    base = pycountry.LOCALES_DIR
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
    return pycountry.countries.get(alpha_2=code)


@lru_cache(maxsize=4096)
def _subdivision(code: str) -> Any:
    if "-" not in code or not code.isascii() or code != code.upper():
        return None  # pycountry matches case-insensitively; the wire has one spelling
    return pycountry.subdivisions.get(code=code)  # type: ignore[no-untyped-call]


@lru_cache(maxsize=1)
def _all_codes() -> list[str]:
    return [c.alpha_2 for c in pycountry.countries] + [s.code for s in pycountry.subdivisions]
