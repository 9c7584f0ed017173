"""/metrics parses with the Prometheus text parser and moves when alerts flow."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import LOOPBACK_TARGETS

pytestmark = pytest.mark.slow


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = sample.name + "".join(f"{{{k}={v}}}" for k, v in sorted(sample.labels.items()))
            values[key] = sample.value
    return values


def test_metrics_parse_and_move(mesh_factory: Any) -> None:
    from tests.e2e.harness import ScriptedPeer
    from tests.e2e.test_gossip import wait_until

    mesh = mesh_factory(2)
    a, b = mesh.nodes
    mesh.connect([(0, 1)])
    before = scrape(b.local_port)
    assert before["amparo_peers"] == 1
    for i in range(3):
        a.send(headline=f"Metrics {i}")
    wait_until(
        lambda: (
            scrape(b.local_port)["amparo_envelopes_stored_total"]
            >= before["amparo_envelopes_stored_total"] + 3
        ),
        what="B's stored counter to move",
    )
    wait_until(
        lambda: scrape(a.local_port)["amparo_envelopes_forwarded_total"] >= 3, what="A's forwarded counter"
    )
    sent = scrape(a.local_port)
    assert 1 <= sent["amparo_push_requests_total"] <= sent["amparo_envelopes_forwarded_total"]
    assert scrape(b.local_port)["amparo_peers_up"] == 1
    # start-up's objects (modules, the region catalogue, the schema) are frozen out
    # of the collector's sight; full collections are counted for the operator
    assert sent["amparo_gc_frozen_objects"] > 50_000 and "amparo_gc_full_collections_total" in sent
    peer = ScriptedPeer()
    peer.pair_with(b)
    forged = bytearray(peer.alert("forged").raw)
    forged[-3] ^= 1
    peer.push(b, [bytes(forged)])
    after = scrape(b.local_port)
    assert after["amparo_rejections_total{reason=bad-signature}"] >= 1


def test_time_to_ack_and_delivery_counters_move(mesh_factory: Any, tmp_path: Any) -> None:
    from tests.e2e.test_allies import Receiver
    from tests.e2e.test_gossip import wait_until

    mesh = mesh_factory(2, **LOOPBACK_TARGETS)
    a, b = mesh.nodes
    mesh.connect([(0, 1)])
    receiver = Receiver()
    try:
        a.amparo("subscribe", "add", "--region", "MX", "--webhook", receiver.url("hook"))
        assert scrape(a.local_port)["amparo_time_to_ack_seconds_count"] == 0
        alert_id = a.send(headline="Acknowledge me")
        mesh.wait_for(alert_id, [b])
        b.amparo("alert", "ack", alert_id, "--state", "responding")
        wait_until(lambda: scrape(a.local_port)["amparo_time_to_ack_seconds_count"] == 1, what="A to see B's ack")
        assert scrape(a.local_port)["amparo_time_to_ack_seconds_sum"] >= 0
        wait_until(lambda: scrape(a.local_port)["amparo_deliveries_total"] == 1, what="the webhook delivery")
        assert scrape(a.local_port)["amparo_delivery_backlog"] == 0
    finally:
        receiver.down()
