"""Threshold release, k of n (docs/protocol.md §13): a joint public alert.

A **proposal** (always sealed to the n named organizations) carries the
alert-to-be, the endorsers' keys, the threshold k and the released alert's
lifetime; its envelope's expiry is the **deadline**. Each endorser answers with
an **endorsement** (a detached signature, purpose ``amparo/v1/endorse``, over the
*statement*: proposal id, alert hash, endorsers, threshold, lifetime, deadline)
or an **objection**, both sealed to the same organizations.

The **release** is an ordinary ``alert`` envelope signed by one endorser whose
body carries the proof in ``ext.release``: the statement's fields and at least k
endorsement signatures. Every node rebuilds the statement from the alert it
holds and checks the threshold itself (``check_release``), so nobody has to
trust the releaser. A release that does not hold is refused with
``bad-endorsement``, which never blames the relay (an older relay passes ``ext``
on unread, SPEC §8); the outer signature is checked before, and blames as ever.

Pure: no clock, no I/O. The caller passes times in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import nacl.signing

from protocol import codec, fields, signing
from protocol.alert import Alert
from protocol.errors import BadEndorsement, BadField, ProtocolError

RELEASE_EXT: Final = "release"
MIN_ENDORSERS: Final = 2
MAX_ENDORSERS: Final = 16
MAX_LIFE_MS: Final = 90 * 24 * 3600 * 1000
MAX_OBJECTION: Final = 500
HASH_BYTES: Final = 32
_PROPOSAL_KEYS = frozenset(("alert", "endorsers", "life", "threshold"))
_VOTE_KEYS = frozenset(("proposal", "alert", "sig"))
_OBJECTION_KEYS = frozenset(("proposal", "alert", "reason"))
_RELEASE_KEYS = frozenset(("proposal", "endorsers", "threshold", "life", "deadline", "sigs"))


def alert_hash(alert_wire: Mapping[str, Any]) -> bytes:
    """BLAKE2b-256 (person ``amparo/v1/alert``) of the canonical alert body without
    ``ext.release``: what endorsers agree to, whoever later signs the envelope."""
    return hashlib.blake2b(codec.encode(_without_release(alert_wire)), digest_size=HASH_BYTES,
                           person=signing.PERSON_ALERT).digest()  # fmt: skip


def _without_release(wire: Mapping[str, Any]) -> dict[str, Any]:
    doc = dict(wire)
    ext = doc.get(fields.EXT)
    if isinstance(ext, dict) and RELEASE_EXT in ext:
        rest = {k: v for k, v in ext.items() if k != RELEASE_EXT}
        if rest:
            doc[fields.EXT] = rest
        else:
            del doc[fields.EXT]
    return doc


def _endorsers(value: object, path: str) -> tuple[bytes, ...]:
    if not isinstance(value, list) or not MIN_ENDORSERS <= len(value) <= MAX_ENDORSERS:
        raise BadField(f"must list {MIN_ENDORSERS} to {MAX_ENDORSERS} keys", field=f"{path}.endorsers")
    if not all(isinstance(k, bytes) and len(k) == fields.KEY_BYTES for k in value):
        raise BadField("every endorser is a 32-byte Ed25519 key", field=f"{path}.endorsers")
    if len(set(value)) != len(value):
        raise BadField("an endorser is named twice", field=f"{path}.endorsers")
    return tuple(value)


def _threshold(doc: Mapping[str, Any], path: str, endorsers: tuple[bytes, ...]) -> int:
    return fields.integer(doc, "threshold", path, low=1, high=len(endorsers))


@dataclass(frozen=True, slots=True)
class Statement:
    """What every endorsement signs (purpose ``amparo/v1/endorse``)."""

    proposal: bytes
    alert: bytes
    endorsers: tuple[bytes, ...]
    threshold: int
    life: int
    deadline: int

    def payload(self) -> bytes:
        return codec.encode(
            {
                "alert": self.alert,
                "deadline": self.deadline,
                "endorsers": list(self.endorsers),
                "life": self.life,
                "proposal": self.proposal,
                "threshold": self.threshold,
            }
        )

    def sign(self, signing_key: nacl.signing.SigningKey) -> bytes:
        return signing.sign(signing_key, signing.PURPOSE_ENDORSE, self.payload())

    def verify(self, key: bytes, signature: bytes) -> None:
        """Raise ``BadSignature`` unless ``key`` endorsed exactly this."""
        signing.verify(key, signing.PURPOSE_ENDORSE, self.payload(), signature)


@dataclass(frozen=True, slots=True)
class Proposal:
    """The alert-to-be, who must endorse it and how many must (always sealed)."""

    alert: Alert
    endorsers: tuple[bytes, ...]
    threshold: int
    life: int
    kind: str = field(default="proposal", init=False, repr=False)

    def __post_init__(self) -> None:
        Proposal.from_wire(self.to_wire())

    def to_wire(self) -> dict[str, Any]:
        return {"alert": self.alert.to_wire(), "endorsers": list(self.endorsers), "life": self.life,
                "threshold": self.threshold}  # fmt: skip

    def statement(self, proposal_id: bytes, deadline: int) -> Statement:
        return Statement(proposal_id, alert_hash(self.alert.to_wire()), self.endorsers, self.threshold,
                         self.life, deadline)  # fmt: skip

    @classmethod
    def from_wire(cls, value: object, path: str = "proposal") -> Proposal:
        doc = fields.require_map(value, path, _PROPOSAL_KEYS)
        alert = Alert.from_wire(doc.get("alert"), f"{path}.alert")
        if alert.scope == "restricted" or alert.msg_type != "alert":
            raise BadField("a proposal releases a new public or members alert", field=f"{path}.alert")
        endorsers = _endorsers(doc.get("endorsers"), path)
        return fields.build_frozen(
            cls,
            alert=alert,
            endorsers=endorsers,
            threshold=_threshold(doc, path, endorsers),
            life=fields.integer(doc, "life", path, low=1, high=MAX_LIFE_MS),
            kind="proposal",
        )


@dataclass(frozen=True, slots=True)
class Endorsement:
    """An endorser agrees: ``sig`` is its signature over the proposal's statement."""

    proposal: bytes
    alert: bytes
    sig: bytes
    kind: str = field(default="endorsement", init=False, repr=False)

    def __post_init__(self) -> None:
        Endorsement.from_wire(self.to_wire())

    def to_wire(self) -> dict[str, Any]:
        return {"alert": self.alert, "proposal": self.proposal, "sig": self.sig}

    @classmethod
    def from_wire(cls, value: object, path: str = "endorsement") -> Endorsement:
        doc = fields.require_map(value, path, _VOTE_KEYS)
        sig = doc.get("sig")
        if not isinstance(sig, bytes) or len(sig) != signing.SIGNATURE_BYTES:
            raise BadField("must be a 64-byte Ed25519 signature", field=f"{path}.sig")
        return fields.build_frozen(
            cls, proposal=fields.key32(doc, "proposal", path), alert=fields.key32(doc, "alert", path), sig=sig,
            kind="endorsement",
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Objection:
    """An endorser refuses, and may say why; objections are shown, never counted."""

    proposal: bytes
    alert: bytes
    reason: str = ""
    kind: str = field(default="objection", init=False, repr=False)

    def __post_init__(self) -> None:
        Objection.from_wire(self.to_wire())

    def to_wire(self) -> dict[str, Any]:
        return fields.drop_defaults({"alert": self.alert, "proposal": self.proposal, "reason": self.reason})

    @classmethod
    def from_wire(cls, value: object, path: str = "objection") -> Objection:
        doc = fields.require_map(value, path, _OBJECTION_KEYS)
        return fields.build_frozen(
            cls,
            proposal=fields.key32(doc, "proposal", path),
            alert=fields.key32(doc, "alert", path),
            reason=fields.text(doc, "reason", path, max_chars=MAX_OBJECTION, multiline=True),
            kind="objection",
        )


@dataclass(frozen=True, slots=True)
class Release:
    """The proof a released alert carries in ``ext.release``."""

    proposal: bytes
    endorsers: tuple[bytes, ...]
    threshold: int
    life: int
    deadline: int
    sigs: tuple[tuple[bytes, bytes], ...]

    def to_wire(self) -> dict[str, Any]:
        return {"deadline": self.deadline, "endorsers": list(self.endorsers), "life": self.life,
                "proposal": self.proposal, "sigs": [[k, s] for k, s in self.sigs], "threshold": self.threshold}  # fmt: skip

    def statement(self, alert_wire: Mapping[str, Any]) -> Statement:
        return Statement(self.proposal, alert_hash(alert_wire), self.endorsers, self.threshold, self.life,
                         self.deadline)  # fmt: skip

    @property
    def signers(self) -> tuple[bytes, ...]:
        return tuple(k for k, _ in self.sigs)

    @classmethod
    def from_wire(cls, value: object, path: str = "alert.ext.release") -> Release:
        """Shape only; ``check_release`` verifies. Every refusal is ``bad-endorsement``."""
        try:
            doc = fields.require_map(value, path, _RELEASE_KEYS)
            endorsers = _endorsers(doc.get("endorsers"), path)
            return cls(
                proposal=_required_key(doc, "proposal", path),
                endorsers=endorsers,
                threshold=_threshold(doc, path, endorsers),
                life=fields.integer(doc, "life", path, low=1, high=MAX_LIFE_MS),
                deadline=fields.integer(doc, "deadline", path, low=1, high=2**62),
                sigs=_sigs(doc.get("sigs"), endorsers, path),
            )
        except BadEndorsement:
            raise
        except ProtocolError as exc:
            raise BadEndorsement(exc.message) from None


def _required_key(doc: Mapping[str, Any], key: str, path: str) -> bytes:
    value = fields.key32(doc, key, path)
    assert value is not None
    return value


def _sigs(value: object, endorsers: tuple[bytes, ...], path: str) -> tuple[tuple[bytes, bytes], ...]:
    where = f"{path}.sigs"
    if not isinstance(value, list) or not 1 <= len(value) <= len(endorsers):
        raise BadEndorsement("must list 1 to n [key, signature] pairs", field=where)
    pairs = []
    for i, pair in enumerate(value):
        if not (
            isinstance(pair, list)
            and len(pair) == 2
            and isinstance(pair[0], bytes)
            and isinstance(pair[1], bytes)
            and len(pair[1]) == signing.SIGNATURE_BYTES
        ):
            raise BadEndorsement("must be [32-byte key, 64-byte signature]", field=f"{where}[{i}]")
        pairs.append((bytes(pair[0]), bytes(pair[1])))
    order = {k: i for i, k in enumerate(endorsers)}
    if any(k not in order for k, _ in pairs):
        raise BadEndorsement("a signer is not among the named endorsers", field=where)
    ranks = [order[k] for k, _ in pairs]
    if ranks != sorted(set(ranks)):
        raise BadEndorsement("signers are distinct and in the endorsers' order", field=where)
    return tuple(pairs)


def release_of(alert_wire: object) -> Release | None:
    """The release proof of an alert body map, or None for an ordinary alert."""
    if not isinstance(alert_wire, dict):
        return None
    ext = alert_wire.get(fields.EXT)
    if not isinstance(ext, dict) or RELEASE_EXT not in ext:
        return None
    return Release.from_wire(ext[RELEASE_EXT])


def check_release(
    alert_wire: Mapping[str, Any], alert: Alert, author: bytes, created: int, expires: int
) -> Release:
    """Verify a released alert: k distinct named endorsers each signed this alert's
    statement, the envelope was made by one of them before the deadline and lives
    exactly the agreed lifetime. Raises ``BadEndorsement`` (silent, §9)."""
    release = release_of(alert_wire)
    assert release is not None
    if alert.msg_type != "alert" or alert.scope == "restricted":
        raise BadEndorsement("only a new public or members alert is released", field="alert.ext.release")
    if author not in release.endorsers:
        raise BadEndorsement("the releaser is not one of the endorsers", field="a")
    if created > release.deadline:
        raise BadEndorsement("released after the proposal's deadline", field="c")
    if expires - created != release.life:
        raise BadEndorsement("the alert's lifetime is not the one endorsed", field="x")
    if len(release.sigs) < release.threshold:
        raise BadEndorsement(
            f"{len(release.sigs)} endorsements, {release.threshold} needed", field="alert.ext.release.sigs"
        )
    statement = release.statement(alert_wire)
    for i, (key, sig) in enumerate(release.sigs):
        try:
            statement.verify(key, sig)
        except ProtocolError:
            raise BadEndorsement("endorsement signature does not verify",
                                 field=f"alert.ext.release.sigs[{i}]") from None  # fmt: skip
    return release


def release_wire(alert: Alert, release: Release) -> dict[str, Any]:
    """The body map of a released alert: the alert and its proof."""
    return alert.to_wire() | {fields.EXT: {RELEASE_EXT: release.to_wire()}}
