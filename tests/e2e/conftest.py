"""Real node processes on loopback (see node/devmesh.py).

Every mesh made here is checked at teardown: no node's log may contain its
private keys (raw, hex or base64) — a log scan that runs with the whole suite."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.config import KEY_FILE
from node.devmesh import LocalMesh, LocalNode
from protocol.keys import open_key_file


def secrets_of(node: LocalNode) -> list[bytes]:
    path = node.home / KEY_FILE
    if not path.exists():
        return []
    identity = open_key_file(path.read_bytes(), None)
    out: list[bytes] = []
    for secret in (identity.sign_seed, identity.enc_secret):
        out += [secret, secret.hex().encode(), base64.b64encode(secret), base64.urlsafe_b64encode(secret)]
    return out


def assert_logs_clean(node: LocalNode, secrets: list[bytes]) -> None:
    log = node.home / "node.log"
    if not log.exists():
        return
    text = log.read_bytes()
    leaked = [s[:8] for s in secrets if s in text]
    assert not leaked, f"{node.name}: private key material in node.log"


@pytest.fixture
def mesh_factory(tmp_path: Path) -> Iterator[object]:
    meshes: list[LocalMesh] = []
    keys: dict[str, list[bytes]] = {}

    def make(count: int) -> LocalMesh:
        mesh = LocalMesh(tmp_path / f"mesh{len(meshes)}", count)
        meshes.append(mesh)
        mesh.init_all()
        for node in mesh.nodes:
            keys[str(node.home)] = secrets_of(node)
        mesh.start_all()
        return mesh

    yield make
    for mesh in meshes:
        mesh.stop_all()
    for mesh in meshes:
        for node in mesh.nodes:
            assert_logs_clean(node, keys.get(str(node.home), []))
