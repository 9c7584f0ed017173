"""Catch-up after an outage against ingest by push: real node processes on loopback.

Node C is stopped while its peer A authors N alerts (default 10,000) through
A's local API; C is started again and we measure how long until C holds every
envelope A holds, and until A's catch-up mark for C reaches A's newest item.
While waiting it checks the invariant that matters: A never counts more items
delivered (its mark for C; seqs are dense) than C holds.

What it cost on the wire, from C's counters (``/metrics``): reconciliation
messages (each one round trip) and their bytes both ways, fetch requests (round
trips) and the ids they asked for; against the payload, the bytes of the
envelopes C took in while catching up (from its database).

The baseline, in the same run: the same node C, caught up, then ingests N fresh
alerts by push (scripted peers over HTTPS, frames as large as the body limit
allows, each peer within its budget of 2,000, as in ``bench/ingest.py``), timed
until the last push is acknowledged. Issue 14 asks catch-up ≤ 2 × that time, and
reconciliation bytes ≤ 5 % of the payload.

    python bench/catchup.py [--alerts 10000] [--workers 8] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest import load, push_all  # noqa: E402
from node.config import DB_FILE  # noqa: E402
from node.devmesh import LocalMesh, LocalNode  # noqa: E402
from protocol import framing  # noqa: E402

# The backlog's alerts carry a description as long as bench/ingest.py's (~1.2 KiB
# envelopes, like the other benches'); --plain sends headlines only (~300 bytes).
FILLER = "Descripción de prueba. " * 38
PEER_BURST = 2_000  # alerts one scripted peer pushes (its budget's burst, mesh/peers.py)
WIRE = (
    "reconcile_messages",
    "reconcile_bytes",
    "fetch_requests",
    "fetch_request_bytes",
    "envelopes_fetched",
    "envelopes_fetched_bytes",
)


def stored(node: LocalNode) -> int:
    return int(node.api.get("/api/v1/status")["envelopes_stored"])


def mark_for(node: LocalNode, peer: LocalNode) -> int:
    (row,) = [p for p in node.api.get("/api/v1/peers")["peers"] if p["name"] == peer.name]
    return int(row["mark"])


def wire_counters(node: LocalNode) -> dict[str, int]:
    """C's catch-up counters from its Prometheus text."""
    text = node.api.get_text("/metrics")
    out = dict.fromkeys(WIRE, 0)
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        key = name.removeprefix("amparo_").removesuffix("_total")
        if key in out:
            out[key] = int(float(value))
    return out


def payload_bytes(node: LocalNode) -> int:
    """Bytes of every envelope the node holds (read-only; WAL lets it run meanwhile)."""
    with closing(sqlite3.connect(f"file:{node.home / DB_FILE}?mode=ro", uri=True)) as db:
        return int(db.execute("SELECT COALESCE(SUM(LENGTH(raw)), 0) FROM envelopes").fetchone()[0])


def catch_up(a: LocalNode, c: LocalNode, alerts: int, workers: int, plain: bool, say: Any) -> dict[str, Any]:
    c.stop()
    started = time.monotonic()
    extra = {} if plain else {"description": FILLER}
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda i: a.send(headline=f"Backlog {i}", severity="minor", **extra), range(alerts)))
    authored_s = time.monotonic() - started
    say(f"authored {alerts} at A in {authored_s:.1f} s ({alerts / authored_s:.0f}/s); starting C")
    held_before = payload_bytes(c)
    c.start(wait=180)  # a loaded shared machine can take more than the default 30 s
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
        time.sleep(0.1)
    wire = wire_counters(c)
    payload = payload_bytes(c) - held_before
    sync_bytes = wire["reconcile_bytes"] + wire["fetch_request_bytes"]
    status_c = c.api.get("/api/v1/status")
    return {
        "authored_s": round(authored_s, 1),
        "c_holds_all_s": None if held_s is None else round(held_s, 2),
        "a_mark_at_end_s": None if marked_s is None else round(marked_s, 1),
        "mark_ahead_of_holdings_max": worst_gap,
        "c_rejected": status_c["rejected"],
        "payload_bytes": payload,
        **wire,
        "round_trips": wire["reconcile_messages"] + wire["fetch_requests"],
        "sync_bytes": sync_bytes,
        "sync_share": round(sync_bytes / max(payload, 1), 4),
        "fetched_share": round(wire["envelopes_fetched"] / max(alerts, 1), 3),
    }


def push_ingest(c: LocalNode, alerts: int, say: Any) -> float:
    """Seconds the same node takes to acknowledge ``alerts`` fresh alerts pushed to it."""
    rounds = []
    for start in range(0, alerts, PEER_BURST):
        peer, vouches, envelopes = load(c, min(PEER_BURST, alerts - start), lambda _text: None)
        peer.pair_with(c)
        peer.push(c, vouches)
        rounds.append((peer, framing.batches([e.raw for e in envelopes])))
    say(f"pushing {alerts} fresh alerts to C from {len(rounds)} peers …")
    took = 0.0
    for peer, frames in rounds:
        began = time.perf_counter()
        accepted = asyncio.run(push_all(peer, c, frames, lambda _text: None))
        took += time.perf_counter() - began
        if accepted < sum(len(f) for f in frames):
            raise SystemExit(f"the push baseline: {accepted} of {sum(len(f) for f in frames)} accepted")
        c.api.delete(f"/api/v1/peers/{peer.key.hex()}")  # it has no listener: stop forwarding to it
    return took


def run(alerts: int, workers: int, plain: bool, say: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, LocalMesh(Path(tmp), 2) as mesh:
        mesh.init_all()
        mesh.start_all()
        a, c = mesh.nodes
        mesh.connect([(0, 1)])
        result = {"alerts": alerts, **catch_up(a, c, alerts, workers, plain, say)}
        push_s = push_ingest(c, alerts, say)
        result["push_ingest_s"] = round(push_s, 2)
        if result["c_holds_all_s"] is not None:
            result["catchup_over_push"] = round(result["c_holds_all_s"] / push_s, 2)
        return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--plain", action="store_true", help="headline-only alerts (~300 bytes each)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    r = run(args.alerts, args.workers, args.plain, say)
    if args.json:
        print(json.dumps(r))
        return
    size = r["payload_bytes"] // max(r["alerts"], 1)
    print(f"{r['alerts']} alerts (~{size} bytes each) missed by C while it was down")
    print(
        f"C holds all of them {r['c_holds_all_s']} s after it started; A's mark for C at the end after {r['a_mark_at_end_s']} s"
    )
    print(f"the same node ingesting {r['alerts']} fresh alerts by push: {r['push_ingest_s']} s")
    print(f"catch-up / push: {r.get('catchup_over_push')}  (issue 14 asks ≤ 2)")
    print(
        f"reconciliation: {r['reconcile_messages']} messages, {r['reconcile_bytes']:,} bytes; "
        f"fetch: {r['fetch_requests']} requests, {r['fetch_request_bytes']:,} bytes of ids, "
        f"{r['envelopes_fetched']} envelopes fetched ({r['fetched_share']:.0%} of the backlog; the rest pushed by A)"
    )
    print(
        f"round trips {r['round_trips']}; sync bytes {r['sync_bytes']:,} = {r['sync_share']:.2%} of the "
        f"{r['payload_bytes']:,}-byte payload (issue 14 asks ≤ 5 %)"
    )
    print(f"largest gap between A's mark and what C holds: {r['mark_ahead_of_holdings_max']} (must be ≤ 0)")


if __name__ == "__main__":
    main()
