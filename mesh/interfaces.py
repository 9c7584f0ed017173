"""What the mesh works on, and how it refuses.

The mesh never sees envelopes: the node layer verifies signatures and format
first and hands over this abstract `Item`. Keeping `mesh/` free of
`protocol/` lets both be written, fuzzed and simulated independently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeAlias, TypeVar

ID_BYTES = 32

#: (created, id): the order reconciliation and the seen-set agree on.
Key: TypeAlias = tuple[int, bytes]

KINDS = frozenset({"alert", "ack", "vouch", "revoke", "node", "proposal", "endorsement", "objection"})


@dataclass(frozen=True, slots=True)
class Item:
    """One verified, signed envelope as the mesh sees it. `raw` is the exact bytes."""

    id: bytes  # 32-byte BLAKE2b id of the envelope
    created: int  # Unix ms
    expires: int  # Unix ms; 0 = never (revocations)
    author: bytes  # 32-byte Ed25519 public key of the author
    kind: str  # "alert" | "ack" | "vouch" | "revoke" | "node" | "receipt" | "proposal" | "endorsement" | "objection"
    raw: bytes
    subject: bytes | None = None  # vouch/revoke: the key vouched for / revoked; node: the key it rotates from
    compromised: bool = False  # revoke: author declares its own key compromised; recovery: the old key is
    # node records (pre-rotation, docs/protocol.md §6.5): the hash this record commits the
    # author's next key to; the same hash of the author's own key; a recovery (by commitment)
    commits: bytes | None = None
    author_commitment: bytes | None = None
    recovery: bool = False

    @property
    def key(self) -> Key:
        return (self.created, self.id)

    def expired(self, now: int) -> bool:
        """Revocations (expires == 0) never expire: they must outlive what they revoke."""
        return self.expires != 0 and self.expires < now

    @property
    def rotates(self) -> bool:
        """A node record by a new key that the old key (``subject``) handed over to."""
        return self.kind == "node" and self.subject is not None and self.subject != self.author

    @property
    def recovers_compromised(self) -> bool:
        """A recovery record that also declares the key it recovers compromised."""
        return self.rotates and self.recovery and self.compromised

    @property
    def declares_compromise(self) -> bool:
        """A key saying "I am compromised" can only hurt itself, so anyone may relay it."""
        return self.kind == "revoke" and self.compromised and self.subject == self.author


class MeshError(Exception):
    """The remote side sent something the mesh refuses.

    `code` is stable and machine-readable (`bad-message`, `too-large`, …) so the
    node layer can count and score it; `message` is for humans.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


StateT = TypeVar("StateT")
CauseT = TypeVar("CauseT")


@dataclass(frozen=True, slots=True)
class Transition(Generic[StateT, CauseT]):
    """One row of a state machine's transition table: in ``source``, ``cause``
    moves to ``target``. The tables are data so the docs' tables are checked
    against them (tests/mesh/test_docs.py)."""

    source: StateT
    cause: CauseT
    target: StateT
