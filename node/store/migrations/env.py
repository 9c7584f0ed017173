"""Alembic environment, driven from code (``node.store.engine.upgrade``).

The store passes its open connection in ``config.attributes["connection"]`` so
the migration runs inside the store's own transaction and engine settings
(SQLite PRAGMAs, ``BEGIN IMMEDIATE``). A developer may instead point the
``alembic`` command at a URL (``sqlalchemy.url``) to autogenerate a revision;
``--sql`` (offline) mode renders the DDL for review.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from node.store.engine import open_engine, writer
from node.store.models import Base

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTER needs table copies
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    if context.is_offline_mode():
        context.configure(
            url=config.get_main_option("sqlalchemy.url"), target_metadata=Base.metadata, literal_binds=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set sqlalchemy.url (alembic -x or alembic.ini) to run migrations by hand")
    engine = open_engine(url)
    try:
        with writer(engine).begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


_main()
