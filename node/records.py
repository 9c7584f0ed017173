"""Building this node's own signed records: its ``node`` descriptor and vouches.

Records are envelopes like any other, so they travel the mesh, are verified the
same way, and can be reconciled after downtime. Records and vouches are issued
without expiry (``x = 0``) and superseded by newer ones or revoked.
"""

from __future__ import annotations

from pathlib import Path

from node import prerotation, provision
from node.config import Config
from protocol import Envelope, NodeRecord, Revoke, Vouch, sign_envelope
from protocol.keys import Identity

PROTOCOL_MINOR = 1  # 1: threshold release (§13), receipts (§6.7), pre-rotation (§6.5): docs/protocol.md


def node_record(
    home: Path, config: Config, identity: Identity, now: int, *, next_key: bytes | None = None
) -> Envelope:
    """This node's descriptor, committing to its next key (``next_key``, else the
    home's ``next.commit``); after ``amparo keys recover``, also the recovery."""
    tls_fp = provision.tls_fingerprint(home)
    assert tls_fp is not None, "TLS certificate missing (created at init)"
    recovery = prerotation.recovering(home)
    body = NodeRecord(
        name=config.name,
        enc=identity.enc_public,
        tls=tls_fp,
        addresses=tuple(provision.advertised_addresses(config)),
        minor=PROTOCOL_MINOR,
        next_key=next_key or prerotation.commitment(home),
        recovers=recovery.old if recovery else None,
        old_compromised=bool(recovery and recovery.compromised),
    )
    return sign_envelope(identity, body, created=now, expires=0)


def vouch(identity: Identity, subject: bytes, enc: bytes, name: str, now: int, *, verified: bool) -> Envelope:
    body = Vouch(subject=subject, enc=enc, name=name, level="verified" if verified else "introduced")
    return sign_envelope(identity, body, created=now, expires=0)


def revoke_vouch(identity: Identity, subject: bytes, now: int, reason: str = "") -> Envelope:
    return sign_envelope(identity, Revoke(subject=subject, reason=reason), created=now, expires=0)
