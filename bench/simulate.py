"""Gossip in the simulator: how fast and at what cost an alert reaches 99.9 % of the mesh.

For each size (default 1,000 and 10,000 nodes, degree 8) the run warms the
mesh up (peers reconcile their trust records), sends alerts from an author
node and measures, per alert: virtual time and hops (gossip rounds) until
99.9 % of nodes delivered it, and messages sent per node. The baseline, from
the same graph and link latencies, is the ideal flood: every node forwards
once on every link except the one it heard from (2E - (N - 1) messages), with
rounds = BFS depth and time = shortest-latency paths. Ratios are ours/ideal.

    python bench/simulate.py [--nodes 1000|10000|both] [--degree 8] [--loss 0.0]
                             [--alerts 3] [--seed 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mesh.sim import SimConfig, Simulation, Spread  # noqa: E402

TARGET = 0.999


def log(message: str, started: float) -> None:
    print(f"  [{time.perf_counter() - started:7.1f}s] {message}", flush=True)


def percentile(values: list[int], fraction: float) -> int:
    ordered = sorted(values)
    return ordered[max(0, -(-int(fraction * len(ordered) * 1000) // 1000) - 1)]


def run_alert(sim: Simulation, author: int, started: float) -> tuple[Spread, dict[str, int]]:
    n = sim.config.nodes
    before = dict(sim.messages)
    alert = sim.send_alert(author, at=sim.now + 1_000)
    deadline = sim.now + 600_000
    step = 500
    while sim.now < deadline:
        sim.run_until(sim.now + step)
        spread = sim.spreads.get(alert.id)
        have = len(spread.arrived) if spread else 0
        if n >= 5_000:
            log(f"t={sim.now / 1000:7.1f}s virtual: {have}/{n} nodes have the alert", started)
        if have >= n:
            break
    sim.run_until(sim.now + 5_000)  # let the last pushes and acks settle; count them too
    sent = {kind: sim.messages[kind] - before.get(kind, 0) for kind in sim.messages}
    return sim.spreads[alert.id], sent


def measure(nodes: int, args: argparse.Namespace) -> None:
    started = time.perf_counter()
    print(
        f"\n== {nodes} nodes, degree ~{args.degree}, loss {args.loss:.0%}, {args.alerts} alert(s) ==",
        flush=True,
    )
    sim = Simulation(SimConfig(nodes=nodes, degree=args.degree, loss=args.loss, seed=args.seed))
    log(f"built: {sim.edges()} links", started)
    last_log = time.perf_counter()
    for until in range(100, 10_001, 100):
        sim.run_until(until)
        if time.perf_counter() - last_log > 2.0:
            last_log = time.perf_counter()
            log(f"warming up: t={until / 1000:.1f}s virtual, {sim.total_messages()} messages", started)
    log(f"warmed up: {sim.total_messages()} messages while peers reconciled trust records", started)
    edges = sim.edges()
    ideal_messages = 2 * edges - (nodes - 1)
    rows = []
    for number in range(args.alerts):
        author = 0
        spread, sent = run_alert(sim, author, started)
        ms = spread.time_to(TARGET, nodes)
        hops = spread.hops_to(TARGET, nodes)
        ideal = sim.ideal_arrivals(author)
        ideal_ms = percentile([ms for ms, _ in ideal.values()], TARGET)
        ideal_hops = percentile([hops for _, hops in ideal.values()], TARGET)
        depths = list(sim.hop_depths(author).values())
        pushes = sent.get("push", 0)
        total = sum(sent.values())
        rows.append((ms, ideal_ms, hops, ideal_hops, max(depths), pushes, total, ideal_messages))
        log(f"alert {number + 1}: {len(spread.arrived)}/{nodes} delivered", started)
    print("  hops for the ideal flood follow its fastest paths; time and hops are at 99.9 %")
    print(f"  {'figure':44} {'mesh':>10} {'ideal flood':>12} {'ratio':>7}")
    for ms, ideal_ms, hops, ideal_hops, diameter, pushes, total, ideal_count in rows:
        ms_text = "n/a" if ms is None else f"{ms}"
        ratio = "n/a" if ms is None else f"{ms / max(ideal_ms, 1):.2f}"
        print(f"  {'virtual ms until 99.9 % delivered':44} {ms_text:>10} {ideal_ms:>12} {ratio:>7}")
        hops_text = "n/a" if hops is None else f"{hops}"
        hops_ratio = "n/a" if hops is None else f"{hops / max(ideal_hops, 1):.2f}"
        print(
            f"  {'rounds (hops) until 99.9 % delivered':44} {hops_text:>10} {ideal_hops:>12} {hops_ratio:>7}"
        )
        print(f"  {'  (fewest hops to 100 %: BFS eccentricity)':44} {'':>10} {diameter:>12}")
        print(
            f"  {'push requests per node per alert':44} {pushes / nodes:>10.2f} {ideal_count / nodes:>12.2f} {pushes / ideal_count:>7.2f}"
        )
        print(
            f"  {'all messages per node per alert':44} {total / nodes:>10.2f} {ideal_count / nodes:>12.2f} {total / ideal_count:>7.2f}"
        )
    print("  (all messages: pushes, their acks, reconciliation rounds and fetches in the window)", flush=True)
    log("done", started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", choices=["1000", "10000", "both"], default="both")
    parser.add_argument("--degree", type=int, default=8)
    parser.add_argument("--loss", type=float, default=0.0)
    parser.add_argument("--alerts", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sizes = [1_000, 10_000] if args.nodes == "both" else [int(args.nodes)]
    for nodes in sizes:
        measure(nodes, args)


if __name__ == "__main__":
    main()
