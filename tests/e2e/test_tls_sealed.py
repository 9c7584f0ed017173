"""A seized disk, tried against a real node process with a passphrase: the TLS
private key is sealed like the identity key (no PEM private key in clear anywhere
in the home), the node still serves the same pinned certificate after a restart,
and a plain key left by an older version is sealed, its old blocks overwritten."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import ssl
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from node import provision
from node.config import KEY_FILE
from node.devmesh import LocalMesh, LocalNode
from node.provision import TLS_CERT, TLS_KEY
from node.tls import pem_password
from protocol.keys import open_key_file

pytestmark = pytest.mark.slow

PASSPHRASE = b"frase de paso del colectivo ficticio"
PLAIN_PEM_MARKERS = (b"BEGIN PRIVATE KEY", b"BEGIN EC PRIVATE KEY", b"BEGIN RSA PRIVATE KEY")


def _sealed_node(tmp_path: Path) -> tuple[LocalMesh, LocalNode]:
    """One node initialised with a passphrase (from AMPARO_PASSPHRASE_FILE), not started."""
    secret = tmp_path / "passphrase"
    secret.write_bytes(PASSPHRASE + b"\n")
    mesh = LocalMesh(tmp_path / "mesh", 1, env={"AMPARO_PASSPHRASE_FILE": str(secret)})
    (node,) = mesh.nodes
    node.amparo(
        "init",
        "--name",
        node.name,
        "--kdf-profile",
        "interactive",
        "--listen",
        f"127.0.0.1:{node.mesh_port}",
        "--local",
        f"127.0.0.1:{node.local_port}",
    )
    return mesh, node


def _served_fingerprint(node: LocalNode) -> bytes:
    """SHA-256 of the certificate the node's mesh listener presents."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", node.mesh_port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as tls_socket:
            der = tls_socket.getpeercert(binary_form=True)
    assert der is not None
    return hashlib.sha256(der).digest()


def _home_bytes(home: Path) -> dict[str, bytes]:
    return {str(p.relative_to(home)): p.read_bytes() for p in home.rglob("*") if p.is_file()}


def _assert_no_plain_private_key(home: Path, scalar: bytes | None = None) -> None:
    for name, data in _home_bytes(home).items():
        for marker in PLAIN_PEM_MARKERS:
            assert marker not in data, f"{name} holds a private key in clear ({marker.decode()})"
        if scalar is not None:
            assert scalar not in data, f"{name} holds the raw TLS private key"


def test_tls_key_is_sealed_with_the_passphrase_and_survives_a_restart(tmp_path: Path) -> None:
    mesh, node = _sealed_node(tmp_path)
    with mesh:
        pinned = provision.tls_fingerprint(node.home)
        assert pinned is not None
        _assert_no_plain_private_key(node.home)
        node.start()
        assert _served_fingerprint(node) == pinned
        node.send(headline="Alert while the TLS key is sealed")
        node.stop()
        node.start()
        assert _served_fingerprint(node) == pinned  # same pinned certificate after a restart
        identity = open_key_file((node.home / KEY_FILE).read_bytes(), PASSPHRASE)  # with the passphrase …
        key = serialization.load_pem_private_key((node.home / TLS_KEY).read_bytes(), pem_password(identity))
        scalar = key.private_numbers().private_value.to_bytes(32, "big")  # type: ignore[union-attr]
        _assert_no_plain_private_key(node.home, scalar)  # … the key opens, and is nowhere in clear
        copy = tmp_path / "seized-copy"
        shutil.copytree(node.home, copy)
    with pytest.raises((TypeError, ValueError)):  # a copied home without the passphrase: no key
        serialization.load_pem_private_key((copy / TLS_KEY).read_bytes(), password=None)


def test_a_plain_tls_key_from_an_older_version_is_sealed_at_the_next_start(tmp_path: Path) -> None:
    mesh, node = _sealed_node(tmp_path)
    older = tmp_path / "older"  # what an older Amparo wrote: a plain PEM key
    older.mkdir()
    provision.make_certificate(older, "amparo-node")
    plain = (older / TLS_KEY).read_bytes()
    assert b"BEGIN PRIVATE KEY" in plain
    key = serialization.load_pem_private_key(plain, password=None)
    scalar = key.private_numbers().private_value.to_bytes(32, "big")  # type: ignore[union-attr]
    shutil.copyfile(older / TLS_KEY, node.home / TLS_KEY)
    shutil.copyfile(older / TLS_CERT, node.home / TLS_CERT)
    kept = tmp_path / "inodes"
    kept.mkdir()
    os.link(node.home / TLS_KEY, kept / TLS_KEY)  # the plain file's inode, after any unlink
    pinned = provision.tls_fingerprint(node.home)
    with mesh:
        node.start()
        assert _served_fingerprint(node) == pinned
        _assert_no_plain_private_key(node.home, scalar)
        old_inode = (kept / TLS_KEY).read_bytes()
        assert b"PRIVATE KEY" not in old_inode and old_inode != plain, "the plain key was unlinked unseen"
        node.stop()
        node.start()  # and it still starts from the sealed key
        assert _served_fingerprint(node) == pinned


def test_a_restored_backup_serves_the_same_certificate_from_the_sealed_key(tmp_path: Path) -> None:
    mesh, node = _sealed_node(tmp_path)
    archive, secret = tmp_path / "copia.amparo", tmp_path / "backup-pass"
    secret.write_bytes(b"otra frase para la copia\n")
    pinned = provision.tls_fingerprint(node.home)
    node.amparo("backup", str(archive), "--passphrase-file", str(secret))
    restored = LocalNode(node.name, tmp_path / "restored", node.mesh_port, node.local_port, env=node.env)
    restored.amparo("restore", str(archive), "--passphrase-file", str(secret))
    _assert_no_plain_private_key(restored.home)
    with mesh:
        mesh.nodes[0] = restored
        restored.start()
        assert _served_fingerprint(restored) == pinned
