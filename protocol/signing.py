"""Ed25519 signatures bound to a purpose string (domain separation), and every
other purpose string of Amparo.

A signature made for one purpose can never be replayed as another: the signed
message is ``purpose || 0x00 || payload``, and every purpose is
``amparo/v1/<what>``, built by ``purpose``. Hashes and derived keys are bound the
same way, by a BLAKE2b personalization (``person``, at most 16 bytes). Every
string in use is here and in docs/protocol.md §5; nowhere else in the code
(``tests/protocol/test_purposes.py`` scans for strays).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

import nacl.bindings
import nacl.exceptions
import nacl.signing

from protocol.errors import BadField, BadSignature

SCHEME: Final = "amparo/v1/"
MAX_PERSON_BYTES: Final = 16  # BLAKE2b's personalization


def purpose(what: str) -> str:
    """The purpose string for ``what``: ``amparo/v1/<what>``. The version is the
    protocol's, so a later version's signatures never verify as this one's."""
    if not what or not what.isascii() or "/" in what or "\x00" in what:
        raise ValueError(f"not a purpose name: {what!r}")
    return SCHEME + what


def person(what: str) -> bytes:
    """A BLAKE2b personalization in the same scheme (for new hashes and derived keys)."""
    value = purpose(what).encode("ascii")
    if len(value) > MAX_PERSON_BYTES:
        raise ValueError(f"{value!r} is longer than BLAKE2b's {MAX_PERSON_BYTES}-byte personalization")
    return value


PURPOSE_ENVELOPE = purpose("envelope")
PURPOSE_SEALED = purpose("sealed-body")
PURPOSE_ROTATE = purpose("rotate")
PURPOSE_REQUEST = purpose("request")
PURPOSE_INVITE = purpose("invite")
PURPOSE_REPLY = purpose("reply")
PURPOSE_ENDORSE = purpose("endorse")  # threshold release (docs/protocol.md §13)

PURPOSES = (
    PURPOSE_ENVELOPE,
    PURPOSE_SEALED,
    PURPOSE_ROTATE,
    PURPOSE_REQUEST,
    PURPOSE_INVITE,
    PURPOSE_REPLY,
    PURPOSE_ENDORSE,
)

# BLAKE2b personalizations. The scheme came after version 1 had fixed four of
# them; those four are part of bytes already on the wire (hints), on screens
# (fingerprints) and on disks (invite hashes, the TLS key's password), so they
# keep their spelling. A new one is ``person(what)``.
PERSON_RECONCILE: Final = person("recon")  # range fingerprints (docs/mesh.md)
PERSON_HINT: Final = b"amparo-hint-v1"  # recipient hints of sealed bodies (§7)
PERSON_FINGERPRINT: Final = b"amparo-fpr-v1"  # the human-comparable key fingerprint (§8)
PERSON_INVITE: Final = b"amparo-invite"  # the stored hash of an invite secret (§12.4)
PERSON_TLS_PEM: Final = b"amparo-tls-pem1"  # the sealed TLS key's password, from the X25519 secret
PERSON_NEXT: Final = person("next")  # a node record's commitment to its next key (§6.5)
PERSON_PEERS: Final = person("peers")  # the key sealing the peer list in a next-key file (not on the wire)
PERSON_ALERT: Final = person("alert")  # the alert hash endorsers sign (§13)
PERSON_PIN: Final = person("pin")  # the key check-in PINs are hashed with, from the node's secret (not on the wire)
PERSON_SMS_KEY: Final = person("smskey")  # the node's key for SMS replay and PIN-try records (not on the wire)
PERSON_SMS_SEEN: Final = person("sms")  # what makes an SMS the same SMS again, under that key (not on the wire)
PERSONS = (
    PERSON_RECONCILE,
    PERSON_HINT,
    PERSON_FINGERPRINT,
    PERSON_INVITE,
    PERSON_TLS_PEM,
    PERSON_NEXT,
    PERSON_PEERS,
    PERSON_ALERT,
    PERSON_PIN,
    PERSON_SMS_KEY,
    PERSON_SMS_SEEN,
)

KEY_BYTES = 32
SIGNATURE_BYTES = 64


def next_key_commitment(key: bytes) -> bytes:
    """What a ``node`` record commits to (pre-rotation): the BLAKE2b-256 of the
    Ed25519 public key the node will rotate to next. Only the hash is published,
    so the next key is unknown (and unusable) until the rotation shows it."""
    if len(key) != KEY_BYTES:
        raise ValueError("an Ed25519 public key has 32 bytes")
    return hashlib.blake2b(key, digest_size=32, person=PERSON_NEXT).digest()


_PREFIXES: Final = {p: p.encode("ascii") + b"\x00" for p in PURPOSES}


def signed_message(purpose: str, payload: bytes) -> bytes:
    prefix = _PREFIXES.get(purpose)
    if prefix is None:
        raise ValueError(f"unknown signing purpose {purpose!r}")
    return prefix + payload


def sign(signing_key: nacl.signing.SigningKey, purpose: str, payload: bytes) -> bytes:
    """Detached signature over ``payload`` for ``purpose``."""
    return bytes(signing_key.sign(signed_message(purpose, payload)).signature)


def verify(public_key: bytes, purpose: str, payload: bytes, signature: bytes) -> None:
    """Raise ``BadSignature`` unless ``signature`` is ``public_key``'s for this purpose."""
    verify_parts(public_key, purpose, (payload,), signature)


def verify_parts(
    public_key: bytes, purpose: str, parts: Sequence[bytes | memoryview], signature: bytes
) -> None:
    """Raise ``BadSignature`` unless ``signature`` is ``public_key``'s for this purpose.

    PyNaCl raises ``ValueError``/``TypeError``/``RuntimeError`` for some malformed
    keys rather than ``BadSignatureError``; all of them become ``BadSignature``.
    """
    if not isinstance(public_key, bytes) or len(public_key) != KEY_BYTES:
        raise BadField("must be a 32-byte Ed25519 public key", field="a")
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_BYTES:
        raise BadField("must be a 64-byte Ed25519 signature", field="s")
    try:
        # libsodium's crypto_sign_open on signature || message, as VerifyKey.verify
        # does, without building a VerifyKey; the payload comes in parts (``decode``
        # cuts the signed bytes out of the envelope) and is copied once, here. An
        # unknown purpose is a ValueError, refused like a bad signature (as before).
        prefix = _PREFIXES.get(purpose)
        if prefix is None:
            raise ValueError(f"unknown signing purpose {purpose!r}")
        nacl.bindings.crypto_sign_open(b"".join((signature, prefix, *parts)), public_key)
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError, RuntimeError):
        raise BadSignature(f"signature does not verify for {purpose}") from None
