"""Queries for the on-call side: responders, shifts and hand-overs."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import delete, select, update

from node.store.database import Database
from node.store.models import HandoverModel, ResponderModel, ShiftModel


@dataclass(frozen=True, slots=True)
class ResponderRow:
    name: str
    role: str
    channels: list[str] = field(default_factory=list)
    password: str | None = None  # argon2id hash, for the dashboard
    drills: bool = False  # may be paged for other organizations' drills
    lang: str = "en"  # the language their pages are written in (a catalog of node/web/locale)
    tz: str = ""  # the IANA time zone their pages show times in; "": the node's `timezone`
    phone: str = ""  # E.164, for SMS check-ins and acknowledgements (node.response.field)


@dataclass(frozen=True, slots=True)
class ShiftRow:
    """The fields of ``node.response.rotation.Shift``, in its order."""

    responder: str
    start: int
    end: int
    backup: str | None = None
    override: bool = False


@dataclass(frozen=True, slots=True)
class HandoverRow:
    at: int
    outgoing: str
    incoming: str
    note: str = ""
    notified: dict[str, str] = field(default_factory=dict)


class OncallQueries(Database):
    # -- responders ------------------------------------------------------------------------
    def put_responder(self, row: ResponderRow, now: int) -> None:
        values = {
            "name": row.name, "role": row.role, "channels": list(row.channels),
            "password": row.password, "drills": row.drills, "lang": row.lang, "tz": row.tz,
            "phone": row.phone, "updated": now,
        }
        statement = self._insert(ResponderModel).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[ResponderModel.name], set_={k: v for k, v in values.items() if k != "name"}
        )
        with self._write() as session:
            session.connection().execute(statement)

    def get_responder(self, name: str) -> ResponderRow | None:
        with self._read() as session:
            model = session.get(ResponderModel, name)
            return None if model is None else _responder(model)

    def list_responders(self) -> list[ResponderRow]:
        """Oldest change first (the order people were added, unless edited)."""
        statement = select(ResponderModel).order_by(ResponderModel.updated, ResponderModel.name)
        with self._read() as session:
            return [_responder(m) for m in session.scalars(statement)]

    def delete_responder(self, name: str) -> bool:
        with self._write() as session:
            result = session.connection().execute(delete(ResponderModel).where(ResponderModel.name == name))
            return bool(result.rowcount)

    # -- shifts ----------------------------------------------------------------------------
    def list_shifts(self) -> list[ShiftRow]:
        with self._read() as session:
            return [_shift(m) for m in session.scalars(select(ShiftModel).order_by(ShiftModel.start))]

    def add_shift(self, row: ShiftRow) -> None:
        with self._write() as session:
            session.merge(_shift_model(row))

    def replace_shifts(self, rows: list[ShiftRow]) -> None:
        """The whole schedule at once (a hand-over splits a shift): one transaction,
        so a crash never leaves a schedule with the current shift missing."""
        with self._write() as session:
            session.execute(delete(ShiftModel))
            session.add_all([_shift_model(r) for r in rows])

    # -- hand-overs ------------------------------------------------------------------------
    def add_handover(self, row: HandoverRow) -> None:
        with self._write() as session:
            session.merge(HandoverModel(
                at=row.at, outgoing=row.outgoing, incoming=row.incoming, note=row.note, notified=row.notified
            ))

    def set_handover_notified(self, at: int, notified: dict[str, str]) -> None:
        statement = update(HandoverModel).where(HandoverModel.at == at).values(notified=notified)
        with self._write() as session:
            session.execute(statement)

    def recent_handovers(self, limit: int) -> list[HandoverRow]:
        """The last ``limit`` hand-overs, oldest first."""
        statement = select(HandoverModel).order_by(HandoverModel.at.desc()).limit(limit)
        with self._read() as session:
            rows = [
                HandoverRow(m.at, m.outgoing, m.incoming, m.note, dict(m.notified))
                for m in session.scalars(statement)
            ]
        return rows[::-1]


def _responder(m: ResponderModel) -> ResponderRow:
    return ResponderRow(m.name, m.role, list(m.channels), m.password, m.drills, m.lang or "en", m.tz or "", m.phone or "")


def _shift(m: ShiftModel) -> ShiftRow:
    return ShiftRow(m.responder, m.start, m.end, m.backup, m.override)


def _shift_model(row: ShiftRow) -> ShiftModel:
    return ShiftModel(
        start=row.start, end=row.end, responder=row.responder, backup=row.backup, override=row.override
    )
