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
    false,
    true,
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
    # Whether the operator confirmed the fingerprint by voice when pairing (the
    # vouch records it as level "verified"); peers paired before revision 0007: false.
    verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
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
    """Small keyed documents of the response side that have no lifecycle of
    their own: dashboard sign-in exemptions (``signin``), CAP imports
    (``cap-import``) and drills (``drill``). Everything with a lifecycle
    (responders, shifts, escalations, pages, notes, check-in plans) has its own
    table below, with typed columns and indexes on what the desks ask for."""

    __tablename__ = "response_records"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    doc: Mapped[dict[str, object]] = mapped_column(JSON)
    updated: Mapped[int] = mapped_column(BigInteger, index=True)


class ResponderModel(Base):
    """A person who can be paged: Apprise channel URLs (secrets: the home stays
    private to the node's user) and, for the dashboard, an argon2id hash."""

    __tablename__ = "responders"
    __table_args__ = (CheckConstraint("role IN ('admin', 'responder', 'viewer')", name="role"),)

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    channels: Mapped[list[str]] = mapped_column(JSON)
    password: Mapped[str | None] = mapped_column(Text)
    drills: Mapped[bool] = mapped_column(Boolean, default=False)
    lang: Mapped[str] = mapped_column(String(8), default="en", server_default="en")
    tz: Mapped[str] = mapped_column(String(64), default="", server_default="")
    phone: Mapped[str] = mapped_column(String(16), default="", server_default="", index=True)
    updated: Mapped[int] = mapped_column(BigInteger)


class ShiftModel(Base):
    """One on-call shift; shifts never overlap, so the start is the key. Past
    shifts are pruned by ``end``."""

    __tablename__ = "shifts"

    start: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    end: Mapped[int] = mapped_column(BigInteger, index=True)
    responder: Mapped[str] = mapped_column(String(64))
    backup: Mapped[str | None] = mapped_column(String(64))
    override: Mapped[bool] = mapped_column(Boolean, default=False)


class HandoverModel(Base):
    """A hand-over of the on-call role, and whom its notice reached."""

    __tablename__ = "handovers"

    at: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    outgoing: Mapped[str] = mapped_column(String(64))
    incoming: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text)
    notified: Mapped[dict[str, str]] = mapped_column(JSON)


class EscalationModel(Base):
    """One alert's escalation (``node.response.escalation.Escalation``).
    ``deadline`` is NULL once nothing is pending, so the tick's question "which
    deadlines are due" is one range scan of its index."""

    __tablename__ = "escalations"
    __table_args__ = (Index("ix_escalations_state_updated", "state", "updated"),)

    alert_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    started: Mapped[int] = mapped_column(BigInteger)
    step: Mapped[int] = mapped_column(Integer)
    deadline: Mapped[int | None] = mapped_column(BigInteger, index=True)
    state: Mapped[str] = mapped_column(String(16))
    acked_by: Mapped[str] = mapped_column(Text, default="")
    round: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    expires: Mapped[int | None] = mapped_column(BigInteger)
    urgent: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    updated: Mapped[int] = mapped_column(BigInteger)


class PageModel(Base):
    """One step's page of an escalation: ``pending`` → ``sending`` (with each
    person added to ``tried`` before their channels are called) → ``sent``,
    ``unreachable`` or ``skipped``. See ``node.response.desk``."""

    __tablename__ = "pages"
    __table_args__ = (Index("ix_pages_state_updated", "state", "updated"),)

    alert_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    targets: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    tried: Mapped[list[str]] = mapped_column(JSON)
    reached: Mapped[list[str]] = mapped_column(JSON)
    at: Mapped[int] = mapped_column(BigInteger)
    updated: Mapped[int] = mapped_column(BigInteger)


class NoteModel(Base):
    """A line of an alert's timeline. ``sealed`` is the text and author sealed to
    the node's own key; ``text``/``author`` are only set for notes written in the
    clear by versions before sealing."""

    __tablename__ = "notes"
    __table_args__ = (Index("ix_notes_alert_id_at", "alert_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[int] = mapped_column(BigInteger, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    text: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(Text)


class CheckinPlanModel(Base):
    """A check-in plan (``node.response.checkin_plan.Plan``) with what the desk
    keeps beside it: the note sealed to the node's own key, the recipients'
    keys and the alert a miss raised. ``alarm_at`` is when a miss raises the
    alarm (next deadline plus grace) while the plan is active, else NULL: the
    tick asks for ``alarm_at <= now`` on its index. ``link_token`` is a hash."""

    __tablename__ = "checkin_plans"
    __table_args__ = (Index("ix_checkin_plans_state_updated", "state", "updated"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    who: Mapped[str] = mapped_column(Text)
    region: Mapped[str] = mapped_column(String(64))
    next_deadline: Mapped[int] = mapped_column(BigInteger)
    interval_ms: Mapped[int] = mapped_column(BigInteger)
    grace_ms: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16))
    link_token: Mapped[str] = mapped_column(String(128), unique=True)
    last_ok: Mapped[int] = mapped_column(BigInteger)
    alarm_at: Mapped[int | None] = mapped_column(BigInteger, index=True)
    note: Mapped[str] = mapped_column(Text, default="")
    recipients: Mapped[list[str]] = mapped_column(JSON)
    alert: Mapped[str] = mapped_column(String(64), default="")
    updated: Mapped[int] = mapped_column(BigInteger)
    # field safety (migration 0009): the PINs' keyed hashes ("" = none), the page's
    # language ("" = the person's, else the browser's), when the plan began (the
    # earliest a tap may be dated) and when help was last asked for from its page
    pin: Mapped[str] = mapped_column(String(128), default="", server_default="")
    duress_pin: Mapped[str] = mapped_column(String(128), default="", server_default="")
    lang: Mapped[str] = mapped_column(String(8), default="", server_default="")
    started: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    sos_at: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class FieldPersonModel(Base):
    """A person in the field who is not a responder (``amparo person add``):
    their phone number (E.164) for SMS and the language of their pages."""

    __tablename__ = "field_people"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    phone: Mapped[str] = mapped_column(String(16), index=True)
    lang: Mapped[str] = mapped_column(String(8))
    updated: Mapped[int] = mapped_column(BigInteger)


class SosLinkModel(Base):
    """A person's standing SOS/check-in link (``amparo sos link``). The token is
    kept twice: hashed (``token_hash``, what a request is looked up by) and
    sealed to this node's own key (``token_sealed``, so the operator can print
    the link again; a copied database without the passphrase yields neither).
    PINs are keyed hashes (``node.response.field``), "" when none."""

    __tablename__ = "sos_links"

    person: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    token_sealed: Mapped[str] = mapped_column(Text)
    region: Mapped[str] = mapped_column(String(64))
    recipients: Mapped[list[str]] = mapped_column(JSON)
    pin: Mapped[str] = mapped_column(String(128), default="")
    duress_pin: Mapped[str] = mapped_column(String(128), default="")
    created: Mapped[int] = mapped_column(BigInteger)
    last_ok: Mapped[int] = mapped_column(BigInteger, default=0)
    sos_at: Mapped[int] = mapped_column(BigInteger, default=0)


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
