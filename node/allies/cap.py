"""CAP 1.2 (OASIS Common Alerting Protocol): every Amparo alert as a CAP
document, and CAP documents from outside sources turned into Amparo alerts.

Built with ElementTree (never by string concatenation) in the element order
the CAP 1.2 schema requires; parsed with ``defusedxml`` so a hostile document
cannot expand entities, fetch DTDs or exhaust memory. The mapping:

| Amparo | CAP |
|---|---|
| envelope id (hex) | ``identifier`` |
| author key | ``sender`` = ``amparo:<key hex>``; ``senderName`` = the node's name |
| status actual/exercise/test | ``status`` Actual/Exercise/Test |
| msg_type alert/update/cancel | ``msgType`` Alert/Update/Cancel, ``references`` (``sender,identifier,sent``) for the latter two; on import they resolve to the Amparo alerts published for those CAP messages |
| scope public/members/restricted | ``scope`` Public / Restricted (``restriction``) / Private (``addresses``) |
| event | ``event`` and ``eventCode`` ``amparo-event``; ``category`` Security/Safety/Other |
| urgency, severity, certainty | the same CAP values, capitalized |
| headline, description, instruction, contact, language | the same CAP elements |
| areas | ``area``: ``areaDesc``, ``circle`` (``lat,lon radius-km``), ``geocode`` ISO3166-1/ISO3166-2 |
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # building only; parsing goes through defusedxml
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from protocol import Alert, Area, ProtocolError, regions
from protocol.alert import CERTAINTIES, EVENTS, MAX_REFERENCES, SEVERITIES, URGENCIES

NS = "urn:oasis:names:tc:emergency:cap:1.2"
MAX_CAP_BYTES = 256 * 1024
EVENT_CODE = "amparo-event"
EVERYWHERE_CODE = "amparo-region"
_GEOCODES = ("ISO3166-1", "ISO3166-2", EVERYWHERE_CODE.upper())
SENDER_PREFIX = "amparo:"
_CATEGORY = {"checkin-missed": "Safety", "other": "Other"}  # everything else is Security
LAST_CAP_MS = 253_402_300_799_000  # 9999-12-31T23:59:59Z
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_CAP_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d$")
_SCOPE_OUT = {"public": "Public", "members": "Restricted", "restricted": "Private"}
_SCOPE_IN = {"Public": "public", "Restricted": "members"}
MEMBERS_RESTRICTION = "Members of the Amparo federation and their allies"

ET.register_namespace("", NS)


class CapError(ValueError):
    """A CAP document Amparo cannot take; the message names the element."""


@dataclass(frozen=True)
class CapMeta:
    """What CAP needs beyond the alert body: who, when, and the envelope id."""

    identifier: str
    author: bytes
    author_name: str
    created: int
    expires: int


@dataclass(frozen=True)
class CapReference:
    """One CAP message named by its extended identifier ``sender,identifier,sent``."""

    sender: str
    identifier: str
    sent: int  # Unix ms

    def __str__(self) -> str:
        return f"{self.sender},{self.identifier},{cap_time(self.sent)}"


@dataclass(frozen=True)
class ImportedCap:
    alert: Alert
    expires: int  # Unix ms, 0 when the document had none
    source: str  # "sender identifier sent" of the original, kept in the description
    origin: CapReference | None = None  # the imported message itself, for later Updates and Cancels


Resolver = Callable[[CapReference], bytes | None]
_MSG_TYPES = ("Alert", "Update", "Cancel")


# -- rendering ----------------------------------------------------------------------------
def render(
    alert: Alert,
    meta: CapMeta,
    *,
    referenced: Callable[[bytes], CapMeta | None] = lambda _: None,
    addresses: str = "",
) -> bytes:
    """The CAP 1.2 XML document (UTF-8, with declaration) for one alert."""
    root = ET.Element(f"{{{NS}}}alert")
    _text(root, "identifier", meta.identifier)
    _text(root, "sender", SENDER_PREFIX + meta.author.hex())
    _text(root, "sent", cap_time(meta.created))
    _text(root, "status", alert.status.capitalize())
    _text(root, "msgType", alert.msg_type.capitalize())
    _text(root, "source", "Amparo")
    _text(root, "scope", _SCOPE_OUT[alert.scope])
    if alert.scope == "members":
        _text(root, "restriction", MEMBERS_RESTRICTION)
    if alert.scope == "restricted":
        _text(root, "addresses", addresses or "amparo:sealed-recipients")
    if alert.references:
        _text(root, "references", " ".join(_reference(r, meta, referenced) for r in alert.references))
    _info(root, alert, meta)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def _info(root: ET.Element, alert: Alert, meta: CapMeta) -> None:
    info = ET.SubElement(root, f"{{{NS}}}info")
    _text(info, "language", alert.language)
    _text(info, "category", _CATEGORY.get(alert.event, "Security"))
    _text(info, "event", alert.event)
    _text(info, "urgency", alert.urgency.capitalize())
    _text(info, "severity", alert.severity.capitalize())
    _text(info, "certainty", alert.certainty.capitalize())
    code = ET.SubElement(info, f"{{{NS}}}eventCode")
    _text(code, "valueName", EVENT_CODE)
    _text(code, "value", alert.event)
    if alert.effective:
        _text(info, "effective", cap_time(alert.effective))
    if meta.expires:
        _text(info, "expires", cap_time(meta.expires))
    if meta.author_name:
        _text(info, "senderName", meta.author_name)
    _text(info, "headline", alert.headline)
    for name in ("description", "instruction", "contact"):
        if value := getattr(alert, name):
            _text(info, name, value)
    for area in alert.areas:
        _area(info, area)


def _area(info: ET.Element, area: Area) -> None:
    node = ET.SubElement(info, f"{{{NS}}}area")
    _text(node, "areaDesc", area.desc or regions.name(area.region))
    if area.circle is not None:
        lat, lon, radius = area.circle
        _text(node, "circle", f"{lat / 1e6:.6f},{lon / 1e6:.6f} {radius / 1000:.3f}")
    code = ET.SubElement(node, f"{{{NS}}}geocode")
    _text(code, "valueName", _geocode_name(area.region))
    _text(code, "value", area.region)


def _geocode_name(region: str) -> str:
    if region == regions.EVERYWHERE:
        return EVERYWHERE_CODE  # ISO 3166 has no code for "everywhere"
    return "ISO3166-2" if "-" in region else "ISO3166-1"


def _reference(ref: bytes, meta: CapMeta, referenced: Callable[[bytes], CapMeta | None]) -> str:
    """CAP references are ``sender,identifier,sent`` triples."""
    known = referenced(ref)
    sender = SENDER_PREFIX + (known.author if known else meta.author).hex()
    sent = cap_time(known.created if known else meta.created)
    return f"{sender},{ref.hex()},{sent}"


def _text(parent: ET.Element, tag: str, value: str) -> None:
    ET.SubElement(parent, f"{{{NS}}}{tag}").text = xml_safe(value)


def xml_safe(value: str) -> str:
    """XML 1.0 cannot carry U+FFFE, U+FFFF (or C0 controls other than tab and
    newline); Amparo text can. They become U+FFFD rather than a broken document."""
    return _NOT_XML.sub("\ufffd", value)


def cap_time(ms: int) -> str:
    """CAP's dateTime: seconds precision and an explicit offset (never ``Z``).
    The protocol allows instants past year 9999; CAP cannot, so they clamp."""
    return datetime.fromtimestamp(min(ms, LAST_CAP_MS) // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


# -- importing ----------------------------------------------------------------------------
def parse(
    data: bytes,
    *,
    region: str | None = None,
    scope: str | None = None,
    resolve: Resolver = lambda _: None,
) -> ImportedCap:
    """A CAP 1.2 message from outside → the fields of an Amparo alert.

    ``region``/``scope`` override what the document says (for feeds whose areas
    use geocodes other than ISO 3166, or to narrow who sees it). Only the first
    ``info`` block is taken. A CAP Update or Cancel becomes an Amparo update or
    cancel of the alerts ``resolve`` maps its ``references`` to (the Amparo
    alerts this node published for those CAP messages); if any reference does
    not resolve the document is refused, naming it — a Cancel is never published
    as a new alert. Raises ``CapError`` naming what is wrong.
    """
    if len(data) > MAX_CAP_BYTES:
        raise CapError(f"document: larger than {MAX_CAP_BYTES // 1024} KiB")
    try:
        root = SafeET.fromstring(data, forbid_dtd=True)
    except (ET.ParseError, DefusedXmlException, ValueError) as exc:
        raise CapError(f"document: not well-formed or unsafe XML ({type(exc).__name__})") from None
    if root.tag != f"{{{NS}}}alert":
        raise CapError(f"alert: the root element must be <alert> in namespace {NS}")
    info = root.find(f"{{{NS}}}info")
    if info is None:
        raise CapError("info: the document has no <info> block")
    source = " ".join(_need(root, n) for n in ("sender", "identifier", "sent"))
    origin = CapReference(_need(root, "sender"), _need(root, "identifier"), _ms(_need(root, "sent"), "sent"))
    msg_type = _enum(root, "msgType", _MSG_TYPES)
    references = _resolved(root, msg_type, resolve)
    fields = _info_fields(info)
    description = "\n\n".join(p for p in (fields.pop("description"), f"[CAP source: {source}]") if p)
    try:
        alert = Alert(
            status=_enum(root, "status", ("Actual", "Exercise", "Test")),
            msg_type=msg_type,
            references=references,
            scope=scope or _scope(root),
            areas=_areas(info, region),
            description=description[:8000],
            **fields,
        )
    except ProtocolError as exc:
        raise CapError(exc.message) from None
    expires = info.findtext(f"{{{NS}}}expires")
    if effective := info.findtext(f"{{{NS}}}effective"):
        alert = replace(alert, effective=_ms(effective, "info.effective"))
    return ImportedCap(alert, _ms(expires, "info.expires") if expires else 0, source, origin)


def references_of(root: ET.Element) -> tuple[CapReference, ...]:
    """The ``references`` element: space-separated ``sender,identifier,sent`` triples."""
    text = root.findtext(f"{{{NS}}}references") or ""
    out = []
    for triple in text.split():
        parts = triple.split(",")
        if len(parts) != 3 or not all(parts):
            raise CapError(f"references: {triple[:120]!r} is not sender,identifier,sent")
        out.append(CapReference(parts[0], parts[1], _ms(parts[2], "references")))
    if len(out) > MAX_REFERENCES:
        raise CapError(f"references: at most {MAX_REFERENCES}")
    return tuple(out)


def _resolved(root: ET.Element, msg_type: str, resolve: Resolver) -> tuple[bytes, ...]:
    """Amparo ids for the CAP references. An Update or Cancel needs every one (it
    changes those alerts and nothing else); an Alert keeps those that resolve
    (for an Alert, CAP references are informational)."""
    refs = references_of(root)
    if msg_type != "alert" and not refs:
        raise CapError(f"references: a CAP {msg_type.capitalize()} must name the message it changes")
    ids: list[bytes] = []
    for ref in refs:
        found = resolve(ref)
        if found is None and msg_type != "alert":
            raise CapError(
                f"references: {ref} is not a CAP message this node imported, so this "
                f"{msg_type.capitalize()} has nothing to change; import the original first"
            )
        if found is not None and found not in ids:
            ids.append(found)
    return tuple(ids)


def _info_fields(info: ET.Element) -> dict[str, Any]:
    code = next(
        (
            c.findtext(f"{{{NS}}}value", "")
            for c in info.findall(f"{{{NS}}}eventCode")
            if c.findtext(f"{{{NS}}}valueName") == EVENT_CODE
        ),
        "",
    )
    return {
        "headline": (info.findtext(f"{{{NS}}}headline") or _need(info, "event"))[:160],
        "event": code if code in EVENTS else "other",
        "urgency": _enum(info, "urgency", tuple(u.capitalize() for u in URGENCIES)),
        "severity": _enum(info, "severity", tuple(s.capitalize() for s in SEVERITIES)),
        "certainty": _certainty(info),
        "description": info.findtext(f"{{{NS}}}description") or "",
        "instruction": (info.findtext(f"{{{NS}}}instruction") or "")[:2000],
        "contact": (info.findtext(f"{{{NS}}}contact") or "")[:500],
        "language": info.findtext(f"{{{NS}}}language") or "en-US",
    }


def _areas(info: ET.Element, override: str | None) -> tuple[Area, ...]:
    if override:
        return (Area(regions.check(override, "region")),)
    out = []
    for area in info.findall(f"{{{NS}}}area"):
        desc = area.findtext(f"{{{NS}}}areaDesc") or ""
        codes = [
            g.findtext(f"{{{NS}}}value", "")
            for g in area.findall(f"{{{NS}}}geocode")
            if (g.findtext(f"{{{NS}}}valueName") or "").upper() in _GEOCODES
        ]
        if not codes:
            raise CapError(
                f"area {desc!r}: no ISO3166-1/ISO3166-2 geocode; give the region with --region CODE"
            )
        circle = _circle(area.findtext(f"{{{NS}}}circle"))
        for code in codes:
            region = regions.check(code, "area.geocode")
            out.append(Area(region, "" if desc == regions.name(region) else desc[:200], circle))
    if not out:
        raise CapError("area: the info block has no <area>; give the region with --region CODE")
    return tuple(out[:32])


def _circle(text: str | None) -> tuple[int, int, int] | None:
    if not text:
        return None
    try:
        point, radius = text.split()
        lat, lon = (float(v) for v in point.split(","))
        return (round(lat * 1e6), round(lon * 1e6), round(float(radius) * 1000))
    except ValueError:
        raise CapError(f"area.circle: expected 'lat,lon radius-km', got {text[:40]!r}") from None


def _scope(root: ET.Element) -> str:
    value = _need(root, "scope")
    if value == "Private":
        raise CapError("scope: Private alerts need recipients; import with --scope members or public")
    if value not in _SCOPE_IN:
        raise CapError(f"scope: must be Public, Restricted or Private (got {value[:20]!r})")
    return _SCOPE_IN[value]


def _certainty(info: ET.Element) -> str:
    value = _need(info, "certainty")
    return (
        "likely"
        if value == "Very Likely"
        else _enum(info, "certainty", tuple(c.capitalize() for c in CERTAINTIES))
    )


def _enum(parent: ET.Element, tag: str, allowed: tuple[str, ...]) -> str:
    value = _need(parent, tag)
    if value not in allowed:
        raise CapError(f"{tag}: must be one of {', '.join(allowed)} (got {value[:30]!r})")
    return value.lower()


def _need(parent: ET.Element, tag: str) -> str:
    value = parent.findtext(f"{{{NS}}}{tag}")
    if not value or not value.strip():
        raise CapError(f"{tag}: required element missing or empty")
    return value.strip()


def _ms(text: str, name: str) -> int:
    if not _CAP_TIME.match(text.strip()):
        raise CapError(f"{name}: not a CAP date-time such as 2026-11-25T10:00:00-06:00")
    return int(datetime.fromisoformat(text.strip()).timestamp() * 1000)
