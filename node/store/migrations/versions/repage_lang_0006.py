"""Re-paging and pages in the responder's language: an escalation keeps its
re-paging round, the alert's expiry and whether it is urgent (severe or
extreme: quiet hours never hold it); a responder has a language.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMNs with server defaults. An escalation exhausted before this
    # revision has no deadline: it stays finished (re-paging starts with new ones).
    op.add_column("escalations", sa.Column("round", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("escalations", sa.Column("expires", sa.BigInteger(), nullable=True))
    op.add_column("escalations", sa.Column("urgent", sa.Boolean(), nullable=False, server_default=sa.true()))
    op.add_column("responders", sa.Column("lang", sa.String(length=8), nullable=False, server_default="en"))


def downgrade() -> None:
    with op.batch_alter_table("responders") as batch:
        batch.drop_column("lang")
    with op.batch_alter_table("escalations") as batch:
        batch.drop_column("urgent")
        batch.drop_column("expires")
        batch.drop_column("round")
