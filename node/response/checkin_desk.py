"""Check-ins wired to the node: plans in the store, the phone link, and the
alert a missed check-in raises.

The link's token is shown once and only its hash is stored, so a copied
database holds no working link. The plan's note is sealed to this node's own
key at rest; when a check-in is missed it travels in a restricted alert sealed
to the recipients chosen at ``start`` (and this node), never in the clear.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import nacl.public

from node import catalogs
from node.alerts import make_envelope, open_row
from node.duress import WIPE_HEADLINE, WIPE_INSTRUCTION
from node.host import Host
from node.response import checkin_plan, pins
from node.response.checkin_plan import CheckinError, Plan
from node.response.pins import PinKey
from node.store import PlanRow
from protocol import Alert, Area, ProtocolError, regions

TOKEN_BYTES = 24
# A missed check-in's alert (and the cancel when they check in) lives a day, not
# the default six hours (node.alerts.DEFAULT_TTL_MS): a search can last that long.
MISSED_CHECKIN_TTL_MS = 24 * 3600 * 1000
# The texts of the alert a missed check-in raises, and of its cancel. They are signed
# in English; the dashboard and pages say them from the catalog in the reader's
# language (``localized``; node.web.labels marks them for translation).
MISSED_HEADLINE = "Missed check-in: %(who)s"
MISSED_INSTRUCTION = "Try to reach them now; follow your protocol for a missed check-in."
CHECKED_IN = "%(who)s checked in."
# Field safety (node.response.field): a call for help from the phone page or by
# SMS, and the silent alert of a check-in with the duress PIN.
SOS_HEADLINE = "SOS: %(who)s asks for help"
SOS_DURESS_HEADLINE = "SOS under duress: %(who)s asks for help"
SOS_INSTRUCTION = "Reach them and send help now; follow your protocol for a call for help."
DURESS_HEADLINE = "Duress: %(who)s checked in with their duress PIN"
DURESS_INSTRUCTION = (
    "Someone may be forcing them: do not call or message them; follow your protocol for duress."
)
GENERATED = (
    MISSED_HEADLINE, MISSED_INSTRUCTION, CHECKED_IN, SOS_HEADLINE, SOS_DURESS_HEADLINE, SOS_INSTRUCTION,
    DURESS_HEADLINE, DURESS_INSTRUCTION, WIPE_HEADLINE, WIPE_INSTRUCTION,
)


def localized(text: str, gettext: Callable[[str], str]) -> str:
    """``text`` in a reader's language (``gettext``) when it is exactly one of
    GENERATED filled in ("Missed check-in: Lucía"); anything else as written.
    The dashboard (``node.web.wording``) and pages (``desk.page_text``) say it so."""
    for template, pattern in _PATTERNS:
        found = pattern.fullmatch(text)
        if found:
            try:
                return gettext(template) % found.groupdict()
            except (KeyError, TypeError, ValueError):  # a translation that lost its field
                return text
    return text


def _pattern(template: str) -> re.Pattern[str]:
    """A template as a pattern: its ``%(name)s`` fields match any text."""
    pieces = re.split(r"%\((\w+)\)s", template)  # literal, name, literal, …, literal
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+)" for i, p in enumerate(pieces))
    return re.compile(regex, re.DOTALL)


_PATTERNS = tuple((template, _pattern(template)) for template in GENERATED)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class CheckinDesk:
    def __init__(self, host: Host, *, escalate: Callable[[str], None], stand_down: Callable[[str], None]) -> None:
        self.s = host
        self.escalate = escalate  # starts the local escalation of an alert (hex id) …
        self.stand_down = stand_down  # … and stops it once the person checked in

    def _seal_note(self, note: str) -> str:
        box = nacl.public.SealedBox(nacl.public.PublicKey(self.s.identity.enc_public))
        return bytes(box.encrypt(note.encode())).hex() if note else ""

    def _open_note(self, sealed: str) -> str:
        if not sealed:
            return ""
        return bytes(
            nacl.public.SealedBox(self.s.identity.enc_private).decrypt(bytes.fromhex(sealed))
        ).decode()

    def start(
        self,
        who: str,
        region: str,
        *,
        deadline: int = 0,
        interval_ms: int = 0,
        grace_ms: int,
        note: str,
        to: list[str],
        pin: str = "",
        duress_pin: str = "",
        lang: str = "",
    ) -> tuple[Plan, str]:
        """A new plan and its link's token (shown once). ``pin`` and ``duress_pin``
        (``node.response.pins.check``) make the phone page ask for a PIN; ``lang``
        is its language ("" = the person's, else the browser's)."""
        pins.check(pin, duress_pin)
        if lang and lang not in catalogs.available():
            raise CheckinError(f"lang: pages are written in {' or '.join(catalogs.available())}, not {lang!r}")
        try:
            regions.check(region)
        except ProtocolError as exc:
            raise CheckinError(exc.message) from None
        recipients = []
        for name in to:
            peer = self.s.store.find_peer(name)
            if peer is None:
                raise CheckinError(f"to: no peer called {name!r}")
            recipients.append(peer.key.hex())
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = self.s.clock()
        plan = checkin_plan.new_plan(
            f"c{now:x}{secrets.token_hex(2)}",
            who,
            region,
            now,
            deadline=deadline,
            interval_ms=interval_ms,
            grace_ms=grace_ms,
            note="",
            token=token_hash(token),
        )
        self.s.store.put_plan(
            _row(plan, PlanRow(
                "", "", "", 0, 0, 0, "", "", note=self._seal_note(note), recipients=recipients,
                pin=self.pin_key().hash(pin), duress_pin=self.pin_key().hash(duress_pin), lang=lang, started=now,
            )),
            now,
        )
        return plan, token

    def pin_key(self) -> PinKey:
        """PINs are keyed with this node's private encryption key (``node.response.pins``)."""
        return PinKey(bytes(self.s.identity.enc_private))

    def _save(self, plan: Plan, **changes: Any) -> None:
        """Write the plan's new state, keeping what the desk holds beside it."""
        row = self.s.store.get_plan(plan.id)
        if row is None:
            raise CheckinError(f"no check-in plan {plan.id!r}")
        self.s.store.put_plan(replace(_row(plan, row), **changes), self.s.clock())

    def _load(self, plan_id: str) -> tuple[Plan, PlanRow]:
        row = self.s.store.get_plan(plan_id)
        if row is None:
            raise CheckinError(f"no check-in plan {plan_id!r}")
        return _plan(row), row

    def by_token(self, token: str) -> Plan | None:
        """The plan of a phone link: looked up by the token's hash, so the lookup
        learns nothing about the token itself."""
        row = self.s.store.plan_by_token(token_hash(token))
        return None if row is None else _plan(row)

    def ok(self, plan_id: str, at: int = 0) -> Plan:
        """The person checked in, at ``at`` (a tap's time, already bounded by the
        caller: ``node.response.field``), else now."""
        plan, row = self._load(plan_id)
        was_missed = plan.state == "missed"
        plan, _ = checkin_plan.ok(plan, at or self.s.clock())
        self._save(plan)
        if was_missed and row.alert:
            self._cancel_alert(row.alert, plan)
        return plan

    def mark_sos(self, plan_id: str, at: int) -> None:
        """Help was asked for from this plan's page at ``at`` (its page says so)."""
        plan, _ = self._load(plan_id)
        self._save(plan, sos_at=at)

    def stop(self, plan_id: str) -> Plan:
        plan, _ = self._load(plan_id)
        plan, _ = checkin_plan.stop(plan)
        self._save(plan)
        return plan

    def plans(self) -> list[dict[str, Any]]:
        shown = ("id", "who", "region", "next_deadline", "interval_ms", "grace_ms", "state", "last_ok", "alert")
        return [{k: getattr(row, k) for k in shown} for row in self.s.store.list_plans()]

    def tick(self) -> None:
        """Only the plans whose deadline and grace have passed (an index range)."""
        now = self.s.clock()
        for row in self.s.store.overdue_plans(now):
            _, actions = checkin_plan.tick(_plan(row), now)
            for action in actions:
                if isinstance(action, checkin_plan.Persist):
                    self._save(action.plan)
                elif isinstance(action, checkin_plan.RaiseAlert):
                    self._raise(action.plan, row)

    def _raise(self, plan: Plan, row: PlanRow) -> None:
        note = self._open_note(row.note)
        peers = [self.s.store.get_peer(bytes.fromhex(k)) for k in row.recipients]
        # no peers chosen ("only this organization will be alerted"): sealed to this node alone
        recipients = [p.enc_key for p in peers if p is not None] or [self.s.identity.enc_public]
        alert = Alert(
            headline=(MISSED_HEADLINE % {"who": plan.who})[:160],
            areas=(Area(plan.region),),
            severity="severe",
            event="checkin-missed",
            urgency="immediate",
            certainty="possible",
            scope="restricted",
            description=note[:8000],
            instruction=MISSED_INSTRUCTION,
        )
        env = make_envelope(
            self.s.identity, alert, now=self.s.clock(), ttl_ms=MISSED_CHECKIN_TTL_MS, recipients=recipients
        )
        self.s.author(env)
        self._save(plan, alert=env.id.hex())
        self.escalate(env.id.hex())

    def _cancel_alert(self, alert_hex: str, plan: Plan) -> None:
        row = self.s.store.get(bytes.fromhex(alert_hex))
        if row is None:
            return
        original = open_row(row, self.s.identity)
        if not isinstance(original.body, Alert):
            return
        cancel = replace(
            original.body, msg_type="cancel", references=(row.id,), description=CHECKED_IN % {"who": plan.who}
        )
        recipients = self.s.recipients_of(original.envelope)
        env = make_envelope(
            self.s.identity, cancel, now=self.s.clock(), ttl_ms=MISSED_CHECKIN_TTL_MS, recipients=recipients
        )
        self.s.author(env)
        self.stand_down(alert_hex)


def _plan(row: PlanRow) -> Plan:
    return Plan(
        row.id, row.who, row.region, row.next_deadline, row.interval_ms, row.grace_ms, "", row.state,
        row.link_token, row.last_ok,
    )


def _row(plan: Plan, kept: PlanRow) -> PlanRow:
    """The plan's fields over ``kept``'s sealed note, recipients and alert."""
    return replace(
        kept, id=plan.id, who=plan.who, region=plan.region, next_deadline=plan.next_deadline,
        interval_ms=plan.interval_ms, grace_ms=plan.grace_ms, state=plan.state, link_token=plan.link_token,
        last_ok=plan.last_ok,
    )
