"""Signed mesh requests (SPEC §5.1): who sent this HTTP request, to whom, and when.

TLS with a pinned certificate protects the link; this signature says which node
sent each request, so a listener can refuse unknown peers, stale timestamps and
reused nonces before it parses a single envelope. The signed payload (purpose
``amparo/v1/request``) is the canonical map of method, path, BLAKE2b-256 of the
body, timestamp (Unix ms), 16-byte nonce and the receiver's signing key — binding
the receiver stops a request to one node from being replayed to another.

The header value is ``v1.<sender hex>.<timestamp>.<nonce hex>.<signature hex>``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

import nacl.signing

from protocol import codec, signing
from protocol.errors import BadField, Expired, FromTheFuture, Malformed

HEADER: Final = "Amparo-Auth"
NONCE_BYTES: Final = 16
MAX_REQUEST_AGE_MS: Final = 2 * 60 * 1000
MAX_HEADER_CHARS: Final = 400


@dataclass(frozen=True, slots=True)
class RequestAuth:
    sender: bytes
    timestamp: int
    nonce: bytes


def body_hash(body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=32).digest()


def _payload(method: str, path: str, body: bytes, timestamp: int, nonce: bytes, receiver: bytes) -> bytes:
    return codec.encode(
        {"h": body_hash(body), "m": method.upper(), "n": nonce, "p": path, "r": receiver, "t": timestamp}
    )


def sign_request(
    signing_key: nacl.signing.SigningKey,
    *,
    method: str,
    path: str,
    body: bytes,
    receiver: bytes,
    now: int,
    nonce: bytes,
) -> str:
    """The ``Amparo-Auth`` header value for one request."""
    if len(nonce) != NONCE_BYTES:
        raise ValueError("nonce must be 16 bytes")
    sig = signing.sign(
        signing_key, signing.PURPOSE_REQUEST, _payload(method, path, body, now, nonce, receiver)
    )
    sender = bytes(signing_key.verify_key)
    return f"v1.{sender.hex()}.{now}.{nonce.hex()}.{sig.hex()}"


def verify_request(
    header: str | None, *, method: str, path: str, body: bytes, receiver: bytes, now: int
) -> RequestAuth:
    """Check the header; raises ``ProtocolError`` (``malformed``, ``expired``,
    ``from-the-future``, ``bad-signature``). Nonce reuse is the caller's check
    (it needs storage); the timestamp window bounds how long nonces are kept."""
    auth, sig = parse_header(header)
    if auth.timestamp > now + MAX_REQUEST_AGE_MS:
        raise FromTheFuture("request timestamp is ahead of this node's clock", field=HEADER)
    if auth.timestamp < now - MAX_REQUEST_AGE_MS:
        raise Expired("request timestamp is stale", field=HEADER)
    payload = _payload(method, path, body, auth.timestamp, auth.nonce, receiver)
    signing.verify(auth.sender, signing.PURPOSE_REQUEST, payload, sig)
    return auth


def split_header(header: str | None, name: str, max_chars: int, shape: str) -> list[str]:
    """The dot-separated fields of a ``v1.…`` authentication header (``Amparo-Auth``
    and ``Amparo-Reply`` share the form), after ``v1``; ``shape`` names them,
    e.g. ``v1.<replier>.<signature>``, and sets how many there must be."""
    if not header:
        raise Malformed(f"missing {name} header", field=name)
    if len(header) > max_chars:
        raise Malformed("header too long", field=name)
    parts = header.split(".")
    if len(parts) != shape.count(".") + 1 or parts[0] != "v1":
        raise Malformed(f"expected {shape}", field=name)
    return parts


def parse_header(header: str | None) -> tuple[RequestAuth, bytes]:
    parts = split_header(header, HEADER, MAX_HEADER_CHARS, "v1.<sender>.<timestamp>.<nonce>.<signature>")
    try:
        sender, nonce, sig = bytes.fromhex(parts[1]), bytes.fromhex(parts[3]), bytes.fromhex(parts[4])
        timestamp = int(parts[2]) if parts[2].isdigit() else -1
    except ValueError:
        raise Malformed("fields must be hex and digits", field=HEADER) from None
    if len(sender) != 32 or len(nonce) != NONCE_BYTES or len(sig) != 64 or timestamp < 0:
        raise BadField("sender 32 bytes, nonce 16 bytes, signature 64 bytes, timestamp ms", field=HEADER)
    return RequestAuth(sender, timestamp, nonce), sig
