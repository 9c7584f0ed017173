"""The CAP-aligned alert body (SPEC §3.3) and its full validation.

Field names follow OASIS CAP 1.2 where CAP has them; enumerations are CAP's,
written in lower case on the wire. CAP's ``expires`` is the envelope's ``x`` and
is not repeated here, so the two can never disagree. Coordinates are integers
(micro-degrees) because canonical msgpack has no floats.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

from protocol import fields, regions
from protocol.errors import BadField

STATUSES: Final = ("actual", "exercise", "test")
MSG_TYPES: Final = ("alert", "update", "cancel")
SCOPES: Final = ("public", "members", "restricted")
EVENTS: Final = (
    "threat",
    "attack",
    "detention",
    "disappearance",
    "raid",
    "surveillance",
    "legal-harassment",
    "checkin-missed",
    "other",
)
URGENCIES: Final = ("immediate", "expected", "future", "past", "unknown")
SEVERITIES: Final = ("extreme", "severe", "moderate", "minor", "unknown")
CERTAINTIES: Final = ("observed", "likely", "possible", "unlikely", "unknown")

MAX_HEADLINE: Final = 160
MAX_DESCRIPTION: Final = 8000
MAX_INSTRUCTION: Final = 2000
MAX_CONTACT: Final = 500
MAX_AREA_DESC: Final = 200
MAX_AREAS: Final = 32
MAX_REFERENCES: Final = 32
MAX_RADIUS_M: Final = 20_000_000
_BCP47 = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,4}$")

_ALERT_FIELDS = (
    "status",
    "msg_type",
    "references",
    "scope",
    "event",
    "urgency",
    "severity",
    "certainty",
    "headline",
    "description",
    "instruction",
    "contact",
    "language",
    "areas",
    "effective",
)


_ALERT_KEYS = frozenset((*_ALERT_FIELDS, fields.EXT))
_KIND_ENUMS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (("msg_type", MSG_TYPES), ("status", STATUSES))
_INFO_ENUMS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (  # checked after _KIND_ENUMS and references
    ("scope", SCOPES),
    ("event", EVENTS),
    ("urgency", URGENCIES),
    ("severity", SEVERITIES),
    ("certainty", CERTAINTIES),
)
_AREA_KEYS = frozenset(("region", "desc", "circle"))


@dataclass(frozen=True, slots=True)
class Area:
    region: str
    desc: str = ""
    circle: tuple[int, int, int] | None = None  # lat µdeg, lon µdeg, radius m

    def to_wire(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"region": self.region}
        if self.desc:
            doc["desc"] = self.desc
        if self.circle is not None:
            doc["circle"] = list(self.circle)
        return doc

    @classmethod
    def from_wire(cls, value: object, path: str) -> Area:
        doc = fields.require_map(value, path, _AREA_KEYS)
        region = doc.get("region")
        if not regions.is_well_formed(region):  # the field's path is only formatted for a refusal
            region = regions.check_wire(region, f"{path}.region")
        desc = fields.text(doc, "desc", path, max_chars=MAX_AREA_DESC) if "desc" in doc else ""
        circle = doc.get("circle")
        return _build_area(region, desc, None if circle is None else _circle(circle, f"{path}.circle"))


@dataclass(frozen=True, slots=True)
class Alert:
    """An urgent action or warning; see docs/protocol.md §6.1 for every limit."""

    headline: str
    areas: tuple[Area, ...]
    severity: str = "unknown"
    status: str = "actual"
    msg_type: str = "alert"
    references: tuple[bytes, ...] = ()
    scope: str = "members"
    event: str = "other"
    urgency: str = "unknown"
    certainty: str = "unknown"
    description: str = ""
    instruction: str = ""
    contact: str = ""
    language: str = "en"
    effective: int = 0  # Unix ms; 0 = from creation
    kind: str = field(default="alert", init=False, repr=False)

    def __post_init__(self) -> None:
        Alert.from_wire(self.to_wire())  # one validation path for built and received alerts

    @property
    def is_exercise(self) -> bool:
        return self.status != "actual"

    def to_wire(self) -> dict[str, Any]:
        """The wire map: optional fields at their default are omitted (one encoding
        per value); ``areas`` is always present. Built in one pass: ``decode``
        compares it with every alert body it accepts."""
        doc: dict[str, Any] = {
            "status": self.status,
            "msg_type": self.msg_type,
            "scope": self.scope,
            "event": self.event,
            "urgency": self.urgency,
            "severity": self.severity,
            "certainty": self.certainty,
        }
        for key in ("headline", "description", "instruction", "contact", "language"):
            value = getattr(self, key)
            if value:
                doc[key] = value
        if self.references:
            doc["references"] = list(self.references)
        if self.effective:
            doc["effective"] = self.effective
        doc["areas"] = [a.to_wire() for a in self.areas]
        return doc

    @classmethod
    def from_wire(cls, value: object, path: str = "alert") -> Alert:
        """Validate a wire map. The hot path of ``decode``: fields are checked in a
        fixed order (so the first bad one is the one named), optional text absent
        from the map is not looked at, and the result is built by ``_build_alert``."""
        doc = fields.require_map(value, path, _ALERT_KEYS)
        if fields.EXT in doc:
            fields.check_extensions(doc, path)
        get, text = doc.get, fields.text
        for key, allowed in _KIND_ENUMS:  # what fields.enum checks, without a call per field
            if get(key) not in allowed:
                raise fields.enum_error(key, path, allowed, get(key))
        msg_type = doc["msg_type"]
        references = _references(doc["references"], msg_type, path) if "references" in doc else ()
        if msg_type != "alert" and not references:
            raise BadField(f"an {msg_type} must reference the alert it changes", field=f"{path}.references")
        for key, allowed in _INFO_ENUMS:
            if get(key) not in allowed:
                raise fields.enum_error(key, path, allowed, get(key))
        headline = text(doc, "headline", path, max_chars=MAX_HEADLINE, required=True)
        description = (
            text(doc, "description", path, max_chars=MAX_DESCRIPTION, multiline=True) if "description" in doc else ""
        )
        instruction = (
            text(doc, "instruction", path, max_chars=MAX_INSTRUCTION, multiline=True) if "instruction" in doc else ""
        )
        contact = text(doc, "contact", path, max_chars=MAX_CONTACT) if "contact" in doc else ""
        language = _language(doc.get("language"), path)
        areas = _areas(doc.get("areas"), path)
        effective = fields.integer(doc, "effective", path, low=0, high=2**62, default=0) if "effective" in doc else 0
        return _build_alert(
            headline, areas, doc["severity"], doc["status"], msg_type, references, doc["scope"], doc["event"],
            doc["urgency"], doc["certainty"], description, instruction, contact, language, effective, "alert"
        )


def wire_is_plain(doc: dict[str, Any]) -> bool:
    """True when ``doc``, a map ``Alert.from_wire`` accepted, has no optional field
    at its default value, so it is exactly its alert's ``to_wire()`` (plus any
    ``ext``) and ``decode`` need not build that map to compare. Every value
    ``from_wire`` keeps is the wire's own, so what is left to check is which keys
    are there: optional text, ``references`` and ``effective`` only when non-empty
    or non-zero, ``language`` always (``en`` is written out), an area's ``desc``
    only when non-empty and its ``circle`` only when given. False means "not
    shown here": the caller compares as before, and refuses."""
    if "language" not in doc or None in doc.values():
        return False
    for key in _SKIPPED_WHEN_EMPTY:
        if key in doc and not doc[key]:
            return False
    return all(None not in area.values() and area.get("desc", True) for area in doc["areas"])


_SKIPPED_WHEN_EMPTY = ("description", "instruction", "contact", "references", "effective")


_build_area = fields.frozen_builder(Area)  # region, desc, circle
_build_alert = fields.frozen_builder(Alert)  # every field in declaration order, ending with kind


def _references(value: object, msg_type: str, path: str) -> tuple[bytes, ...]:
    if not isinstance(value, list) or len(value) > MAX_REFERENCES:
        raise BadField(f"must be a list of at most {MAX_REFERENCES} ids", field=f"{path}.references")
    if not all(isinstance(r, bytes) and len(r) == fields.ID_BYTES for r in value):
        raise BadField("every reference must be a 32-byte envelope id", field=f"{path}.references")
    if msg_type != "alert" and not value:
        raise BadField(f"an {msg_type} must reference the alert it changes", field=f"{path}.references")
    if len(set(value)) != len(value):
        raise BadField("duplicate reference", field=f"{path}.references")
    return tuple(value)


def _language(value: object, path: str) -> str:
    if value is None:
        return "en"
    if not isinstance(value, str) or len(value) > 35 or not _BCP47.match(value):
        raise BadField("must be a BCP 47 language tag such as es or es-MX", field=f"{path}.language")
    return value


def _areas(value: object, path: str) -> tuple[Area, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_AREAS:
        raise BadField(f"must list 1 to {MAX_AREAS} areas", field=f"{path}.areas")
    areas = []
    for i, item in enumerate(value):
        area = _plain_area(item)
        areas.append(Area.from_wire(item, f"{path}.areas[{i}]") if area is None else area)
    return tuple(areas)


def _plain_area(value: object) -> Area | None:
    """The area ``value`` holds when it is plainly valid, else None and
    ``Area.from_wire`` decides and names what is wrong. Every test here is as
    strict as the full one or stricter, so this never accepts what it refuses;
    it saves the field paths (formatted for every area before) and four calls."""
    if type(value) is not dict or not value.keys() <= _AREA_KEYS:
        return None
    region, desc, circle = value.get("region"), value.get("desc", ""), value.get("circle")
    if type(region) is not str or not regions.is_well_formed(region):
        return None
    if type(desc) is not str or len(desc) > MAX_AREA_DESC or not desc.isprintable():
        return None
    if circle is not None:
        if type(circle) is not list or len(circle) != 3:
            return None
        lat, lon, radius = circle
        if (
            type(lat) is not int
            or type(lon) is not int
            or type(radius) is not int
            or not -90_000_000 <= lat <= 90_000_000
            or not -180_000_000 <= lon <= 180_000_000
            or not 1 <= radius <= MAX_RADIUS_M
        ):
            return None
        circle = (lat, lon, radius)
    return _build_area(region, desc, circle)


def _circle(value: object, path: str) -> tuple[int, int, int] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise BadField("must be [lat µdeg, lon µdeg, radius m] within range", field=path)
    lat, lon, radius = value
    if (
        type(lat) is not int  # exactly int: bool is an int subclass
        or type(lon) is not int
        or type(radius) is not int
        or not -90_000_000 <= lat <= 90_000_000
        or not -180_000_000 <= lon <= 180_000_000
        or not 1 <= radius <= MAX_RADIUS_M
    ):
        raise BadField("must be [lat µdeg, lon µdeg, radius m] within range", field=path)
    return (lat, lon, radius)
