"""``bench/floor.py``'s bare relays: real processes over HTTPS that carry every
message to every relay, flooding and along each author's shortest-path tree.
The broker half of the benchmark needs Mosquitto and is not run here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.floor import relay_run, ring_with_chords, tree_children  # noqa: E402
from bench.propagation import Background  # noqa: E402

pytestmark = pytest.mark.slow


def test_tree_children_span_every_relay_once() -> None:
    edges = ring_with_chords(20)
    for root in range(20):
        children = tree_children(20, edges, root)
        reached = [child for kids in children.values() for child in kids]
        assert sorted(reached) == [r for r in range(20) if r != root]


@pytest.mark.parametrize("push", ["flood", "tree"])
def test_bare_relays_carry_every_message_to_every_relay(push: str) -> None:
    bg = Background()
    try:
        run = relay_run(5, 4, 5, push, None, bg, lambda _text: None)
    finally:
        bg.stop()
    assert len(run["latencies"]) == 4 and all(0 < t < 30 for t in run["latencies"])
    assert run["diameter"] == 2 and run["relay_cpu_per_alert_ms"] > 0
