"""Reading and composing alert bodies for people: the node decrypts sealed
envelopes in memory (never on disk), builds alerts from what a person entered,
revises them for updates and cancels, and renders them as JSON. Used by the
alert use cases (``node.incidents``) and the desks; the mesh never needs any of this.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import tzinfo
from typing import Any

import nacl.utils

from node import clock_text
from node.catalogs import translations
from node.directory import Names
from node.errors import Refused
from node.store import StoredEnvelope
from protocol import (
    MAX_LIFETIME_MS,
    Ack,
    Alert,
    Area,
    Envelope,
    ProtocolError,
    codec,
    decode,
    fingerprint,
    seal_envelope,
    sign_envelope,
    threshold,
    unseal,
)
from protocol.keys import Identity
from protocol.regions import UnknownRegion, is_well_formed, resolve
from protocol.regions import name as region_name

# How long an alert lives when whoever sends it does not say: this node's choice,
# not a protocol rule (so not in protocol/). The longest is the protocol's rule.
DEFAULT_TTL_MS = 6 * 3600 * 1000
MAX_TTL_MS = MAX_LIFETIME_MS
# An acknowledgement lives as long as the alert it answers: after that no node
# shows the alert, so no one needs to know it was answered. At least an hour,
# though, so an ack of an alert about to expire still has time to cross the mesh
# (catch-up reconciles on every reconnection). An alert without an expiry gets
# acks for a day: the operational period a response is worth showing for.
ACK_MIN_TTL_MS = 3_600_000
ACK_TTL_WITHOUT_EXPIRY_MS = 24 * 3_600_000
_UNITS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


class AlertInputError(Refused, ValueError):
    """A person's input that cannot become an alert; the message names the field.
    ``region`` is set when the fault is a region, so the dashboard can say it in
    the reader's language (node/web/region_words.py)."""

    def __init__(self, message: str, *, region: UnknownRegion | None = None) -> None:
        super().__init__(message)
        self.region = region


def split_regions(text: str) -> list[str]:
    """Regions typed in one box: separated by commas, or by spaces when every
    word is a code ("MX-OAX mx-chp"), so a name with spaces ("Estado de México")
    stays whole."""
    out: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        words = part.split()
        out += words if all(is_well_formed(w.upper()) for w in words) else [part] if part else []
    return out


def typed_regions(typed: list[object], near: tuple[str, ...] = ()) -> list[str]:
    """The codes for regions as a person typed them (``mx-oax``, ``Oaxaca``):
    the codes among them, and ``near`` (the node's watched regions), settle
    which country a name most likely means. Raises ``AlertInputError``."""
    codes = tuple(str(r).strip().upper() for r in typed)
    try:
        return [resolve(r, near=(*codes, *near)).code for r in typed]
    except UnknownRegion as exc:
        raise AlertInputError(exc.message, region=exc) from None


def parse_duration(text: str, what: str = "duration") -> int:
    """``90s``, ``15m``, ``6h``, ``7d`` → milliseconds."""
    text = str(text).strip()
    if len(text) < 2 or text[-1] not in _UNITS or not text[:-1].isdigit():
        raise AlertInputError(f"{what} must look like 30m, 6h or 2d (got {text!r})")
    return int(text[:-1]) * _UNITS[text[-1]]


@dataclass(frozen=True)
class Readable:
    """An envelope with its body opened when this node may read it."""

    row: StoredEnvelope
    envelope: Envelope
    body: Alert | Ack | None  # None: sealed and not addressed to us


def open_row(row: StoredEnvelope, identity: Identity, envelope: Envelope | None = None) -> Readable:
    """Decode (or reuse ``envelope``, already decoded from these bytes) and open.
    A stored envelope passed its time checks when it was received, so it is
    re-read as of then (no clock read here)."""
    env = envelope if envelope is not None and envelope.id == row.id else decode(
        row.raw, now=row.received_at, check_time=False
    )
    if not env.sealed:
        body = env.body if isinstance(env.body, Alert | Ack) else None
        return Readable(row, env, body)
    try:
        opened = unseal(env, identity)
    except ProtocolError:
        return Readable(row, env, None)
    return Readable(row, env, opened if isinstance(opened, Alert | Ack) else None)


# What an alert says when the person did not say it: the API's defaults, so
# `amparo alert send` (which sends only the options given) and the dashboard's
# compose form (which starts from these) make the same alert of the same input.
# Neither has a default severity: the person always chooses one.
DEFAULTS: dict[str, str] = {
    "scope": "members", "event": "other", "urgency": "unknown", "certainty": "unknown", "language": "en",
}


def alert_from_request(
    doc: dict[str, Any],
    *,
    msg_type: str = "alert",
    references: tuple[bytes, ...] = (),
    in_use: tuple[str, ...] = (),
    near: tuple[str, ...] = (),
) -> Alert:
    """Build an alert from what a person entered. Regions a person typed are
    resolved (``mx-oax``, ``Oaxaca`` → MX-OAX) and must be in the catalogue (a
    typo gets suggestions, ranked within ``near``: the node's watched regions);
    ``in_use`` are the regions of the alert being updated or cancelled, accepted
    as they are: a catalogue update must never stop an organization from
    cancelling its own alert."""
    regions = doc.get("regions") or ([doc["region"]] if doc.get("region") else [])
    if not isinstance(regions, list) or not regions:
        raise AlertInputError("regions: give at least one region such as MX-OAX")
    fresh = typed_regions([r for r in regions if str(r) not in in_use], (*in_use, *near))
    typed = [str(r) if str(r) in in_use else fresh.pop(0) for r in regions]
    try:
        return Alert(
            headline=str(doc.get("headline", "")),
            areas=tuple(Area(r) for r in typed),
            severity=str(doc.get("severity", "unknown")),
            status="exercise" if doc.get("exercise") else str(doc.get("status", "actual")),
            msg_type=msg_type,
            references=references,
            scope=str(doc.get("scope", DEFAULTS["scope"])),
            event=str(doc.get("event", DEFAULTS["event"])),
            urgency=str(doc.get("urgency", DEFAULTS["urgency"])),
            certainty=str(doc.get("certainty", DEFAULTS["certainty"])),
            description=str(doc.get("description", "")),
            instruction=str(doc.get("instruction", "")),
            contact=str(doc.get("contact", "")),
            language=str(doc.get("language", DEFAULTS["language"])),
        )
    except ProtocolError as exc:
        raise AlertInputError(exc.message) from None


REVISABLE = (
    "headline", "severity", "status", "scope", "event", "urgency", "certainty",
    "description", "instruction", "contact", "language",
)  # what a person may change in an update; everything else stays as the alert had it


def revise(original: Alert, changes: dict[str, Any], *, msg_type: str, references: tuple[bytes, ...]) -> Alert:
    """An update or cancel of ``original``: its body as it was, with only the
    fields a person changed (empty values change nothing). Area descriptions,
    circles and the ``effective`` time are never retyped, so they are kept: an
    alert imported from CAP keeps them in every update and cancel."""
    fields: dict[str, Any] = {k: str(v) for k, v in changes.items() if k in REVISABLE and v not in (None, "")}
    areas = _revised_areas(original.areas, changes.get("regions"))
    try:
        return replace(original, msg_type=msg_type, references=references, areas=areas, **fields)
    except ProtocolError as exc:
        raise AlertInputError(exc.message) from None


CURRENT = (
    "headline", "severity", "event", "urgency", "certainty",
    "description", "instruction", "contact", "language", "areas",
)  # what an incident shows as its latest update says; its status and scope stay the original's


def current_state(original: Alert, changes: Sequence[Alert]) -> Alert:
    """The incident as people should see it now: ``original`` with the fields of
    its latest update (``changes`` oldest first, by its author only). A cancel
    changes nothing shown here: its description is the reason, which belongs in
    the timeline, and whether it was cancelled is told apart (``is_cancelled``).
    The list, ``show``, the dashboard, feeds, CAP and webhooks all use this, so
    no two of them can disagree about an incident."""
    updates = [c for c in changes if c.msg_type == "update"]
    if not updates:
        return original
    latest = updates[-1]
    return replace(original, **{f: getattr(latest, f) for f in CURRENT})


def is_cancelled(changes: Sequence[Alert]) -> bool:
    return any(c.msg_type == "cancel" for c in changes)


def _revised_areas(areas: tuple[Area, ...], regions: object) -> tuple[Area, ...]:
    """The regions a person gave, keeping the areas (with their descriptions and
    circles) of those the alert already names; new ones must be in the catalogue,
    the alert's own are accepted as they are (see ``alert_from_request``)."""
    if regions in (None, "", []):
        return areas
    if not isinstance(regions, list):
        raise AlertInputError("regions: a list of regions such as MX-OAX")
    kept = {a.region: a for a in reversed(areas)}
    fresh = typed_regions([r for r in regions if str(r) not in kept], tuple(kept))
    codes = [str(r) if str(r) in kept else fresh.pop(0) for r in regions]
    return tuple(kept.get(code) or Area(code) for code in codes)  # "mx-oax" keeps MX-OAX's area too


def make_envelope(
    identity: Identity, body: Alert | Ack, *, now: int, ttl_ms: int, recipients: list[bytes]
) -> Envelope:
    if not 0 < ttl_ms <= MAX_TTL_MS:
        raise AlertInputError("expires must be between 1 minute and 90 days")
    sealed = (isinstance(body, Alert) and body.scope == "restricted") or (
        isinstance(body, Ack) and recipients
    )
    if sealed:
        if not recipients:
            raise AlertInputError("a restricted alert needs at least one recipient (--to NODE)")
        everyone = list(dict.fromkeys([identity.enc_public, *recipients]))
        return seal_envelope(
            identity, body, created=now, expires=now + ttl_ms, recipients=everyone, random=nacl.utils.random
        )
    return sign_envelope(identity, body, created=now, expires=now + ttl_ms)


def alert_json(
    item: Readable, names: Mapping[bytes, str], author_of: Callable[[bytes], bytes] | None = None
) -> dict[str, Any]:
    """``author_of`` maps the signing key to the key its organization is shown
    under (the newest of a rotation family); ``signed_by`` keeps the signer.
    ``names`` from the node (``node.directory.Names``) also say how the author is
    trusted (``author_trust``: "vouched by Brigada Solidaria Norte")."""
    env, body = item.envelope, item.body
    author = author_of(env.author) if author_of is not None else env.author
    doc: dict[str, Any] = {
        "id": env.id.hex(),
        "type": env.type,
        "author": author.hex(),
        "author_name": names.get(author) or names.get(env.author, ""),
        "author_fingerprint": fingerprint(author),
        "author_trust": names.trust(author).to_json() if isinstance(names, Names) else None,
        "signed_by": env.author.hex(),
        "created": env.created,
        "expires": env.expires,
        "received_at": item.row.received_at,
        "from_peer": item.row.from_peer.hex() if item.row.from_peer else None,
        "sealed": env.sealed,
        "readable": body is not None,
    }
    if isinstance(body, Alert):
        doc.update(
            {
                "status": body.status,
                "msg_type": body.msg_type,
                "references": [r.hex() for r in body.references],
                "incident": (body.references[0] if body.msg_type != "alert" and body.references else env.id).hex(),
                "scope": body.scope,
                "event": body.event,
                "urgency": body.urgency,
                "severity": body.severity,
                "certainty": body.certainty,
                "headline": body.headline,
                "description": body.description,
                "instruction": body.instruction,
                "contact": body.contact,
                "language": body.language,
                "effective": body.effective,
                "regions": [a.region for a in body.areas],
                "areas": [a.to_wire() for a in body.areas],
            }
        )
    elif isinstance(body, Ack):
        doc.update({"alert": body.alert.hex(), "state": body.state, "note": body.note})
    joint = joint_json(env, names)
    if joint is not None:
        doc["joint"] = joint
    return doc


def joint_json(env: Envelope, names: Mapping[bytes, str]) -> dict[str, Any] | None:
    """A released joint alert's endorsements (docs/joint.md), as ``decode`` verified
    them: which named organizations signed, of how many, and the proposal's id."""
    if env.sealed or env.type != "alert" or b"\xa7release" not in env.raw:
        return None
    try:
        release = threshold.release_of(codec.decode(env.raw)["b"])
    except ProtocolError:
        return None
    if release is None:
        return None
    signed = set(release.signers)
    endorsers = [
        {"key": k.hex(), "name": names.get(k) or fingerprint(k), "signed": k in signed}
        for k in release.endorsers
    ]
    return {"proposal": release.proposal.hex(), "threshold": release.threshold, "endorsers": endorsers}


# -- the short text for phones ------------------------------------------------------------
TITLE_CHARS = 120
BODY_CHARS = 480  # three SMS segments; a phone lock screen shows the start
_LABEL = {"exercise": "DRILL", "test": "TEST"}
_VERB = {"update": "UPDATE", "cancel": "CANCELLED"}
# Catalog words phone_text uses besides severities (marked in node.web.labels.PAGE).
PAGE_WORDS = (*_LABEL.values(), *_VERB.values(), "ACTION", "Contact", "From", "Effective", "Expires")


def phone_text(
    alert: Alert,
    *,
    link: str,
    footer: Sequence[str] = (),
    lang: str = "en",
    sender: str = "",
    zone: tzinfo | None = None,
    expires: int = 0,
    lead: Sequence[str] = (),
) -> tuple[str, str]:
    """(title, body) that fit a phone screen, for every Apprise channel (a
    responder's page, an ally's SMS or Signal): drill or test label, severity,
    places by name, headline; who sent it (``sender``, when given), the requested
    action, the contact, the dashboard link and ``footer`` lines (how to
    acknowledge a page). ``lead`` lines come first (who cancelled an alert and
    why: ``node.all_clear``). Words come from the dashboard's catalogs in ``lang``;
    the alert's own text stays as its author wrote it. Only the action and
    contact are shortened, so the link always arrives whole. With a ``zone``
    (the reader's, else the node's), the times the alert takes effect (when
    set) and expires (``expires``, Unix ms) are given in it, with the zone's
    abbreviation."""
    t = translations(lang).gettext
    label = f"[{t(_LABEL[alert.status])}] " if alert.status in _LABEL else ""
    label += f"{t(_VERB[alert.msg_type])}: " if alert.msg_type in _VERB else ""
    where = ", ".join(_place(a.region) for a in alert.areas)
    title = f"{label}{t(alert.severity).upper()} · {where}: {alert.headline}"
    lines = (
        *lead,
        sender and f"{t('From')}: {sender}",
        zone is not None and alert.effective and f"{t('Effective')}: {clock_text.when(alert.effective, zone)}",
        zone is not None and expires and f"{t('Expires')}: {clock_text.when(expires, zone)}",
        alert.instruction and f"{t('ACTION')}: {alert.instruction}",
        alert.contact and f"{t('Contact')}: {alert.contact}",
    )
    tail = "\n" + "\n".join((link, *footer))
    head = "\n".join(p for p in lines if p)
    body = (_clip(head, BODY_CHARS - len(tail)) if head else "") + tail
    return _clip(title, TITLE_CHARS), body.strip()


def _place(code: str) -> str:
    named = region_name(code)
    return code if named == code else f"{named} ({code})"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)].rstrip() + "…"
