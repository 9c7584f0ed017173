"""The non-alert body types (SPEC §3.5): ack, vouch, revoke and node.

Each is a frozen dataclass with one ``to_wire`` and one ``from_wire``; the
decoder additionally requires the received map to equal ``to_wire()`` of what it
parsed, so every body has exactly one encoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from protocol import fields
from protocol.errors import BadField

ACK_STATES: Final = ("responding", "seen", "unable")
VOUCH_LEVELS: Final = ("verified", "introduced")
MAX_NAME: Final = 64
MAX_NOTE: Final = 1000
MAX_REASON: Final = 500
MAX_ADDRESSES: Final = 8
MAX_ADDRESS_CHARS: Final = 255
TLS_FINGERPRINT_BYTES: Final = 32


@dataclass(frozen=True, slots=True)
class Ack:
    """An organization acknowledges an alert: it is responding, has seen it, or cannot help."""

    alert: bytes
    state: str
    note: str = ""
    kind: str = field(default="ack", init=False, repr=False)

    def __post_init__(self) -> None:
        Ack.from_wire(self.to_wire())

    def to_wire(self) -> dict[str, Any]:
        return fields.drop_defaults({"alert": self.alert, "state": self.state, "note": self.note})

    @classmethod
    def from_wire(cls, value: object, path: str = "ack") -> Ack:
        doc = fields.require_map(value, path, ("alert", "state", "note", fields.EXT))
        fields.check_extensions(doc, path)
        alert = fields.key32(doc, "alert", path)
        assert alert is not None
        return fields.build_frozen(
            cls,
            alert=alert,
            state=fields.enum(doc, "state", path, ACK_STATES),
            note=fields.text(doc, "note", path, max_chars=MAX_NOTE, multiline=True),
            kind="ack",
        )


@dataclass(frozen=True, slots=True)
class Vouch:
    """The author vouches for ``subject``'s keys under ``name``.

    ``verified`` means the fingerprint was compared out of band; ``introduced``
    that the pairing happened without that check."""

    subject: bytes
    enc: bytes
    name: str
    level: str = "verified"
    kind: str = field(default="vouch", init=False, repr=False)

    def __post_init__(self) -> None:
        Vouch.from_wire(self.to_wire())

    def to_wire(self) -> dict[str, Any]:
        return {"subject": self.subject, "enc": self.enc, "name": self.name, "level": self.level}

    @classmethod
    def from_wire(cls, value: object, path: str = "vouch") -> Vouch:
        doc = fields.require_map(value, path, ("subject", "enc", "name", "level"))
        return fields.build_frozen(
            cls,
            subject=fields.key32(doc, "subject", path),
            enc=fields.key32(doc, "enc", path),
            name=fields.text(doc, "name", path, max_chars=MAX_NAME, required=True),
            level=fields.enum(doc, "level", path, VOUCH_LEVELS),
            kind="vouch",
        )


@dataclass(frozen=True, slots=True)
class Revoke:
    """The author withdraws its vouch for ``subject``; or, with ``compromised`` and
    ``subject`` equal to the author, declares its own key compromised forever."""

    subject: bytes
    compromised: bool = False
    reason: str = ""
    kind: str = field(default="revoke", init=False, repr=False)

    def __post_init__(self) -> None:
        Revoke.from_wire(self.to_wire())

    def to_wire(self) -> dict[str, Any]:
        return fields.drop_defaults(
            {"subject": self.subject, "compromised": self.compromised, "reason": self.reason}
        )

    @classmethod
    def from_wire(cls, value: object, path: str = "revoke") -> Revoke:
        doc = fields.require_map(value, path, ("subject", "compromised", "reason"))
        compromised = doc.get("compromised", False)
        if not isinstance(compromised, bool):
            raise BadField("must be true or false", field=f"{path}.compromised")
        return fields.build_frozen(
            cls,
            subject=fields.key32(doc, "subject", path),
            compromised=compromised,
            reason=fields.text(doc, "reason", path, max_chars=MAX_REASON, multiline=True),
            kind="revoke",
        )


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """A node's signed descriptor: how to reach it and how to pin its TLS certificate.

    On key rotation the record is authored by the new key and carries ``prev``
    (the old key) and ``prev_sig``, the old key's signature over the new key
    (purpose ``amparo/v1/rotate``), so peers follow without a new pairing.

    Pre-rotation (``ext``, so older nodes ignore it): ``next_key`` commits to the
    hash of the key this node will rotate to next (``signing.next_key_commitment``).
    After a raid the organization rotates to that key without the seized one:
    a record by the committed key naming ``recovers`` (the old key), optionally
    declaring it compromised (``old_compromised``). Whether the commitment matches
    is for the mesh to check: it depends on records seen earlier."""

    name: str
    enc: bytes
    tls: bytes
    addresses: tuple[str, ...] = ()
    minor: int = 0
    prev: bytes | None = None
    prev_sig: bytes | None = None
    next_key: bytes | None = None
    recovers: bytes | None = None
    old_compromised: bool = False
    kind: str = field(default="node", init=False, repr=False)

    def __post_init__(self) -> None:
        NodeRecord.from_wire(self.to_wire())

    def to_wire(self) -> dict[str, Any]:
        return fields.drop_defaults(
            {
                "name": self.name,
                "enc": self.enc,
                "tls": self.tls,
                "addrs": list(self.addresses),
                "minor": self.minor,
                "prev": self.prev,
                "prev_sig": self.prev_sig,
                fields.EXT: fields.drop_defaults(
                    {"next": self.next_key, "recovers": self.recovers, "compromised": self.old_compromised}
                )
                or None,
            }
        )

    @classmethod
    def from_wire(cls, value: object, path: str = "node") -> NodeRecord:
        doc = fields.require_map(
            value, path, ("name", "enc", "tls", "addrs", "minor", "prev", "prev_sig", fields.EXT)
        )
        fields.check_extensions(doc, path)
        prev = fields.key32(doc, "prev", path, required=False)
        prev_sig = doc.get("prev_sig")
        if (prev is None) != (prev_sig is None):
            raise BadField("prev and prev_sig come together", field=f"{path}.prev_sig")
        if prev_sig is not None and (not isinstance(prev_sig, bytes) or len(prev_sig) != 64):
            raise BadField("must be a 64-byte signature", field=f"{path}.prev_sig")
        tls = doc.get("tls")
        if not isinstance(tls, bytes) or len(tls) != TLS_FINGERPRINT_BYTES:
            raise BadField("must be the 32-byte SHA-256 of the certificate", field=f"{path}.tls")
        return fields.build_frozen(
            cls,
            name=fields.text(doc, "name", path, max_chars=MAX_NAME, required=True),
            enc=fields.key32(doc, "enc", path),
            tls=tls,
            addresses=_addresses(doc.get("addrs", []), path),
            minor=fields.integer(doc, "minor", path, low=0, high=1_000_000, default=0),
            prev=prev,
            prev_sig=prev_sig,
            **_pre_rotation(doc.get(fields.EXT), prev, path),
            kind="node",
        )


def _pre_rotation(ext: object, prev: bytes | None, path: str) -> dict[str, Any]:
    """The pre-rotation fields of a node record's ``ext`` (other entries: ignored)."""
    if not isinstance(ext, dict):
        return {"next_key": None, "recovers": None, "old_compromised": False}
    where = f"{path}.{fields.EXT}"
    next_key = fields.key32(ext, "next", where, required=False)
    recovers = fields.key32(ext, "recovers", where, required=False)
    compromised = ext.get("compromised", False)
    if compromised is not True and "compromised" in ext:
        raise BadField("must be true when present", field=f"{where}.compromised")
    if compromised and recovers is None:
        raise BadField(
            "only a recovery declares the key it recovers compromised", field=f"{where}.compromised"
        )
    if recovers is not None and prev is not None:
        raise BadField("a record either hands over (prev) or recovers, not both", field=f"{where}.recovers")
    return {"next_key": next_key, "recovers": recovers, "old_compromised": bool(compromised)}


def _addresses(value: object, path: str) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_ADDRESSES:
        raise BadField(f"must list at most {MAX_ADDRESSES} addresses", field=f"{path}.addrs")
    for i, addr in enumerate(value):
        if (
            not isinstance(addr, str)
            or not addr
            or len(addr) > MAX_ADDRESS_CHARS
            or not addr.isprintable()
            or " " in addr
        ):
            raise BadField("must be host:port text", field=f"{path}.addrs[{i}]")
    return tuple(value)
