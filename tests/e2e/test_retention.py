"""Expired alerts are deleted after ``retention_days``; fresh ones and the
seen-set stay (a deleted alert replayed later is still refused as a duplicate)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from node.config import DB_FILE
from node.devmesh import LocalMesh
from node.store import Store, StoredEnvelope
from protocol import Alert, Area, Identity, sign_envelope
from tests.e2e.test_escalation import configure
from tests.e2e.test_gossip import wait_until

pytestmark = pytest.mark.slow
DAY = 86_400_000


def test_alerts_expired_beyond_retention_are_pruned(tmp_path: Path) -> None:
    author = Identity.from_random(os.urandom(64))
    now = int(time.time() * 1000)

    def alert(headline: str, created: int, ttl: int) -> StoredEnvelope:
        env = sign_envelope(
            author, Alert(headline=headline, areas=(Area("MX-OAX"),)), created=created, expires=created + ttl
        )
        return StoredEnvelope.from_envelope(env, received_at=created, from_peer=None)

    with LocalMesh(tmp_path, 1) as mesh:
        mesh.init_all()
        (node,) = mesh.nodes
        configure(node.home, retention_days=2)
        old = alert("Expired five days ago", now - 6 * DAY, DAY)
        recent = alert("Expired yesterday", now - 2 * DAY, DAY)
        live = alert("Still current", now, DAY)
        with Store(f"sqlite:///{node.home / DB_FILE}") as store:
            store.add_envelopes([old, recent, live])
        node.start()
        wait_until(
            lambda: old.id.hex() not in node.alert_ids(), timeout=20, what="the old alert to be pruned"
        )
        assert {recent.id.hex(), live.id.hex()} <= node.alert_ids()
        node.stop()
        with Store(f"sqlite:///{node.home / DB_FILE}") as store:
            assert store.has(old.id)  # a tombstone: the seen-set still refuses it
            assert store.get(old.id) is None
