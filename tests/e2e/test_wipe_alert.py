"""``amparo wipe --alert``, against real node processes: the named peer holds
the sealed duress alert and the compromise declaration before the wiped node's
key file is overwritten; a peer not named cannot read the alert; the wipe
happens even when the warning cannot be sent.

The moment the key was erased is read from a hard link kept outside the home:
the wipe overwrites the key file in place before unlinking it, so the link's
modification time is when the key was destroyed."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node.cli.client import ApiError
from node.config import DB_FILE, KEY_FILE
from node.devmesh import LocalMesh, LocalNode
from node.keystore import PASSPHRASE_ENV
from tests.e2e.test_gossip import wait_until

pytestmark = pytest.mark.slow


def _received_at(home: Path, envelope_id: str) -> int | None:
    """When a node stored an envelope, from its real SQLite file (None: not held)."""
    with sqlite3.connect(f"file:{home / DB_FILE}?mode=ro", uri=True) as db:
        row = db.execute(
            "SELECT received_at FROM envelopes WHERE id = ?", (bytes.fromhex(envelope_id),)
        ).fetchone()
    return None if row is None else int(row[0])


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    """Three nodes for the module: one to be seized, a peer it names, a peer it does not."""
    mesh = LocalMesh(tmp_path_factory.mktemp("wipe-alert"), 3)
    try:
        mesh.init_all()
        mesh.start_all()
        mesh.connect([(0, 1), (0, 2)])
        yield mesh
    finally:
        mesh.stop_all()


def test_peers_hold_the_duress_alert_and_the_compromise_before_the_key_is_gone(
    federation: LocalMesh, tmp_path: Path
) -> None:
    seized, named, other = federation.nodes[:3]
    # the endpoint refuses a peer it does not have, before it signs anything
    with pytest.raises(ApiError) as refused:
        seized.api.post("/api/v1/wipe/alert", {"confirm": seized.name, "peers": ["Nadie Conocido"]})
    assert "Nadie Conocido" in str(refused.value)

    os.link(seized.home / KEY_FILE, tmp_path / "key-inode")
    wiped = seized.amparo("wipe", "--yes", "--alert", named.name, "--json")
    key_erased_ms = (tmp_path / "key-inode").stat().st_mtime_ns // 1_000_000

    doc = json.loads(wiped.stdout)
    assert doc["alert"]["peers"] == {named.name: {"alert": True, "compromise": True}}
    assert not seized.home.exists() and not seized.running
    alert_id, revocation_id = doc["alert"]["alert"], doc["alert"]["revocation"]
    for envelope in (alert_id, revocation_id):
        held = _received_at(named.home, envelope)
        assert held is not None and held <= key_erased_ms, (envelope, held, key_erased_ms)
    shown = named.api.get(f"/api/v1/alerts/{alert_id}")
    assert shown["readable"] and shown["severity"] == "severe" and shown["scope"] == "restricted"
    assert shown["headline"].startswith("Duress: ") and seized.name in shown["headline"]
    # the compromise declaration goes to every ally; the alert's text only to the named one
    wait_until(
        lambda: _received_at(other.home, revocation_id) is not None, timeout=20, what="the revocation at C"
    )
    if _received_at(other.home, alert_id) is not None:
        assert not other.api.get(f"/api/v1/alerts/{alert_id}")["readable"]


def test_the_wipe_happens_even_when_no_warning_can_be_sent(tmp_path: Path) -> None:
    mesh = LocalMesh(tmp_path, 1)
    mesh.init_all()  # never started: nobody holds the unlocked key, nothing can be signed
    (alone,) = mesh.nodes
    wiped = alone.amparo("wipe", "--yes", "--alert", "Colectivo Ficticio", "--json", check=False)
    assert wiped.returncode == 1
    assert "No alert was sent" in wiped.stderr
    assert json.loads(wiped.stdout)["alert"]["sent"] is False
    assert not alone.home.exists()


def _sealed_node(mesh: LocalMesh, root: Path) -> LocalNode:
    """A node whose key file has a passphrase (the devmesh nodes have none)."""
    secret = root / "passphrase"
    root.mkdir()
    secret.write_text("frase de paso ficticia 2026")
    node = LocalNode("Casa Refugio Ficticia", root / "home", env={PASSPHRASE_ENV: str(secret)})
    node.amparo(
        "init", "--name", node.name, "--kdf-profile", "interactive",
        "--listen", f"127.0.0.1:{node.mesh_port}", "--local", f"127.0.0.1:{node.local_port}",
    )
    mesh.nodes.append(node)  # stopped with the mesh
    node.start()
    return node


def _asked_for_the_passphrase(node: LocalNode, typed: str) -> subprocess.CompletedProcess[str]:
    """``amparo id`` as a person at the keyboard: no passphrase file, a prompt."""
    env = {k: v for k, v in os.environ.items() if k != PASSPHRASE_ENV}
    return subprocess.run(
        [sys.executable, "-m", "node.cli", "--home", str(node.home), "id"],
        input=typed + "\n", capture_output=True, text=True, env=env, timeout=120,
    )


def test_the_duress_passphrase_warns_the_peers_then_wipes_like_a_wrong_passphrase(
    federation: LocalMesh, tmp_path: Path
) -> None:
    mesh = federation
    ally = mesh.nodes[1]
    node = _sealed_node(mesh, tmp_path / "sealed")
    mesh.pair(node, ally)
    duress_file = tmp_path / "duress"
    duress_file.write_text("nos obligan a abrirlo")
    node.amparo("keys", "duress-passphrase", "set", "--alert", ally.name, "--passphrase-file", str(duress_file))
    same = tmp_path / "same"
    same.write_text("frase de paso ficticia 2026")
    refused = node.amparo("keys", "duress-passphrase", "set", "--passphrase-file", str(same), check=False)
    assert refused.returncode == 1 and "that is the node's passphrase" in refused.stderr

    wrong = _asked_for_the_passphrase(node, "una frase equivocada")
    assert node.home.exists() and node.running
    under_duress = _asked_for_the_passphrase(node, "nos obligan a abrirlo")
    assert (under_duress.returncode, under_duress.stdout) == (wrong.returncode, wrong.stdout) != (0, "")
    assert under_duress.stderr == wrong.stderr  # the same prompt and the same refusal, nothing more
    assert not node.home.exists()

    def duress_alert_at_ally() -> list[dict[str, Any]]:
        alerts = ally.api.get("/api/v1/alerts")["alerts"]
        return [a for a in alerts if a.get("headline", "").startswith(f"Duress: {node.name} ")]

    shown = duress_alert_at_ally()
    assert len(shown) == 1 and shown[0]["severity"] == "severe" and shown[0]["scope"] == "restricted"
