"""``bench/hoptrace.py`` keeps working as the node changes under it.

The benchmark wraps node functions by name (``bench/hoptrace_site``), so a
changed signature broke it without any test failing: the push wrapper took four
arguments after ``NodeService._push`` gained the hop counts, and every pairing
got HTTP 500. Three real nodes in a line and two alerts: every step of a hop
must be traced, or the table the performance notes rely on is silently empty."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
STEPS = ("send", "wire", "auth", "verify", "admit", "commit (writer thread)", "relay → ack", "forward")


def test_hoptrace_traces_every_step_of_a_hop() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "hoptrace.py"), "--nodes", "3", "--alerts", "2", "--json"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["nodes"] == 3 and result["alerts"] == 2
    steps = result["steps"]
    missing = [step for step in STEPS if steps.get(step, {}).get("samples", 0) == 0]
    assert not missing, f"steps not traced: {missing}; traced: {sorted(steps)}"
    assert steps["hop (push → next push)"]["samples"] == 2  # one relay between author and last, per alert
    assert result["send_to_last_p50_ms"] > 0
