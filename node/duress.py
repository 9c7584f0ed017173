"""The duress passphrase: a second passphrase that, typed where the node asks
for its passphrase, alerts the chosen peers and wipes the node instead.

Only an Argon2id hash of it is kept (``duress.json``, mode 0600, in the home),
with the peers to alert and how long to wait for them. It opens nothing: a
seized copy of the home tells an adversary that a duress passphrase exists,
never the key. ``amparo keys duress-passphrase set`` refuses a passphrase that
opens the key file (it would never act).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.pwhash

from node.config import ConfigError, write_private

DURESS_FILE = "duress.json"
MIN_CHARS = 8
# The sealed alert a duress wipe sends its chosen peers (node.wipe_alert), signed in
# English like every text the node generates; readers see it in their language
# (node.response.checkin_desk.localized, node.web.labels.GENERATED).
WIPE_HEADLINE = "Duress: %(node)s is wiping its node under pressure"
WIPE_INSTRUCTION = (
    "Treat anything signed by this node from now on as forged. Reach its people by your "
    "agreed safe channel and follow your protocol for a seized node."
)


@dataclass(frozen=True)
class DuressSetting:
    peers: tuple[str, ...]
    wait_ms: int


def save(home: Path, passphrase: bytes, peers: list[str], wait_ms: int) -> None:
    if len(passphrase) < MIN_CHARS:
        raise ConfigError(f"the duress passphrase must have at least {MIN_CHARS} characters")
    hashed = nacl.pwhash.argon2id.str(passphrase).decode("ascii")
    doc = {"hash": hashed, "peers": list(peers), "wait_ms": wait_ms}
    write_private(home / DURESS_FILE, json.dumps(doc).encode())


def clear(home: Path) -> bool:
    path = home / DURESS_FILE
    if not path.exists():
        return False
    from node.shred import overwrite_and_unlink

    overwrite_and_unlink(path)
    return True


def setting(home: Path) -> DuressSetting | None:
    doc = _read(home)
    return None if doc is None else DuressSetting(tuple(doc["peers"]), int(doc["wait_ms"]))


def matches(home: Path, passphrase: bytes) -> DuressSetting | None:
    """The setting when ``passphrase`` is the duress passphrase, else None."""
    doc = _read(home)
    if doc is None:
        return None
    try:
        nacl.pwhash.verify(doc["hash"].encode("ascii"), passphrase)
    except (nacl.exceptions.InvalidkeyError, ValueError, TypeError):
        return None
    return DuressSetting(tuple(doc["peers"]), int(doc["wait_ms"]))


def _read(home: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads((home / DURESS_FILE).read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{home / DURESS_FILE}: unreadable ({exc})") from None
    if not (
        isinstance(doc, dict)
        and isinstance(doc.get("hash"), str)
        and isinstance(doc.get("peers"), list)
        and isinstance(doc.get("wait_ms"), int)
    ):
        raise ConfigError(f"{home / DURESS_FILE}: not a duress setting")
    result: dict[str, Any] = doc
    return result
