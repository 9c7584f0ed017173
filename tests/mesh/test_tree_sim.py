"""Tree push in the simulator: the tree forms, routes around quiet droppers, and loses nothing.

Small meshes so this stays fast; bench/simulate.py runs 1,000 and 10,000 nodes."""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import replace

import pytest

from mesh.interfaces import Item
from mesh.sim import SIM_TIMING, TREE_TIMING, SimConfig, Simulation


def warmed(nodes: int, tree: bool, loss: float = 0.0, seed: int = 4) -> Simulation:
    timing = TREE_TIMING if tree else SIM_TIMING
    sim = Simulation(SimConfig(nodes=nodes, degree=8, loss=loss, seed=seed, timing=timing))
    sim.run_until(10_000)
    return sim


def one_alert(sim: Simulation, settle_ms: int = 6_000) -> Item:
    alert = sim.send_alert(0, at=sim.now + 1_000)
    sim.run_until(sim.now + 1_000 + settle_ms)
    return alert


def full_per_node(sim: Simulation, alert: Item) -> float:
    return sim.spreads[alert.id].full / sim.config.nodes


def test_the_tree_forms_after_the_first_alert_and_then_about_one_full_copy_per_node_goes_out() -> None:
    sim = warmed(200, tree=True)
    alerts = [one_alert(sim) for _ in range(4)]
    assert all(len(sim.spreads[a.id].arrived) == 200 for a in alerts)
    flood_cost = full_per_node(sim, alerts[0])
    assert flood_cost > 5  # the first one floods: every link starts eager
    assert all(full_per_node(sim, a) <= 1.02 for a in alerts[2:])  # a spanning tree: N - 1 pushes
    hop_target = math.ceil(math.log2(200)) + 2  # issue 14's bound, here for every node
    assert all((sim.spreads[a.id].hops_to(1.0, 200) or hop_target + 1) <= hop_target for a in alerts)
    # Nothing is repaired on clean links; the grafts are Plumtree's optimisation moving
    # nodes onto paths with fewer hops than the fastest first flood took.
    assert sim.messages["prune"] > 0
    assert (sim.spreads[alerts[-1].id].hops_to(1.0, 200) or 0) < (sim.spreads[alerts[0].id].hops_to(1.0, 200) or 0)


def test_a_quiet_tree_link_is_routed_around_through_the_announcements() -> None:
    sim = warmed(200, tree=True)
    one_alert(sim)
    steady = one_alert(sim)
    children = Counter(sim.spreads[steady.id].came_from.values())
    quiet, orphans = next((n, count) for n, count in children.most_common() if n != 0)
    assert orphans >= 2
    sim.go_quiet([quiet])
    grafts = sim.messages["graft"]
    around = one_alert(sim)
    spread = sim.spreads[around.id]
    assert len(spread.arrived) == 200  # the quiet node's subtree too
    assert quiet not in spread.came_from.values()
    assert sim.messages["graft"] > grafts  # its former children grafted links to announcers
    fetches = sim.messages["fetch"]
    after = one_alert(sim)
    assert len(sim.spreads[after.id].arrived) == 200
    # Repaired: the next alert needs no repair (grafts may still come: the optimisation by hops)
    assert sim.messages["fetch"] == fetches
    assert quiet not in sim.spreads[after.id].came_from.values()
    # Only the copies pushed into the quiet node (it never prunes) come on top of the tree.
    assert full_per_node(sim, after) <= 1 + len(sim.graph[quiet]) / 200 + 0.02


def run_hostile(tree: bool) -> tuple[Simulation, set[int], list[Item]]:
    """The tree forms, then 20 % go down and 5 % go quiet, with 10 % of messages lost."""
    sim = warmed(200, tree=tree, loss=0.10, seed=9)
    first = one_alert(sim)
    picked = random.Random(9).sample(range(1, 200), 50)  # the same nodes in both runs
    down, quiet = picked[:40], picked[40:]
    sim.take_down(down)
    sim.go_quiet(quiet)
    second = one_alert(sim, settle_ms=15_000)
    reached = set(sim.holders(second))
    sim.bring_up(down)
    sim.run_until(sim.now + 90_000)
    return sim, reached, [first, second]


def test_under_loss_churn_and_quiet_droppers_the_tree_reaches_whom_flooding_reaches_and_then_everyone() -> None:
    flood, flood_reached, _ = run_hostile(tree=False)
    tree, tree_reached, alerts = run_hostile(tree=True)
    live = set(range(200)) - set(random.Random(9).sample(range(1, 200), 50)[:40])
    assert tree_reached == flood_reached == set(tree.hop_depths(0, among=live))  # every reachable live node
    for sim in (flood, tree):
        for alert in alerts:
            assert set(sim.holders(alert)) == set(range(200))  # 100 % once the churned nodes are back
            assert len(sim.spreads[alert.id].arrived) == 200  # delivered once each
        assert not sim.disconnects


def test_under_loss_the_tree_costs_little_more_than_one_full_copy_per_node() -> None:
    """10 % of messages lost: each lost push costs its copy and one fetch at the top
    of the orphaned subtree (jittered timers), not a fetch by every node below it;
    failed pushes are announced, not resent; a graft replaces the link it repairs."""
    sim = warmed(200, tree=True, loss=0.10, seed=4)
    one_alert(sim)
    alerts = [one_alert(sim) for _ in range(5)]
    assert all(len(sim.spreads[a.id].arrived) == 200 for a in alerts)
    copies: Counter[str] = Counter()
    for alert in alerts:
        copies.update(sim.spreads[alert.id].copies)
    per_node = {fate: count / (200 * len(alerts)) for fate, count in copies.items()}
    # Measured 1.24 (0.11 of it lost pushes); before these rules 1.66-1.89 with loss alone.
    assert sum(per_node.values()) <= 1.3
    assert per_node["fetched"] <= 0.2 and per_node["push duplicate"] <= 0.15


def hostile_hops(optimize_hops: int | None) -> list[int | None]:
    """Hops to 99.9 % of the reachable live nodes, for the five alerts after 20 % of
    300 nodes went down and 5 % went quiet, with 10 % of all messages lost."""
    nodes, seed = 300, 9
    timing = replace(TREE_TIMING, optimize_hops=optimize_hops)
    sim = Simulation(SimConfig(nodes=nodes, degree=8, loss=0.10, seed=seed, timing=timing))
    sim.run_until(10_000)
    one_alert(sim, settle_ms=15_000)
    picked = random.Random(seed).sample(range(1, nodes), nodes // 4)
    sim.take_down(picked[: nodes // 5])
    sim.go_quiet(picked[nodes // 5 :])
    hops = []
    for _ in range(5):
        alert = one_alert(sim, settle_ms=15_000)
        live = set(sim.live())
        relays = set(sim.hop_depths(0, among=live - sim.quiet))
        reachable = relays | {b for a in relays for b in sim.graph[a] if b in live}
        spread = sim.spreads[alert.id]
        assert set(spread.arrived) == reachable
        hops.append(spread.hops_to(0.999, len(reachable)))
    return hops


@pytest.mark.slow  # a 300-node run of six alerts: ~30 s on an idle core
def test_under_loss_churn_and_quiet_droppers_the_tree_stays_within_log2_n_plus_2_hops() -> None:
    """Issue 14's hop bound at a few hundred nodes. Repairs graft whichever neighbour
    announced an item, and the subtree below inherits its path: without hop counts
    the tree drifts deeper alert after alert (measured 8, 9, 11, 12, 13 hops; bound
    11). With them a repair grafts the announcer nearest the author, and a node
    that hears an item announced from nearer than its tree copy came swaps its
    tree link for that one (Plumtree's optimisation).

    The 99.9 % figure at 300 nodes is the single deepest node, so one alert may
    miss by a hop: with acknowledged grafts and prunes (`SignalFailed`), seeds
    4-9 gave 2 alerts of 24 after the churn at 12 hops (seed 9: 9, 12, 7, 6),
    before them 8 of 24 at 12-15. The same run without hop counts used to drift
    past the bound (the test checked that too); with acknowledged signals it
    stays within it as well (seed 9: 8, 10, 7, 8): most of the drift was lost
    grafts and prunes, not the missing hop counts."""
    bound = math.ceil(math.log2(300)) + 2
    after_churn = hostile_hops(TREE_TIMING.optimize_hops)[1:]  # the first one is the churn's repair
    assert all(h is not None for h in after_churn), after_churn
    assert sum(h > bound for h in after_churn if h is not None) <= 1, after_churn
    assert max(h for h in after_churn if h is not None) <= bound + 1, after_churn
