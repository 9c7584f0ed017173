"""Peer standing survives a restart: score, standing and ban deadline per peer.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMNs with server defaults: existing peers start GOOD with a
    # full score, as they would have after a restart before this revision.
    op.add_column("peers", sa.Column("standing", sa.String(length=16), nullable=False, server_default="good"))
    op.add_column("peers", sa.Column("score", sa.Float(), nullable=True))
    op.add_column("peers", sa.Column("banned_until", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("peers") as batch:
        batch.drop_column("banned_until")
        batch.drop_column("score")
        batch.drop_column("standing")
