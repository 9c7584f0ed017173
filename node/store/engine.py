"""Opening the database: engine settings, SQLite PRAGMAs, schema migrations.

SQLite is the default because a node must run on a small server with nothing
else installed; PostgreSQL is chosen by a ``postgresql+psycopg://`` URL.

SQLite settings, applied on every new connection (SPEC §8 pitfalls):
- ``journal_mode=WAL`` and ``synchronous=FULL``: an envelope acknowledged to its
  sender has been fsynced, and survives ``kill -9`` and power loss;
- ``foreign_keys=ON``: SQLite ignores foreign keys unless asked (region rows
  rely on ``ON DELETE CASCADE``);
- ``busy_timeout``: another connection holding the write lock makes us wait
  briefly instead of failing at once;
- ``secure_delete=ON``: deleted envelopes are overwritten, not left in free
  pages where a seized disk would still hold them;
- ``temp_store=MEMORY``: sorts and temporary tables never go to a file in
  ``$TMPDIR``, outside the home, where ``amparo wipe`` cannot reach them.
  (The ``-wal`` and ``-shm`` files SQLite deletes at the last close are
  overwritten by ``Database.close``.)

Transactions: pysqlite's own implicit BEGIN is switched off and SQLAlchemy's
``begin`` event emits ``BEGIN`` itself, ``BEGIN IMMEDIATE`` on the writer engine.
Taking the write lock up front means a read-then-write transaction can never
fail halfway with "database is locked" (a deferred transaction cannot upgrade
its lock once another writer has committed), and DDL in migrations becomes
transactional.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.pool import StaticPool

BUSY_TIMEOUT_MS: Final = 5000
WRITER_OPTION: Final = "amparo_writer"
MIGRATIONS_DIR: Final = Path(__file__).with_name("migrations")


class StoreError(Exception):
    """The database cannot be used as it is; the message says what to do."""


def open_engine(url: str) -> Engine:
    """An engine for ``url`` with this project's safety settings applied."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    if parsed.get_backend_name() == "postgresql":
        # Pre-ping: a restarted PostgreSQL must not cost the node its next write.
        return create_engine(parsed, pool_pre_ping=True)
    raise StoreError(
        f"unsupported database URL {parsed.render_as_string()!r}: use sqlite:/// or postgresql+psycopg://"
    )


def writer(engine: Engine) -> Engine:
    """The same pool, but transactions take the write lock at BEGIN (SQLite)."""
    return engine.execution_options(**{WRITER_OPTION: True})


def _sqlite_engine(url: URL) -> Engine:
    memory = url.database in (None, "", ":memory:")
    if not memory:
        _create_private(Path(str(url.database)))
    options: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if memory:
        options["poolclass"] = StaticPool  # one connection, or every call sees a new empty DB
    engine = create_engine(url, **options)
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def sqlite_path(engine: Engine) -> Path | None:
    """The database file of an SQLite engine (None for PostgreSQL or in memory)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(str(url.database))


def _create_private(path: Path) -> None:
    """Create the database file 0600 before SQLite does (it would use the umask);
    SQLite gives its -wal and -shm files the same mode as the database."""
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (module docstring)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA secure_delete = ON")
        cursor.execute("PRAGMA temp_store = MEMORY")
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    immediate = connection.get_execution_options().get(WRITER_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


# -- migrations -----------------------------------------------------------------------------
def alembic_config() -> Config:
    """Alembic configured in code, so upgrading never depends on the working
    directory or on an ``alembic.ini`` being installed next to the package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Bring the schema to head in one transaction; a no-op when already there."""
    config = alembic_config()
    with writer(engine).begin() as connection:
        if current_revision(connection) == head_revision():
            return
        config.attributes["connection"] = connection
        try:
            command.upgrade(config, "head")
        except CommandError as exc:
            raise StoreError(
                f"cannot migrate the database ({exc}); it may have been written by a newer Amparo"
            ) from None
