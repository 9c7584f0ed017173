"""Real node processes on loopback (see node/devmesh.py).

A log scan runs with the whole suite: every ``LocalNode`` started during a test
(through ``mesh_factory`` or a ``LocalMesh`` built by hand) is registered when it
starts, and at the test's teardown its ``node.log`` is searched for that node's
secrets: the Ed25519 seed and X25519 secret (raw, hex, base64), the TLS private
key (each PEM body line and the raw scalar), the local API token and the
passphrase. Secrets are read at every start and again at the scan, so keys made
by ``amparo keys rotate`` are covered as well as the ones they replaced. A leak
fails naming the log file and the kind of secret."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from node.config import KEY_FILE, TOKEN_FILE
from node.devmesh import LocalMesh, LocalNode
from node.keystore import PASSPHRASE_ENV
from node.provision import TLS_KEY
from node.tls import is_sealed, pem_password
from protocol import ProtocolError
from protocol.keys import open_key_file

MIN_SECRET_CHARS = 8  # shorter strings would match by chance


def _encodings(secret: bytes) -> list[bytes]:
    return [secret, secret.hex().encode(), base64.b64encode(secret), base64.urlsafe_b64encode(secret)]


@lru_cache(maxsize=256)
def _identity_secrets(key_file: bytes, passphrase: bytes | None) -> tuple[tuple[bytes, str], ...]:
    """Cached: opening a sealed key file runs Argon2id."""
    try:
        identity = open_key_file(key_file, passphrase)
    except ProtocolError:
        return ()
    return tuple(
        [(s, "Ed25519 signing seed") for s in _encodings(identity.sign_seed)]
        + [(s, "X25519 secret key") for s in _encodings(identity.enc_secret)]
    )


def _passphrase(node: LocalNode) -> bytes | None:
    path = node.env.get(PASSPHRASE_ENV)
    if not path or not Path(path).is_file():
        return None
    return Path(path).read_bytes().rstrip(b"\r\n") or None


def _tls_secrets(pem: bytes, password: bytes | None) -> list[tuple[bytes, str]]:
    """The PEM as stored (sealed or not) and, when it opens, the raw key and its plain PEM."""
    try:
        key = serialization.load_pem_private_key(pem, password=password if is_sealed(pem) else None)
    except (TypeError, ValueError):
        key = None
    pems = [pem]
    if key is not None and is_sealed(pem):
        pems.append(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    out = []
    for text in pems:
        lines = [line for line in text.splitlines() if line and not line.startswith(b"-----")]
        out += [(line, "TLS private key (PEM body)") for line in lines if len(line) >= 60]
        out.append((b"".join(lines), "TLS private key (PEM body)"))
    if isinstance(key, ec.EllipticCurvePrivateKey):
        scalar = key.private_numbers().private_value.to_bytes(32, "big")
        out += [(s, "TLS private key (scalar)") for s in _encodings(scalar)]
    return out


def _tls_password(home: Path, passphrase: bytes | None) -> bytes | None:
    try:
        return _pem_password_of((home / KEY_FILE).read_bytes(), passphrase)
    except OSError:
        return None


@lru_cache(maxsize=256)
def _pem_password_of(key_file: bytes, passphrase: bytes | None) -> bytes | None:
    """Cached: opening a sealed key file runs Argon2id."""
    try:
        return pem_password(open_key_file(key_file, passphrase))
    except ProtocolError:
        return None


def secrets_of(node: LocalNode) -> dict[bytes, str]:
    """Every secret in ``node``'s home right now, mapped to what kind it is."""
    home = node.home
    found: dict[bytes, str] = {}
    passphrase = _passphrase(node)
    if (home / KEY_FILE).is_file():
        found.update(_identity_secrets((home / KEY_FILE).read_bytes(), passphrase))
    if (home / TLS_KEY).is_file():
        found.update(_tls_secrets((home / TLS_KEY).read_bytes(), _tls_password(home, passphrase)))
    if (home / TOKEN_FILE).is_file():
        found[(home / TOKEN_FILE).read_bytes().strip()] = "local API token"
    if passphrase:
        found[passphrase] = "passphrase"
    return {s: kind for s, kind in found.items() if len(s) >= MIN_SECRET_CHARS}


def leaks(log: Path, secrets: dict[bytes, str]) -> list[str]:
    if not log.is_file():
        return []
    text = log.read_bytes()
    return sorted({kind for secret, kind in secrets.items() if secret in text})


class LogScan:
    """The nodes one test started, and every secret each of them has held."""

    def __init__(self) -> None:
        self.nodes: dict[Path, LocalNode] = {}
        self.secrets: dict[Path, dict[bytes, str]] = {}

    def watch(self, node: LocalNode) -> None:
        self.nodes[node.home] = node
        self.secrets.setdefault(node.home, {}).update(secrets_of(node))

    def check(self) -> None:
        problems = []
        for home, node in self.nodes.items():
            self.secrets[home].update(secrets_of(node))  # after a rotation: the new keys too
            log = home / "node.log"
            problems += [
                f"{log}: {kind} of {node.name!r} found in the log" for kind in leaks(log, self.secrets[home])
            ]
        assert not problems, "secret material in node logs:\n" + "\n".join(problems)


_active: list[LogScan] = []


@pytest.fixture(autouse=True)
def node_log_scan(monkeypatch: pytest.MonkeyPatch) -> Iterator[LogScan]:
    """Registers every node started in an e2e test; scans their logs at teardown
    (after the test's own fixtures have stopped them)."""
    scan = LogScan()
    real_start = LocalNode.start

    def start(node: LocalNode, wait: float = 30.0) -> None:
        scan.watch(node)
        real_start(node, wait)

    monkeypatch.setattr(LocalNode, "start", start)
    _active.append(scan)
    try:
        yield scan
    finally:
        _active.remove(scan)
    scan.check()


@pytest.fixture
def mesh_factory(tmp_path: Path) -> Iterator[object]:
    meshes: list[LocalMesh] = []
    # Under tests/e2e the autouse scan registers these nodes as they start; other
    # suites that import this fixture (tests/browser) get a scan of their own.
    own_scan = None if _active else LogScan()

    def make(count: int, **settings: Any) -> LocalMesh:
        """``settings``: config.toml settings for every node (e.g. allow_private_targets)."""
        mesh = LocalMesh(tmp_path / f"mesh{len(meshes)}", count, settings=settings)
        meshes.append(mesh)
        mesh.init_all()
        if own_scan is not None:
            for node in mesh.nodes:
                own_scan.watch(node)
        mesh.start_all()
        return mesh

    yield make
    for mesh in meshes:
        mesh.stop_all()
    if own_scan is not None:
        own_scan.check()
