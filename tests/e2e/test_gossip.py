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


def test_ack_at_c_is_visible_at_the_author_with_time_to_ack(mesh_factory: Any) -> None:
    mesh: LocalMesh = mesh_factory(3)
    a, _b, c = mesh.nodes
    mesh.connect(mesh.line_edges())
    alert_id = a.send(headline="Journalist detained at checkpoint", regions=["MX-GRO"])
    mesh.wait_for(alert_id, [c], timeout=20)
    c.amparo("alert", "ack", alert_id, "--state", "responding", "--note", "Calling the prosecutor")
    wait_until(lambda: a.api.get(f"/api/v1/alerts/{alert_id}")["responses"], what="C's ack at A")
    (response,) = a.api.get(f"/api/v1/alerts/{alert_id}")["responses"]
    assert response["organization"] == c.name or response["key"] == c.api.get("/api/v1/id")["key"]
    assert response["state"] == "responding" and response["note"] == "Calling the prosecutor"
    assert 0 <= response["time_to_ack_s"] < 60
    assert "RESPONSE" in a.amparo("alert", "show", alert_id).stdout


def test_restricted_alert_ack_is_sealed_and_reaches_the_author(mesh_factory: Any) -> None:
    mesh: LocalMesh = mesh_factory(3)
    a, b, c = mesh.nodes
    mesh.connect(mesh.line_edges())
    alert_id = a.send(headline="Safe house moved", regions=["CO-ANT"], scope="restricted", to=[b.name])
    mesh.wait_for(alert_id, [b], timeout=20)
    ack = b.api.post(f"/api/v1/alerts/{alert_id}/ack", {"state": "seen"})
    assert ack["sealed"] is True
    wait_until(lambda: a.api.get(f"/api/v1/alerts/{alert_id}")["responses"], what="B's sealed ack at A")
    # C relays the ciphertext but cannot read it.
    wait_until(lambda: _held(c, alert_id), what="C to hold the sealed alert")
    opaque = c.api.get(f"/api/v1/alerts/{alert_id}")
    assert opaque["sealed"] and not opaque["readable"] and "headline" not in opaque
    assert alert_id not in c.alert_ids()


def _held(node: Any, alert_id: str) -> bool:
    try:
        node.api.get(f"/api/v1/alerts/{alert_id}")
        return True
    except Exception:
        return False
