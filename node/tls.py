"""TLS for the mesh listener and client: TLS 1.3 only, certificates pinned by SHA-256.

There is no certificate authority: each node's self-signed certificate is pinned
by its fingerprint, published in the node's signed ``node`` record. The client
uses aiohttp's ``Fingerprint`` check, so a connection to anything but the pinned
certificate fails before a byte of the request is sent.

The private key is sealed like the identity key. On a node with a passphrase,
``tls.key`` is an encrypted PEM (PKCS#8, cryptography's best available
encryption) whose password is derived from the sealed X25519 secret with a
purpose string: a copied home without the passphrase yields no TLS key, and
nothing new has to be stored. A rotation keeps the X25519 secret, so the TLS key
stays readable; whatever ever replaces that secret must re-encrypt ``tls.key``.
A node made with ``--no-passphrase`` keeps a plain PEM, like its identity key.
"""

from __future__ import annotations

import hashlib
import ssl
from functools import lru_cache
from pathlib import Path

import aiohttp
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from node.config import TLS_CERT, TLS_KEY, ConfigError, write_private
from node.shred import replace_overwriting
from protocol.keys import Identity
from protocol.signing import PERSON_TLS_PEM


def pem_password(identity: Identity) -> bytes:
    """The TLS key's PEM password: 256 bits derived from the X25519 secret for this
    one purpose (hex, so OpenSSL never meets a NUL byte in it)."""
    digest = hashlib.blake2b(identity.enc_secret, digest_size=32, person=PERSON_TLS_PEM).hexdigest()
    return digest.encode("ascii")


def is_sealed(pem: bytes) -> bool:
    return b"BEGIN ENCRYPTED PRIVATE KEY" in pem


def seal_key(home: Path, password: bytes) -> bool:
    """Encrypt a plain ``tls.key`` (written by an older version) in place; the
    plain file is overwritten before it is replaced. True when it was plain."""
    path = home / TLS_KEY
    pem = path.read_bytes()
    if is_sealed(pem):
        return False
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError(f"{path}: not a PEM private key; restore it from a backup of this node") from None
    sealed = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )
    tmp = path.with_name(path.name + ".sealed")
    write_private(tmp, sealed)
    replace_overwriting(tmp, path)
    return True


def server_context(home: Path, password: bytes | None = None) -> ssl.SSLContext:
    """The listener's context. ``password`` opens a sealed key (it is ignored for a
    plain one); without it a sealed key is an error, never a terminal prompt."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    try:
        ctx.load_cert_chain(home / TLS_CERT, home / TLS_KEY, password=password or _no_password)
    except ssl.SSLError:
        raise ConfigError(
            f"{home / TLS_KEY}: cannot open the TLS key; it is sealed with this node's keys, "
            "so it must come from the same home (or backup) as the key file"
        ) from None
    return ctx


def _no_password() -> bytes:
    raise ConfigError("the TLS key is sealed and no key was given to open it")


@lru_cache(maxsize=4096)
def pinned(fingerprint: bytes) -> aiohttp.Fingerprint:
    """One ``Fingerprint`` object per certificate. aiohttp keys its pool of
    keep-alive connections by the ``ssl`` argument and ``Fingerprint`` compares
    by identity: a fresh object per request meant a fresh TCP + TLS handshake
    for every push. The check itself runs when a connection is made."""
    return aiohttp.Fingerprint(fingerprint)
