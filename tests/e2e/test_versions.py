"""A node of a newer minor protocol version talks to this one: its node record
says ``minor: 7`` and carries extension fields, its alerts carry extension
fields, and its frames carry keys this version does not know. A real node
accepts all of it and relays the envelopes byte for byte to an older peer."""

from __future__ import annotations

from typing import Any

import pytest

from node.devmesh import LocalMesh
from protocol import Alert, Area, Envelope, decode
from tests.e2e.harness import ScriptedPeer, now_ms
from tests.protocol.envelopes import forge

pytestmark = pytest.mark.slow


class NewerPeer(ScriptedPeer):
    """Speaks minor version 7: extension fields everywhere, extra frame keys."""

    def record(self) -> Envelope:
        body = {
            "name": self.name,
            "enc": self.identity.enc_public,
            "tls": b"\x00" * 32,
            "addrs": ["127.0.0.1:9"],
            "minor": 7,
            "ext": {"transports": ["quic", "https"]},
        }
        doc = {"a": self.key, "b": body, "c": now_ms(), "t": "node", "v": 1, "x": 0}
        return decode(forge(self.identity, doc), now=now_ms())

    def future_alert(self, headline: str) -> bytes:
        body = Alert(headline=headline, areas=(Area("MX-OAX"),), severity="severe").to_wire()
        body["ext"] = {"evidence-hash": b"\x05" * 32, "geo-precision-m": 50}
        now = now_ms()
        return forge(
            self.identity, {"a": self.key, "b": body, "c": now, "t": "alert", "v": 1, "x": now + 3_600_000}
        )


def test_a_newer_minor_version_is_understood_and_relayed(mesh_factory: Any) -> None:
    mesh: LocalMesh = mesh_factory(2)
    a, b = mesh.nodes
    mesh.connect([(0, 1)])
    newer = NewerPeer("Nodo de Versión Nueva")
    newer.pair_with(a)
    raw = newer.future_alert("Alert from a newer Amparo")
    reply = newer.call(a, "/mesh/v1/push", {"e": [raw], "hint": "a frame key this version does not know"})
    assert reply["accepted"] == 1
    alert_id = decode(raw, now=now_ms()).id.hex()
    mesh.wait_for(alert_id, [b])  # same id at B: the same bytes, extensions and all (the id hashes them)
    shown = b.api.get(f"/api/v1/alerts/{alert_id}")
    assert shown["headline"] == "Alert from a newer Amparo" and shown["author"] == newer.key.hex()
    peers = {p["name"]: p for p in a.api.get("/api/v1/peers")["peers"]}
    assert "Nodo de Versión Nueva" in peers
