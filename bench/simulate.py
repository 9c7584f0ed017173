"""Gossip in the simulator: what an alert costs and how far it gets, flooding against the tree.

For each size (default 1,000 and 10,000 nodes, degree ~8) and each scenario,
the same seeded mesh runs twice: with flooding (every item to every peer, the
baseline) and with tree push (`mesh.tree`: full items along a spanning tree,
ids announced to the other peers, grafts and prunes). Each run warms the mesh
up (peers reconcile their trust records), sends a first alert (with tree push
this one floods and forms the tree), then measures `--alerts` more, one at a
time. Per alert: full copies sent per node (pushed or fetched, lost ones
included), announcement messages per node, all messages per node (pushes,
replies, announcements, grafts, prunes, reconciliation rounds, fetches in the
alert's window), and hops and virtual ms until 99.9 % of the live nodes that
can be reached at all had it (churn and quiet droppers leave a few with no live,
forwarding neighbour).
"Ideal" is the flood over the fastest paths of the same live graph.

Below the table, the full copies per node by what became of them: pushed and
new to the receiver, pushed to a node that held it (duplicate), pushed into a
quiet dropper, lost on the way, fetched (a repair, or reconciliation).

Scenarios: `clean` (no loss, everyone honest); `hostile`: 10 % of all messages
lost, and after the first alert 20 % of the nodes go down (churn) and 5 % go
quiet (quiet droppers: accept, acknowledge, forward nothing); after the
measured alerts the 20 % come back, and the run reports when every node holds
every alert. The live nodes whose first copy of alert 1 came from a node that
later went quiet (their tree parent, with tree push) are followed: how many of
them each later alert reached, around the dropper.

Every run is a pure function of its arguments (the same figures whatever
PYTHONHASHSEED says; tests/mesh/test_sim_determinism.py).

Targets (issue 14): at 10,000 nodes at most 1.2 full alerts sent per node per
alert, with 99.9 % reached within ceil(log2 N) + 2 hops.

    python bench/simulate.py [--nodes 1000|10000|both] [--scenario clean|hostile|both]
                             [--push flood|tree|both] [--alerts 3] [--degree 8] [--seed 1]
                             [--graft-timeout 500] [--graft-jitter 1500] [--swap-after 0]
                             [--announce-delay 100] [--optimize-hops 1]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mesh.sim import SIM_TIMING, TREE_TIMING, SimConfig, Simulation  # noqa: E402

TARGET = 0.999
FATES = ("push new", "push duplicate", "push into quiet", "push lost", "fetched")
AUTHOR = 0


@dataclass(frozen=True)
class Alert:
    """One alert's figures, per live node."""

    full: float
    announce: float
    messages: float
    hops: int | None
    ideal_hops: int
    ms: int | None
    ideal_ms: int
    reached: float
    copies: dict[str, float]
    sent: dict[str, float]  # messages by kind, per node


def log(message: str, started: float) -> None:
    print(f"  [{time.perf_counter() - started:7.1f}s] {message}", file=sys.stderr, flush=True)


def percentile(values: list[int], fraction: float, population: int) -> int | None:
    ordered = sorted(values)
    needed = max(1, math.ceil(fraction * population - 1e-9))
    return ordered[needed - 1] if len(ordered) >= needed else None


def reachable(sim: Simulation, live: set[int]) -> int:
    """Live nodes the alert can reach at all: through live nodes that forward (a
    quiet dropper is reached, but nothing goes on from it)."""
    relays = live - sim.quiet
    seen = set(sim.hop_depths(AUTHOR, among=relays))
    return len(seen | {b for a in seen for b in sim.graph[a] if b in live})


def measure_alert(sim: Simulation) -> Alert:
    live = set(sim.live())
    population = reachable(sim, live)
    before = dict(sim.messages)
    alert = sim.send_alert(AUTHOR, at=sim.now + 1_000)
    deadline = sim.now + 120_000
    while sim.now < deadline:
        sim.run_until(sim.now + 250)
        spread = sim.spreads.get(alert.id)
        if spread is not None and len(spread.arrived) >= population:
            break
    sim.run_until(sim.now + 5_000)  # the last replies, prunes and announcements count too
    spread = sim.spreads[alert.id]
    sent = {kind: sim.messages[kind] - before.get(kind, 0) for kind in sim.messages}
    ideal = sim.ideal_arrivals(AUTHOR, among=live).values()
    n = len(live)
    return Alert(
        full=spread.full / n,
        announce=sent.get("announce", 0) / n,
        messages=sum(sent.values()) / n,
        hops=spread.hops_to(TARGET, population),
        ideal_hops=percentile([hops for _, hops in ideal], TARGET, population) or 0,
        ms=spread.time_to(TARGET, population),
        ideal_ms=percentile([ms for ms, _ in ideal], TARGET, population) or 0,
        reached=len(spread.arrived) / population,
        copies={fate: count / n for fate, count in spread.copies.items()},
        sent={kind: count / n for kind, count in sorted(sent.items()) if count},
    )


def routed_around(sim: Simulation, parents: dict[int, int], quiet: list[int], live: set[int]) -> str:
    """Live nodes whose first copy of alert 1 came from a node that later went quiet,
    and how many of them each measured alert reached anyway (and from whom)."""
    silent = set(quiet)
    orphans = {i for i, parent in parents.items() if parent in silent and i in live}
    measured = list(sim.spreads.values())[1:]
    reached = [sum(1 for i in orphans if i in spread.arrived) for spread in measured]
    return (
        f"{len(orphans)} live nodes had a quiet dropper as their parent in alert 1;"
        f" alerts 2-{len(measured) + 1} reached {', '.join(map(str, reached))} of them"
    )


def run(
    nodes: int, scenario: str, tree: bool, args: argparse.Namespace
) -> tuple[Alert, list[Alert], float | None, str | None]:
    started = time.perf_counter()
    hostile = scenario == "hostile"
    tuned = {
        "graft_timeout_ms": args.graft_timeout,
        "graft_retry_ms": max(1, args.graft_timeout // 2),
        "graft_jitter_ms": args.graft_jitter,
        "swap_after_ms": None if args.swap_after < 0 else args.swap_after,
        "optimize_hops": None if args.optimize_hops < 0 else args.optimize_hops,
    }
    timing = replace(TREE_TIMING, announce_delay_ms=args.announce_delay, **tuned) if tree else SIM_TIMING
    timing = replace(timing, reconcile_every_ms=args.reconcile_every)
    config = SimConfig(nodes=nodes, degree=args.degree, loss=0.10 if hostile else 0.0, seed=args.seed, timing=timing)
    sim = Simulation(config)
    label = f"{nodes} nodes, {scenario}, {'tree' if tree else 'flood'}"
    for until in range(1_000, 10_001, 1_000):
        sim.run_until(until)
    log(f"{label}: warmed up ({sim.edges()} links)", started)
    first = measure_alert(sim)
    churned: list[int] = []
    quiet: list[int] = []
    parents = dict(next(iter(sim.spreads.values())).came_from)
    if hostile:
        picked = random.Random(args.seed).sample(range(1, nodes), nodes // 4)
        churned, quiet = picked[: nodes // 5], picked[nodes // 5 :]
        sim.take_down(churned)
        sim.go_quiet(quiet)
        sim.run_until(sim.now + 1_000)
    measured = []
    for number in range(args.alerts):
        measured.append(measure_alert(sim))
        log(f"{label}: alert {number + 2} measured", started)
    back_after = None
    around = routed_around(sim, parents, quiet, set(sim.live())) if hostile else None
    if hostile:
        sim.bring_up(churned)
        back = sim.now
        alerts = [spread.item for spread in sim.spreads.values()]
        while sim.now < back + 600_000:
            sim.run_until(sim.now + 1_000)
            if all(all(a.id in node.mesh for a in alerts) for node in sim.nodes):
                back_after = (sim.now - back) / 1000
                break
        log(f"{label}: everyone holds every alert {back_after} s after the churned nodes came back", started)
    return first, measured, back_after, around


def show(value: float | int | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def report(nodes: int, rows: list[tuple[str, str, str, Alert]], recoveries: list[str]) -> None:
    hop_target = math.ceil(math.log2(nodes)) + 2
    print(f"\n== {nodes:,} nodes, degree ~8: targets full <= 1.2/node/alert, 99.9 % within {hop_target} hops ==")
    print(
        f"  {'scenario':9} {'push':6} {'alert':9} {'full/node':>9} {'announce/node':>13} {'all msgs/node':>13}"
        f" {'hops 99.9% (ideal)':>18} {'ms 99.9% (ideal)':>17} {'reached':>8}"
    )
    for scenario, push, which, a in rows:
        hops = f"{show(a.hops)} ({a.ideal_hops})"
        ms = f"{show(a.ms)} ({a.ideal_ms})"
        print(
            f"  {scenario:9} {push:6} {which:9} {a.full:>9.2f} {a.announce:>13.2f} {a.messages:>13.1f}"
            f" {hops:>18} {ms:>17} {a.reached:>8.1%}"
        )
    print("\n  full copies per node by what became of them:")
    for scenario, push, which, a in rows:
        parts = ", ".join(f"{fate} {a.copies.get(fate, 0):.2f}" for fate in FATES)
        print(f"  {scenario:9} {push:6} {which:9} {parts}")
    print("\n  all messages per node by kind:")
    for scenario, push, which, a in rows:
        parts = ", ".join(f"{kind} {count:.2f}" for kind, count in a.sent.items())
        print(f"  {scenario:9} {push:6} {which:9} {parts}")
    for line in recoveries:
        print(f"  {line}")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", choices=["1000", "10000", "both"], default="both")
    parser.add_argument("--scenario", choices=["clean", "hostile", "both"], default="both")
    parser.add_argument("--push", choices=["flood", "tree", "both"], default="both")
    parser.add_argument("--degree", type=int, default=8)
    parser.add_argument("--alerts", type=int, default=3, help="measured alerts after the first")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--graft-timeout", type=int, default=TREE_TIMING.graft_timeout_ms, help="ms (retry: half)")
    parser.add_argument("--announce-delay", type=int, default=TREE_TIMING.announce_delay_ms, help="ms")
    parser.add_argument(
        "--reconcile-every",
        type=int,
        default=SIM_TIMING.reconcile_every_ms,
        help="ms between a link's periodic reconciliations (a real node's: 300000)",
    )
    parser.add_argument("--graft-jitter", type=int, default=TREE_TIMING.graft_jitter_ms, help="ms")
    swap = TREE_TIMING.swap_after_ms
    parser.add_argument("--swap-after", type=int, default=-1 if swap is None else swap, help="ms (-1: never)")
    hops = TREE_TIMING.optimize_hops
    parser.add_argument(
        "--optimize-hops", type=int, default=-1 if hops is None else hops, help="hops (-1: never; the tree before)"
    )
    args = parser.parse_args()
    sizes = [1_000, 10_000] if args.nodes == "both" else [int(args.nodes)]
    scenarios = ["clean", "hostile"] if args.scenario == "both" else [args.scenario]
    modes = [False, True] if args.push == "both" else [args.push == "tree"]
    for nodes in sizes:
        rows: list[tuple[str, str, str, Alert]] = []
        recoveries: list[str] = []
        for scenario in scenarios:
            for tree in modes:
                push = "tree" if tree else "flood"
                first, measured, back_after, around = run(nodes, scenario, tree, args)
                rows.append((scenario, push, "1 (first)", first))
                for number, alert in enumerate(measured, 2):
                    which = f"{number} (churn)" if scenario == "hostile" and number == 2 else f"{number}"
                    rows.append((scenario, push, which, alert))
                if scenario == "hostile":
                    recoveries.append(
                        f"hostile, {push}: every node holds every alert {show(back_after, 1)} s"
                        " (virtual) after the churned 20 % came back"
                    )
                    recoveries.append(f"hostile, {push}, quiet droppers routed around: {around}")
        report(nodes, rows, recoveries)
    print(
        "\n  Alert 1 floods either way (with tree push it forms the tree). Hostile: 10 % loss throughout;"
        "\n  before alert 2, 20 % of the nodes go down and 5 % go quiet (the tree has to be repaired)."
        "\n  Costs per live node; full = full copies sent, pushed or fetched, lost ones included."
        "\n  Hops, time and reach: of the live nodes the author can reach at all."
    )


if __name__ == "__main__":
    main()
