"""Peers remember whether the operator confirmed the fingerprint by voice when
pairing, so `amparo peer list` can say so. Peers paired before this revision
are shown as not verified: the flag was never stored, and "yes" must be earned.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("peers", sa.Column("verified", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("peers") as batch:
        batch.drop_column("verified")
