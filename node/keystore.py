"""Creating and unlocking the node's sealed key file.

The passphrase comes from ``AMPARO_PASSPHRASE_FILE`` (for services: systemd's
``LoadCredential``), an interactive prompt, or is explicitly waived at ``init``
with ``--no-passphrase``. It is never logged and never stored.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import nacl.utils

from node.config import KEY_FILE, ConfigError, write_private
from protocol import keys
from protocol.errors import ProtocolError
from protocol.keys import Identity

PASSPHRASE_ENV = "AMPARO_PASSPHRASE_FILE"
MIN_PASSPHRASE_CHARS = 8


def passphrase_from_env() -> bytes | None:
    path = os.environ.get(PASSPHRASE_ENV)
    if not path:
        return None
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{PASSPHRASE_ENV}={path}: cannot read ({exc.strerror})") from None
    value = text.rstrip(b"\r\n")
    if not value:
        raise ConfigError(f"{PASSPHRASE_ENV}={path}: the file is empty")
    return value


def create(home: Path, passphrase: bytes | None, profile: str) -> Identity:
    if passphrase is not None and len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise ConfigError(f"the passphrase must have at least {MIN_PASSPHRASE_CHARS} characters")
    identity = Identity.from_random(nacl.utils.random(64))
    store(home, identity, passphrase, profile)
    return identity


def store(home: Path, identity: Identity, passphrase: bytes | None, profile: str) -> None:
    store_at(home / KEY_FILE, identity, passphrase, profile)


def store_at(path: Path, identity: Identity, passphrase: bytes | None, profile: str) -> None:
    """Seal ``identity`` into ``path`` (fresh salt and nonce every time)."""
    sealed = keys.seal_key_file(
        identity,
        passphrase,
        salt=nacl.utils.random(keys.SALT_BYTES),
        nonce=nacl.utils.random(keys.NONCE_BYTES),
        profile=profile,
    )
    write_private(path, sealed)


def unlock(home: Path, prompt: Callable[[], bytes] | None = None) -> Identity:
    """Open the key file; the passphrase file wins over the prompt."""
    return unlock_with_passphrase(home, prompt)[0]


def unlock_with_passphrase(
    home: Path, prompt: Callable[[], bytes] | None = None
) -> tuple[Identity, bytes | None]:
    """Like ``unlock``, also returning the passphrase (for re-sealing a new key)."""
    path = home / KEY_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"no key file at {path} (run `amparo init`)") from None
    try:
        if not keys.key_file_needs_passphrase(data):
            return keys.open_key_file(data, None), None
        passphrase = passphrase_from_env()
        if passphrase is None:
            if prompt is None:
                raise ConfigError(f"the key file is sealed: set {PASSPHRASE_ENV} or run interactively")
            passphrase = prompt()
        return keys.open_key_file(data, passphrase), passphrase
    except ProtocolError as exc:
        raise ConfigError(f"{path}: {exc.message}") from None
