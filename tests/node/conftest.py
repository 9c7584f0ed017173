"""Fixtures for tests/node.

The store section runs every store test against both backends (STYLE
principle 10): SQLite in a temporary file, and PostgreSQL in a fresh schema
per test, so runs are repeatable and can run side by side. CI guarantees the
PostgreSQL server, so an unreachable server FAILS the postgres tests instead of
skipping them: a silent skip would let a backend go untested.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from node.store import Store

# -- store ----------------------------------------------------------------------------------
PG_URL = os.environ.get("AMPARO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _pg_conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A database URL whose search_path is a new, empty schema (dropped after)."""
    import psycopg

    schema = f"amparo_test_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(_pg_conninfo(PG_URL), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        problem = str(exc).strip()
    else:
        problem = ""
    if problem:
        pytest.fail(
            f"PostgreSQL is required for the postgres-marked store tests but {PG_URL} is unreachable "
            f"({problem}). Start it (CI provides it) or set AMPARO_TEST_POSTGRES_URL.",
            pytrace=False,
        )
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        sep = "&" if "?" in PG_URL else "?"
        try:
            yield f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_schema_url")
        return url
    return f"sqlite:///{tmp_path / 'amparo.db'}"


@pytest.fixture
def open_store(store_url: str) -> Iterator[Callable[[], Store]]:
    """Open (or reopen) the store at this test's URL; everything opened is closed."""
    opened: list[Store] = []

    def make() -> Store:
        store = Store(store_url)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[[], Store]) -> Store:
    return open_store()
