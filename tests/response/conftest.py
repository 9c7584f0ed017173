"""The store fixtures of tests/node (``store_url``: SQLite and PostgreSQL), so
the desks' storage is tried on both backends here too."""

from tests.node.conftest import pg_schema_url, store_url

__all__ = ["pg_schema_url", "store_url"]
