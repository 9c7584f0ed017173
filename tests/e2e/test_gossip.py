"""Alerts cross a mesh of real `amparo run` processes talking HTTPS on loopback."""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest

from node.devmesh import LocalMesh

pytestmark = pytest.mark.slow


def wait_until(predicate: Any, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_alert_update_and_cancel_cross_a_line(mesh_factory: Any) -> None:
    mesh: LocalMesh = mesh_factory(3)
    a, b, c = mesh.nodes
    mesh.connect(mesh.line_edges())  # A–B–C: A and C are not peers
    assert {p["name"] for p in c.api.get("/api/v1/peers")["peers"]} == {b.name}

    alert_id = a.send(headline="Community radio raided", regions=["MX-OAX"], severity="severe")
    mesh.wait_for(alert_id, [c], timeout=20)
    shown = c.api.get(f"/api/v1/alerts/{alert_id}")
    assert shown["headline"] == "Community radio raided"
    assert shown["author_name"] == a.name or shown["author"] == a.api.get("/api/v1/id")["key"]

    update_id = a.api.post(f"/api/v1/alerts/{alert_id}/update", {"headline": "Radio raided; two detained"})[
        "id"
    ]
    wait_until(lambda: c.api.get(f"/api/v1/alerts/{alert_id}")["updates"] == 1, what="update at C")
    a.api.post(f"/api/v1/alerts/{alert_id}/cancel", {"reason": "Detainees released"})
    wait_until(lambda: c.api.get(f"/api/v1/alerts/{alert_id}")["cancelled"], what="cancel at C")
    timeline = c.api.get(f"/api/v1/alerts/{alert_id}")["timeline"]
    assert [t["msg_type"] for t in timeline] == ["update", "cancel"]
    assert timeline[0]["id"] == update_id


def test_node_that_was_down_catches_up(mesh_factory: Any) -> None:
    mesh: LocalMesh = mesh_factory(3)
    a, b, c = mesh.nodes
    mesh.connect(mesh.line_edges())
    c.stop()
    sent = [a.send(headline=f"Alert {i}") for i in range(20)]
    wait_until(lambda: set(sent) <= b.alert_ids(), what="B to hold all 20")
    c.start()  # no new alert is sent: reconciliation alone must bring them
    wait_until(lambda: set(sent) <= c.alert_ids(), timeout=40, what="C to catch up on 20 alerts")


def test_relay_killed_mid_burst_loses_nothing(mesh_factory: Any) -> None:
    mesh: LocalMesh = mesh_factory(3)
    a, b, c = mesh.nodes
    mesh.connect(mesh.line_edges())
    sent = []
    for i in range(60):
        sent.append(a.send(headline=f"Burst {i}"))
        if i == 25:
            b.stop(signal.SIGKILL)
        if i == 40:
            b.start()
    wait_until(lambda: set(sent) <= c.alert_ids(), timeout=60, what="C to hold all 60 alerts")
    assert len(set(sent) & c.alert_ids()) == 60
