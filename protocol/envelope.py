"""The signed envelope (SPEC §3.1): the only thing nodes exchange.

``decode`` is the single gate for bytes from the network: size cap, bounded
unpacking, canonical re-encoding, shape, signature, type, lifetime, clock
window, then body validation. It raises only ``ProtocolError``. The id is BLAKE2b-256 of the exact
bytes, which are canonical, so an id names one envelope and nothing else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final

from protocol import codec, fields, sealing, signing, threshold
from protocol.alert import Alert
from protocol.alert import wire_is_plain as alert_wire_is_plain
from protocol.bodies import Ack, NodeRecord, Revoke, Vouch
from protocol.errors import (
    BadField,
    Expired,
    FromTheFuture,
    Malformed,
    ProtocolError,
    UnknownType,
    UnsupportedVersion,
)
from protocol.keys import Identity
from protocol.receipt import RECEIPT_MAX_LIFETIME_MS, Receipt
from protocol.sealing import RandomBytes, Sealed
from protocol.threshold import Endorsement, Objection, Proposal, Release

VERSION: Final = 1
MAX_SKEW_MS: Final = 10 * 60 * 1000
MAX_LIFETIME_MS: Final = 90 * 24 * 3600 * 1000
ID_BYTES: Final = 32

Body = Alert | Ack | Vouch | Revoke | NodeRecord | Receipt | Proposal | Endorsement | Objection
Sealable = Alert | Ack | Receipt | Proposal | Endorsement | Objection
BODY_TYPES: Final[dict[str, Any]] = {
    "alert": Alert,
    "ack": Ack,
    "vouch": Vouch,
    "revoke": Revoke,
    "node": NodeRecord,
    # threshold release (§13): between the named organizations only, so always sealed
    "proposal": Proposal,
    "endorsement": Endorsement,
    "objection": Objection,
}
# Delivery receipts (§6.7), kept apart from the types above: always sealed, short-lived.
BODY_TYPES["receipt"] = Receipt
ALWAYS_SEALED: Final = frozenset({"proposal", "endorsement", "objection"})
SEALABLE: Final = frozenset({"alert", "ack", "receipt"}) | ALWAYS_SEALED
NEVER_EXPIRES: Final = frozenset({"revoke", "vouch", "node"})  # may carry x = 0
_ENVELOPE_KEYS: Final = frozenset({"v", "t", "a", "c", "x", "b", "s"})


@dataclass(frozen=True, slots=True)
class Envelope:
    """A verified envelope. Build one with ``sign_envelope``/``seal_envelope`` or
    ``decode``; ``raw`` holds the exact bytes and ``id`` their BLAKE2b-256."""

    type: str
    author: bytes
    created: int
    expires: int
    body: Body | Sealed
    signature: bytes
    raw: bytes
    id: bytes
    version: int = VERSION

    @property
    def sealed(self) -> bool:
        return isinstance(self.body, Sealed)

    def header(self) -> dict[str, Any]:
        return sealing.header_map(self.type, self.author, self.created, self.expires)


def envelope_id(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, digest_size=ID_BYTES).digest()


def claimed(raw: bytes) -> tuple[bytes, str, int | None] | None:
    """The author key, the type and the creation time an envelope's bytes name,
    read within the decoder's limits but with nothing checked (no canonical form,
    no signature): what a relay screens a push by before ``decode``
    (``node.admission``), never a fact. None when the bytes are not a map naming
    a 32-byte author and a text type; the time is None when it is not an integer
    in 0..2**64-1 (verification refuses it)."""
    if not isinstance(raw, bytes) or len(raw) > codec.MAX_ENVELOPE_BYTES:
        return None
    try:
        doc = codec.unpack_bounded(raw, codec.MAX_ENVELOPE_BYTES)
    except ProtocolError:
        return None
    if not isinstance(doc, dict):
        return None
    author, kind = doc.get("a"), doc.get("t")
    if not isinstance(author, bytes) or len(author) != 32 or not isinstance(kind, str):
        return None
    created = doc.get("c")
    if type(created) is not int or not 0 <= created <= codec.INT_MAX:
        created = None
    return author, kind, created


def encode(envelope: Envelope) -> bytes:
    """The envelope's canonical bytes (what was signed and what its id hashes)."""
    return envelope.raw


def sign_envelope(identity: Identity, body: Body, *, created: int, expires: int) -> Envelope:
    """Sign a plain (unsealed) envelope; ``created``/``expires`` are Unix ms."""
    if isinstance(body, Alert) and body.scope == "restricted":
        raise BadField("a restricted alert must be sealed (use seal_envelope)", field="alert.scope")
    if isinstance(body, Receipt):
        raise BadField("a receipt must be sealed to the alerts' author (use seal_envelope)", field="b")
    if body.kind in ALWAYS_SEALED:
        raise BadField(f"a {body.kind} is always sealed (use seal_envelope)", field="t")
    return _sign(identity, body.kind, body.to_wire(), created, expires)


def sign_release(identity: Identity, alert: Alert, release: Release, *, created: int) -> Envelope:
    """The released alert (§13.4): ``alert`` with its proof in ``ext.release``,
    signed by ``identity`` (one of the endorsers), living the endorsed lifetime.
    Decoded before it is returned, so a release that does not hold is refused here."""
    return _sign(identity, "alert", threshold.release_wire(alert, release), created, created + release.life)


def seal_envelope(
    identity: Identity,
    body: Sealable,
    *,
    created: int,
    expires: int,
    recipients: list[bytes],
    random: RandomBytes,
) -> Envelope:
    """Sign an envelope whose body is sealed to ``recipients`` (X25519 keys).

    Include the author's own key among the recipients if it must read it later."""
    if isinstance(body, Alert) and body.scope != "restricted":
        raise BadField("only restricted alerts are sealed", field="alert.scope")
    header = sealing.header_map(body.kind, identity.sign_public, created, expires)
    sealed = sealing.seal(identity, header, body.to_wire(), recipients, random)
    return _sign(identity, body.kind, sealed.to_bytes(), created, expires)


def _sign(identity: Identity, kind: str, body: Any, created: int, expires: int) -> Envelope:
    doc = {"a": identity.sign_public, "b": body, "c": created, "t": kind, "v": VERSION, "x": expires}
    _check_lifetime(kind, created, expires)
    signature = signing.sign(identity.signing_key, signing.PURPOSE_ENVELOPE, codec.encode(doc))
    raw = codec.encode(doc | {"s": signature})
    return decode(raw, now=created)


def decode(data: bytes, *, now: int, check_time: bool = True) -> Envelope:
    """Verify and parse one envelope. ``now`` is Unix ms.

    ``check_time=False`` is for re-reading envelopes already accepted and stored
    (their expiry passing later must not make the store unreadable)."""
    doc = codec.decode(data, max_size=codec.MAX_ENVELOPE_BYTES)
    try:
        return _decode_doc(doc, bytes(data), now, check_time)
    except ProtocolError:
        raise
    except Exception as exc:
        raise Malformed(f"unexpected envelope content ({type(exc).__name__})") from None


def reread(data: bytes, *, stored_id: bytes) -> Envelope:
    """Parse an envelope this node verified with ``decode`` and stored itself,
    without checking its signature again.

    For a node's start, which reads its whole store back: the Ed25519 check is
    two thirds of ``decode`` (docs/performance.md), and bytes that passed it
    once do not change unless the disk does, which ``stored_id`` catches (the
    id is a BLAKE2b hash of the bytes: a flipped bit is ``Malformed``). Whoever
    can write the store can also rewrite the node's code, so a second signature
    check would not stop them. Everything else ``decode`` checks, it checks."""
    doc = codec.decode(data, max_size=codec.MAX_ENVELOPE_BYTES)
    if envelope_id(data) != stored_id:
        raise Malformed("stored bytes do not hash to their id (the store is damaged)")
    try:
        return _decode_doc(doc, bytes(data), 0, False, verify=False)
    except ProtocolError:
        raise
    except Exception as exc:
        raise Malformed(f"unexpected envelope content ({type(exc).__name__})") from None


def _decode_doc(doc: Any, raw: bytes, now: int, check_time: bool, *, verify: bool = True) -> Envelope:
    if not isinstance(doc, dict):
        raise Malformed("an envelope is a map")
    missing, extra = _ENVELOPE_KEYS - set(doc), set(doc) - _ENVELOPE_KEYS
    if missing or extra:
        raise Malformed(f"envelope keys: missing {sorted(missing)}, unexpected {sorted(extra)}")
    if doc["v"] != VERSION or isinstance(doc["v"], bool):
        raise UnsupportedVersion(f"protocol version {doc['v']!r} is not {VERSION}", field="v")
    author, created, expires = doc["a"], doc["c"], doc["x"]
    if not isinstance(author, bytes) or len(author) != 32:
        raise BadField("must be a 32-byte Ed25519 key", field="a")
    for name, value in (("c", created), ("x", expires)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise BadField("must be a non-negative integer (Unix ms)", field=name)
    # The signature comes before the refusals that do not blame the sender (an
    # unknown type, the clock): a forgery is a forgery whatever its type or age,
    # so a relay can never pass off unverified bytes as merely expired.
    if verify:
        signing.verify_parts(author, signing.PURPOSE_ENVELOPE, _unsigned_parts(doc, raw), doc["s"])
    kind = doc["t"]
    if not isinstance(kind, str) or kind not in BODY_TYPES:
        raise UnknownType(f"unknown envelope type {kind!r}", field="t")
    _check_lifetime(kind, created, expires)
    if check_time:
        _check_clock(created, expires, now)
    if kind in ALWAYS_SEALED and not isinstance(doc["b"], bytes):
        raise BadField(f"a {kind} body is always sealed", field="b")
    body = _body(kind, doc["b"])
    envelope = _build_envelope(kind, author, created, expires, body, doc["s"], raw, envelope_id(raw), VERSION)
    _check_semantics(envelope)
    if isinstance(body, Alert) and fields.EXT in doc["b"] and threshold.RELEASE_EXT in doc["b"][fields.EXT]:
        threshold.check_release(doc["b"], body, author, created, expires)
    return envelope


_build_envelope = fields.frozen_builder(Envelope)
_FIXMAP_7, _FIXMAP_6 = 0x87, b"\x86"


def _unsigned_bytes(doc: dict[str, Any], raw: bytes) -> bytes:
    return b"".join(_unsigned_parts(doc, raw))


def _unsigned_parts(doc: dict[str, Any], raw: bytes) -> tuple[bytes, memoryview, bytes]:
    """What the signature covers: the canonical encoding of the envelope map
    without ``s``, cut out of ``raw`` instead of packing the whole map again.

    ``raw`` is the canonical encoding of ``doc`` (``codec.decode`` compared them),
    so it is a 7-entry map header followed by the pairs in key order
    a, b, c, s, t, v, x. Without ``s`` it is a 6-entry header, the pairs before
    ``s`` and the pairs after it; the lengths of ``s``'s pair and of what follows
    are those of their own canonical encodings, so the cut is exact whatever the
    values hold (a value is never searched for in the bytes)."""
    after = codec.encode_decoded({"t": doc["t"], "v": doc["v"], "x": doc["x"]})[1:]  # minus its header
    signature = doc["s"]
    if type(signature) is bytes and len(signature) < 256:  # msgpack bin 8: 2-byte header
        s_pair = 4 + len(signature)  # and "s", a 1-byte fixstr header + 1 byte
    else:
        s_pair = 2 + len(codec.encode_decoded(signature))
    end = len(raw) - len(after) - s_pair
    if raw[0] != _FIXMAP_7 or raw[end : end + 2] != b"\xa1s" or raw[end + s_pair :] != after:
        raise Malformed("envelope bytes do not have the canonical layout")  # pragma: no cover - decode checked
    # parts, not one string: the verifier joins them once with its prefix and the signature
    return _FIXMAP_6, memoryview(raw)[1:end], after


def _check_lifetime(kind: str, created: int, expires: int) -> None:
    if expires == 0 and kind in NEVER_EXPIRES:
        return
    if expires <= created:
        raise BadField("expiry must be after creation", field="x")
    if expires - created > MAX_LIFETIME_MS:
        raise BadField("lifetime longer than 90 days", field="x")
    if kind == "receipt" and expires - created > RECEIPT_MAX_LIFETIME_MS:
        raise BadField("a receipt lives at most 24 hours", field="x")


def _check_clock(created: int, expires: int, now: int) -> None:
    if created > now + MAX_SKEW_MS:
        raise FromTheFuture(f"created {created - now} ms in the future (limit {MAX_SKEW_MS})", field="c")
    if expires != 0 and expires < now:
        raise Expired(f"expired {now - expires} ms ago", field="x")


def _body(kind: str, wire: Any) -> Body | Sealed:
    if isinstance(wire, bytes):
        if kind not in SEALABLE:
            raise BadField(f"a {kind} body cannot be sealed", field="b")
        return Sealed.from_bytes(wire)
    body: Body = BODY_TYPES[kind].from_wire(wire)
    if kind == "alert" and alert_wire_is_plain(wire):  # the compare below, shown without building a map
        return body
    if fields.without_extensions(body.to_wire()) != fields.without_extensions(wire):
        raise BadField("body carries default-valued optional fields (not canonical)", field="b")
    return body


def _check_semantics(envelope: Envelope) -> None:
    body = envelope.body
    if isinstance(body, Alert) and body.scope == "restricted":
        raise BadField("a restricted alert must be sealed", field="alert.scope")
    if isinstance(body, Receipt):
        raise BadField("a receipt must be sealed", field="b")
    if isinstance(body, Revoke) and body.compromised and body.subject != envelope.author:
        raise BadField("only a key itself can declare itself compromised", field="revoke.subject")
    if (
        isinstance(body, Vouch | Revoke)
        and body.subject == envelope.author
        and not (isinstance(body, Revoke) and body.compromised)
    ):
        raise BadField("a node cannot vouch for or revoke itself", field=f"{body.kind}.subject")
    if isinstance(body, NodeRecord) and envelope.author in (body.recovers, body.prev):
        raise BadField("a key cannot hand over to or recover itself", field="node.prev")
    if isinstance(body, NodeRecord) and body.next_key == signing.next_key_commitment(envelope.author):
        raise BadField("the next key must differ from the key signing the record", field="node.ext.next")
    if isinstance(body, NodeRecord) and body.prev is not None and body.prev_sig is not None:
        signing.verify(
            body.prev,
            signing.PURPOSE_ROTATE,
            rotation_payload(envelope.author, envelope.created),
            body.prev_sig,
        )


def rotation_payload(new_key: bytes, created: int) -> bytes:
    """What the old key signs to hand over to the new one."""
    return codec.encode({"c": created, "new": new_key})


def unseal(envelope: Envelope, identity: Identity) -> Sealable:
    """Open a sealed envelope addressed to ``identity``; verify the inner signature
    and validate the body. Raises only ``ProtocolError``."""
    if not isinstance(envelope.body, Sealed):
        raise BadField("envelope is not sealed", field="b")
    try:
        wire = sealing.unseal(envelope.body, envelope.header(), identity)
        body = _body(envelope.type, wire)
    except ProtocolError:
        raise
    except Exception as exc:
        raise Malformed(f"unexpected sealed content ({type(exc).__name__})") from None
    if isinstance(body, Alert) and body.scope != "restricted":
        raise BadField("a sealed alert must have scope restricted", field="alert.scope")
    if isinstance(body, Receipt) and any(at > envelope.created for _, at in body.held):
        raise BadField("an alert stored after the receipt was made", field="receipt.held")
    if isinstance(body, Proposal) and envelope.author not in body.endorsers:
        raise BadField("the proposer must be one of the endorsers", field="proposal.endorsers")
    assert isinstance(body, Alert | Ack | Receipt | Proposal | Endorsement | Objection)
    return body
