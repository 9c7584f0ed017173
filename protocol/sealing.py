"""Sealing ``restricted`` bodies to named recipient nodes (SPEC §3.4).

Construction (docs/protocol.md §7):

1. A random 32-byte content key and 24-byte nonce; the plaintext is the canonical
   map ``{"b": body, "s": inner signature}`` where the inner signature (purpose
   ``amparo/v1/sealed-body``) covers author, type, created, expires, the recipient
   hints and the body. Relays see ciphertext only; recipients learn who wrote it
   even if a fellow recipient re-wraps the plaintext (SealedBox alone does not
   authenticate the sender).
2. The plaintext is encrypted with XChaCha20-Poly1305-IETF; the additional data is
   the canonical map of the visible header ``{a, c, t, x}``.
3. The content key is wrapped for each recipient exactly as libsodium's
   ``crypto_box_seal`` does it (ephemeral X25519 key, nonce = BLAKE2b-192 of
   ephemeral || recipient key), but with the ephemeral key passed in so that test
   vectors are reproducible. Each slot carries a 4-byte hint of the recipient's
   X25519 key, so a node opens only its own slot instead of trying them all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import nacl.bindings as sodium
import nacl.exceptions
import nacl.public

from protocol import codec, signing
from protocol.errors import BadCiphertext, BadField, NotRecipient, ProtocolError
from protocol.keys import Identity

RandomBytes = Callable[[int], bytes]

HINT_BYTES = 4
WRAPPED_BYTES = 32 + 32 + 16  # ephemeral key + content key + MAC
NONCE_BYTES = 24
CONTENT_KEY_BYTES = 32
MAX_RECIPIENTS = 64


@dataclass(frozen=True, slots=True)
class Sealed:
    """The visible part of a sealed body: recipient slots and ciphertext."""

    slots: tuple[tuple[bytes, bytes], ...]
    nonce: bytes
    ciphertext: bytes
    kind: str = "sealed"

    @property
    def hints(self) -> tuple[bytes, ...]:
        return tuple(hint for hint, _ in self.slots)

    def to_bytes(self) -> bytes:
        return codec.encode({"d": self.ciphertext, "k": [[h, w] for h, w in self.slots], "n": self.nonce})

    @classmethod
    def from_bytes(cls, data: bytes) -> Sealed:
        try:
            doc = codec.decode(data)
        except ProtocolError as exc:
            raise BadField(f"sealed body: {exc.message}", field="b") from None
        if not isinstance(doc, dict) or set(doc) != {"d", "k", "n"}:
            raise BadField("sealed body must be a map of d, k, n", field="b")
        slots, nonce, ciphertext = doc["k"], doc["n"], doc["d"]
        if not isinstance(slots, list) or not 1 <= len(slots) <= MAX_RECIPIENTS:
            raise BadField(f"must list 1 to {MAX_RECIPIENTS} recipients", field="b.k")
        for i, slot in enumerate(slots):
            if not (
                isinstance(slot, list)
                and len(slot) == 2
                and isinstance(slot[0], bytes)
                and len(slot[0]) == HINT_BYTES
                and isinstance(slot[1], bytes)
                and len(slot[1]) == WRAPPED_BYTES
            ):
                raise BadField("must be [4-byte hint, 80-byte wrapped key]", field=f"b.k[{i}]")
        if not isinstance(nonce, bytes) or len(nonce) != NONCE_BYTES:
            raise BadField("must be a 24-byte nonce", field="b.n")
        if not isinstance(ciphertext, bytes) or len(ciphertext) < 16:
            raise BadField("must be ciphertext", field="b.d")
        return cls(tuple((bytes(h), bytes(w)) for h, w in slots), nonce, ciphertext)


def recipient_hint(enc_public: bytes) -> bytes:
    return hashlib.blake2b(enc_public, digest_size=HINT_BYTES, person=signing.PERSON_HINT).digest()


def header_map(kind: str, author: bytes, created: int, expires: int) -> dict[str, Any]:
    return {"a": author, "c": created, "t": kind, "x": expires}


def seal(
    identity: Identity,
    header: dict[str, Any],
    body_wire: dict[str, Any],
    recipients: Sequence[bytes],
    random: RandomBytes,
) -> Sealed:
    """Encrypt ``body_wire`` to ``recipients`` (X25519 public keys)."""
    unique = list(dict.fromkeys(recipients))
    if not 1 <= len(unique) <= MAX_RECIPIENTS:
        raise BadField(f"need 1 to {MAX_RECIPIENTS} recipients", field="recipients")
    if any(not isinstance(r, bytes) or len(r) != 32 for r in unique):
        raise BadField("every recipient must be a 32-byte X25519 key", field="recipients")
    hints = [recipient_hint(r) for r in unique]
    inner = signing.sign(
        identity.signing_key, signing.PURPOSE_SEALED, _inner_payload(header, hints, body_wire)
    )
    plaintext = codec.encode({"b": body_wire, "s": inner})
    content_key, nonce = random(CONTENT_KEY_BYTES), random(NONCE_BYTES)
    ciphertext = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
        plaintext, codec.encode(header), nonce, content_key
    )
    slots = tuple((hint, _wrap(content_key, r, random(32))) for hint, r in zip(hints, unique, strict=True))
    return Sealed(slots, nonce, bytes(ciphertext))


def unseal(sealed: Sealed, header: dict[str, Any], identity: Identity) -> dict[str, Any]:
    """Return the body map if ``identity`` is a recipient and everything verifies."""
    mine = recipient_hint(identity.enc_public)
    candidates = [w for h, w in sealed.slots if h == mine]
    if not candidates:
        raise NotRecipient("this node is not among the recipients")
    content_key = _unwrap_any(candidates, identity)
    try:
        plaintext = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
            sealed.ciphertext, codec.encode(header), sealed.nonce, content_key
        )
    except (nacl.exceptions.CryptoError, ValueError, TypeError, RuntimeError):
        raise BadCiphertext("sealed body fails authentication") from None
    doc = _read_plaintext(bytes(plaintext))
    signing.verify(
        header["a"], signing.PURPOSE_SEALED, _inner_payload(header, list(sealed.hints), doc["b"]), doc["s"]
    )
    body: dict[str, Any] = doc["b"]
    return body


def _wrap(content_key: bytes, recipient: bytes, ephemeral_secret: bytes) -> bytes:
    ephemeral_public = sodium.crypto_scalarmult_base(ephemeral_secret)
    nonce = hashlib.blake2b(ephemeral_public + recipient, digest_size=24).digest()
    boxed = sodium.crypto_box(content_key, nonce, recipient, ephemeral_secret)
    return bytes(ephemeral_public) + bytes(boxed)


def _unwrap_any(candidates: list[bytes], identity: Identity) -> bytes:
    box = nacl.public.SealedBox(identity.enc_private)
    for wrapped in candidates:  # hints are short, so a collision is possible but rare
        try:
            key = bytes(box.decrypt(wrapped))
        except (nacl.exceptions.CryptoError, ValueError, TypeError, RuntimeError):
            continue
        if len(key) == CONTENT_KEY_BYTES:
            return key
    raise NotRecipient("no recipient slot opens with this node's key")


def _read_plaintext(plaintext: bytes) -> dict[str, Any]:
    try:
        doc = codec.decode(plaintext)
    except ProtocolError as exc:
        raise BadCiphertext(f"sealed plaintext: {exc.message}") from None
    if not isinstance(doc, dict) or set(doc) != {"b", "s"} or not isinstance(doc["b"], dict):
        raise BadCiphertext("sealed plaintext must be a map of b (body) and s (signature)")
    return doc


def _inner_payload(header: dict[str, Any], hints: list[bytes], body_wire: dict[str, Any]) -> bytes:
    return codec.encode(header | {"b": body_wire, "r": hints})
