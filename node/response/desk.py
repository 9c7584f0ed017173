"""The response desk: where the pure response machines meet the node's I/O.

It keeps responders, the on-call rotation, escalations, pages and the incident
timeline in the store (their own tables: ``node.store.oncall`` and
``node.store.escalations``), starts an escalation when an
alert for this organization's watch regions (or addressed to it) arrives, pages
people through Apprise, and stops paging on a local acknowledgement or a
cancel. Every step goes to the alert's timeline. Deadlines are persisted
wall-clock instants (``escalation.Escalation``), so a restart resumes an
escalation without forgetting or repeating a page.

Each page also has a record (``pages``), written *before* the escalation
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
import weakref
from dataclasses import asdict, replace
from datetime import tzinfo
from typing import Any

import nacl.exceptions
import nacl.public
import nacl.pwhash

from node import catalogs, clock_text
from node.alerts import open_row, parse_duration, phone_text
from node.all_clear import describe
from node.config import public_base, quiet_window
from node.errors import Refused
from node.host import Host
from node.outbound import (
    OutboundPolicy,
    OutboundRefused,
    apprise_understands,
    is_plaintext_apprise,
    send_apprise,
)
from node.response import escalation as esc
from node.response import sms
from node.response.all_clear import AllClear
from node.response.checkin_desk import CheckinDesk, localized
from node.response.field import FieldDesk, FieldError, check_phone
from node.response.rotation import HandOver, Rotation, ScheduleError, Shift
from node.store import EscalationRow, HandoverRow, NoteRow, PageRow, ResponderRow, ShiftRow, StoredEnvelope
from protocol import Alert, fingerprint, regions
from protocol.alert import MAX_HEADLINE

log = logging.getLogger("amparo.response")
ROLES = ("admin", "responder", "viewer")


class DeskError(Refused, ValueError):
    """A request the desk refuses; the message names what is wrong."""


class ResponseDesk:
    def __init__(self, host: Host) -> None:
        self.s = host
        config = host.config
        self.zone = clock_text.zone(config.timezone)  # times in pages, unless the responder has a zone
        self.policy = esc.Policy(
            tuple(config.escalation_chain),
            parse_duration(config.ack_timeout),
            parse_duration(config.repage_every),
            quiet_window(config.quiet_hours) if config.quiet_hours else None,
            self.zone,
        )
        self.watch = list(config.watch_regions)
        self.outbound = OutboundPolicy.from_setting(config.allow_private_targets)
        self._resumed = False
        self._mine: set[tuple[str, int]] = set()  # pages (alert, step) this process created or is sending
        self.checkins = CheckinDesk(host, escalate=self.start_local, stand_down=self.cancel)
        self.field = FieldDesk(host, self.checkins, escalate=self.start_local)  # SOS, duress, SMS
        # per alert: its pages, then its all-clears; a lock lives while someone holds or awaits it
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self.all_clear = AllClear(
            host,
            notify=lambda urls, title, body: _notify(urls, title, body, self.outbound),
            note=lambda alert_hex, message, params: self.note(alert_hex, "", kind="escalation", message=message, params=params),
            lock=self._lock,
        )

    # -- responders -----------------------------------------------------------------------
    def add_responder(
        self, name: str, role: str, channels: list[str], password: str | None, drills: bool = False,
        lang: str = "en", tz: str = "", phone: str = "",
    ) -> dict[str, Any]:
        name = name.strip()
        if not name or len(name) > 64:
            raise DeskError("name: 1 to 64 characters")
        if role not in ROLES:
            raise DeskError(f"role must be one of {', '.join(ROLES)}")
        if lang not in catalogs.available():
            raise DeskError(f"lang: pages are written in {' or '.join(catalogs.available())}, not {lang!r}")
        try:
            clock_text.zone(tz)
        except clock_text.ZoneError as exc:
            raise DeskError(f"tz: {exc}") from None
        for url in channels:
            _check_channel(url, self.outbound)
        if phone:
            try:
                check_phone(phone)
            except FieldError as exc:
                raise DeskError(str(exc)) from None
        if any(p.name == name for p in self.s.store.list_people()):
            raise DeskError(f"{name!r} is a field person (amparo person remove first)")
        hashed = None
        if password:
            if len(password) < 10:
                raise DeskError("password: at least 10 characters")
            hashed = nacl.pwhash.argon2id.str(password.encode()).decode("ascii")
        row = ResponderRow(name, role, list(channels), hashed, drills, lang, tz, phone)
        self.s.store.put_responder(row, self.s.clock())
        return self.responder_json(row)

    def responders(self) -> list[dict[str, Any]]:
        return [self.responder_json(r) for r in self.s.store.list_responders()]

    @staticmethod
    def responder_json(row: ResponderRow) -> dict[str, Any]:
        return {
            "name": row.name,
            "role": row.role,
            "channels": len(row.channels),
            "has_password": row.password is not None,
            "drills": row.drills,
            "lang": row.lang,
            "tz": row.tz,
            "phone": row.phone,
        }

    def remove_responder(self, name: str) -> None:
        if not self.s.store.delete_responder(name):
            raise DeskError(f"no responder called {name!r}")

    # -- rotation -------------------------------------------------------------------------
    def rotation(self) -> Rotation:
        rotation = Rotation()
        for row in self.s.store.list_shifts():
            rotation.add(Shift(**asdict(row)))
        return rotation

    def add_shift(
        self, responder: str, start: int, hours: float, backup: str | None, override: bool
    ) -> list[str]:
        known = self._names()
        for person in filter(None, (responder, backup)):
            if person not in known:
                raise DeskError(f"no responder called {person!r} (amparo responder add)")
        shift = Shift(responder, start, start + int(hours * 3_600_000), backup, override)
        if shift.end <= self.s.clock():
            raise DeskError(
                f"start: this shift would end at {clock_text.when(shift.end, self.zone)}, "
                "which is already past; schedule shifts that are still to come"
            )
        try:
            warnings = self.rotation().add(shift)
        except ScheduleError as exc:
            raise DeskError(str(exc)) from None
        self.s.store.add_shift(ShiftRow(**asdict(shift)))
        return warnings

    def hand_over(self, incoming: str, note: str) -> HandOver:
        """Hand the on-call role to ``incoming`` now. Both people are told on their
        channels (in the background); the record says whom that reached, so a
        hand-over nobody heard of shows as one."""
        now = self.s.clock()
        if self.s.store.get_responder(incoming) is None:
            raise DeskError(f"no responder called {incoming!r} (amparo responder add)")
        rotation = self.rotation()
        try:
            record = rotation.hand_over(now, incoming, note)
        except ScheduleError as exc:
            raise DeskError(str(exc)) from None
        self.s.store.replace_shifts([ShiftRow(**asdict(s)) for s in rotation.shifts])
        people = list(dict.fromkeys((record.outgoing, record.incoming)))
        self.s.store.add_handover(HandoverRow(**asdict(record), notified=dict.fromkeys(people, "pending")))
        backup = rotation.on_call(now)
        self.s.spawn(self._announce_hand_over(record, backup.backup if backup else None))
        return record

    async def _announce_hand_over(self, record: HandOver, backup: str | None) -> None:
        outcome = {}
        for person in dict.fromkeys((record.outgoing, record.incoming)):
            urls = self._channels(person)
            title, body = hand_over_text(record, backup, public_base(self.s.config), self.zone_of(person), self._lang_of(person))
            if not urls:
                outcome[person] = "no channel"
            elif await asyncio.to_thread(_notify, urls, title, body, self.outbound):
                outcome[person] = "sent"
            else:
                outcome[person] = "unreachable"
                log.warning("hand-over notice to %s reached no channel", person)
        self.s.store.set_handover_notified(record.at, outcome)

    def on_call_json(self, days: int = 7) -> dict[str, Any]:
        now = self.s.clock()
        rotation = self.rotation()
        current = rotation.on_call(now)
        return {
            "now": asdict(current) if current else None,
            "shifts": [asdict(s) for s in rotation.shifts if s.end > now],
            "gaps": [{"start": a, "end": b} for a, b in rotation.gaps(now, now + days * 86_400_000)],
            "handovers": [asdict(h) for h in self.s.store.recent_handovers(10)],
            "warnings": rotation.warnings,
        }

    # -- escalation -----------------------------------------------------------------------
    def on_delivered(self, row: StoredEnvelope) -> None:
        """A new alert reached this node: escalate it if it is ours to answer. A
        cancel or update by the alert's author (any key of it; this node's own
        too, as when a missed check-in is answered) stops the paging for a cancel,
        and the people the pages reached are told (``node.response.all_clear``)."""
        if row.type != "alert":
            return
        follow = describe(self.s, row)
        if follow is not None:
            if follow.kind == "cancel":
                self._finish(follow.incident_hex, lambda e: esc.cancel(e, self.s.clock()))
            self.all_clear.on_follow_up(follow)
            return
        if row.author in self.s.own_keys():
            return
        item = self.s.open(row)
        alert = item.body
        if not isinstance(alert, Alert) or alert.msg_type != "alert":
            return
        if not (item.envelope.sealed or self._watched(alert)):
            return
        if self.s.store.get_escalation(row.id.hex()) is not None:
            return  # already escalating (or done): never start twice
        if self._cancelled_before(row):
            return
        _, actions = esc.start(row.id.hex(), self.s.clock(), self.policy, row.expires, _urgent(alert))
        self._apply(actions)

    def _cancelled_before(self, row: StoredEnvelope) -> bool:
        """Its author's cancel arrived first (gossip keeps no order): nobody to page."""
        return any(
            (follow := describe(self.s, other)) is not None and follow.kind == "cancel"
            for other in self.s.related(row.id)
        )

    def start_local(self, alert_hex: str) -> None:
        """Escalate an alert this node raised itself (a missed check-in)."""
        if self.s.store.get_escalation(alert_hex) is None:
            row = self.s.store.get(bytes.fromhex(alert_hex))
            body = self.s.open(row).body if row is not None else None
            expires, urgent = (row.expires, _urgent(body)) if row and isinstance(body, Alert) else (0, True)
            _, actions = esc.start(alert_hex, self.s.clock(), self.policy, expires, urgent)
            self._apply(actions)

    def cancel(self, alert_hex: str) -> None:
        self._finish(alert_hex, lambda e: esc.cancel(e, self.s.clock()))

    def _watched(self, alert: Alert) -> bool:
        return any(regions.matches(w, a.region) for w in self.watch for a in alert.areas)

    def tick(self) -> None:
        if not self._resumed:
            self._resumed = True
            self._resume_pages()
            self.all_clear.resume()
            self.field.resume()
        self.checkins.tick()
        now = self.s.clock()
        for row in self.s.store.due_escalations(now):  # only the deadlines that are due
            _, actions = esc.tick(esc.Escalation(**asdict(row)), now, self.policy)
            self._apply(actions)

    def acknowledge(self, alert_hex: str, by: str) -> None:
        self._finish(alert_hex, lambda e: esc.acknowledge(e, self.s.clock(), by))

    def _finish(self, alert_hex: str, step: Any) -> None:
        row = self.s.store.get_escalation(alert_hex)
        if row is not None:
            _, actions = step(esc.Escalation(**asdict(row)))
            self._apply(actions)

    def _apply(self, actions: list[esc.Action]) -> None:
        # pages are recorded pending before the step that announces them is persisted:
        # a crash in between leaves a pending page that the next start sends
        pages = [a for a in actions if isinstance(a, esc.Page) and self._record_page(a)]
        for action in actions:
            if isinstance(action, esc.Persist):
                self.s.store.put_escalation(EscalationRow(**asdict(action.escalation)), self.s.clock())
            elif isinstance(action, esc.Timeline):
                self.note(action.alert_id, "", kind="escalation", at=action.at,
                          message=action.message, params=dict(action.params))
        if pages:  # in chain order, one after the other: the backup hears first
            self.s.spawn(self._page_in_order(pages))

    def _record_page(self, page: esc.Page) -> bool:
        """Write the page's record as pending; False when it already exists (the
        step was decided before a crash, and that record is resumed instead)."""
        now = self.s.clock()
        if not self.s.store.add_page(PageRow(page.alert_id, page.step, page.targets, at=now), now):
            return False
        self._mine.add((page.alert_id, page.step))
        return True

    def _resume_pages(self) -> None:
        """Once after a start: send what a previous run decided but did not finish."""
        resumed: dict[str, list[esc.Page]] = {}
        for row in self.s.store.unfinished_pages():
            if (row.alert_id, row.step) in self._mine:
                continue
            if row.state == "sending" and row.tried:
                self.note(row.alert_id, "", kind="escalation", message=PAGE_CUT,
                          params={"step": row.targets, "person": row.tried[-1]})
            resumed.setdefault(row.alert_id, []).append(esc.Page(row.alert_id, row.targets, row.step))
        for alert_pages in resumed.values():
            self.s.spawn(self._page_in_order(alert_pages))

    # -- timeline -------------------------------------------------------------------------
    def note(
        self, alert_hex: str, text: str, *, kind: str = "debrief", author: str = "", at: int = 0,
        message: str = "", params: dict[str, str] | None = None,
    ) -> None:
        """A step of the incident timeline. A person's note is ``text``; the
        node's own steps give a catalog ``message`` and its ``params`` instead,
        kept beside their English text so every reader sees them in their own
        language (``node.web.wording``)."""
        said = {"message": message, "params": params or {}} if message else {}
        text = message % (params or {}) if message else text
        if not text.strip() or len(text) > 4000:
            raise DeskError("note: 1 to 4000 characters")
        at = at or self.s.clock()
        secret = json.dumps({"text": text, "author": author} | said, ensure_ascii=False).encode()
        sealed = nacl.public.SealedBox(nacl.public.PublicKey(self.s.identity.enc_public)).encrypt(secret)
        self.s.store.add_note(NoteRow(alert_hex, at, kind, sealed=bytes(sealed)))

    def timeline(self, alert_hex: str) -> list[dict[str, Any]]:
        """Notes of an alert, oldest first. They are sealed to this node's own
        encryption key at rest: a copied database shows when notes were taken,
        not what they say (notes written by older versions are plain)."""
        return [self._open_note(row) for row in self.s.store.notes_of(alert_hex)]

    def _open_note(self, row: NoteRow) -> dict[str, Any]:
        shown = {"alert": row.alert_id, "at": row.at, "kind": row.kind}
        if row.sealed is None:
            return shown | {"text": row.text or "", "author": row.author or ""}
        box = nacl.public.SealedBox(self.s.identity.enc_private)
        try:
            inner = json.loads(box.decrypt(row.sealed))
        except (nacl.exceptions.CryptoError, ValueError):
            inner = {"text": "(sealed to another key: unreadable)", "author": ""}
        said = {"message": inner["message"], "params": inner["params"]} if inner.get("message") else {}
        return shown | {"text": inner["text"], "author": inner["author"]} | said

    def escalation_json(self, alert_hex: str) -> dict[str, Any] | None:
        row = self.s.store.get_escalation(alert_hex)
        return None if row is None else asdict(row)

    # -- paging ---------------------------------------------------------------------------
    def _targets(self, step: str) -> list[str]:
        shift = self.rotation().on_call(self.s.clock())
        if step == "on-call":
            return [shift.responder] if shift else self._everyone()
        if step == "backup":
            return [shift.backup] if shift and shift.backup else self._everyone()
        if step == esc.ROUND:  # a re-paging round: everyone in the chain, each once
            return list(dict.fromkeys(p for s in self.policy.chain for p in self._targets(s)))
        return self._everyone()

    def start_drill(self, name: str, participants: list[str], until: int) -> None:
        known = self._names()
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
        return {r.name for r in self.s.store.list_responders() if r.drills}

    def _active_drill(self) -> dict[str, Any] | None:
        active: dict[str, Any] | None = self.s.store.get_record("drill", "active")
        return active if active and active["until"] > self.s.clock() else None

    def _everyone(self) -> list[str]:
        return [r.name for r in self.s.store.list_responders() if r.role != "viewer"]

    def _names(self) -> set[str]:
        return {r.name for r in self.s.store.list_responders()}

    def _lang_of(self, person: str) -> str:
        row = self.s.store.get_responder(person)
        return row.lang if row is not None and row.lang else "en"

    def zone_of(self, person: str) -> tzinfo:
        """The zone a person reads times in: their own, else the node's."""
        row = self.s.store.get_responder(person)
        return clock_text.zone_or(row.tz, self.zone) if row is not None else self.zone

    def _channels(self, person: str) -> list[str]:
        row = self.s.store.get_responder(person)
        return [] if row is None else list(row.channels)

    def _lock(self, alert_hex: str) -> asyncio.Lock:
        lock = self._locks.get(alert_hex)
        if lock is None:
            lock = self._locks[alert_hex] = asyncio.Lock()
        return lock

    async def _page_in_order(self, pages: list[esc.Page]) -> None:
        """One alert's pages (``_apply`` and ``_resume_pages`` group them by alert)."""
        async with self._lock(pages[0].alert_id):
            for page in pages:
                await self._page(page)

    async def _page(self, page: esc.Page) -> None:
        key = (page.alert_id, page.step)
        record = self.s.store.get_page(*key)
        if record is None or record.state not in ("pending", "sending"):
            return  # already sent (or being sent by another task of this process)
        if key in self._mine and record.state == "sending":
            return
        self._mine.add(key)
        row = self.s.store.get(bytes.fromhex(page.alert_id))
        alert = open_row(row, self.s.identity).body if row else None
        escalation = self.s.store.get_escalation(page.alert_id)
        if not isinstance(alert, Alert) or (escalation is not None and escalation.state == "cancelled"):
            self._page_state(record, state="skipped")  # unreadable, or cancelled before it went out
            return
        sender = self._sender(row.author) if row else ""
        texts = _PageTexts(alert, page.alert_id, public_base(self.s.config), sender, self.zone, row.expires if row else 0)
        people = self._targets(page.targets)
        if alert.is_exercise:  # a drill never pages anyone outside the drill's list
            active = self._active_drill()
            if active is not None:  # our own drill: its participants play every step
                people = list(active["participants"])
            else:
                people = [p for p in people if p in self.drill_participants()]
        tried, delivered = list(record.tried), list(record.reached)
        record = self._page_state(record, state="sending")
        for person in people:
            if person in tried:
                continue  # paged (or being paged) before a restart: never twice
            tried.append(person)
            record = self._page_state(record, tried=list(tried))  # before the attempt
            responder = self.s.store.get_responder(person)
            if responder is None or not responder.channels:
                continue
            if await self._send_page(texts, responder):
                delivered.append(person)
                record = self._page_state(record, reached=list(delivered))
        self._page_state(record, state="sent" if delivered else "unreachable")
        message, params = self._page_said(page, delivered)
        self.note(page.alert_id, "", kind="escalation", message=message, params=params)
        if not delivered:
            log.warning("escalation step %s for alert %s reached nobody", page.targets, page.alert_id[:12])

    async def _send_page(self, texts: _PageTexts, responder: ResponderRow) -> bool:
        """One person's page on all their channels; SMS channels get the alert's
        short code and how to reply with it (``node.response.sms``)."""
        by_sms = [url for url in responder.channels if sms.is_sms_channel(url)]
        others = [url for url in responder.channels if url not in by_sms]
        reached = False
        for urls, by_text in ((others, False), (by_sms, True)):
            if urls:
                code = texts.short_code(self.s.store.open_escalations()) if by_text else ""
                title, body = texts.get(responder.lang, responder.tz, code)
                reached = await asyncio.to_thread(_notify, urls, title, body, self.outbound) or reached
        return reached

    def _sender(self, author: bytes) -> str:
        """The sending organization as a responder knows it: its name when this
        node knows one, else its key's fingerprint (what allies compare)."""
        key = self.s.author_of(author)
        names = self.s.author_names()
        return names.get(key) or names.get(author) or fingerprint(key)

    def _page_said(self, page: esc.Page, delivered: list[str]) -> tuple[str, dict[str, str]]:
        """The timeline's message for a page and its fields: ``page (backup): Ana``
        for a chain step; ``page (whole chain, round 2): …`` for a re-paging round
        (its page is numbered the chain's last step plus the round)."""
        people = {"people": ", ".join(delivered)} if delivered else {}
        row = self.s.store.get_escalation(page.alert_id)
        if page.targets != esc.ROUND or row is None:
            return (PAGE_SENT if delivered else PAGE_NOBODY), {"step": page.targets} | people
        return (ROUND_SENT if delivered else ROUND_NOBODY), {"round": str(page.step - row.step)} | people

    def _page_state(self, record: PageRow, **changes: Any) -> PageRow:
        record = replace(record, **changes)
        self.s.store.put_page(record, self.s.clock())
        return record

    def pages(self, alert_hex: str) -> list[dict[str, Any]]:
        """This alert's page records, in chain order (for the API and tests)."""
        return [asdict(row) for row in self.s.store.pages_of(alert_hex)]


# The timeline's words for pages (node.web.labels marks them for translation).
PAGE_SENT = "page (%(step)s): %(people)s"
PAGE_NOBODY = "page (%(step)s): nobody reachable"
ROUND_SENT = "page (whole chain, round %(round)s): %(people)s"
ROUND_NOBODY = "page (whole chain, round %(round)s): nobody reachable"
PAGE_CUT = "page (%(step)s): the node stopped while paging %(person)s; not paged again (they may have been reached)"
MESSAGES = (PAGE_SENT, PAGE_NOBODY, ROUND_SENT, ROUND_NOBODY, PAGE_CUT)
ACK_HOW = "To acknowledge: open the link and press “%(button)s”, or run: %(command)s"


def page_text(
    alert: Alert, alert_hex: str, base: str, *, lang: str = "en", sender: str = "",
    zone: tzinfo | None = None, expires: int = 0, sms_code: str = "",
) -> tuple[str, str]:
    """A responder's page: the phone text every channel gets
    (``node.alerts.phone_text``) in the responder's language, naming the sending
    organization, with how to acknowledge and its times (effective, ``expires``)
    in ``zone`` (the responder's, else the node's). No channel carries replies back yet,
    so every page offers the dashboard link (its Acknowledge button) and the
    command. ``base`` is where the responder reaches the dashboard
    (``config.public_base``). A page by SMS (``sms_code``: the alert's short
    code) first says how to acknowledge by replying."""
    t = catalogs.translations(lang).gettext
    if alert.msg_type != "alert" and alert.references:  # every link names the incident
        alert_hex = alert.references[0].hex()
    link = f"{base}/ui/alerts/{alert_hex}"
    how = t(ACK_HOW) % {"button": t("Acknowledge"), "command": "amparo alert ack " + alert_hex[:12]}
    footer = (t(sms.REPLY_LINE) % {"code": sms_code}, how) if sms_code else (how,)
    said = replace(  # a missed check-in's alert is signed in English: told in the responder's language
        alert, headline=localized(alert.headline, t)[:MAX_HEADLINE], instruction=localized(alert.instruction, t)
    )
    return phone_text(said, link=link, footer=footer, lang=lang, sender=sender, zone=zone, expires=expires)


def _urgent(alert: Alert) -> bool:
    """Severe and extreme alerts are re-paged through quiet hours."""
    return alert.severity in ("severe", "extreme")


class _PageTexts:
    """One page's text per language and time zone, rendered once for everyone
    who reads it; ``zone`` is the node's, for responders without one."""

    def __init__(self, alert: Alert, alert_hex: str, base: str, sender: str, zone: tzinfo, expires: int) -> None:
        self._args = (alert, alert_hex, base)
        self._sender, self._zone, self._expires = sender, zone, expires
        self._texts: dict[tuple[str, str, str], tuple[str, str]] = {}
        self._code = ""

    def short_code(self, open_alerts: list[str]) -> str:
        """The alert's SMS code, chosen once per page among the open incidents."""
        self._code = self._code or sms.short_code(self._args[1], open_alerts)
        return self._code

    def get(self, lang: str, tz: str = "", sms_code: str = "") -> tuple[str, str]:
        if (lang, tz, sms_code) not in self._texts:
            zone = clock_text.zone_or(tz, self._zone)
            self._texts[lang, tz, sms_code] = page_text(
                *self._args, lang=lang, sender=self._sender, zone=zone, expires=self._expires, sms_code=sms_code
            )
        return self._texts[lang, tz, sms_code]


HAND_OVER_TITLE = "On-call hand-over: %(outgoing)s → %(incoming)s"
HAND_OVER_FROM = "%(incoming)s is on call from %(at)s."
HAND_OVER_WITH_BACKUP = "%(incoming)s is on call from %(at)s (backup: %(backup)s)."
HAND_OVER_NOTE = "Note: %(note)s"
HAND_OVER = (HAND_OVER_TITLE, HAND_OVER_FROM, HAND_OVER_WITH_BACKUP, HAND_OVER_NOTE)  # node.web.labels marks them


def hand_over_text(
    record: HandOver, backup: str | None, base: str, zone: tzinfo, lang: str = "en"
) -> tuple[str, str]:
    """What both people get, in their language: who holds the role from when
    (in the reader's ``zone``), and the note."""
    t = catalogs.translations(lang).gettext
    fields = {"outgoing": record.outgoing, "incoming": record.incoming, "at": clock_text.when(record.at, zone),
              "backup": backup or "", "note": record.note}
    title = (t(HAND_OVER_TITLE) % fields)[:120]
    parts = [
        t(HAND_OVER_WITH_BACKUP if backup else HAND_OVER_FROM) % fields,
        t(HAND_OVER_NOTE) % fields if record.note else "",
        f"{base}/ui/oncall",
    ]
    return title, "\n".join(p for p in parts if p)[:600]


def _notify(urls: list[str], title: str, body: str, policy: OutboundPolicy) -> bool:
    """In a worker thread: whether a person's channels took the message; a channel
    the outbound policy refuses counts as not reached, and is logged."""
    try:
        return send_apprise(urls, title, body, policy)
    except OutboundRefused as exc:
        log.warning("a responder channel was refused by the outbound policy: %s", exc)
        return False


def _check_channel(url: str, policy: OutboundPolicy) -> None:
    if not apprise_understands(url):
        raise DeskError(f"channel: not an Apprise URL Apprise understands: {url.split('://')[0]}://…")
    try:
        policy.check_url(url, plaintext=is_plaintext_apprise(url))
    except OutboundRefused as exc:
        raise DeskError(f"channel: {exc}") from None
