"""Regions: ISO 3166-1 alpha-2 countries, ISO 3166-2 subdivisions, or ``*``.

Validated against ``pycountry`` (a maintained copy of the standard). Matching is
hierarchical: a subscription to ``MX`` matches an alert for ``MX-OAX``, and a
subdivision matches its parent subdivisions (``FR-75C`` is inside ``FR-IDF``).
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from typing import Any

import pycountry

from protocol.errors import BadField

EVERYWHERE = "*"
MAX_REGION_CHARS = 10


def is_valid(code: str) -> bool:
    return code == EVERYWHERE or _country(code) is not None or _subdivision(code) is not None


def check(code: object, field: str = "region") -> str:
    """Return ``code`` if it is a known region, else ``BadField`` with suggestions."""
    if not isinstance(code, str) or not code or len(code) > MAX_REGION_CHARS:
        raise BadField("must be an ISO 3166 code such as MX or MX-OAX, or *", field=field)
    if is_valid(code):
        return code
    hint = suggest(code)
    extra = f"; did you mean {', '.join(hint)}?" if hint else ""
    raise BadField(f"unknown region {code!r}{extra}", field=field)


def suggest(code: str, limit: int = 3) -> list[str]:
    """Close known codes for a mistyped one (``MX-OAXX`` → ``MX-OAX``)."""
    upper = code.upper()
    if upper != code and is_valid(upper):
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
