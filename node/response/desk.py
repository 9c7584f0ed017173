"""The response desk: where the pure response machines meet the node's I/O.

It keeps responders, the on-call rotation, escalations and the incident
timeline in the store (``response_records``), starts an escalation when an
alert for this organization's watch regions (or addressed to it) arrives, pages
people through Apprise, and stops paging on a local acknowledgement or a
cancel. Every step goes to the alert's timeline. Deadlines are persisted
wall-clock instants (``escalation.Escalation``), so a restart resumes an
escalation without forgetting or repeating a page.

Each page also has a record (kind ``page``), written *before* the escalation
step that announces it: ``pending`` → ``sending`` (with each person's name
added to ``tried`` just before their channels are called) → ``sent`` or
``unreachable``. On the first tick after a start, a ``pending`` page is sent
(the node stopped after deciding to page and before trying), and a ``sending``
one is finished for the people not yet tried; the person being paged when the
node stopped is not paged again (they may have been reached: never
double-page), and the timeline says so.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import nacl.exceptions
import nacl.public
import nacl.pwhash

from node.alerts import open_row, parse_duration
from node.config import public_base
from node.errors import Refused
from node.host import Host
from node.outbound import OutboundPolicy, OutboundRefused, is_plaintext_apprise
from node.response import escalation as esc
from node.response.checkin_desk import CheckinDesk
from node.response.rotation import HandOver, Rotation, ScheduleError, Shift
from node.store import StoredEnvelope
from protocol import Alert, regions

log = logging.getLogger("amparo.response")
ROLES = ("admin", "responder", "viewer")


class DeskError(Refused, ValueError):
    """A request the desk refuses; the message names what is wrong."""


class ResponseDesk:
    def __init__(self, host: Host) -> None:
        self.s = host
        config = host.config
        self.policy = esc.Policy(tuple(config.escalation_chain), parse_duration(config.ack_timeout))
        self.watch = list(config.watch_regions)
        self.outbound = OutboundPolicy.from_setting(config.allow_private_targets)
        self._seq = 0
        self._resumed = False
        self._mine: set[str] = set()  # page records this process created or is sending
        self.checkins = CheckinDesk(host, escalate=self.start_local, stand_down=self.cancel)

    # -- responders -----------------------------------------------------------------------
    def add_responder(
        self, name: str, role: str, channels: list[str], password: str | None, drills: bool = False
    ) -> dict[str, Any]:
        name = name.strip()
        if not name or len(name) > 64:
            raise DeskError("name: 1 to 64 characters")
        if role not in ROLES:
            raise DeskError(f"role must be one of {', '.join(ROLES)}")
        for url in channels:
            _check_channel(url, self.outbound)
        doc: dict[str, Any] = {"role": role, "channels": channels, "drills": drills}
        if password:
            if len(password) < 10:
                raise DeskError("password: at least 10 characters")
            doc["password"] = nacl.pwhash.argon2id.str(password.encode()).decode("ascii")
        self.s.store.put_record("responder", name, doc, self.s.clock())
        return self.responder_json(name, doc)

    def responders(self) -> list[dict[str, Any]]:
        return [self.responder_json(k, d) for k, d in self.s.store.list_records("responder")]

    @staticmethod
    def responder_json(name: str, doc: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": name,
            "role": doc["role"],
            "channels": len(doc.get("channels", [])),
            "has_password": "password" in doc,
            "drills": bool(doc.get("drills")),
        }

    def remove_responder(self, name: str) -> None:
        if not self.s.store.delete_record("responder", name):
            raise DeskError(f"no responder called {name!r}")

    # -- rotation -------------------------------------------------------------------------
    def rotation(self) -> Rotation:
        rotation = Rotation()
        for _, doc in self.s.store.list_records("shift"):
            rotation.add(Shift(**doc))
        return rotation

    def add_shift(
        self, responder: str, start: int, hours: float, backup: str | None, override: bool
    ) -> list[str]:
        known = {k for k, _ in self.s.store.list_records("responder")}
        for person in filter(None, (responder, backup)):
            if person not in known:
                raise DeskError(f"no responder called {person!r} (amparo responder add)")
        shift = Shift(responder, start, start + int(hours * 3_600_000), backup, override)
        try:
            warnings = self.rotation().add(shift)
        except ScheduleError as exc:
            raise DeskError(str(exc)) from None
        self.s.store.put_record("shift", f"{start:016d}", asdict(shift), self.s.clock())
        return warnings

    def hand_over(self, incoming: str, note: str) -> HandOver:
        """Hand the on-call role to ``incoming`` now. Both people are told on their
        channels (in the background); the record says whom that reached, so a
        hand-over nobody heard of shows as one."""
        now = self.s.clock()
        if self.s.store.get_record("responder", incoming) is None:
            raise DeskError(f"no responder called {incoming!r} (amparo responder add)")
        rotation = self.rotation()
        try:
            record = rotation.hand_over(now, incoming, note)
        except ScheduleError as exc:
            raise DeskError(str(exc)) from None
        for key, _ in self.s.store.list_records("shift"):
            self.s.store.delete_record("shift", key)
        for shift in rotation.shifts:
            self.s.store.put_record("shift", f"{shift.start:016d}", asdict(shift), now)
        people = list(dict.fromkeys((record.outgoing, record.incoming)))
        doc = asdict(record) | {"notified": dict.fromkeys(people, "pending")}
        self.s.store.put_record("handover", f"{now:016d}", doc, now)
        backup = rotation.on_call(now)
        self.s.spawn(self._announce_hand_over(f"{now:016d}", record, backup.backup if backup else None))
        return record

    async def _announce_hand_over(self, key: str, record: HandOver, backup: str | None) -> None:
        title, body = hand_over_text(record, backup, public_base(self.s.config))
        outcome = {}
        for person in dict.fromkeys((record.outgoing, record.incoming)):
            urls = (self.s.store.get_record("responder", person) or {}).get("channels", [])
            if not urls:
                outcome[person] = "no channel"
            elif await asyncio.to_thread(_notify, urls, title, body, self.outbound):
                outcome[person] = "sent"
            else:
                outcome[person] = "unreachable"
                log.warning("hand-over notice to %s reached no channel", person)
        doc = self.s.store.get_record("handover", key)
        if doc is not None:
            self.s.store.put_record("handover", key, doc | {"notified": outcome}, self.s.clock())

    def on_call_json(self, days: int = 7) -> dict[str, Any]:
        now = self.s.clock()
        rotation = self.rotation()
        current = rotation.on_call(now)
        return {
            "now": asdict(current) if current else None,
            "shifts": [asdict(s) for s in rotation.shifts if s.end > now],
            "gaps": [{"start": a, "end": b} for a, b in rotation.gaps(now, now + days * 86_400_000)],
            "handovers": [d for _, d in self.s.store.list_records("handover")][-10:],
            "warnings": rotation.warnings,
        }

    # -- escalation -----------------------------------------------------------------------
    def on_delivered(self, row: StoredEnvelope) -> None:
        """A new alert reached this node: escalate it if it is ours to answer."""
        if row.type != "alert" or row.author in self.s.own_keys():
            return
        item = self.s.open(row)
        alert = item.body
        if not isinstance(alert, Alert):
            return
        if alert.msg_type == "cancel":
            for ref in alert.references:  # only the alert's own author (any key of it) cancels it
                original = self.s.store.get(ref)
                if original is not None and self.s.same_author(original.author, row.author):
                    self._finish(ref.hex(), lambda e: esc.cancel(e, self.s.clock()))
            return
        if alert.msg_type != "alert" or not (item.envelope.sealed or self._watched(alert)):
            return
        if self.s.store.get_record("escalation", row.id.hex()) is not None:
            return  # already escalating (or done): never start twice
        _, actions = esc.start(row.id.hex(), self.s.clock(), self.policy)
        self._apply(actions)

    def start_local(self, alert_hex: str) -> None:
        """Escalate an alert this node raised itself (a missed check-in)."""
        if self.s.store.get_record("escalation", alert_hex) is None:
            _, actions = esc.start(alert_hex, self.s.clock(), self.policy)
            self._apply(actions)

    def cancel(self, alert_hex: str) -> None:
        self._finish(alert_hex, lambda e: esc.cancel(e, self.s.clock()))

    def _watched(self, alert: Alert) -> bool:
        return any(regions.matches(w, a.region) for w in self.watch for a in alert.areas)

    def tick(self) -> None:
        if not self._resumed:
            self._resumed = True
            self._resume_pages()
        self.checkins.tick()
        now = self.s.clock()
        for _key, doc in self.s.store.list_records("escalation"):
            state = esc.Escalation(**doc)
            if state.state == "paging" and state.deadline and state.deadline <= now:
                _, actions = esc.tick(state, now, self.policy)
                self._apply(actions)

    def acknowledge(self, alert_hex: str, by: str) -> None:
        self._finish(alert_hex, lambda e: esc.acknowledge(e, self.s.clock(), by))

    def _finish(self, alert_hex: str, step: Any) -> None:
        doc = self.s.store.get_record("escalation", alert_hex)
        if doc is not None:
            _, actions = step(esc.Escalation(**doc))
            self._apply(actions)

    def _apply(self, actions: list[esc.Action]) -> None:
        # pages are recorded pending before the step that announces them is persisted:
        # a crash in between leaves a pending page that the next start sends
        pages = [a for a in actions if isinstance(a, esc.Page) and self._record_page(a)]
        for action in actions:
            if isinstance(action, esc.Persist):
                self.s.store.put_record(
                    "escalation", action.escalation.alert_id, asdict(action.escalation), self.s.clock()
                )
            elif isinstance(action, esc.Timeline):
                self.note(action.alert_id, action.text, kind="escalation", at=action.at)
        if pages:  # in chain order, one after the other: the backup hears first
            self.s.spawn(self._page_in_order(pages))

    def _record_page(self, page: esc.Page) -> bool:
        """Write the page's record as pending; False when it already exists (the
        step was decided before a crash, and that record is resumed instead)."""
        key = page_key(page.alert_id, page.step)
        if self.s.store.get_record("page", key) is not None:
            return False
        doc = {"alert": page.alert_id, "step": page.step, "targets": page.targets, "state": "pending",
               "tried": [], "reached": [], "at": self.s.clock()}
        self.s.store.put_record("page", key, doc, self.s.clock())
        self._mine.add(key)
        return True

    def _resume_pages(self) -> None:
        """Once after a start: send what a previous run decided but did not finish."""
        resumed: dict[str, list[esc.Page]] = {}
        for key, doc in sorted(self.s.store.list_records("page")):
            if key in self._mine or doc.get("state") not in ("pending", "sending"):
                continue
            if doc["state"] == "sending" and doc.get("tried"):
                self.note(
                    doc["alert"],
                    f"page ({doc['targets']}): the node stopped while paging {doc['tried'][-1]}; "
                    "not paged again (they may have been reached)",
                    kind="escalation",
                )
            resumed.setdefault(doc["alert"], []).append(esc.Page(doc["alert"], doc["targets"], doc["step"]))
        for alert_pages in resumed.values():
            self.s.spawn(self._page_in_order(alert_pages))

    # -- timeline -------------------------------------------------------------------------
    def note(
        self, alert_hex: str, text: str, *, kind: str = "debrief", author: str = "", at: int = 0
    ) -> None:
        if not text.strip() or len(text) > 4000:
            raise DeskError("note: 1 to 4000 characters")
        self._seq += 1
        at = at or self.s.clock()
        secret = json.dumps({"text": text, "author": author}, ensure_ascii=False).encode()
        sealed = nacl.public.SealedBox(nacl.public.PublicKey(self.s.identity.enc_public)).encrypt(secret)
        doc = {"alert": alert_hex, "at": at, "kind": kind, "sealed": bytes(sealed).hex()}
        # the random tail keeps a note written after a restart, at the same instant and
        # counter value as one written before it, from replacing that one
        key = f"{alert_hex}:{at:016d}:{self._seq:06d}{os.urandom(3).hex()}"
        self.s.store.put_record("note", key, doc, at)

    def timeline(self, alert_hex: str) -> list[dict[str, Any]]:
        """Notes of an alert, oldest first. They are sealed to this node's own
        encryption key at rest: a copied database shows when notes were taken,
        not what they say (notes written by older versions are plain)."""
        notes = [self._open_note(d) for k, d in self.s.store.list_records("note") if k.startswith(alert_hex + ":")]
        return sorted(notes, key=lambda d: d["at"])

    def _open_note(self, doc: dict[str, Any]) -> dict[str, Any]:
        if "sealed" not in doc:
            return doc
        box = nacl.public.SealedBox(self.s.identity.enc_private)
        try:
            inner = json.loads(box.decrypt(bytes.fromhex(doc["sealed"])))
        except (nacl.exceptions.CryptoError, ValueError):
            inner = {"text": "(sealed to another key: unreadable)", "author": ""}
        return {k: v for k, v in doc.items() if k != "sealed"} | {"text": inner["text"], "author": inner["author"]}

    def escalation_json(self, alert_hex: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = self.s.store.get_record("escalation", alert_hex)
        return doc

    # -- paging ---------------------------------------------------------------------------
    def _targets(self, step: str) -> list[str]:
        shift = self.rotation().on_call(self.s.clock())
        if step == "on-call":
            return [shift.responder] if shift else self._everyone()
        if step == "backup":
            return [shift.backup] if shift and shift.backup else self._everyone()
        return self._everyone()

    def start_drill(self, name: str, participants: list[str], until: int) -> None:
        known = {k for k, _ in self.s.store.list_records("responder")}
        unknown = [p for p in participants if p not in known]
        if unknown:
            raise DeskError(f"participants: no responder called {', '.join(unknown)}")
        doc = {"name": name, "participants": participants, "until": until}
        self.s.store.put_record("drill", "active", doc, self.s.clock())

    def drill_participants(self) -> set[str]:
        """Who may be paged for an exercise: the running drill's list, else only
        responders who opted in to drills from other organizations."""
        active = self._active_drill()
        if active is not None:
            return set(active["participants"])
        return {k for k, d in self.s.store.list_records("responder") if d.get("drills")}

    def _active_drill(self) -> dict[str, Any] | None:
        active: dict[str, Any] | None = self.s.store.get_record("drill", "active")
        return active if active and active["until"] > self.s.clock() else None

    def _everyone(self) -> list[str]:
        return [k for k, d in self.s.store.list_records("responder") if d.get("role") != "viewer"]

    async def _page_in_order(self, pages: list[esc.Page]) -> None:
        for page in pages:
            await self._page(page)

    async def _page(self, page: esc.Page) -> None:
        key = page_key(page.alert_id, page.step)
        record = self.s.store.get_record("page", key)
        if record is None or record.get("state") not in ("pending", "sending"):
            return  # already sent (or being sent by another task of this process)
        if key in self._mine and record["state"] == "sending":
            return
        self._mine.add(key)
        row = self.s.store.get(bytes.fromhex(page.alert_id))
        alert = open_row(row, self.s.identity).body if row else None
        if not isinstance(alert, Alert):
            self._page_state(key, record, state="skipped")
            return
        title, body = page_text(alert, page.alert_id, public_base(self.s.config))
        people = self._targets(page.targets)
        if alert.is_exercise:  # a drill never pages anyone outside the drill's list
            active = self._active_drill()
            if active is not None:  # our own drill: its participants play every step
                people = list(active["participants"])
            else:
                people = [p for p in people if p in self.drill_participants()]
        tried, delivered = list(record.get("tried", [])), list(record.get("reached", []))
        record = self._page_state(key, record, state="sending")
        for person in people:
            if person in tried:
                continue  # paged (or being paged) before a restart: never twice
            tried.append(person)
            record = self._page_state(key, record, tried=tried)  # before the attempt
            doc = self.s.store.get_record("responder", person) or {}
            urls = doc.get("channels", [])
            if urls and await asyncio.to_thread(_notify, urls, title, body, self.outbound):
                delivered.append(person)
                record = self._page_state(key, record, reached=delivered)
        self._page_state(key, record, state="sent" if delivered else "unreachable")
        text = f"page ({page.targets}): {', '.join(delivered) or 'nobody reachable'}"
        self.note(page.alert_id, text, kind="escalation")
        if not delivered:
            log.warning("escalation step %s for alert %s reached nobody", page.targets, page.alert_id[:12])

    def _page_state(self, key: str, record: dict[str, Any], **changes: Any) -> dict[str, Any]:
        record = record | changes
        self.s.store.put_record("page", key, record, self.s.clock())
        return record

    def pages(self, alert_hex: str) -> list[dict[str, Any]]:
        """This alert's page records, in chain order (for the API and tests)."""
        return [d for k, d in sorted(self.s.store.list_records("page")) if k.startswith(alert_hex + ":")]


def page_key(alert_hex: str, step: int) -> str:
    return f"{alert_hex}:{step:02d}"


def page_text(alert: Alert, alert_hex: str, base: str) -> tuple[str, str]:
    """Short enough for a phone lock screen; drills are unmistakable. ``base`` is
    where the responder reaches the dashboard (``config.public_base``)."""
    label = {"exercise": "[DRILL] ", "test": "[TEST] "}.get(alert.status, "")
    where = ", ".join(a.region for a in alert.areas)
    title = f"{label}{alert.severity.upper()} {where}: {alert.headline}"[:120]
    parts = [
        f"ACTION: {alert.instruction}" if alert.instruction else "",
        f"{base}/ui/alerts/{alert_hex}",
        "Acknowledge: amparo alert ack " + alert_hex[:12],
    ]
    return title, "\n".join(p for p in parts if p)[:600]


def hand_over_text(record: HandOver, backup: str | None, base: str) -> tuple[str, str]:
    """What both people get: who holds the role from when, and the note."""
    at = datetime.fromtimestamp(record.at / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
    title = f"On-call hand-over: {record.outgoing} → {record.incoming}"[:120]
    parts = [
        f"{record.incoming} is on call from {at}" + (f" (backup: {backup})." if backup else "."),
        f"Note: {record.note}" if record.note else "",
        f"{base}/ui/oncall",
    ]
    return title, "\n".join(p for p in parts if p)[:600]


def _notify(urls: list[str], title: str, body: str, policy: OutboundPolicy) -> bool:
    """In a worker thread, with every name it resolves checked (node/outbound.py)."""
    import apprise

    sender = apprise.Apprise()
    for url in urls:
        sender.add(url)
    try:
        with policy.guarding():
            return bool(sender.notify(title=title, body=body))
    except OutboundRefused as exc:
        log.warning("a responder channel was refused by the outbound policy: %s", exc)
        return False


def _check_channel(url: str, policy: OutboundPolicy) -> None:
    import apprise

    if not apprise.Apprise().add(url):
        raise DeskError(f"channel: not an Apprise URL Apprise understands: {url.split('://')[0]}://…")
    try:
        policy.check_url(url, plaintext=is_plaintext_apprise(url))
    except OutboundRefused as exc:
        raise DeskError(f"channel: {exc}") from None
