"""Backup → wipe → restore with real node processes: B is backed up while it
runs, wiped (which stops it), restored into its home, and comes back with the
same identity and alerts, rejoins the mesh and still receives new alerts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from node.devmesh import LocalMesh
from node.wipe import PID_FILE

pytestmark = pytest.mark.slow


def test_backup_wipe_restore_round_trip(mesh_factory: Any, tmp_path: Path) -> None:
    mesh: LocalMesh = mesh_factory(2)
    a, b = mesh.nodes
    mesh.connect([(0, 1)])
    before = a.send(headline="Before the raid on the office")
    mesh.wait_for(before, [b])
    identity = json.loads(b.amparo("id", "--json").stdout)
    secret = tmp_path / "backup-pass"
    secret.write_bytes(b"frase de paso de la copia\n")
    archive = tmp_path / "brigada.amparo"

    made = json.loads(b.amparo("backup", str(archive), "--passphrase-file", str(secret), "--json").stdout)
    assert made["database"] is True and b.running

    assert (b.home / PID_FILE).exists()
    wiped = json.loads(b.amparo("wipe", "--yes", "--json").stdout)
    assert wiped["stopped_pid"] and not b.home.exists()
    assert b.proc is not None and b.proc.wait(10) is not None
    b.proc = None

    b.amparo("restore", str(archive), "--passphrase-file", str(secret))
    b.start()
    assert json.loads(b.amparo("id", "--json").stdout)["sign_key"] == identity["sign_key"]
    assert before in b.alert_ids()
    after = a.send(headline="After the restore")
    mesh.wait_for(after, [b])
    back = b.send(headline="The restored node speaks")
    mesh.wait_for(back, [a])
