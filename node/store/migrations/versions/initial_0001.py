"""Initial schema: envelopes (+ regions, tombstones, seq counter), peers,
invites, request nonces and meta.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.LargeBinary(length=32)


def upgrade() -> None:
    counters = op.create_table(
        "counters",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_counters")),
    )
    op.bulk_insert(counters, [{"name": "envelopes", "value": 0}])
    _envelopes()
    op.create_table(
        "seen",
        sa.Column("id", ID, nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seen")),
    )
    op.create_index(op.f("ix_seen_created"), "seen", ["created"])
    _peers()
    op.create_table(
        "invites",
        sa.Column("secret_hash", ID, nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("expires", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("secret_hash", name=op.f("pk_invites")),
    )
    op.create_table(
        "request_nonces",
        sa.Column("peer", ID, nullable=False),
        sa.Column("nonce", ID, nullable=False),
        sa.Column("expires", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("peer", "nonce", name=op.f("pk_request_nonces")),
    )
    op.create_index(op.f("ix_request_nonces_expires"), "request_nonces", ["expires"])
    op.create_table(
        "meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_meta")),
    )


def _envelopes() -> None:
    op.create_table(
        "envelopes",
        sa.Column("id", ID, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("author", ID, nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("expires", sa.BigInteger(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("from_peer", ID, nullable=True),
        sa.Column("sealed", sa.Boolean(), nullable=False),
        sa.Column("refs", ID, nullable=True),
        sa.Column("subject", ID, nullable=True),
        sa.Column("compromised", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("severity", sa.String(length=16), nullable=True),
        sa.Column("msg_type", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_envelopes")),
        sa.UniqueConstraint("seq", name=op.f("uq_envelopes_seq")),
    )
    op.create_index(op.f("ix_envelopes_author"), "envelopes", ["author"])
    op.create_index("ix_envelopes_created_id", "envelopes", ["created", "id"])
    op.create_index(op.f("ix_envelopes_expires"), "envelopes", ["expires"])
    op.create_index(op.f("ix_envelopes_refs"), "envelopes", ["refs"])
    op.create_index(op.f("ix_envelopes_subject"), "envelopes", ["subject"])
    op.create_index("ix_envelopes_type_created", "envelopes", ["type", "created"])
    op.create_table(
        "envelope_regions",
        sa.Column("envelope_id", ID, nullable=False),
        sa.Column("region", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["envelope_id"],
            ["envelopes.id"],
            name=op.f("fk_envelope_regions_envelope_id_envelopes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("envelope_id", "region", name=op.f("pk_envelope_regions")),
    )
    op.create_index(op.f("ix_envelope_regions_region"), "envelope_regions", ["region"])


def _peers() -> None:
    op.create_table(
        "peers",
        sa.Column("key", ID, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("enc_key", ID, nullable=False),
        sa.Column("addresses", sa.JSON(), nullable=False),
        sa.Column("tls_fp", ID, nullable=False),
        sa.Column("node_record_id", ID, nullable=True),
        sa.Column("added_at", sa.BigInteger(), nullable=False),
        sa.Column("last_seen", sa.BigInteger(), nullable=True),
        sa.Column("mark", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.CheckConstraint("status IN ('active', 'removed')", name=op.f("ck_peers_status")),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_peers")),
    )
    op.create_index(op.f("ix_peers_name"), "peers", ["name"])


def downgrade() -> None:
    for table in ("envelope_regions", "envelopes", "seen", "counters"):
        op.drop_table(table)
    for table in ("peers", "invites", "request_nonces", "meta"):
        op.drop_table(table)
