"""The response side's small keyed documents, and pruning of finished records.

Responders, shifts and hand-overs are in ``oncall``, escalations, pages and
notes in ``escalations``, check-in plans in ``checkins``: each a table with
typed columns. What is left here are documents without a lifecycle of their
own (sign-in exemptions, CAP imports, drills, who heard an all-clear), kept by
kind and key.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import ColumnElement, delete, select

from node.store.database import Database
from node.store.models import (
    Base,
    CheckinPlanModel,
    EscalationModel,
    HandoverModel,
    NoteModel,
    PageModel,
    ResponseRecordModel,
    ShiftModel,
)

KINDS = frozenset({"signin", "cap-import", "drill", "all-clear", "field-tap", "sms-seen", "sms-tries"})
FINISHED_ESCALATION: Final = ("acknowledged", "cancelled", "expired")
FINISHED_PAGE: Final = ("sent", "unreachable", "skipped")
FINISHED_PLAN: Final = ("stopped",)


class ResponseQueries(Database):
    def put_record(self, kind: str, key: str, doc: dict[str, Any], now: int) -> None:
        _check_kind(kind)
        statement = self._insert(ResponseRecordModel).values(kind=kind, key=key, doc=doc, updated=now)
        statement = statement.on_conflict_do_update(
            index_elements=[ResponseRecordModel.kind, ResponseRecordModel.key],
            set_={"doc": statement.excluded.doc, "updated": statement.excluded.updated},
        )
        with self._write() as session:
            session.connection().execute(statement)

    def get_record(self, kind: str, key: str) -> dict[str, Any] | None:
        _check_kind(kind)
        with self._read() as session:
            row = session.get(ResponseRecordModel, (kind, key))
            return None if row is None else dict(row.doc)

    def list_records(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        _check_kind(kind)
        statement = (
            select(ResponseRecordModel)
            .where(ResponseRecordModel.kind == kind)
            .order_by(ResponseRecordModel.updated, ResponseRecordModel.key)
        )
        with self._read() as session:
            return [(row.key, dict(row.doc)) for row in session.scalars(statement)]

    def delete_record(self, kind: str, key: str) -> bool:
        _check_kind(kind)
        statement = delete(ResponseRecordModel).where(
            ResponseRecordModel.kind == kind, ResponseRecordModel.key == key
        )
        with self._write() as session:
            return bool(session.connection().execute(statement).rowcount)

    def prune_response(self, before: int) -> int:
        """Delete finished response records last changed before ``before`` (Unix ms):
        acknowledged, cancelled or expired escalations (and exhausted ones with
        nothing pending: written before re-paging existed), sent pages, stopped
        plans, past shifts and hand-overs, old notes and documents. Open work
        (a paging escalation, a pending page, an active or missed plan) stays
        however old it is. Returns how many rows went."""
        finished: list[tuple[type[Base], ColumnElement[bool]]] = [
            (EscalationModel, _finished_escalation() & (EscalationModel.updated < before)),
            (PageModel, PageModel.state.in_(FINISHED_PAGE) & (PageModel.updated < before)),
            (CheckinPlanModel, CheckinPlanModel.state.in_(FINISHED_PLAN) & (CheckinPlanModel.updated < before)),
            (NoteModel, NoteModel.at < before),
            (ShiftModel, ShiftModel.end < before),
            (HandoverModel, HandoverModel.at < before),
            (ResponseRecordModel, ResponseRecordModel.updated < before),
        ]
        with self._write() as session:
            return sum(session.connection().execute(delete(model).where(where)).rowcount for model, where in finished)


def _finished_escalation() -> ColumnElement[bool]:
    """An exhausted escalation re-pages (it keeps a deadline) until it ends."""
    done = EscalationModel.state.in_(FINISHED_ESCALATION)
    return done | ((EscalationModel.state == "exhausted") & EscalationModel.deadline.is_(None))


def _check_kind(kind: str) -> None:
    """A kind that moved to its own table (or a typo) fails loudly, not as an empty list."""
    if kind not in KINDS:
        raise ValueError(f"unknown response record kind {kind!r}")
