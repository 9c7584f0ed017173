"""``amparo peer remove``: the vouch is revoked across the mesh, so the removed
peer's new alerts fall outside the trust horizon of the peer's allies, while
what it published before stays."""

from __future__ import annotations

import json
from typing import Any

import pytest

from node.config import KEY_FILE
from protocol.keys import open_key_file
from tests.e2e.harness import ScriptedPeer
from tests.e2e.test_gossip import wait_until

pytestmark = pytest.mark.slow


def test_peer_remove_revokes_the_vouch_across_the_mesh(mesh_factory: Any) -> None:
    mesh = mesh_factory(3)  # trust depth 2 (the default)
    a, b, c = mesh.nodes
    mesh.connect(mesh.line_edges())  # A–B–C: C trusts A only through B's vouch
    earlier = a.send(headline="Published before the peering ended")
    mesh.wait_for(earlier, [c], timeout=20)

    # A second path into C that does not depend on B relaying: a peer of C that
    # carries envelopes signed with A's key (as any relay in the mesh could).
    a_key = open_key_file((a.home / KEY_FILE).read_bytes(), None)
    relay = ScriptedPeer("Nodo Relevo Ficticio")
    relay.pair_with(c)
    control = relay.alert("Signed by A, relayed while B vouches for A", author=a_key)
    assert relay.push(c, [control.raw])["accepted"] == 1  # inside C's horizon (C → B → A)

    outside_before = _outside_horizon(c)
    removed = b.amparo("peer", "remove", a.name)  # by name, with a space in it
    assert f"Removed peer {a.name!r}" in removed.stdout
    assert a.name not in {p["name"] for p in json.loads(b.amparo("peer", "list", "--json").stdout)["peers"]}

    def refused_at_c() -> bool:
        fresh = relay.alert("Signed by A after B removed it", author=a_key)
        return relay.push(c, [fresh.raw])["accepted"] == 0

    wait_until(refused_at_c, timeout=20, what="C to drop A's new alerts once B's revoke arrives")
    after = relay.alert("Signed by A, relayed after the revoke", author=a_key)
    assert relay.push(c, [after.raw])["accepted"] == 0
    assert _outside_horizon(c) > outside_before  # dropped for the horizon, not for anything else
    # A's own new alert, sent the normal way, goes nowhere either.
    from_a = a.send(headline="A's alert after the peering ended")
    marker = b.send(headline="Marker from B")
    mesh.wait_for(marker, [c], timeout=20)
    assert from_a not in b.alert_ids() | c.alert_ids()
    assert after.id.hex() not in c.alert_ids()
    # What A published while trusted stays.
    assert {earlier, control.id.hex()} <= c.alert_ids()


def _outside_horizon(node: Any) -> int:
    count: int = node.api.get("/api/v1/status")["rejected"].get("outside-horizon", 0)
    return count
