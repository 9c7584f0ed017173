"""Queries for check-in plans: the plan, its sealed note, whom a miss alerts.

``alarm_at`` (next deadline plus grace, while the plan is active) is derived
here, in the one place plans are written, so the tick's "which plans are
overdue" is a range scan of its index.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from node.store.database import Database
from node.store.models import CheckinPlanModel


@dataclass(frozen=True, slots=True)
class PlanRow:
    """``node.response.checkin_plan.Plan`` (without its in-memory ``note``) and
    what the desk keeps beside it."""

    id: str
    who: str
    region: str
    next_deadline: int
    interval_ms: int
    grace_ms: int
    state: str
    link_token: str  # a hash of the link's token, never the token
    last_ok: int = 0
    note: str = ""  # sealed to the node's own key (hex), "" when none
    recipients: list[str] = field(default_factory=list)  # peers' keys (hex) a miss is sealed to
    alert: str = ""  # the alert a miss raised (hex id)
    pin: str = ""  # keyed hashes of the PINs (node.response.field.PinKey), "" when none
    duress_pin: str = ""
    lang: str = ""  # the phone page's language; "": the person's, else the browser's
    started: int = 0  # when the plan began: no tap is dated earlier
    sos_at: int = 0  # when help was last asked for from its page


class CheckinQueries(Database):
    def put_plan(self, row: PlanRow, now: int) -> None:
        alarm = row.next_deadline + row.grace_ms if row.state == "active" else None
        with self._write() as session:
            session.merge(CheckinPlanModel(
                id=row.id, who=row.who, region=row.region, next_deadline=row.next_deadline,
                interval_ms=row.interval_ms, grace_ms=row.grace_ms, state=row.state, link_token=row.link_token,
                last_ok=row.last_ok, alarm_at=alarm, note=row.note, recipients=list(row.recipients),
                alert=row.alert, updated=now, pin=row.pin, duress_pin=row.duress_pin, lang=row.lang,
                started=row.started, sos_at=row.sos_at,
            ))

    def get_plan(self, plan_id: str) -> PlanRow | None:
        with self._read() as session:
            model = session.get(CheckinPlanModel, plan_id)
            return None if model is None else _plan(model)

    def plan_by_token(self, token_hash: str) -> PlanRow | None:
        statement = select(CheckinPlanModel).where(CheckinPlanModel.link_token == token_hash)
        with self._read() as session:
            model = session.scalars(statement).first()
            return None if model is None else _plan(model)

    def list_plans(self) -> list[PlanRow]:
        statement = select(CheckinPlanModel).order_by(CheckinPlanModel.updated, CheckinPlanModel.id)
        with self._read() as session:
            return [_plan(m) for m in session.scalars(statement)]

    def overdue_plans(self, now: int) -> list[PlanRow]:
        """Active plans whose deadline and grace have both passed."""
        statement = (
            select(CheckinPlanModel)
            .where(CheckinPlanModel.alarm_at <= now)
            .order_by(CheckinPlanModel.alarm_at, CheckinPlanModel.id)
        )
        with self._read() as session:
            return [_plan(m) for m in session.scalars(statement)]


def _plan(m: CheckinPlanModel) -> PlanRow:
    return PlanRow(
        m.id, m.who, m.region, m.next_deadline, m.interval_ms, m.grace_ms, m.state, m.link_token, m.last_ok,
        m.note, list(m.recipients), m.alert, m.pin or "", m.duress_pin or "", m.lang or "", m.started or 0,
        m.sos_at or 0,
    )
