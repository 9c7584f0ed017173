"""Queries for escalations, their pages and the alerts' timeline notes.

The tick asks only for what is due: escalations whose ``deadline`` has passed
(NULL once nothing is pending) and pages not yet finished, each one indexed
range or equality, however many finished records the node keeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from node.store.database import Database
from node.store.models import EscalationModel, NoteModel, PageModel

OPEN_ESCALATION = ("paging", "exhausted")  # not yet acknowledged, cancelled or expired
UNFINISHED_PAGE = ("pending", "sending")


@dataclass(frozen=True, slots=True)
class EscalationRow:
    """The fields of ``node.response.escalation.Escalation``, in its order;
    ``deadline`` 0 means nothing is pending (stored as NULL)."""

    alert_id: str
    started: int
    step: int
    deadline: int
    state: str = "paging"
    acked_by: str = ""
    round: int = 0
    expires: int = 0  # stored as NULL when the alert never expires
    urgent: bool = True


@dataclass(frozen=True, slots=True)
class PageRow:
    alert_id: str
    step: int
    targets: str  # the chain step: on-call, backup, all; or "chain" for a re-paging round
    state: str = "pending"
    tried: list[str] = field(default_factory=list)
    reached: list[str] = field(default_factory=list)
    at: int = 0


@dataclass(frozen=True, slots=True)
class NoteRow:
    """A timeline line; ``sealed`` holds text and author, sealed to the node's
    own key (``text`` and ``author`` are set only on notes older than that)."""

    alert_id: str
    at: int
    kind: str
    sealed: bytes | None = None
    text: str | None = None
    author: str | None = None


class EscalationQueries(Database):
    # -- escalations -----------------------------------------------------------------------
    def put_escalation(self, row: EscalationRow, now: int) -> None:
        with self._write() as session:
            session.merge(
                EscalationModel(
                    alert_id=row.alert_id,
                    started=row.started,
                    step=row.step,
                    deadline=row.deadline or None,
                    state=row.state,
                    acked_by=row.acked_by,
                    round=row.round,
                    expires=row.expires or None,
                    urgent=row.urgent,
                    updated=now,
                )
            )

    def get_escalation(self, alert_id: str) -> EscalationRow | None:
        with self._read() as session:
            model = session.get(EscalationModel, alert_id)
            return None if model is None else _escalation(model)

    def due_escalations(self, now: int) -> list[EscalationRow]:
        """Escalations whose next step is due (deadline passed), oldest deadline first."""
        statement = (
            select(EscalationModel)
            .where(EscalationModel.deadline <= now)
            .order_by(EscalationModel.deadline, EscalationModel.alert_id)
        )
        with self._read() as session:
            return [_escalation(m) for m in session.scalars(statement)]

    def open_escalations(self) -> list[str]:
        """Alert ids whose escalation nobody acknowledged or cancelled yet."""
        statement = (
            select(EscalationModel.alert_id)
            .where(EscalationModel.state.in_(OPEN_ESCALATION))
            .order_by(EscalationModel.started, EscalationModel.alert_id)
        )
        with self._read() as session:
            return list(session.scalars(statement))

    # -- pages -----------------------------------------------------------------------------
    def add_page(self, row: PageRow, now: int) -> bool:
        """Write a new page record; False when that step's page already exists."""
        statement = self._insert(PageModel).values(**_page_values(row, now)).on_conflict_do_nothing()
        with self._write() as session:
            return bool(self._rowcount(session, statement))

    def put_page(self, row: PageRow, now: int) -> None:
        with self._write() as session:
            session.merge(PageModel(**_page_values(row, now)))

    def get_page(self, alert_id: str, step: int) -> PageRow | None:
        with self._read() as session:
            model = session.get(PageModel, (alert_id, step))
            return None if model is None else _page(model)

    def unfinished_pages(self) -> list[PageRow]:
        """Pages decided or begun but not finished, by alert and chain step."""
        statement = (
            select(PageModel)
            .where(PageModel.state.in_(UNFINISHED_PAGE))
            .order_by(PageModel.alert_id, PageModel.step)
        )
        with self._read() as session:
            return [_page(m) for m in session.scalars(statement)]

    def pages_of(self, alert_id: str) -> list[PageRow]:
        statement = select(PageModel).where(PageModel.alert_id == alert_id).order_by(PageModel.step)
        with self._read() as session:
            return [_page(m) for m in session.scalars(statement)]

    # -- notes -----------------------------------------------------------------------------
    def add_note(self, row: NoteRow) -> None:
        with self._write() as session:
            session.add(
                NoteModel(
                    alert_id=row.alert_id,
                    at=row.at,
                    kind=row.kind,
                    sealed=row.sealed,
                    text=row.text,
                    author=row.author,
                )
            )

    def notes_of(self, alert_id: str) -> list[NoteRow]:
        """An alert's timeline, oldest first (written order within one instant)."""
        statement = (
            select(NoteModel).where(NoteModel.alert_id == alert_id).order_by(NoteModel.at, NoteModel.id)
        )
        with self._read() as session:
            return [
                NoteRow(m.alert_id, m.at, m.kind, m.sealed, m.text, m.author)
                for m in session.scalars(statement)
            ]


def _escalation(m: EscalationModel) -> EscalationRow:
    return EscalationRow(
        m.alert_id,
        m.started,
        m.step,
        m.deadline or 0,
        m.state,
        m.acked_by,
        m.round or 0,
        m.expires or 0,
        bool(m.urgent),
    )


def _page(m: PageModel) -> PageRow:
    return PageRow(m.alert_id, m.step, m.targets, m.state, list(m.tried), list(m.reached), m.at)


def _page_values(row: PageRow, now: int) -> dict[str, object]:
    return {
        "alert_id": row.alert_id,
        "step": row.step,
        "targets": row.targets,
        "state": row.state,
        "tried": list(row.tried),
        "reached": list(row.reached),
        "at": row.at,
        "updated": now,
    }
