"""The store's foundation: one engine, short transactions, one writer path.

Every public store method is one short transaction, because the node calls the
store synchronously from its asyncio loop: nothing may hold a transaction open
across an ``await``. Writes go through ``_write`` (``BEGIN IMMEDIATE`` on SQLite,
see ``engine``), reads through ``_read``. Opening a store migrates the schema to
head first, so code never meets an old schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from node import shred
from node.store import engine as engines
from node.store.models import Base, MetaModel

MAX_IN: Final = 500  # ids per IN (...) clause: SQLite limits bound parameters

Insert = sqlite.Insert | postgresql.Insert


class Database:
    """Engine lifetime, transactions and the small key/value ``meta`` table."""

    def __init__(self, url: str) -> None:
        """Open ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``) and
        migrate it to the newest schema; a no-op when it is already there."""
        self.url = url
        self._engine = engines.open_engine(url)
        self._writer = engines.writer(self._engine)
        self.dialect = self._engine.dialect.name
        try:
            engines.upgrade(self._engine)
        except BaseException:
            self._engine.dispose()
            raise

    # -- lifetime --------------------------------------------------------------------------
    def close(self) -> None:
        """Close every connection. With SQLite the last close merges the WAL into
        the database and deletes ``-wal`` and ``-shm``; their old blocks are
        overwritten here, or every alert the WAL held would stay on the disk in
        freed blocks (``node.shred.DeletedByOthers``). Our descriptors are closed
        only after SQLite's own, so its POSIX locks are never dropped under it."""
        path = engines.sqlite_path(self._engine)
        held = shred.DeletedByOthers([Path(f"{path}-wal"), Path(f"{path}-shm")]) if path else None
        self._engine.dispose()
        if held is not None:
            held.overwrite_deleted()

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at (for status output and tests)."""
        with self._engine.connect() as connection:
            return engines.current_revision(connection)

    # -- transactions ----------------------------------------------------------------------
    @contextmanager
    def _read(self) -> Iterator[Session]:
        with Session(self._engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with Session(self._writer, expire_on_commit=False) as session, session.begin():
            yield session

    def _insert(self, model: type[Base]) -> Insert:
        """The dialect's INSERT, which has ``ON CONFLICT`` (both databases spell it
        the same): duplicates are then settled atomically by the database."""
        if self.dialect == "postgresql":
            return postgresql.insert(model)
        return sqlite.insert(model)

    @staticmethod
    def _rowcount(session: Session, statement: Any) -> int:
        """Rows changed. SQLAlchemy only keeps ``rowcount`` for UPDATE and DELETE
        unless asked; psycopg would report -1 for ``INSERT ... ON CONFLICT``."""
        options = {"preserve_rowcount": True}
        return session.connection().execute(statement, execution_options=options).rowcount

    # -- meta ------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        with self._read() as session:
            return session.scalar(select(MetaModel.value).where(MetaModel.key == key))

    def set_meta(self, key: str, value: str) -> None:
        statement = self._insert(MetaModel).values(key=key, value=value)
        statement = statement.on_conflict_do_update(
            index_elements=[MetaModel.key], set_={"value": statement.excluded.value}
        )
        with self._write() as session:
            session.connection().execute(statement)
