"""Field safety (issue 16): people in the field with a phone number and a
language, a responder's phone number, PINs (keyed hashes) and a language on a
check-in plan, and each person's standing SOS/check-in link.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PLAN_COLUMNS = (
    ("pin", sa.String(length=128), ""),
    ("duress_pin", sa.String(length=128), ""),
    ("lang", sa.String(length=8), ""),
    ("started", sa.BigInteger(), "0"),
    ("sos_at", sa.BigInteger(), "0"),
)


def upgrade() -> None:
    op.add_column("responders", sa.Column("phone", sa.String(length=16), nullable=False, server_default=""))
    op.create_index("ix_responders_phone", "responders", ["phone"])
    for name, kind, default in PLAN_COLUMNS:
        op.add_column("checkin_plans", sa.Column(name, kind, nullable=False, server_default=default))
    op.create_table(
        "field_people",
        sa.Column("name", sa.String(length=64), primary_key=True),
        sa.Column("phone", sa.String(length=16), nullable=False),
        sa.Column("lang", sa.String(length=8), nullable=False),
        sa.Column("updated", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_field_people_phone", "field_people", ["phone"])
    op.create_table(
        "sos_links",
        sa.Column("person", sa.String(length=64), primary_key=True),
        sa.Column("token_hash", sa.String(length=128), nullable=False, unique=True),
        sa.Column("token_sealed", sa.Text(), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("pin", sa.String(length=128), nullable=False),
        sa.Column("duress_pin", sa.String(length=128), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("last_ok", sa.BigInteger(), nullable=False),
        sa.Column("sos_at", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sos_links")
    op.drop_index("ix_field_people_phone", table_name="field_people")
    op.drop_table("field_people")
    with op.batch_alter_table("checkin_plans") as batch:
        for name, _kind, _default in reversed(PLAN_COLUMNS):
            batch.drop_column(name)
    op.drop_index("ix_responders_phone", table_name="responders")
    with op.batch_alter_table("responders") as batch:
        batch.drop_column("phone")
