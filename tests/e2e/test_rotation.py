"""Key rotation on real node processes (A–B–C in a line): B rotates while
running, peers follow the hand-over without pairing again, B restarts with the
new key and its alerts (and C's, relayed by B) still reach everyone; an alert
signed later with B's old key is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from node.config import KEY_FILE
from node.devmesh import LocalMesh, LocalNode
from protocol import Alert, Area, sign_envelope
from protocol.keys import open_key_file
from tests.e2e.harness import ScriptedPeer, now_ms
from tests.e2e.test_gossip import wait_until

pytestmark = pytest.mark.slow


def peer_keys(node: LocalNode) -> set[str]:
    return {p["key"] for p in node.api.get("/api/v1/peers")["peers"]}


def test_rotation_is_followed_and_the_old_key_is_retired(mesh_factory: Any) -> None:
    mesh: LocalMesh = mesh_factory(3)
    a, b, c = mesh.nodes
    mesh.connect(mesh.line_edges())
    old_identity = open_key_file((b.home / KEY_FILE).read_bytes(), None)
    old_key = old_identity.sign_public.hex()
    mesh.wait_for(b.send(headline="Before the rotation"), [a, c])
    sealed = a.send(headline="For B only, before its rotation", scope="restricted", to=[b.name])
    mesh.wait_for(sealed, [b])
    debrief = "La familia fue trasladada a la casa del norte"
    b.amparo("alert", "note", sealed, debrief)

    rotated = json.loads(b.amparo("keys", "rotate", "--yes", "--json").stdout)
    new_key = rotated["key"]
    assert new_key != old_key
    wait_until(lambda: new_key in peer_keys(a) and old_key not in peer_keys(a), timeout=30, what="A to follow")
    wait_until(lambda: new_key in peer_keys(c), timeout=30, what="C to follow")

    b.stop()
    b.start()
    assert json.loads(b.amparo("id", "--json").stdout)["sign_key"] == new_key
    kept = b.api.get(f"/api/v1/alerts/{sealed}")  # the encryption key survives the rotation
    assert kept["readable"] and kept["headline"] == "For B only, before its rotation"
    assert [n["text"] for n in kept["notes"] if n["kind"] == "debrief"] == [debrief]
    on_disk = b"".join(p.read_bytes() for p in b.home.glob("amparo.db*"))
    assert debrief.encode() not in on_disk  # debrief notes are sealed at rest
    after = b.send(headline="After the rotation")
    mesh.wait_for(after, [a, c])
    assert a.api.get(f"/api/v1/alerts/{after}")["author"] == new_key
    relayed = c.send(headline="From C, relayed by the rotated B")
    mesh.wait_for(relayed, [a])

    forged = sign_envelope(
        old_identity,
        Alert(headline="Signed with the retired key", areas=(Area("MX-OAX"),)),
        created=now_ms(),
        expires=now_ms() + 3600_000,
    )
    intruder = ScriptedPeer()
    intruder.pair_with(a)
    assert intruder.push(a, [forged.raw])["accepted"] == 0
    assert forged.id.hex() not in a.alert_ids()
    assert 'amparo_rejections_total{reason="retired-key"}' in a.api.get_text("/metrics")
    assert not (b.home / (KEY_FILE + ".new")).exists()
