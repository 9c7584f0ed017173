"""Atom feeds of ``public`` alerts per region, for feed readers, websites and
other alerting systems.

Only plain envelopes whose alert says ``scope = public`` ever enter a feed:
``members`` alerts are for the federation, and ``restricted`` ones are sealed
(a relay cannot even read them). Each entry is one incident as its latest
update shows it, under the original alert's id, and links its CAP 1.2 document.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # building only
from dataclasses import dataclass
from datetime import UTC, datetime

from protocol import Alert, regions

ATOM = "http://www.w3.org/2005/Atom"
FEED_LENGTH = 50
_LABEL = {"exercise": "[DRILL] ", "test": "[TEST] "}
_VERB = {"update": "UPDATE: ", "cancel": "CANCELLED: "}


@dataclass(frozen=True)
class FeedEntry:
    """One incident: ``alert`` is its current state (``alerts.current_state``),
    ``id_hex`` the original's id, which every link uses; ``phase`` says whether
    it was updated or cancelled since."""

    alert: Alert
    id_hex: str
    created: int
    author_name: str
    updated: int = 0  # its latest update or cancel; 0: never changed
    phase: str = ""  # "", "update", "cancel"


def render(
    region: str, entries: list[FeedEntry], *, base: str, node_key: bytes, node_name: str, now: int
) -> bytes:
    """The Atom document; ``base`` is ``config.public_base`` (never a request's Host)."""
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    where = "everywhere" if region == regions.EVERYWHERE else f"{regions.name(region)} ({region})"
    _text(feed, "id", f"urn:amparo:feed:{node_key.hex()}:{region}")
    _text(feed, "title", f"Amparo public alerts — {where}")
    _text(feed, "subtitle", f"Public alerts held by the node {node_name}")
    _text(feed, "updated", _atom_time(max((max(e.updated, e.created) for e in entries), default=now)))
    _link(
        feed,
        f"{base}/feeds/{'all' if region == regions.EVERYWHERE else region}.atom",
        "self",
        "application/atom+xml",
    )
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    _text(author, "name", node_name)
    for entry in entries:
        _entry(feed, entry, base)
    document: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return document


def _entry(feed: ET.Element, e: FeedEntry, base: str) -> None:
    a = e.alert
    node = ET.SubElement(feed, f"{{{ATOM}}}entry")
    _text(node, "id", f"urn:amparo:alert:{e.id_hex}")
    verb = _VERB.get(e.phase or a.msg_type, "")
    _text(node, "title", f"{_LABEL.get(a.status, '')}{verb}{a.severity.upper()}: {a.headline}")
    _text(node, "updated", _atom_time(max(e.updated, e.created)))
    _text(node, "published", _atom_time(e.created))
    author = ET.SubElement(node, f"{{{ATOM}}}author")
    _text(author, "name", e.author_name or "unknown organization")
    _link(node, f"{base}/feeds/cap/{e.id_hex}.xml", "alternate", "application/cap+xml")
    for term in (a.severity, a.event, *(area.region for area in a.areas)):
        ET.SubElement(node, f"{{{ATOM}}}category", {"term": term})
    summary = "\n\n".join(
        p for p in (a.description, a.instruction and f"Requested action: {a.instruction}") if p
    )
    _text(node, "summary", summary[:2000] or a.headline)


def wanted(alert: Alert, region: str) -> bool:
    return alert.scope == "public" and any(regions.matches(region, area.region) for area in alert.areas)


def _link(parent: ET.Element, href: str, rel: str, kind: str) -> None:
    ET.SubElement(parent, f"{{{ATOM}}}link", {"href": href, "rel": rel, "type": kind})


def _text(parent: ET.Element, tag: str, value: str) -> None:
    ET.SubElement(parent, f"{{{ATOM}}}{tag}").text = value


def _atom_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
