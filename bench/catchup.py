"""Catch-up after an outage: real node processes on loopback (issue 11, item 14).

Node C is stopped while its peer A authors N alerts (default 10,000) through
A's local API; C is started again and we measure how long until C holds every
envelope A holds, and until A's catch-up mark for C reaches A's newest item.
While waiting it checks the invariant that matters: A never counts more items
delivered (its mark for C; seqs are dense) than C holds.

    python bench/catchup.py [--alerts 10000] [--workers 8] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from node.devmesh import LocalMesh, LocalNode  # noqa: E402


def stored(node: LocalNode) -> int:
    return int(node.api.get("/api/v1/status")["envelopes_stored"])


def mark_for(node: LocalNode, peer: LocalNode) -> int:
    (row,) = [p for p in node.api.get("/api/v1/peers")["peers"] if p["name"] == peer.name]
    return int(row["mark"])


def run(alerts: int, workers: int, say: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, LocalMesh(Path(tmp), 2) as mesh:
        mesh.init_all()
        mesh.start_all()
        a, c = mesh.nodes
        mesh.connect([(0, 1)])
        c.stop()
        started = time.monotonic()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda i: a.send(headline=f"Backlog {i}", severity="minor"), range(alerts)))
        authored_s = time.monotonic() - started
        say(f"authored {alerts} at A in {authored_s:.1f} s ({alerts / authored_s:.0f}/s)")
        c.start()
        back = time.monotonic()
        target = stored(a)
        worst_gap = 0
        held_s = marked_s = None
        while marked_s is None and time.monotonic() - back < 900:
            mark = mark_for(a, c)
            held = stored(c)
            worst_gap = max(worst_gap, mark - held)
            if held_s is None and held >= target:
                held_s = time.monotonic() - back
                say(f"C holds all {target} envelopes {held_s:.1f} s after it started")
            if held_s is not None and mark >= target:
                marked_s = time.monotonic() - back
            time.sleep(0.2)
        status_c = c.api.get("/api/v1/status")
        status_a = a.api.get("/api/v1/status")
        return {
            "alerts": alerts,
            "authored_s": round(authored_s, 1),
            "c_holds_all_s": None if held_s is None else round(held_s, 1),
            "a_mark_at_end_s": None if marked_s is None else round(marked_s, 1),
            "mark_ahead_of_holdings_max": worst_gap,
            "c_rejected": status_c["rejected"],
            "c_reconciles": status_c["reconciles"],
            "a_push_deferred": status_a.get("push_deferred"),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    say = (lambda _: None) if args.json else print
    result = run(args.alerts, args.workers, say)
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
