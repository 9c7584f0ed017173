"""A seized disk after ``amparo wipe``, tried against a real node process: no
alert plaintext is left in any inode the home used (database, WAL and SHM),
whether the wipe met a running node or a clean stop deleted the WAL earlier.

The tests keep hard links, outside the home on the same filesystem, to the
files' inodes: the very blocks a lab would read after the unlink."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from node.config import DB_FILE, KEY_FILE
from node.devmesh import LocalMesh, LocalNode
from node.provision import TLS_KEY
from tests.e2e.test_gossip import wait_until

pytestmark = pytest.mark.slow


HEADLINES = [f"Retén ficticio en el kilómetro {i} de la carretera a San Ficticio" for i in range(12)]
DATABASE = (DB_FILE, DB_FILE + "-wal", DB_FILE + "-shm")


def _link_database(home: Path, into: Path, names: tuple[str, ...] = DATABASE) -> None:
    """Hard links outside the home: the same inodes, readable after any unlink."""
    into.mkdir(exist_ok=True)
    for name in names:
        os.link(home / name, into / name)


def _plaintext_in(folder: Path) -> list[str]:
    found = []
    for path in sorted(folder.iterdir()):
        data = path.read_bytes()
        found += [f"{path.name}: {h!r}" for h in HEADLINES if h.encode() in data]
    return found


def _node_holding_alerts(mesh_factory: Any) -> LocalNode:
    """One running node with the alerts in its database, its WAL and SHM files present."""
    mesh: LocalMesh = mesh_factory(1)
    (node,) = mesh.nodes
    for headline in HEADLINES:
        node.send(headline=headline)
    wait_until(lambda: all((node.home / n).exists() for n in DATABASE), what="the WAL and SHM files")
    return node


def test_wipe_of_a_running_node_leaves_no_alert_in_old_inodes(mesh_factory: Any, tmp_path: Path) -> None:
    node = _node_holding_alerts(mesh_factory)
    home = node.home
    kept = tmp_path / "inodes"
    _link_database(home, kept, (*DATABASE, KEY_FILE, TLS_KEY))
    keys_before = {n: (kept / n).read_bytes() for n in (KEY_FILE, TLS_KEY)}
    assert _plaintext_in(kept), "precondition: the alerts are in the database files"

    wiped = node.amparo("wipe", "--yes")
    assert wiped.returncode == 0 and not home.exists()
    assert not node.running
    assert _plaintext_in(kept) == []
    for name, before in keys_before.items():
        now = (kept / name).read_bytes()
        assert len(now) == len(before) and now != before, f"{name} was not overwritten"


def test_a_clean_stop_overwrites_the_wal_it_deletes(mesh_factory: Any, tmp_path: Path) -> None:
    """A wipe cannot reach a WAL that a clean stop earlier in the node's life
    deleted: the node overwrites it itself when SQLite removes it."""
    node = _node_holding_alerts(mesh_factory)
    home = node.home
    kept = tmp_path / "inodes"
    _link_database(home, kept, (DB_FILE + "-wal",))
    assert _plaintext_in(kept), "precondition: the alerts are in the WAL"
    assert node.stop() == 0
    assert not (home / (DB_FILE + "-wal")).exists()  # SQLite merged and removed it …
    assert _plaintext_in(kept) == []  # … and nothing of it is left in its old blocks
    node.start()
    assert {a["headline"] for a in node.api.get("/api/v1/alerts", limit=100)["alerts"]} >= set(HEADLINES)
