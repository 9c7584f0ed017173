"""Tree push (node setting ``tree_push``) between real ``amparo run`` processes on
loopback HTTPS: a ring of five delivers every alert everywhere with the tree
formed (prunes sent over the wire), a node that accepts alerts but forwards
nothing (its outbound calls all fail: a quiet dropper) is routed around within
seconds, not at the next reconciliation, and a node restarted after missing
alerts catches up and receives new ones again."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from node.devmesh import LocalMesh, LocalNode, free_port
from tests.e2e.test_gossip import wait_until

pytestmark = pytest.mark.slow

# Far below the first periodic reconciliation (five minutes less up to 20 %
# jitter): an alert that arrives within this came by push, or by announcement
# and graft, not by anti-entropy.
ROUTED_S = 30.0


def ring(mesh_factory: Any) -> LocalMesh:
    mesh: LocalMesh = mesh_factory(5, tree_push=True)
    count = len(mesh.nodes)
    mesh.connect([(i, (i + 1) % count) for i in range(count)])
    return mesh


def metric(node: LocalNode, name: str) -> float:
    text = node.api.get_text("/metrics")
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found is not None, f"{name} not in the metrics of {node.name}"
    return float(found.group(1))


def everywhere(mesh: LocalMesh, alerts: list[str], timeout: float = ROUTED_S) -> None:
    for node in mesh.nodes:
        if node.running:
            wait_until(lambda n=node: set(alerts) <= n.alert_ids(), timeout, f"{node.name} to hold them all")


def test_a_tree_push_ring_delivers_catches_up_and_routes_around_a_quiet_dropper(mesh_factory: Any) -> None:
    """One ring for the three stories (starting five nodes is most of the cost)."""
    mesh = ring(mesh_factory)
    alerts = [node.send(headline=f"Aviso de {node.name}") for node in mesh.nodes for _ in range(2)]
    everywhere(mesh, alerts)
    assert sum(metric(node, "amparo_tree_prunes") for node in mesh.nodes) >= 1  # the tree formed
    everywhere(mesh, [mesh.nodes[0].send(headline=f"Con el árbol formado {i}") for i in range(3)])
    restarted_node_catches_up(mesh)
    quiet_dropper_is_routed_around(mesh)


def restarted_node_catches_up(mesh: LocalMesh) -> None:
    away = mesh.nodes[2]
    away.stop()
    missed = [mesh.nodes[0].send(headline=f"Mientras no estaba {i}") for i in range(10)]
    everywhere(mesh, missed)
    away.start()  # reconciliation at start brings what it missed
    wait_until(lambda: set(missed) <= away.alert_ids(), 40, "the restarted node to catch up")
    everywhere(mesh, [mesh.nodes[0].send(headline="De vuelta en el árbol")])


def quiet_dropper_is_routed_around(mesh: LocalMesh) -> None:
    quiet = mesh.nodes[1]
    quiet.stop()
    # Every call it makes goes to a SOCKS proxy that is not there: it accepts what
    # it is pushed and forwards nothing, not even an announcement.
    quiet.configure(socks_proxy=f"socks5://127.0.0.1:{free_port()}")
    quiet.start()
    start = time.monotonic()
    alerts = [mesh.nodes[0].send(headline=f"Ataque a la caravana {i}") for i in range(3)]
    everywhere(mesh, alerts)
    assert time.monotonic() - start < ROUTED_S
    status = quiet.api.get("/api/v1/status")
    assert status["pushed"] == 0 and any(
        p["last_failure"] for p in status["peers"]
    )  # it really forwarded nothing
