"""Encrypted backups of a node's home, and restoring them.

One file holds everything a node needs to come back with the same identity,
alerts, peers and settings: ``config.toml``, the sealed key file (still sealed by
the node passphrase: the backup adds a second lock, it never opens the first),
the TLS certificate and key, the API token, and a consistent snapshot of the
SQLite database taken with SQLite's online backup API, so the node can keep
running while it is copied.

Format (all integers big-endian)::

    b"AMPBAK01" | opslimit u32 | memlimit u64 | salt (16) | SecretBox(nonce 24 + ciphertext)

The key is Argon2id(passphrase, salt) with the recorded limits; the plaintext is
a tar archive. Every backup draws a fresh salt and nonce. Restoring never reuses
a nonce either: every nonce Amparo uses (sealed alerts, key files, requests,
these archives) is drawn at random when it is used, none is a counter that an
old copy could rewind.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import struct
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

from node.config import (
    CONFIG_FILE,
    DB_FILE,
    KEY_FILE,
    TLS_CERT,
    TLS_KEY,
    TOKEN_FILE,
    Config,
    make_home,
    write_private,
)

MAGIC = b"AMPBAK01"
HEADER = struct.Struct(">8sIQ16s")
MANIFEST = "MANIFEST.json"
HOME_FILES = (CONFIG_FILE, KEY_FILE, TLS_CERT, TLS_KEY, TOKEN_FILE)
ALLOWED = frozenset({*HOME_FILES, DB_FILE, MANIFEST})
MAX_MEMBER_BYTES = 4 * 1024**3
MAX_OPSLIMIT = 64
MAX_MEMLIMIT = 2 * 1024**3
PROFILES = {
    "interactive": (nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE, nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE),
    "moderate": (nacl.pwhash.argon2id.OPSLIMIT_MODERATE, nacl.pwhash.argon2id.MEMLIMIT_MODERATE),
    "sensitive": (nacl.pwhash.argon2id.OPSLIMIT_SENSITIVE, nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE),
}


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class Summary:
    files: list[str]
    database: bool
    size: int


# -- making a backup ----------------------------------------------------------------------
def snapshot_sqlite(db_path: Path) -> bytes:
    """A consistent copy of a live SQLite database (WAL included), as bytes."""
    source = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    target = sqlite3.connect(":memory:")
    try:
        source.backup(target)
        return target.serialize()
    finally:
        target.close()
        source.close()


def archive(home: Path, config: Config, *, created: int, fingerprint: str) -> tuple[bytes, Summary]:
    """The tar of the home (not yet encrypted)."""
    files = [name for name in HOME_FILES if (home / name).is_file()]
    if KEY_FILE not in files or CONFIG_FILE not in files:
        raise BackupError(f"{home} is not a node home (no {CONFIG_FILE} / {KEY_FILE})")
    with_db = not config.database_url and (home / DB_FILE).is_file()
    manifest = {
        "format": 1,
        "node": config.name,
        "fingerprint": fingerprint,
        "created": created,
        "files": files,
        "database": with_db,
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        _add(tar, MANIFEST, json.dumps(manifest, ensure_ascii=False).encode())
        for name in files:
            _add(tar, name, (home / name).read_bytes())
        if with_db:
            _add(tar, DB_FILE, snapshot_sqlite(home / DB_FILE))
    data = buffer.getvalue()
    return data, Summary(files + ([DB_FILE] if with_db else []), with_db, len(data))


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o600, 0
    tar.addfile(info, io.BytesIO(data))


def seal(data: bytes, passphrase: bytes, profile: str = "moderate") -> bytes:
    ops, mem = PROFILES[profile]
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    key = nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE, passphrase, salt, opslimit=ops, memlimit=mem
    )
    box = nacl.secret.SecretBox(key).encrypt(data, nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE))
    return HEADER.pack(MAGIC, ops, mem, salt) + bytes(box)


def write_backup(path: Path, blob: bytes) -> None:
    """Atomically, mode 0600: a crash leaves no half-written backup under the name."""
    write_private(path, blob)


# -- restoring ----------------------------------------------------------------------------
def unseal(blob: bytes, passphrase: bytes) -> bytes:
    if len(blob) < HEADER.size + nacl.secret.SecretBox.NONCE_SIZE + nacl.secret.SecretBox.MACBYTES:
        raise BackupError("not an Amparo backup (too short)")
    magic, ops, mem, salt = HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise BackupError("not an Amparo backup (bad magic bytes)")
    if not 1 <= ops <= MAX_OPSLIMIT or not 8192 <= mem <= MAX_MEMLIMIT:
        raise BackupError("damaged backup (implausible key-derivation limits)")
    key = nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE, passphrase, salt, opslimit=ops, memlimit=mem
    )
    try:
        return bytes(nacl.secret.SecretBox(key).decrypt(blob[HEADER.size :]))
    except nacl.exceptions.CryptoError:
        raise BackupError("wrong passphrase, or the backup file is damaged") from None


def restore(blob: bytes, passphrase: bytes, home: Path) -> dict[str, Any]:
    """Decrypt and unpack into ``home``, which must be empty or absent. Nothing
    is written unless the whole archive decrypts and checks out."""
    if home.exists() and (not home.is_dir() or any(home.iterdir())):
        raise BackupError(f"{home} is not empty: restore only into a new, empty home")
    members = _members(unseal(blob, passphrase))
    manifest: dict[str, Any] = json.loads(members.pop(MANIFEST))
    if KEY_FILE not in members or CONFIG_FILE not in members:
        raise BackupError("damaged backup: no key file or config inside")
    make_home(home)
    for name, data in members.items():
        write_private(home / name, data)
    return manifest


def _members(data: bytes) -> dict[str, bytes]:
    """The archive's files, refusing anything but the expected plain files."""
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for info in tar:
                if info.name not in ALLOWED or not info.isfile() or info.size > MAX_MEMBER_BYTES:
                    raise BackupError(f"damaged backup: unexpected entry {info.name[:40]!r}")
                extracted = tar.extractfile(info)
                assert extracted is not None
                out[info.name] = extracted.read()
    except tarfile.TarError:
        raise BackupError("damaged backup: the archive inside cannot be read") from None
    if MANIFEST not in out:
        raise BackupError("damaged backup: no manifest")
    return out


# -- before migrations --------------------------------------------------------------------
def before_migration(home: Path, config: Config, revision: str | None, now_text: str) -> Path | None:
    """Copy an SQLite database that is about to be migrated (online backup), so a
    failed or regretted upgrade can be undone by hand. Returns the copy's path."""
    db = home / DB_FILE
    if config.database_url or not db.is_file() or revision is None:
        return None
    folder = home / "backups"
    folder.mkdir(mode=0o700, exist_ok=True)
    target = folder / f"pre-migrate-{revision}-{now_text}.sqlite3"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".pre-migrate-")
    os.close(fd)
    source, copy = sqlite3.connect(f"file:{db}?mode=ro", uri=True), sqlite3.connect(tmp)
    try:
        source.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
    finally:
        copy.close()
        source.close()
    os.chmod(tmp, 0o600)
    os.replace(tmp, target)
    return target
