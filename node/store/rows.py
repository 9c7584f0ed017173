"""The plain values the store hands out: envelopes as stored, and peers.

These are frozen dataclasses rather than ORM objects so that callers never hold
a live database session, and so that what leaves the store is exactly what the
schema promises. ``StoredEnvelope.from_envelope`` is the one place where indexed
columns are derived from a verified envelope.

Security rule: derived columns come only from *plain* bodies. A sealed
(``restricted``) envelope is stored as ciphertext plus its visible header; the
node may decrypt it in memory, but nothing it learns that way is ever written,
so a seized database reveals no restricted content and no links between a
restricted alert and its updates or acks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from protocol import Ack, Alert, Envelope, NodeRecord, Revoke, Vouch

PEER_STATUSES: Final = ("active", "removed")


@dataclass(frozen=True, slots=True)
class StoredEnvelope:
    """One envelope as kept by the store; ``raw`` is the exact signed bytes.

    ``seq`` is 0 until the store assigns it; after that it is this node's local,
    never-reused insertion counter (the catch-up high-water marks refer to it).
    ``refs`` links updates, cancels and acks to the alert they concern;
    ``regions`` are the alert's own area codes, in body order."""

    id: bytes
    type: str
    author: bytes
    created: int
    expires: int
    raw: bytes = field(repr=False)
    received_at: int
    from_peer: bytes | None
    sealed: bool
    refs: bytes | None = None
    subject: bytes | None = None
    compromised: bool = False
    status: str | None = None
    severity: str | None = None
    msg_type: str | None = None
    regions: tuple[str, ...] = ()
    seq: int = 0

    @classmethod
    def from_envelope(cls, env: Envelope, *, received_at: int, from_peer: bytes | None) -> StoredEnvelope:
        """Derive the indexed columns from a verified envelope's plain body.

        A sealed body yields no derived columns at all (see the module docstring).
        One constructor call per envelope (no ``replace``): this runs for every
        envelope a node ingests."""
        body = env.body
        refs = subject = status = severity = msg_type = None
        compromised = False
        regions: tuple[str, ...] = ()
        if isinstance(body, Alert):
            refs = body.references[0] if body.msg_type != "alert" and body.references else None
            status, severity, msg_type = body.status, body.severity, body.msg_type
            regions = tuple(dict.fromkeys(area.region for area in body.areas))
        elif isinstance(body, Ack):
            refs = body.alert
        elif isinstance(body, Vouch):
            subject = body.subject
        elif isinstance(body, Revoke):
            subject, compromised = body.subject, body.compromised
        # node records and sealed bodies derive nothing
        return cls(
            id=env.id,
            type=env.type,
            author=env.author,
            created=env.created,
            expires=env.expires,
            raw=env.raw,
            received_at=received_at,
            from_peer=from_peer,
            sealed=env.sealed,
            refs=refs,
            subject=subject,
            compromised=compromised,
            status=status,
            severity=severity,
            msg_type=msg_type,
            regions=regions,
        )


PEER_STANDINGS = ("good", "throttled", "cut-off")  # the values of mesh.Standing


@dataclass(frozen=True, slots=True)
class PeerStanding:
    """The mesh's judgement of a peer as persisted (``mesh.SavedStanding`` in
    storage terms): ``banned_until`` is wall-clock Unix ms, set while cut off."""

    standing: str
    score: float
    banned_until: int = 0


@dataclass(frozen=True, slots=True)
class PeerRow:
    """A node this node exchanges traffic with directly.

    ``mark`` is the catch-up high-water mark: the highest local ``seq`` this peer
    is known to hold, so a reconnect resumes pushing after it (STYLE principle 6).
    ``status`` is ``removed`` rather than a deleted row so that names of former
    peers still label their old alerts. ``standing`` is None until the mesh
    first judges the peer; it is written only by ``set_peer_standing`` (never by
    ``upsert_peer``, so a fresh node record cannot lift a ban)."""

    key: bytes
    name: str
    enc_key: bytes
    addresses: list[str]
    tls_fp: bytes
    node_record_id: bytes | None
    added_at: int
    last_seen: int | None = None
    mark: int = 0
    status: str = "active"
    standing: PeerStanding | None = None
    verified: bool = False  # the operator confirmed the fingerprint when pairing

    @classmethod
    def from_record(
        cls,
        record: Envelope,
        *,
        added_at: int,
        last_seen: int | None,
        mark: int = 0,
        status: str = "active",
        verified: bool = False,
    ) -> PeerRow:
        """The peer as its signed ``node`` record describes it: name, keys, addresses
        and TLS pin come from the record and nowhere else (pairing, and every newer
        record the peer publishes)."""
        body = record.body
        assert isinstance(body, NodeRecord)
        return cls(
            key=record.author,
            name=body.name,
            enc_key=body.enc,
            addresses=list(body.addresses),
            tls_fp=body.tls,
            node_record_id=record.id,
            added_at=added_at,
            last_seen=last_seen,
            mark=mark,
            status=status,
            verified=verified,
        )
