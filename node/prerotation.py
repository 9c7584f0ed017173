"""The next key: made ahead of time, kept offline, used once after a raid.

Every ``node`` record of this node commits to the hash of its next signing key
(docs/protocol.md §6.5). The next key itself is made at ``init`` (and at each
rotation) and lives in the home, sealed like the current key, only until the
operator exports it (``amparo keys export-next``) to a file sealed with a
separate *recovery passphrase*, kept away from the node (a safe, a lawyer, an
ally). After a raid that takes the node and perhaps its passphrase, that file
on a new machine (``amparo keys recover``) makes the node rotate to the
committed key: peers accept the rotation because it matches the commitment,
and whoever holds the seized key cannot rotate to a key of its own.

Files in the home:

- ``next.key``: the next identity, sealed with the node's passphrase (gone
  after ``export-next`` unless ``--keep``);
- ``next.commit``: the commitment (public: it is in every node record);
- ``recovery.json``: written by ``keys recover``, read at start: this node
  recovers ``old`` and publishes that (and whether ``old`` is compromised).

The export file is JSON: the name, the key it succeeds, the commitment, the next
key sealed like a key file (Argon2id + SecretBox) under the recovery
passphrase, and the peers at export time sealed with a key derived from the
next key, so a bare new machine can reach its allies again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.secret
import nacl.utils

from node.config import ConfigError, write_private
from protocol import keys
from protocol.errors import ProtocolError
from protocol.keys import Identity
from protocol.signing import next_key_commitment

NEXT_KEY_FILE = "next.key"
NEXT_COMMIT_FILE = "next.commit"
RECOVERY_FILE = "recovery.json"
EXPORT_FORMAT = "amparo-next-key/1"
RECOVERY_PASSPHRASE_ENV = "AMPARO_RECOVERY_PASSPHRASE_FILE"
_PEERS_PERSON = b"amparo/v1/peers"


def new_identity() -> Identity:
    return Identity.from_random(nacl.utils.random(64))


def make_next(home: Path, passphrase: bytes | None, profile: str) -> bytes:
    """A fresh next key, sealed into the home; returns its commitment."""
    nxt = new_identity()
    write_next(home, nxt, passphrase, profile)
    return next_key_commitment(nxt.sign_public)


def write_next(home: Path, nxt: Identity, passphrase: bytes | None, profile: str) -> None:
    sealed = keys.seal_key_file(
        nxt,
        passphrase,
        salt=nacl.utils.random(keys.SALT_BYTES),
        nonce=nacl.utils.random(keys.NONCE_BYTES),
        profile=profile,
    )
    write_private(home / NEXT_KEY_FILE, sealed)
    write_private(home / NEXT_COMMIT_FILE, next_key_commitment(nxt.sign_public).hex().encode("ascii"))


def commitment(home: Path) -> bytes | None:
    """The commitment this node publishes, or None for a home made before pre-rotation."""
    try:
        return bytes.fromhex((home / NEXT_COMMIT_FILE).read_text("ascii").strip())
    except (FileNotFoundError, ValueError):
        return None


def open_next(home: Path, passphrase: bytes | None) -> Identity | None:
    """The next key kept in the home, or None once it was exported."""
    try:
        data = (home / NEXT_KEY_FILE).read_bytes()
    except FileNotFoundError:
        return None
    try:
        return keys.open_key_file(data, passphrase)
    except ProtocolError as exc:
        raise ConfigError(f"{home / NEXT_KEY_FILE}: {exc.message}") from None


@dataclass(frozen=True)
class Exported:
    """What a next-key file holds, once opened."""

    name: str
    succeeds: bytes  # the key the next key takes over from
    next_identity: Identity
    peers: list[dict[str, Any]]


def export_document(
    name: str,
    current: bytes,
    nxt: Identity,
    recovery_passphrase: bytes,
    peers: list[dict[str, Any]],
    profile: str,
) -> dict[str, Any]:
    sealed_key = keys.seal_key_file(
        nxt,
        recovery_passphrase,
        salt=nacl.utils.random(keys.SALT_BYTES),
        nonce=nacl.utils.random(keys.NONCE_BYTES),
        profile=profile,
    )
    box = nacl.secret.SecretBox(_peers_key(nxt))
    return {
        "format": EXPORT_FORMAT,
        "name": name,
        "succeeds": current.hex(),
        "commitment": next_key_commitment(nxt.sign_public).hex(),
        "key": base64.b64encode(sealed_key).decode("ascii"),
        "peers": base64.b64encode(box.encrypt(json.dumps(peers).encode())).decode("ascii"),
    }


def read_export(path: Path, recovery_passphrase: bytes) -> Exported:
    """Open a next-key file; every failure is a ``ConfigError`` that says what is wrong."""
    try:
        doc = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise ConfigError(f"{path}: not a next-key file made by `amparo keys export-next`") from None
    if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT:
        raise ConfigError(f"{path}: not a next-key file made by `amparo keys export-next` ({EXPORT_FORMAT})")
    try:
        sealed_key = base64.b64decode(doc["key"], validate=True)
        succeeds = bytes.fromhex(doc["succeeds"])
        committed = bytes.fromhex(doc["commitment"])
        sealed_peers = base64.b64decode(doc["peers"], validate=True)
        name = str(doc["name"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{path}: the file is damaged (a field is missing or garbled)") from None
    try:
        nxt = keys.open_key_file(sealed_key, recovery_passphrase)
    except ProtocolError:
        raise ConfigError(f"{path}: wrong recovery passphrase, or the file is damaged") from None
    if next_key_commitment(nxt.sign_public) != committed or len(succeeds) != 32:
        raise ConfigError(f"{path}: the key does not match the commitment it names")
    try:
        peers = json.loads(nacl.secret.SecretBox(_peers_key(nxt)).decrypt(sealed_peers))
    except (nacl.exceptions.CryptoError, ValueError):
        raise ConfigError(f"{path}: the peer list is damaged") from None
    return Exported(name=name, succeeds=succeeds, next_identity=nxt, peers=list(peers))


def _peers_key(nxt: Identity) -> bytes:
    return hashlib.blake2b(nxt.sign_seed, digest_size=32, person=_PEERS_PERSON).digest()


def recovery_passphrase_from_env() -> bytes | None:
    path = os.environ.get(RECOVERY_PASSPHRASE_ENV)
    if not path:
        return None
    try:
        value = Path(path).read_bytes().rstrip(b"\r\n")
    except OSError as exc:
        raise ConfigError(f"{RECOVERY_PASSPHRASE_ENV}={path}: cannot read ({exc.strerror})") from None
    if not value:
        raise ConfigError(f"{RECOVERY_PASSPHRASE_ENV}={path}: the file is empty")
    return value


@dataclass(frozen=True)
class Recovering:
    """``recovery.json``: this node took over from ``old`` by its commitment."""

    old: bytes
    compromised: bool


def recovering(home: Path) -> Recovering | None:
    try:
        doc = json.loads((home / RECOVERY_FILE).read_text("utf-8"))
        return Recovering(bytes.fromhex(doc["old"]), bool(doc["compromised"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(f"{home / RECOVERY_FILE}: damaged; run `amparo keys recover` again") from None


def write_recovering(home: Path, state: Recovering) -> None:
    doc = {"old": state.old.hex(), "compromised": state.compromised}
    write_private(home / RECOVERY_FILE, json.dumps(doc).encode())
