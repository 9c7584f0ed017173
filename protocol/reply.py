"""Signed mesh replies (docs/protocol.md §12.5): which node answered this request.

The TLS pin only proves the answer came from whoever holds the listener's TLS
key, and that key may have been copied off a seized disk. So the replying node
also signs each answer with its Ed25519 identity key, under its own purpose
(``amparo/v1/reply``, never valid as a request or an envelope). The signed
payload is the canonical map of BLAKE2b-256 of the reply body, the request's
nonce, the path, the requester's key and the HTTP status: a reply cannot be
moved to another request, another path, another requester or another status,
and not one byte of its body can change.

The header value is ``v1.<replier hex>.<signature hex>``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

import nacl.signing

from protocol import codec, signing
from protocol.errors import BadField, BadSignature, Malformed
from protocol.request import NONCE_BYTES, body_hash, split_header

HEADER: Final = "Amparo-Reply"
MAX_HEADER_CHARS: Final = 200


def _payload(status: int, path: str, body: bytes, nonce: bytes, requester: bytes) -> bytes:
    return codec.encode({"h": body_hash(body), "n": nonce, "p": path, "q": requester, "s": status})


def sign_reply(
    signing_key: nacl.signing.SigningKey,
    *,
    status: int,
    path: str,
    body: bytes,
    nonce: bytes,
    requester: bytes,
) -> str:
    """The ``Amparo-Reply`` header value for one answer to the request that
    carried ``nonce`` and was signed by ``requester``."""
    if len(nonce) != NONCE_BYTES:
        raise ValueError("nonce must be 16 bytes")
    sig = signing.sign(signing_key, signing.PURPOSE_REPLY, _payload(status, path, body, nonce, requester))
    return f"v1.{bytes(signing_key.verify_key).hex()}.{sig.hex()}"


def verify_reply(
    header: str | None,
    *,
    status: int,
    path: str,
    body: bytes,
    nonce: bytes,
    requester: bytes,
    keys: Collection[bytes],
) -> bytes:
    """The key among ``keys`` (the peer's, and those of its rotation family)
    that signed this reply; raises ``ProtocolError`` (``malformed``,
    ``bad-field``, ``bad-signature``) otherwise."""
    replier, sig = parse_header(header)
    if replier not in keys:
        raise BadSignature("reply is signed by a key that is not the peer's", field=HEADER)
    signing.verify(replier, signing.PURPOSE_REPLY, _payload(status, path, body, nonce, requester), sig)
    return replier


def parse_header(header: str | None) -> tuple[bytes, bytes]:
    parts = split_header(header, HEADER, MAX_HEADER_CHARS, "v1.<replier>.<signature>")
    try:
        replier, sig = bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
    except ValueError:
        raise Malformed("fields must be hex", field=HEADER) from None
    if len(replier) != 32 or len(sig) != 64:
        raise BadField("replier 32 bytes, signature 64 bytes", field=HEADER)
    return replier, sig
