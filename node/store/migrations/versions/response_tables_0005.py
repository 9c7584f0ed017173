"""Typed response state: responders, shifts, hand-overs, escalations, pages,
notes and check-in plans move out of ``response_records`` into tables of their
own, with indexes on the deadlines the tick asks for.

Existing records are moved over (and back on downgrade) in the same
transaction as the DDL. ``response_records`` keeps only sign-in exemptions,
CAP imports and drills.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = sa.String(length=64)
ALERT_HEX = sa.String(length=64)

records = sa.table(
    "response_records",
    sa.column("kind", sa.String),
    sa.column("key", sa.String),
    sa.column("doc", sa.JSON),
    sa.column("updated", sa.BigInteger),
)


def upgrade() -> None:
    _create_tables()
    bind = op.get_bind()
    for kind, (table, to_row, _) in _MAPPINGS.items():
        found = bind.execute(
            sa.select(records.c.key, records.c.doc, records.c.updated)
            .where(records.c.kind == kind)
            .order_by(records.c.updated, records.c.key)
        ).all()
        rows = [to_row(key, dict(doc), updated) for key, doc, updated in found]
        if kind == "note":
            rows.sort(key=lambda r: r["at"])  # ids follow the timeline
        if rows:
            bind.execute(sa.insert(_table(table)), rows)
    bind.execute(sa.delete(records).where(records.c.kind.in_(list(_MAPPINGS))))


def downgrade() -> None:
    bind = op.get_bind()
    for kind, (table, _, to_doc) in _MAPPINGS.items():
        found = bind.execute(sa.select(_table(table))).mappings().all()
        docs = [
            dict(zip(("kind", "key", "doc", "updated"), (kind, *to_doc(dict(r))), strict=True)) for r in found
        ]
        if docs:
            bind.execute(sa.insert(records), docs)
    for table in ("checkin_plans", "notes", "pages", "escalations", "handovers", "shifts", "responders"):
        op.drop_table(table)


# -- the tables ----------------------------------------------------------------------------
def _create_tables() -> None:
    op.create_table(
        "responders",
        sa.Column("name", NAME, nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("password", sa.Text(), nullable=True),
        sa.Column("drills", sa.Boolean(), nullable=False),
        sa.Column("updated", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("role IN ('admin', 'responder', 'viewer')", name=op.f("ck_responders_role")),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_responders")),
    )
    op.create_table(
        "shifts",
        sa.Column("start", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("end", sa.BigInteger(), nullable=False),
        sa.Column("responder", NAME, nullable=False),
        sa.Column("backup", NAME, nullable=True),
        sa.Column("override", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("start", name=op.f("pk_shifts")),
    )
    op.create_index(op.f("ix_shifts_end"), "shifts", ["end"])
    op.create_table(
        "handovers",
        sa.Column("at", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("outgoing", NAME, nullable=False),
        sa.Column("incoming", NAME, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("notified", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("at", name=op.f("pk_handovers")),
    )
    op.create_table(
        "escalations",
        sa.Column("alert_id", ALERT_HEX, nullable=False),
        sa.Column("started", sa.BigInteger(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("deadline", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("acked_by", sa.Text(), nullable=False),
        sa.Column("updated", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_escalations")),
    )
    op.create_index(op.f("ix_escalations_deadline"), "escalations", ["deadline"])
    op.create_index("ix_escalations_state_updated", "escalations", ["state", "updated"])
    op.create_table(
        "pages",
        sa.Column("alert_id", ALERT_HEX, nullable=False),
        sa.Column("step", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("targets", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("tried", sa.JSON(), nullable=False),
        sa.Column("reached", sa.JSON(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("updated", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("alert_id", "step", name=op.f("pk_pages")),
    )
    op.create_index("ix_pages_state_updated", "pages", ["state", "updated"])
    op.create_table(
        "notes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("alert_id", ALERT_HEX, nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("author", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notes")),
    )
    op.create_index("ix_notes_alert_id_at", "notes", ["alert_id", "at"])
    op.create_index(op.f("ix_notes_at"), "notes", ["at"])
    op.create_table(
        "checkin_plans",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("who", sa.Text(), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("next_deadline", sa.BigInteger(), nullable=False),
        sa.Column("interval_ms", sa.BigInteger(), nullable=False),
        sa.Column("grace_ms", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("link_token", sa.String(length=128), nullable=False),
        sa.Column("last_ok", sa.BigInteger(), nullable=False),
        sa.Column("alarm_at", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("alert", ALERT_HEX, nullable=False),
        sa.Column("updated", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkin_plans")),
        sa.UniqueConstraint("link_token", name=op.f("uq_checkin_plans_link_token")),
    )
    op.create_index(op.f("ix_checkin_plans_alarm_at"), "checkin_plans", ["alarm_at"])
    op.create_index("ix_checkin_plans_state_updated", "checkin_plans", ["state", "updated"])


def _table(name: str) -> sa.Table:
    """The table as it is now, reflected (so inserts carry every column's type)."""
    return sa.Table(name, sa.MetaData(), autoload_with=op.get_bind())


# -- record ⇄ row --------------------------------------------------------------------------
Row = dict[str, Any]


def _responder(key: str, doc: Row, updated: int) -> Row:
    return {
        "name": key,
        "role": doc["role"],
        "channels": list(doc.get("channels", [])),
        "password": doc.get("password"),
        "drills": bool(doc.get("drills")),
        "updated": updated,
    }


def _responder_doc(row: Row) -> tuple[str, Row, int]:
    doc = {"role": row["role"], "channels": row["channels"], "drills": row["drills"]}
    return row["name"], doc | ({"password": row["password"]} if row["password"] else {}), row["updated"]


def _shift(_key: str, doc: Row, _updated: int) -> Row:
    return {k: doc.get(k) for k in ("responder", "start", "end", "backup")} | {
        "override": bool(doc.get("override"))
    }


def _shift_doc(row: Row) -> tuple[str, Row, int]:
    return f"{row['start']:016d}", dict(row), row["start"]


def _handover(_key: str, doc: Row, _updated: int) -> Row:
    return {
        "at": doc["at"],
        "outgoing": doc["outgoing"],
        "incoming": doc["incoming"],
        "note": doc.get("note", ""),
        "notified": doc.get("notified", {}),
    }


def _handover_doc(row: Row) -> tuple[str, Row, int]:
    return f"{row['at']:016d}", dict(row), row["at"]


def _escalation(_key: str, doc: Row, updated: int) -> Row:
    return {
        "alert_id": doc["alert_id"],
        "started": doc["started"],
        "step": doc["step"],
        "deadline": doc.get("deadline") or None,
        "state": doc.get("state", "paging"),
        "acked_by": doc.get("acked_by", ""),
        "updated": updated,
    }


def _escalation_doc(row: Row) -> tuple[str, Row, int]:
    doc = {k: row[k] for k in ("alert_id", "started", "step", "state", "acked_by")} | {
        "deadline": row["deadline"] or 0
    }
    return row["alert_id"], doc, row["updated"]


def _page(_key: str, doc: Row, updated: int) -> Row:
    return {
        "alert_id": doc["alert"],
        "step": doc["step"],
        "targets": doc["targets"],
        "state": doc["state"],
        "tried": list(doc.get("tried", [])),
        "reached": list(doc.get("reached", [])),
        "at": doc.get("at", updated),
        "updated": updated,
    }


def _page_doc(row: Row) -> tuple[str, Row, int]:
    doc = {"alert": row["alert_id"]} | {
        k: row[k] for k in ("step", "targets", "state", "tried", "reached", "at")
    }
    return f"{row['alert_id']}:{row['step']:02d}", doc, row["updated"]


def _note(_key: str, doc: Row, _updated: int) -> Row:
    sealed = doc.get("sealed")
    return {
        "alert_id": doc["alert"],
        "at": doc["at"],
        "kind": doc.get("kind", "debrief"),
        "sealed": bytes.fromhex(sealed) if sealed else None,
        "text": None if sealed else doc.get("text", ""),
        "author": None if sealed else doc.get("author", ""),
    }


def _note_doc(row: Row) -> tuple[str, Row, int]:
    doc: Row = {"alert": row["alert_id"], "at": row["at"], "kind": row["kind"]}
    if row["sealed"] is not None:
        doc["sealed"] = bytes(row["sealed"]).hex()
    else:
        doc |= {"text": row["text"] or "", "author": row["author"] or ""}
    return f"{row['alert_id']}:{row['at']:016d}:{row['id']:06d}", doc, row["at"]


PLAN = ("id", "who", "region", "next_deadline", "interval_ms", "grace_ms", "state", "link_token", "last_ok")


def _plan(_key: str, doc: Row, updated: int) -> Row:
    plan = doc["plan"]
    active = plan.get("state", "active") == "active"
    return {k: plan.get(k, 0) for k in PLAN} | {
        "state": plan.get("state", "active"),
        "alarm_at": plan["next_deadline"] + plan.get("grace_ms", 0) if active else None,
        "note": doc.get("note", ""),
        "recipients": list(doc.get("to", [])),
        "alert": doc.get("alert", ""),
        "updated": updated,
    }


def _plan_doc(row: Row) -> tuple[str, Row, int]:
    plan = {k: row[k] for k in PLAN} | {"note": ""}
    return (
        row["id"],
        {"plan": plan, "note": row["note"], "to": row["recipients"], "alert": row["alert"]},
        row["updated"],
    )


Mapping = tuple[str, Callable[[str, Row, int], Row], Callable[[Row], tuple[str, Row, int]]]
_MAPPINGS: dict[str, Mapping] = {
    "responder": ("responders", _responder, _responder_doc),
    "shift": ("shifts", _shift, _shift_doc),
    "handover": ("handovers", _handover, _handover_doc),
    "escalation": ("escalations", _escalation, _escalation_doc),
    "page": ("pages", _page, _page_doc),
    "note": ("notes", _note, _note_doc),
    "checkin": ("checkin_plans", _plan, _plan_doc),
}
