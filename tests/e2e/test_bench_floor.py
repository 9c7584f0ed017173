"""``bench/floor.py``'s bare relays: real processes over HTTPS that carry every
message to every relay, flooding and along each author's shortest-path tree.
The broker half of the benchmark needs Mosquitto and is not run here. And
``bench/floor_ingest.py``'s bare pipeline: every message stored and forwarded."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.floor import relay_run, tree_children  # noqa: E402
from bench.propagation import Background, tree_cpu_s  # noqa: E402
from node.devmesh import ring_with_chords  # noqa: E402

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
    # Four alerts on five bare relays cost a few ms of CPU, below what /proc's
    # 10 ms ticks can resolve, so only the figure's presence is checked here;
    # the meter itself is tested on a child that burns a known amount below.
    assert run["diameter"] == 2 and run["relay_cpu_per_alert_ms"] >= 0


def test_the_cpu_meter_counts_a_process_and_its_live_children() -> None:
    burn = "import sys, time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass\n"
    child = f"subprocess.Popen([sys.executable, '-c', {burn + 'sys.stdin.read()'!r}])\n"
    # A parent that burns CPU itself and starts a child that does too, the way a
    # node runs its signature workers; both live until their stdin closes.
    parent = subprocess.Popen(
        [sys.executable, "-c", f"import subprocess, sys\n{child}{burn}sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        before = tree_cpu_s([parent.pid])
        deadline = time.monotonic() + 30
        while tree_cpu_s([parent.pid]) - before < 0.7 and time.monotonic() < deadline:
            time.sleep(0.05)
        used = tree_cpu_s([parent.pid]) - before
        assert 0.7 <= used < 5, used
        assert tree_cpu_s([]) == 0
    finally:
        assert parent.stdin is not None
        parent.stdin.close()
        parent.wait(timeout=30)


@pytest.mark.parametrize("workers", [0, 2])
def test_the_bare_ingest_pipeline_stores_and_forwards_every_message(workers: int) -> None:
    from bench.floor_ingest import run

    rounds = run(96, 1, workers, 2, lambda _text: None)  # raises unless the sink got all 96
    assert len(rounds) == 1 and rounds[0]["per_s"] > 0 and rounds[0]["ratio"] > 0
