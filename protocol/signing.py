"""Ed25519 signatures bound to a purpose string (domain separation).

A signature made for one purpose can never be replayed as another: the signed
message is ``purpose || 0x00 || payload``. Every purpose in use is listed here and
in docs/protocol.md §5.
"""

from __future__ import annotations

import nacl.exceptions
import nacl.signing

from protocol.errors import BadField, BadSignature

PURPOSE_ENVELOPE = "amparo/v1/envelope"
PURPOSE_SEALED = "amparo/v1/sealed-body"
PURPOSE_ROTATE = "amparo/v1/rotate"
PURPOSE_REQUEST = "amparo/v1/request"
PURPOSE_INVITE = "amparo/v1/invite"
PURPOSE_REPLY = "amparo/v1/reply"

PURPOSES = (
    PURPOSE_ENVELOPE,
    PURPOSE_SEALED,
    PURPOSE_ROTATE,
    PURPOSE_REQUEST,
    PURPOSE_INVITE,
    PURPOSE_REPLY,
)

KEY_BYTES = 32
SIGNATURE_BYTES = 64


def signed_message(purpose: str, payload: bytes) -> bytes:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown signing purpose {purpose!r}")
    return purpose.encode("ascii") + b"\x00" + payload


def sign(signing_key: nacl.signing.SigningKey, purpose: str, payload: bytes) -> bytes:
    """Detached signature over ``payload`` for ``purpose``."""
    return bytes(signing_key.sign(signed_message(purpose, payload)).signature)


def verify(public_key: bytes, purpose: str, payload: bytes, signature: bytes) -> None:
    """Raise ``BadSignature`` unless ``signature`` is ``public_key``'s for this purpose.

    PyNaCl raises ``ValueError``/``TypeError``/``RuntimeError`` for some malformed
    keys rather than ``BadSignatureError``; all of them become ``BadSignature``.
    """
    if not isinstance(public_key, bytes) or len(public_key) != KEY_BYTES:
        raise BadField("must be a 32-byte Ed25519 public key", field="a")
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_BYTES:
        raise BadField("must be a 64-byte Ed25519 signature", field="s")
    try:
        nacl.signing.VerifyKey(public_key).verify(signed_message(purpose, payload), signature)
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError, RuntimeError):
        raise BadSignature(f"signature does not verify for {purpose}") from None
