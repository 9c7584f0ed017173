"""Instants as people read and type them: local time with its zone.

Every time shown to a person (dashboard, pages, hand-over notices, the CLI)
goes through ``when``, in the node's ``timezone`` setting or a responder's own
zone, with the zone's abbreviation so nobody has to guess (``2026-12-06 18:30
CST``). The wire, the store and JSON output stay Unix milliseconds (UTC).

Zones are IANA names read by ``zoneinfo``: from the system's
``/usr/share/zoneinfo`` or, where the system has none, the ``tzdata`` package.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, tzinfo
from functools import lru_cache


class ZoneError(ValueError):
    """A time zone name that is not a known IANA name; the message says so."""


@lru_cache(maxsize=64)
def zone(name: str) -> tzinfo:
    """The IANA zone ``name`` (``America/Mexico_City``); ``""`` and ``UTC`` are UTC."""
    if name in ("", "UTC"):
        return UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ZoneError(
            f"unknown time zone {name!r}: use an IANA name such as America/Mexico_City or Europe/Madrid"
        ) from None


def zone_or(name: str, fallback: tzinfo) -> tzinfo:
    """``name``'s zone, or ``fallback`` when it is empty or no longer known (a
    stored name the installed zone data dropped): a page is never lost to it."""
    try:
        return zone(name) if name else fallback
    except ZoneError:
        return fallback


def when(ms: int | None, tz: tzinfo = UTC, *, seconds: bool = False, never: str = "—") -> str:
    """``2026-12-06 18:30 CST``: the instant ``ms`` (Unix ms) in ``tz``; ``never`` for 0/None."""
    if not ms:
        return never
    local = datetime.fromtimestamp(ms / 1000, tz)
    return local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M") + " " + abbreviation(local)


def clock(ms: int, tz: tzinfo = UTC) -> str:
    """``07:00 CST``: the time of day only (quiet hours)."""
    local = datetime.fromtimestamp(ms / 1000, tz)
    return local.strftime("%H:%M ") + abbreviation(local)


def abbreviation(local: datetime) -> str:
    """The zone's abbreviation (CST, CEST, UTC); zones that have none (``-03``)
    are written as an offset from UTC (``UTC-03``), which nobody misreads."""
    name = local.tzname() or ""
    if name.isalpha():
        return name
    offset = local.strftime("%z")
    return "UTC" + (offset[:3] if offset.endswith("00") else f"{offset[:3]}:{offset[3:]}")


def parse(text: str, tz: tzinfo) -> int | None:
    """Unix ms for an ISO 8601 time (``2026-12-06T18:00``, ``2026-12-06 18:00``,
    or with an offset); without an offset it is a local time in ``tz``. None when
    ``text`` is not such a time."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return int(parsed.timestamp() * 1000)


def local_minutes_end(at: int, window: tuple[int, int], tz: tzinfo) -> int:
    """When the daily window (``start``, ``end``: minutes after local midnight in
    ``tz``) that ``at`` falls in ends, as Unix ms; 0 when ``at`` falls in none.
    A window may wrap midnight (22:00-07:00). Local days follow daylight-saving
    changes: 07:00 is 07:00 on the clock on the wall, whatever the offset."""
    local = datetime.fromtimestamp(at / 1000, tz)
    start, end = window
    minute = local.hour * 60 + local.minute
    if start <= end:
        inside, next_day = start <= minute < end, False
    else:
        inside, next_day = minute >= start or minute < end, minute >= start
    if not inside:
        return 0
    day = local.date().toordinal() + (1 if next_day else 0)
    naive = datetime.fromordinal(day).replace(hour=end // 60, minute=end % 60)
    return int(naive.replace(tzinfo=tz).timestamp() * 1000)
