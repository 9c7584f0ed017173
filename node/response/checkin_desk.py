"""Check-ins wired to the node: plans in the store, the phone link, and the
alert a missed check-in raises.

The link's token is shown once and only its hash is stored, so a copied
database holds no working link. The plan's note is sealed to this node's own
key at rest; when a check-in is missed it travels in a restricted alert sealed
to the recipients chosen at ``start`` (and this node), never in the clear.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any

import nacl.public

from node.alerts import make_envelope, open_row
from node.host import Host
from node.response import checkin_plan
from node.response.checkin_plan import CheckinError, Plan
from protocol import Alert, Area, ProtocolError, regions

TOKEN_BYTES = 24
# A missed check-in's alert (and the cancel when they check in) lives a day, not
# the default six hours (node.alerts.DEFAULT_TTL_MS): a search can last that long.
MISSED_CHECKIN_TTL_MS = 24 * 3600 * 1000


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
    ) -> tuple[Plan, str]:
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
        self._save(plan, {"note": self._seal_note(note), "to": recipients, "alert": ""})
        return plan, token

    def _save(self, plan: Plan, extra: dict[str, Any] | None = None) -> None:
        old = self.s.store.get_record("checkin", plan.id) or {}
        doc = {k: old[k] for k in ("note", "to", "alert") if k in old} | (extra or {})
        self.s.store.put_record("checkin", plan.id, {"plan": asdict(plan), **doc}, self.s.clock())

    def _load(self, plan_id: str) -> tuple[Plan, dict[str, Any]]:
        doc = self.s.store.get_record("checkin", plan_id)
        if doc is None:
            raise CheckinError(f"no check-in plan {plan_id!r}")
        return Plan(**doc["plan"]), doc

    def by_token(self, token: str) -> Plan | None:
        wanted = token_hash(token)
        for _, doc in self.s.store.list_records("checkin"):
            if hmac.compare_digest(doc["plan"]["link_token"], wanted):
                return Plan(**doc["plan"])
        return None

    def ok(self, plan_id: str) -> Plan:
        plan, doc = self._load(plan_id)
        was_missed = plan.state == "missed"
        plan, _ = checkin_plan.ok(plan, self.s.clock())
        self._save(plan)
        if was_missed and doc.get("alert"):
            self._cancel_alert(doc["alert"], plan)
        return plan

    def stop(self, plan_id: str) -> Plan:
        plan, _ = self._load(plan_id)
        plan, _ = checkin_plan.stop(plan)
        self._save(plan)
        return plan

    def plans(self) -> list[dict[str, Any]]:
        out = []
        for _key, doc in self.s.store.list_records("checkin"):
            plan = doc["plan"]
            out.append(
                {
                    k: plan[k]
                    for k in (
                        "id",
                        "who",
                        "region",
                        "next_deadline",
                        "interval_ms",
                        "grace_ms",
                        "state",
                        "last_ok",
                    )
                }
                | {"alert": doc.get("alert", "")}
            )
        return out

    def tick(self) -> None:
        for _, doc in self.s.store.list_records("checkin"):
            plan = Plan(**doc["plan"])
            plan, actions = checkin_plan.tick(plan, self.s.clock())
            for action in actions:
                if isinstance(action, checkin_plan.Persist):
                    self._save(action.plan)
                elif isinstance(action, checkin_plan.RaiseAlert):
                    self._raise(action.plan, doc)

    def _raise(self, plan: Plan, doc: dict[str, Any]) -> None:
        note = self._open_note(doc.get("note", ""))
        peers = [self.s.store.get_peer(bytes.fromhex(k)) for k in doc.get("to", [])]
        recipients = [p.enc_key for p in peers if p is not None]
        alert = Alert(
            headline=f"Missed check-in: {plan.who}"[:160],
            areas=(Area(plan.region),),
            severity="severe",
            event="checkin-missed",
            urgency="immediate",
            certainty="possible",
            scope="restricted",
            description=note[:8000],
            instruction="Try to reach them now; follow your protocol for a missed check-in.",
        )
        env = make_envelope(
            self.s.identity, alert, now=self.s.clock(), ttl_ms=MISSED_CHECKIN_TTL_MS, recipients=recipients
        )
        self.s.author(env)
        self._save(plan, {"alert": env.id.hex()})
        self.escalate(env.id.hex())

    def _cancel_alert(self, alert_hex: str, plan: Plan) -> None:
        row = self.s.store.get(bytes.fromhex(alert_hex))
        if row is None:
            return
        original = open_row(row, self.s.identity)
        if not isinstance(original.body, Alert):
            return
        cancel = replace(
            original.body, msg_type="cancel", references=(row.id,), description=f"{plan.who} checked in."
        )
        recipients = self.s.recipients_of(original.envelope)
        env = make_envelope(
            self.s.identity, cancel, now=self.s.clock(), ttl_ms=MISSED_CHECKIN_TTL_MS, recipients=recipients
        )
        self.s.author(env)
        self.stand_down(alert_hex)
