"""Queries for emergency-response records: put, get, list and delete by kind."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from node.store.database import Database
from node.store.models import ResponseRecordModel

KINDS = frozenset(
    {"responder", "shift", "handover", "escalation", "checkin", "note", "drill", "cap-import", "page", "signin"}
)


class ResponseQueries(Database):
    def put_record(self, kind: str, key: str, doc: dict[str, Any], now: int) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown response record kind {kind!r}")
        statement = self._insert(ResponseRecordModel).values(kind=kind, key=key, doc=doc, updated=now)
        statement = statement.on_conflict_do_update(
            index_elements=[ResponseRecordModel.kind, ResponseRecordModel.key],
            set_={"doc": statement.excluded.doc, "updated": statement.excluded.updated},
        )
        with self._write() as session:
            session.connection().execute(statement)

    def get_record(self, kind: str, key: str) -> dict[str, Any] | None:
        with self._read() as session:
            row = session.get(ResponseRecordModel, (kind, key))
            return None if row is None else dict(row.doc)

    def list_records(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        statement = (
            select(ResponseRecordModel)
            .where(ResponseRecordModel.kind == kind)
            .order_by(ResponseRecordModel.updated, ResponseRecordModel.key)
        )
        with self._read() as session:
            return [(row.key, dict(row.doc)) for row in session.scalars(statement)]

    def delete_record(self, kind: str, key: str) -> bool:
        statement = delete(ResponseRecordModel).where(
            ResponseRecordModel.kind == kind, ResponseRecordModel.key == key
        )
        with self._write() as session:
            return bool(session.connection().execute(statement).rowcount)
