"""Delivery receipts between real ``amparo run`` processes (docs/protocol.md §6.7):
the author of an alert sees which organizations stored it and when, and who is
still missing, through ``amparo alert show`` (human and ``--json``).

One ring of five for every story (starting the nodes is most of the cost):
A's alert reaches 4 of 4 with times; with C stopped a new alert reaches 3 of 4
and names C as missing, and turns into 4 of 4 once C is back and caught up; a
restricted alert counts only its recipient, and no relay that cannot read it
answers it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from node.cli.client import ApiError
from node.devmesh import LocalMesh, LocalNode
from tests.e2e.test_gossip import wait_until

pytestmark = pytest.mark.slow

# Receipts travel like alerts (pushed at once); a node back from a stop catches
# up at its first reconciliation. Both are seconds; the margin is for a loaded CI.
ARRIVES_S = 60.0


def shown(node: LocalNode, alert_id: str) -> dict[str, Any]:
    """``amparo alert show ID --json``: what a script reads."""
    doc: dict[str, Any] = json.loads(node.amparo("alert", "show", alert_id, "--json").stdout)
    return doc


def receipts(node: LocalNode, alert_id: str) -> dict[str, Any]:
    found: dict[str, Any] = node.api.get(f"/api/v1/alerts/{alert_id}")["receipts"]
    return found


def holds(node: LocalNode, alert_id: str) -> bool:
    try:
        node.api.get(f"/api/v1/alerts/{alert_id}")
    except ApiError:
        return False
    return True


def reached(node: LocalNode, alert_id: str, count: int) -> None:
    wait_until(lambda: receipts(node, alert_id)["reached"] == count, ARRIVES_S, f"{count} receipts")


def test_the_author_sees_who_its_alert_reached(mesh_factory: Any) -> None:
    mesh: LocalMesh = mesh_factory(5)
    a, b, c, d, e = mesh.nodes
    mesh.connect([(i, (i + 1) % 5) for i in range(5)])  # a ring: C is two hops from A either way
    others = {n.name for n in (b, c, d, e)}
    first = a.send(headline="Detención de un defensor en Juchitán")
    reached(a, first, 4)
    doc = shown(a, first)["receipts"]
    assert (doc["reached"], doc["of"], doc["missing"]) == (4, 4, [])
    assert {o["name"] for o in doc["organizations"]} == others
    created = a.api.get(f"/api/v1/alerts/{first}")["created"]
    assert all(created <= o["stored_at"] <= created + ARRIVES_S * 1000 for o in doc["organizations"])
    text = a.amparo("alert", "show", first).stdout
    assert "REACHED 4 of 4 organizations" in text and "missing" not in text
    assert all(f"{name}: stored " in text for name in others)  # each with its time
    assert shown(b, first)["receipts"] is None  # only the author is told

    c.stop()
    second = a.send(headline="Allanamiento en la oficina de Tehuantepec")
    reached(a, second, 3)
    doc = shown(a, second)["receipts"]
    assert (doc["reached"], doc["of"]) == (3, 4)
    assert [o["name"] for o in doc["missing"]] == [c.name]
    assert f"missing: {c.name}" in a.amparo("alert", "show", second).stdout

    c.start()
    reached(a, second, 4)
    assert shown(a, second)["receipts"]["missing"] == []

    restricted_counts_only_its_recipients(a, b, c)


def restricted_counts_only_its_recipients(a: LocalNode, b: LocalNode, c: LocalNode) -> None:
    """Sealed to B: B answers; C holds the ciphertext (it relays it) and says nothing."""
    sealed = a.send(headline="Casa segura: cambio de ubicación", scope="restricted", to=[b.name])
    reached(a, sealed, 1)
    wait_until(lambda: holds(c, sealed), ARRIVES_S, "C to hold the ciphertext")
    doc = receipts(a, sealed)
    assert (doc["reached"], doc["of"], [o["name"] for o in doc["organizations"]]) == (1, 1, [b.name])
    later = a.send(headline="Marca de tiempo")  # receipts leave in order: once this is answered by C …
    wait_until(lambda: any(o["name"] == c.name for o in receipts(a, later)["organizations"]), ARRIVES_S, "C's receipt")
    assert receipts(a, sealed)["others"] == []  # … C has not answered the sealed one
