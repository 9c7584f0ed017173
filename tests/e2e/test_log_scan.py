"""The suite-wide log scan itself (tests/e2e/conftest.py): a secret planted in a
node's log is caught and named, including keys made by ``amparo keys rotate``."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.config import KEY_FILE, TOKEN_FILE
from node.devmesh import LocalMesh
from node.provision import TLS_KEY
from protocol.keys import open_key_file
from tests.e2e.conftest import LogScan

pytestmark = pytest.mark.slow


def test_a_node_started_by_hand_is_registered_and_every_kind_of_secret_is_caught(
    tmp_path: Path, node_log_scan: LogScan
) -> None:
    with LocalMesh(tmp_path, 1) as mesh:  # not through mesh_factory
        mesh.init_all()
        (node,) = mesh.nodes
        mesh.start_all()
        assert node.home in node_log_scan.nodes
        old_seed = open_key_file((node.home / KEY_FILE).read_bytes(), None).sign_seed
        node.amparo("keys", "rotate", "--yes")
        new_seed = open_key_file((node.home / KEY_FILE).read_bytes(), None).sign_seed
        assert new_seed != old_seed
    log = node.home / "node.log"
    clean = log.read_bytes()
    pem_line = (node.home / TLS_KEY).read_bytes().splitlines()[2]
    planted = {
        "Ed25519 signing seed": old_seed.hex().encode(),  # the key from before the rotation
        "TLS private key (PEM body)": pem_line,
        "local API token": (node.home / TOKEN_FILE).read_bytes().strip(),
    }
    try:
        node_log_scan.check()  # the real log is clean
        for kind, secret in planted.items():
            log.write_bytes(clean + b"INFO debug dump " + secret + b"\n")
            with pytest.raises(AssertionError, match=rf"{log}: {kind.replace('(', '.').replace(')', '.')}"):
                node_log_scan.check()
        # The rotated-in key was never in the file when the node started: it is
        # read again at scan time.
        log.write_bytes(clean + new_seed.hex().encode() + b"\n")
        with pytest.raises(AssertionError, match="Ed25519 signing seed"):
            node_log_scan.check()
        scan = LogScan()  # a fresh scan that only sees the home now: still catches it
        scan.watch(node)
        with pytest.raises(AssertionError, match="Ed25519 signing seed"):
            scan.check()
    finally:
        log.write_bytes(clean)  # leave the real log for the autouse scan at teardown


def test_a_passphrase_in_the_log_is_caught(tmp_path: Path) -> None:
    secret = tmp_path / "pass"
    secret.write_bytes(b"frase de paso del colectivo\n")
    mesh = LocalMesh(tmp_path / "m", 1, env={"AMPARO_PASSPHRASE_FILE": str(secret)})
    (node,) = mesh.nodes
    node.amparo("init", "--name", node.name, "--kdf-profile", "interactive")
    scan = LogScan()
    scan.watch(node)
    (node.home / "node.log").write_bytes(b"unlocking with frase de paso del colectivo\n")
    with pytest.raises(AssertionError, match="passphrase"):
        scan.check()
    (node.home / "node.log").write_bytes(b"")
    scan.check()
    assert any(
        kind == "X25519 secret key" for kind in scan.secrets[node.home].values()
    )  # the sealed key opened
    assert any(
        kind == "TLS private key (scalar)" for kind in scan.secrets[node.home].values()
    )  # and so did the TLS key sealed with it
