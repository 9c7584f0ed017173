"""Typed SQLAlchemy 2 models: the schema the Alembic migrations create.

Conventions, chosen so SQLite and PostgreSQL behave the same:
- keys, ids and other binary values are ``LargeBinary`` (BLOB / bytea); both
  databases compare them bytewise, so ordering by id agrees across backends;
- times are ``BigInteger`` Unix milliseconds (no time zones, no driver
  conversions, the same numbers the protocol signs);
- constraint names come from a naming convention, so migrations are
  deterministic and a later ``ALTER`` can name what it changes.

Any change here needs a new revision in ``migrations/versions`` (the test suite
compares these models with the migrated schema on both backends).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
ENVELOPE_SEQ = "envelopes"  # the one row of ``counters`` that hands out ``seq``


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class EnvelopeModel(Base):
    """One verified envelope. ``raw`` is authoritative; every other column is an
    index derived from it (and, for sealed envelopes, only from the header)."""

    __tablename__ = "envelopes"
    __table_args__ = (
        Index("ix_envelopes_created_id", "created", "id"),
        Index("ix_envelopes_type_created", "type", "created"),
    )

    id: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    type: Mapped[str] = mapped_column(String(16))
    author: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    created: Mapped[int] = mapped_column(BigInteger)
    expires: Mapped[int] = mapped_column(BigInteger, index=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[int] = mapped_column(BigInteger)
    from_peer: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    sealed: Mapped[bool] = mapped_column(Boolean)
    refs: Mapped[bytes | None] = mapped_column(LargeBinary(32), index=True)
    subject: Mapped[bytes | None] = mapped_column(LargeBinary(32), index=True)
    compromised: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str | None] = mapped_column(String(16))
    severity: Mapped[str | None] = mapped_column(String(16))
    msg_type: Mapped[str | None] = mapped_column(String(16))

    regions: Mapped[list[RegionModel]] = relationship(
        back_populates="envelope",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="selectin",
    )


class RegionModel(Base):
    """The regions of a plain alert, expanded to all their ancestors at insert time
    (``MX-OAX`` also stores ``MX`` and ``*``) so a region filter is one indexed
    equality instead of string prefix matching. ``position`` is the index among
    the alert's own areas, or NULL for a row that only exists as an ancestor."""

    __tablename__ = "envelope_regions"

    envelope_id: Mapped[bytes] = mapped_column(
        LargeBinary(32), ForeignKey("envelopes.id", ondelete="CASCADE"), primary_key=True
    )
    region: Mapped[str] = mapped_column(String(16), primary_key=True, index=True)
    position: Mapped[int | None] = mapped_column(Integer)

    envelope: Mapped[EnvelopeModel] = relationship(back_populates="regions")


class SeenModel(Base):
    """Tombstones of deleted envelopes: a replay of one stays refused until it is
    too old for the protocol to accept anyway (maximum lifetime plus skew)."""

    __tablename__ = "seen"

    id: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    created: Mapped[int] = mapped_column(BigInteger, index=True)


class CounterModel(Base):
    """Monotonic counters that must never be reused, even after deletions."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class PeerModel(Base):
    __tablename__ = "peers"
    __table_args__ = (CheckConstraint("status IN ('active', 'removed')", name="status"),)

    key: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    enc_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    addresses: Mapped[list[str]] = mapped_column(JSON)
    tls_fp: Mapped[bytes] = mapped_column(LargeBinary(32))
    node_record_id: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    added_at: Mapped[int] = mapped_column(BigInteger)
    last_seen: Mapped[int | None] = mapped_column(BigInteger)
    mark: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(8), default="active")
    # The mesh's judgement of this peer (mesh.SavedStanding), written at each
    # standing change and restored at start; ``score`` NULL means never judged.
    standing: Mapped[str] = mapped_column(String(16), default="good", server_default="good")
    score: Mapped[float | None] = mapped_column(Float)
    banned_until: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class InviteModel(Base):
    """One-time pairing secrets, stored only as a hash."""

    __tablename__ = "invites"

    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    created: Mapped[int] = mapped_column(BigInteger)
    expires: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = mapped_column(BigInteger)


class NonceModel(Base):
    """Nonces of signed mesh requests, kept until the request could no longer be
    accepted on its timestamp alone."""

    __tablename__ = "request_nonces"

    peer: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    nonce: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    expires: Mapped[int] = mapped_column(BigInteger, index=True)


class MetaModel(Base):
    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ResponseRecordModel(Base):
    """Emergency-response state (responders, shifts, hand-overs, escalations,
    check-in plans, debrief notes): small records owned by the pure state
    machines in ``node/response``, which serialize themselves. One document
    table keeps them versionable without a migration per field; ``kind`` says
    which machine a record belongs to. Secrets inside (check-in notes) are
    sealed to the node's own key before they get here."""

    __tablename__ = "response_records"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    doc: Mapped[dict[str, object]] = mapped_column(JSON)
    updated: Mapped[int] = mapped_column(BigInteger, index=True)


class SubscriptionModel(Base):
    """An ally's subscription (regions, filters, one channel). The document is
    owned by ``node.allies.subscriptions``; a webhook's HMAC secret is in it,
    which is why the home and the database stay private to the node's user."""

    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    doc: Mapped[dict[str, object]] = mapped_column(JSON)
    created: Mapped[int] = mapped_column(BigInteger)


class DeliveryModel(Base):
    """The delivery outbox: one row per (subscription, alert envelope), so an
    alert is delivered exactly once per subscription however often it arrives.
    It holds ids only: the text is rendered from the stored envelope at send
    time, so nothing decrypted is ever written here."""

    __tablename__ = "deliveries"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'delivered', 'failed')", name="state"),
        Index("ix_deliveries_sub_state_seq", "subscription_id", "state", "seq"),
        Index("ix_deliveries_state_next", "state", "next_attempt"),
    )

    subscription_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("subscriptions.id", ondelete="CASCADE"), primary_key=True
    )
    envelope_id: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt: Mapped[int] = mapped_column(BigInteger)
    created: Mapped[int] = mapped_column(BigInteger)
    done_at: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(String(200))
