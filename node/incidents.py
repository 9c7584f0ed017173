"""What a person does with an alert: send, update, cancel, acknowledge, find,
list and follow one. The JSON API (``node.local_api``), the dashboard
(``node.web``) and the drill runner (``node.response.drill_runner``) call these
functions; none of them reaches into another's handlers.

Each use case signs with the node's current key and publishes through
``author_or_refuse``: an id is handed out only for an envelope the node
stored, never for one it refused. Composing and reading alert bodies (sealing,
opening, the JSON shape) is ``node.alerts``; this module decides what to sign.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from mesh.trust import TrustGraph
from node.alerts import (
    ACK_MIN_TTL_MS,
    ACK_TTL_WITHOUT_EXPIRY_MS,
    CURRENT,
    DEFAULT_TTL_MS,
    MAX_TTL_MS,
    Readable,
    alert_from_request,
    alert_json,
    current_state,
    is_cancelled,
    make_envelope,
    open_row,
    parse_duration,
    revise,
)
from node.all_clear import changed_fields
from node.errors import Refused
from node.host import Host
from node.response.desk import ResponseDesk
from node.store import StoredEnvelope
from protocol import Ack, Alert, Envelope, ProtocolError, fingerprint, regions
from protocol.bodies import MAX_NOTE

log = logging.getLogger("amparo.alerts")


class AlertHost(Host, Protocol):
    """The node as the alert use cases see it: a desk's host, the trust graph
    (who rotated, who is compromised), the alert's answers and the response desk."""

    @property
    def trust(self) -> TrustGraph: ...

    @property
    def desk(self) -> ResponseDesk: ...

    @property
    def enc_keys(self) -> dict[bytes, bytes]:
        """X25519 keys of the nodes this node has heard of, by signing key."""
        ...

    def receipts_of(self, row: StoredEnvelope) -> dict[str, Any] | None:
        """For an alert this node sent: who stored it and when, of whom should
        (``node.receipts.tally``); None for another author's alert."""
        ...

    def publish(self, env: Envelope) -> bool:
        """Publish an envelope this node signed without waiting for the disk: the
        pushes start at once, the store follows, and the local request is
        answered only once it is on disk. False when the node refused it."""
        ...


class AlertNotFound(Refused):
    code, status = "not-found", 404


class NotTheAuthor(Refused):
    """Only the node that sent an alert (any key of its rotation family) may change it."""

    code, status = "not-author", 403


class NotAuthored(Refused):
    """This node refused an envelope it signed itself: it was neither stored nor
    sent, so no id may be handed out for it."""

    code, status = "not-sent", 409


class KeyCompromised(Refused):
    code, status = "key-compromised", 409


# -- publishing ------------------------------------------------------------------------------
def author_or_refuse(host: AlertHost, env: Envelope, *, soon: bool = False) -> None:
    """Store and send what this node signed, or raise ``NotAuthored`` saying why.
    ``soon``: pushed before it is stored (``AlertHost.publish``), for a caller
    that reads nothing back that the store derives from it."""
    if host.publish(env) if soon else host.author(env) is not None:
        return
    trust = host.trust
    if trust.is_compromised(env.author):
        why = "this node's key is declared compromised: create a new node (amparo init) and pair again"
    elif trust.retired_at(env.author) is not None:
        why = (
            "this node's key was handed over to a newer key (`amparo keys rotate` on another copy "
            "of this node?): run this node with that copy's key file"
        )
    else:
        why = "the node refused it (see `amparo status` for rejections)"
    raise NotAuthored(f"not sent: {why}")


def refuse_if_compromised(host: AlertHost) -> None:
    """A node whose key is declared compromised signs nothing more."""
    if host.trust.is_compromised(host.identity.sign_public):
        raise KeyCompromised(
            "this node's key is declared compromised: create a new node (amparo init) and pair again"
        )


# -- send, update, cancel, acknowledge -------------------------------------------------------
def send_alert(host: AlertHost, doc: dict[str, Any]) -> dict[str, Any]:
    """A new alert from what a person entered; returns its id."""
    refuse_if_compromised(host)
    return _publish(host, alert_from_request(doc), doc)


def update_alert(host: AlertHost, row: StoredEnvelope, doc: dict[str, Any]) -> dict[str, Any]:
    """An update: the original body with only what the person changed."""
    row = incident_of(host, row)
    before = current_state(_own_alert(host, row, "update"), changes_of(host, row.id))
    body = revise(before, doc, msg_type="update", references=(row.id,))
    done = _publish(host, body, doc)
    return done | {"incident": row.id.hex(), "changed": changed_fields(before, body)}


def cancel_alert(host: AlertHost, row: StoredEnvelope, doc: dict[str, Any]) -> dict[str, Any]:
    """A cancel: the original body, its description replaced by the reason given."""
    row = incident_of(host, row)
    original = current_state(_own_alert(host, row, "cancel"), changes_of(host, row.id))
    reason = {"description": doc.get("reason")}
    done = _publish(host, revise(original, reason, msg_type="cancel", references=(row.id,)), doc)
    return done | {"incident": row.id.hex(), "headline": original.headline, "reason": str(doc.get("reason") or "")}


# -- the current state of an incident --------------------------------------------------------
def incident_of(host: AlertHost, row: StoredEnvelope) -> StoredEnvelope:
    """The original alert an update or cancel belongs to (the row itself for an
    original): every link and every new update points at the incident, never at
    an update's own id."""
    body = open_row(row, host.identity).body
    if isinstance(body, Alert) and body.msg_type != "alert" and body.references:
        root = host.store.get(body.references[0])
        if root is not None and root.type == "alert":
            return root
    return row


def changes_of(host: AlertHost, alert_id: bytes) -> list[Alert]:
    """The updates and cancels of an incident, oldest first, cancels last, by
    its author (or a later key of its author) only."""
    stored = host.store.get(alert_id)
    family = host.trust.family(stored.author) if stored is not None else set()
    related = [open_row(r, host.identity) for r in host.related(alert_id)]
    changes = [r.body for r in related if isinstance(r.body, Alert) and r.envelope.author in family]
    return sorted(changes, key=lambda c: c.msg_type == "cancel")  # stable: updates keep their order


def current_of(host: AlertHost, row: StoredEnvelope) -> Alert | None:
    """The incident's current state (``alerts.current_state``), None when this node cannot read it."""
    body = open_row(row, host.identity).body
    if not isinstance(body, Alert):
        return None
    return current_state(body, changes_of(host, row.id))


def acknowledge(host: AlertHost, row: StoredEnvelope, doc: dict[str, Any]) -> dict[str, Any]:
    """Acknowledge an alert for this organization (sealed like the alert it
    answers) and stop paging for it here."""
    state = str(doc.get("state", "responding"))
    person = str(doc.get("by") or "").strip()
    try:
        body = Ack(alert=row.id, state=state, note=ack_note(person, str(doc.get("note", ""))))
    except ProtocolError as exc:
        raise Refused(exc.message) from None
    original = open_row(row, host.identity).envelope
    recipients: list[bytes] = []
    if original.sealed:  # the ack goes to the alert's author and the recipients we can name
        author_key = host.enc_keys.get(row.author)
        recipients = list(dict.fromkeys([*host.recipients_of(original), *([author_key] if author_key else [])]))
    now = host.clock()
    ttl = max(row.expires - now, ACK_MIN_TTL_MS) if row.expires else ACK_TTL_WITHOUT_EXPIRY_MS
    env = make_envelope(host.identity, body, now=now, ttl_ms=min(ttl, MAX_TTL_MS), recipients=recipients)
    author_or_refuse(host, env)
    host.desk.acknowledge(row.id.hex(), by=person or "this organization")
    return {"id": env.id.hex(), "sealed": env.sealed, "state": state}


def ack_note(person: str, note: str) -> str:
    """The ack's note, naming who acknowledged: ``Ana: on my way``. The wire ack
    has no field for a person (protocol/bodies.Ack: alert, state, note), so the
    person travels in the signed note, where every organization reads it."""
    if not person:
        return note
    text = f"{person}: {note}" if note.strip() else person
    return text if len(text) <= MAX_NOTE else text[: MAX_NOTE - 1] + "…"


def send_drill_alert(host: AlertHost, doc: dict[str, Any]) -> str:
    """One exercise alert of a running drill, escalated here too; returns its id."""
    alert = alert_from_request(doc | {"exercise": True})
    env = make_envelope(host.identity, alert, now=host.clock(), ttl_ms=DEFAULT_TTL_MS, recipients=[])
    author_or_refuse(host, env)
    host.desk.start_local(env.id.hex())
    return env.id.hex()


def _own_alert(host: AlertHost, row: StoredEnvelope, what: str) -> Alert:
    body = open_row(row, host.identity).body
    if row.author not in host.own_keys() or not isinstance(body, Alert):
        raise NotTheAuthor(f"only the node that sent an alert can {what} it")
    return body


def _publish(host: AlertHost, body: Alert, doc: dict[str, Any], *, soon: bool = False) -> dict[str, Any]:
    """``soon`` for a new alert only: an update or cancel is built from the
    incident's stored changes, so the next one must find this one in the store."""
    recipients = _recipients(host, doc.get("to") or [])
    ttl = parse_duration(doc["expires"], "expires") if doc.get("expires") else DEFAULT_TTL_MS
    env = make_envelope(host.identity, body, now=host.clock(), ttl_ms=ttl, recipients=recipients)
    author_or_refuse(host, env, soon=soon)
    return {"id": env.id.hex(), "created": env.created, "sealed": env.sealed}


def _recipients(host: AlertHost, names: list[str]) -> list[bytes]:
    keys = []
    for name in names:
        peer = host.store.find_peer(str(name))
        if peer is None:
            raise Refused(f"to: no peer called {name!r} (see `amparo peer list`)")
        keys.append(peer.enc_key)
    return keys


# -- find, list, follow ----------------------------------------------------------------------
def find_alert(host: AlertHost, ident: str) -> StoredEnvelope:
    """An alert (or update, or cancel) by its full id or a prefix of 8+ hex digits."""
    ident = ident.strip().lower()
    try:
        raw_id = bytes.fromhex(ident) if len(ident) == 64 else None
    except ValueError:
        raw_id = None
    row = host.store.get(raw_id) if raw_id else host.store.find_by_prefix(ident) if len(ident) >= 8 else None
    if row is None or row.type != "alert":
        raise AlertNotFound(f"no alert with id {ident!r}")
    return row


_UNLISTED: set[bytes] = set()  # warned about once each


def list_alerts(host: AlertHost, *, region: str | None, since: int = 0, limit: int = 100) -> list[dict[str, Any]]:
    """Alerts (not their updates), newest first, each with its current state."""
    if region:
        try:  # as people type it: mx-oax, Oaxaca
            region = regions.resolve(region, host.desk.watch).code
        except ProtocolError as exc:
            raise Refused(exc.message) from None
    names = host.author_names()
    out = []
    for row in host.store.list_alerts(since_created=since, region=None, limit=limit * 4):
        try:
            item = open_row(row, host.identity)
        except ProtocolError as exc:  # stored by an earlier version, refused by today's rules (bad-text)
            if row.id not in _UNLISTED:
                _UNLISTED.add(row.id)
                log.warning("not listing stored envelope %s: %s", row.id.hex()[:12], exc)
            continue
        if not isinstance(item.body, Alert) or item.body.msg_type != "alert":
            continue  # updates and cancels are shown in their alert's timeline
        if region and not any(regions.matches(region, a.region) for a in item.body.areas):
            continue
        out.append(alert_json(item, names, host.author_of) | _state(host, item) | _acks(host, item, names))
        if len(out) >= limit:
            break
    return out


def alert_detail(host: AlertHost, row: StoredEnvelope) -> dict[str, Any]:
    """One alert with its timeline, responses per organization, escalation and notes."""
    names = host.author_names()
    item = open_row(row, host.identity)
    timeline = [open_row(r, host.identity) for r in host.related(row.id)]
    return (
        alert_json(item, names, host.author_of)
        | _state(host, item)
        | {
            "timeline": [alert_json(t, names, host.author_of) for t in timeline],
            "responses": _responses(item, timeline, names, host.author_of),
            "escalation": host.desk.escalation_json(row.id.hex()),
            "notes": host.desk.timeline(row.id.hex()),
            "receipts": host.receipts_of(row),
        }
    )


def _state(host: AlertHost, item: Readable) -> dict[str, Any]:
    """Current state of an alert from its updates and cancels (by its author
    only): the fields its latest update shows, whether it was cancelled, how many
    updates it had. The original's own text stays in the timeline."""
    changes = changes_of(host, item.envelope.id)
    cancels = [c for c in changes if c.msg_type == "cancel"]
    state: dict[str, Any] = {
        "cancelled": is_cancelled(changes),
        "cancel_reason": cancels[0].description if cancels else "",
        "updates": sum(1 for c in changes if c.msg_type == "update"),
    }
    if isinstance(item.body, Alert):
        now = current_state(item.body, changes)
        state |= {f: getattr(now, f) for f in CURRENT if f != "areas"}
        state |= {"regions": [a.region for a in now.areas], "areas": [a.to_wire() for a in now.areas]}
        state["sent_headline"] = item.body.headline  # the timeline's first step says what was sent
    return state


def _acks(host: AlertHost, item: Readable, names: Mapping[bytes, str]) -> dict[str, Any]:
    """Who acknowledged an alert, per organization: the list shows which alerts
    somebody answered (the detail has the same ``responses``)."""
    related = [open_row(r, host.identity) for r in host.related(item.envelope.id)]
    return {"responses": _responses(item, related, names, host.author_of)}


def _responses(
    alert: Readable, timeline: list[Readable], names: Mapping[bytes, str], author_of: Callable[[bytes], bytes]
) -> list[dict[str, Any]]:
    """Per organization: its latest acknowledgement and its time to acknowledge
    (first ack after the alert was created)."""
    by_org: dict[bytes, dict[str, Any]] = {}
    for t in timeline:
        if not isinstance(t.body, Ack):
            continue
        org = author_of(t.envelope.author)
        entry = by_org.setdefault(
            org,
            {
                "organization": names.get(org, ""),
                "key": org.hex(),
                "fingerprint": fingerprint(org),
                "first_ack": t.envelope.created,
                "time_to_ack_s": round((t.envelope.created - alert.envelope.created) / 1000, 1),
            },
        )
        entry.update({"state": t.body.state, "note": t.body.note, "at": t.envelope.created})
    return sorted(by_org.values(), key=lambda e: e["first_ack"])
