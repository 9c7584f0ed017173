"""Node identity, its human-comparable fingerprint, and the sealed key file.

An identity is two independent keys: Ed25519 for signing and X25519 for
receiving sealed bodies. Keeping them independent (rather than converting one
into the other) lets either be rotated and keeps each key to one job.

The key file is sealed with a key derived from the passphrase by Argon2id
(``nacl.pwhash``) and SecretBox, so a copied home directory yields no key
without the passphrase. Salt and nonce are parameters: randomness comes from the
caller (STYLE principle 7).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Final

import nacl.exceptions
import nacl.public
import nacl.pwhash
import nacl.secret
import nacl.signing

from protocol import codec, signing
from protocol.errors import BadKeyFile, ProtocolError, WrongPassphrase

SEED_BYTES: Final = 32
KEY_FILE_VERSION: Final = 1
SALT_BYTES: Final = nacl.pwhash.argon2id.SALTBYTES
NONCE_BYTES: Final = nacl.secret.SecretBox.NONCE_SIZE

KDF_PROFILES: Final[dict[str, tuple[int, int]]] = {
    # name: (opslimit, memlimit). "moderate" is the default for nodes; "interactive"
    # exists for small devices and the test suite and is the floor we accept.
    "interactive": (nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE, nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE),
    "moderate": (nacl.pwhash.argon2id.OPSLIMIT_MODERATE, nacl.pwhash.argon2id.MEMLIMIT_MODERATE),
    "sensitive": (nacl.pwhash.argon2id.OPSLIMIT_SENSITIVE, nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE),
}
_MIN_OPS, _MIN_MEM = KDF_PROFILES["interactive"]
_MAX_OPS, _MAX_MEM = KDF_PROFILES["sensitive"]


@dataclass(frozen=True, slots=True, repr=False)
class Identity:
    """A node's private keys. ``repr`` never shows secrets (they must not reach logs)."""

    sign_seed: bytes
    enc_secret: bytes
    # Derived once: a node signs every request, answer and envelope with it, and
    # deriving the Ed25519 key pair from the seed cost as much as a signature.
    _signing: nacl.signing.SigningKey = field(init=False, repr=False, compare=False)
    _enc_private: nacl.public.PrivateKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.sign_seed) != SEED_BYTES or len(self.enc_secret) != SEED_BYTES:
            raise ValueError("identity seeds must be 32 bytes each")
        object.__setattr__(self, "_signing", nacl.signing.SigningKey(self.sign_seed))
        object.__setattr__(self, "_enc_private", nacl.public.PrivateKey(self.enc_secret))

    @classmethod
    def from_random(cls, random_bytes: bytes) -> Identity:
        """Build an identity from 64 bytes the caller took from a CSPRNG."""
        if len(random_bytes) != 2 * SEED_BYTES:
            raise ValueError("need 64 random bytes")
        return cls(random_bytes[:SEED_BYTES], random_bytes[SEED_BYTES:])

    @property
    def signing_key(self) -> nacl.signing.SigningKey:
        return self._signing

    @property
    def sign_public(self) -> bytes:
        return bytes(self._signing.verify_key)

    @property
    def enc_private(self) -> nacl.public.PrivateKey:
        return self._enc_private

    @property
    def enc_public(self) -> bytes:
        return bytes(self.enc_private.public_key)

    def __repr__(self) -> str:
        return f"Identity(fingerprint={fingerprint(self.sign_public)!r})"


def fingerprint(sign_public: bytes) -> str:
    """A 160-bit, human-comparable rendering of a signing key, read aloud or
    compared side by side like a safety number: 8 groups of 4 base32 characters."""
    digest = hashlib.blake2b(sign_public, digest_size=20, person=signing.PERSON_FINGERPRINT).digest()
    text = base64.b32encode(digest).decode("ascii")
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def seal_key_file(
    identity: Identity,
    passphrase: bytes | None,
    *,
    salt: bytes,
    nonce: bytes,
    profile: str = "moderate",
) -> bytes:
    """Serialize ``identity`` sealed under ``passphrase`` (``None`` = explicitly unsealed)."""
    secrets = codec.encode({"enc": identity.enc_secret, "sign": identity.sign_seed})
    if passphrase is None:
        return codec.encode({"kdf": "none", "secrets": secrets, "v": KEY_FILE_VERSION})
    if len(salt) != SALT_BYTES or len(nonce) != NONCE_BYTES:
        raise ValueError("salt must be 16 bytes and nonce 24 bytes")
    ops, mem = KDF_PROFILES[profile]
    box = nacl.secret.SecretBox(_derive(passphrase, salt, ops, mem))
    sealed = bytes(box.encrypt(secrets, nonce).ciphertext)
    return codec.encode(
        {
            "box": sealed,
            "kdf": "argon2id",
            "mem": mem,
            "nonce": nonce,
            "ops": ops,
            "salt": salt,
            "v": KEY_FILE_VERSION,
        }
    )


def key_file_needs_passphrase(data: bytes) -> bool:
    return _read_key_file(data)["kdf"] != "none"


def open_key_file(data: bytes, passphrase: bytes | None) -> Identity:
    """Open a key file; ``WrongPassphrase`` or ``BadKeyFile`` on failure, nothing else."""
    doc = _read_key_file(data)
    if doc["kdf"] == "none":
        return _identity_from_secrets(doc.get("secrets"))
    if passphrase is None:
        raise WrongPassphrase("this key file is sealed: a passphrase is required")
    ops, mem, salt, nonce, sealed = (doc.get(k) for k in ("ops", "mem", "salt", "nonce", "box"))
    if not (isinstance(ops, int) and _MIN_OPS <= ops <= _MAX_OPS):
        raise BadKeyFile("Argon2id opslimit outside the accepted range", field="ops")
    if not (isinstance(mem, int) and _MIN_MEM <= mem <= _MAX_MEM):
        raise BadKeyFile("Argon2id memlimit outside the accepted range", field="mem")
    if not (isinstance(salt, bytes) and len(salt) == SALT_BYTES):
        raise BadKeyFile("salt must be 16 bytes", field="salt")
    if not (isinstance(nonce, bytes) and len(nonce) == NONCE_BYTES):
        raise BadKeyFile("nonce must be 24 bytes", field="nonce")
    if not isinstance(sealed, bytes):
        raise BadKeyFile("sealed keys missing", field="box")
    box = nacl.secret.SecretBox(_derive(passphrase, salt, ops, mem))
    try:
        secrets = box.decrypt(sealed, nonce)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise WrongPassphrase("wrong passphrase (or the key file was altered)") from None
    return _identity_from_secrets(secrets)


def _derive(passphrase: bytes, salt: bytes, ops: int, mem: int) -> bytes:
    return bytes(
        nacl.pwhash.argon2id.kdf(nacl.secret.SecretBox.KEY_SIZE, passphrase, salt, opslimit=ops, memlimit=mem)
    )


def _read_key_file(data: bytes) -> dict[str, object]:
    try:
        doc = codec.decode(data)
    except ProtocolError as exc:
        raise BadKeyFile(f"not an Amparo key file ({exc.message})") from None
    if not isinstance(doc, dict) or isinstance(doc.get("v"), bool) or doc.get("v") != KEY_FILE_VERSION:
        raise BadKeyFile("not an Amparo key file of a known version", field="v")
    if doc.get("kdf") not in ("none", "argon2id"):
        raise BadKeyFile("unknown key derivation", field="kdf")
    return doc


def _identity_from_secrets(secrets: object) -> Identity:
    try:
        doc = codec.decode(secrets) if isinstance(secrets, bytes) else None
    except ProtocolError:
        doc = None
    sign, enc = (doc.get("sign"), doc.get("enc")) if isinstance(doc, dict) else (None, None)
    if not (
        isinstance(sign, bytes)
        and isinstance(enc, bytes)
        and len(sign) == SEED_BYTES
        and len(enc) == SEED_BYTES
    ):
        raise BadKeyFile("sealed secrets are not two 32-byte keys", field="secrets")
    return Identity(sign, enc)
