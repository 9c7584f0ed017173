"""A peer that vouches for many fresh keys does not get a full author budget for
each of them: against a real node, the fresh keys' alerts count against the
voucher's budget, and the new vouches a peer can introduce are capped."""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any

import pytest

from mesh.peers import Limits
from node.config import DB_FILE
from node.devmesh import LocalNode
from protocol import Identity
from tests.e2e.harness import ScriptedPeer
from tests.e2e.test_catchup import held_ids

pytestmark = pytest.mark.slow

FRESH_KEYS = 40
ALERTS_EACH = 90


def count_by(node: LocalNode, kind: str, authors: list[bytes]) -> int:
    db = sqlite3.connect(f"file:{node.home / DB_FILE}?mode=ro", uri=True, timeout=30)
    try:
        marks = ",".join("?" * len(authors))
        row = db.execute(
            f"SELECT count(*) FROM envelopes WHERE type = ? AND author IN ({marks})",
            (kind, *authors),
        ).fetchone()
        return int(row[0])
    finally:
        db.close()


def test_fresh_vouched_keys_share_the_vouchers_budget(mesh_factory: Any) -> None:
    mesh = mesh_factory(2)
    a, b = mesh.nodes
    mesh.connect([(0, 1)])
    voucher = ScriptedPeer("Nodo Avalista")
    voucher.pair_with(a)
    fresh = [Identity.from_random(os.urandom(64)) for _ in range(FRESH_KEYS)]
    started = time.monotonic()
    pushed: set[bytes] = set()
    deferred: set[bytes] = set()
    for i, key in enumerate(fresh):
        alerts = [voucher.alert(f"Flood {i}-{n}", author=key) for n in range(ALERTS_EACH)]
        pushed.update(alert.id for alert in alerts)
        reply = voucher.push(
            a, [voucher.vouch_for(key, name=f"Clave Nueva {i}").raw, *(x.raw for x in alerts)]
        )
        deferred.update(reply.get("deferred", []))
    elapsed = time.monotonic() - started
    authors = [key.sign_public for key in fresh]
    flood_stored = count_by(a, "alert", authors)
    limits = Limits()
    # The voucher's one live budget: its burst plus its rate for the time the flood took.
    bound = limits.author_burst + limits.author_rate_per_s * elapsed
    assert flood_stored <= bound, (
        f"{flood_stored} of {FRESH_KEYS * ALERTS_EACH} flood alerts stored in {elapsed:.0f} s; "
        f"the voucher's budget allows {bound:.0f}"
    )
    print(
        f"\n{flood_stored} of {FRESH_KEYS * ALERTS_EACH} flood alerts stored in {elapsed:.1f} s (bound {bound:.0f})"
    )
    # Nothing is refused silently: every flood alert not stored was named as deferred,
    # so an honest sender would keep it and send it again later.
    assert pushed - held_ids(a) <= deferred
    # New vouches a peer can introduce are capped per hour (the pairing vouch for A is one).
    vouches = count_by(a, "vouch", [voucher.key])
    assert vouches <= limits.vouch_burst + 1, vouches
    # An honest peer's alerts still arrive, in both directions.
    from_b = b.send(headline="Honest alert during the vouch flood")
    mesh.wait_for(from_b, [a], timeout=30)
    from_a = a.send(headline="Honest alert from the flooded node")
    mesh.wait_for(from_a, [b], timeout=30)
