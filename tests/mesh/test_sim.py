"""The simulator: the whole mesh in one process, lossy links, churn and partitions."""

from __future__ import annotations

import pytest

from mesh.sim import SimConfig, Simulation


def warmed(config: SimConfig) -> Simulation:
    sim = Simulation(config)
    sim.run_until(10_000)  # peers reconcile their trust records first
    return sim


@pytest.mark.slow
def test_thousand_nodes_with_loss_and_churn_all_end_with_the_alert() -> None:
    sim = warmed(SimConfig(nodes=1_000, degree=8, loss=0.10, seed=11))
    down = sim.rng.sample(range(1, 1_000), 200)  # 20 %, never the author
    sim.take_down(down, at=10_500)
    alert = sim.send_alert(0, at=11_000)
    sim.run_until(40_000)
    live = set(sim.live())
    assert len(live) == 800
    # Everyone up and not cut off by the churn got it despite 10 % loss.
    reachable = {i for i in live if any(p in live for p in sim.graph[i])}
    assert reachable <= set(sim.holders(alert)) <= live
    assert not any(alert.id in sim.nodes[i].mesh for i in down)
    sim.bring_up(down, at=60_000)
    sim.run_until(240_000)
    assert len(sim.live()) == 1_000
    assert set(sim.holders(alert)) == set(range(1_000))
    spread = sim.spreads[alert.id]
    assert len(spread.arrived) == 1_000  # delivered exactly once per node
    assert not sim.disconnects  # lossy but honest peers are never cut off


def test_partition_heals_and_converges() -> None:
    sim = warmed(SimConfig(nodes=300, degree=6, loss=0.02, seed=5))
    west, east = range(0, 150), range(150, 300)
    sim.partition([west, east], at=10_000)
    a = sim.send_alert(0, at=11_000)
    b = sim.send_alert(0, at=11_000)
    sim.run_until(60_000)
    assert set(sim.holders(a)) == set(west) and set(sim.holders(b)) == set(west)
    sim.heal(at=61_000)
    sim.run_until(300_000)
    assert set(sim.holders(a)) == set(range(300)) == set(sim.holders(b))
    assert all(a.id in node.mesh and b.id in node.mesh for node in sim.nodes)


def test_same_seed_same_run() -> None:
    def figures() -> tuple[int, int | None, dict[str, int]]:
        sim = warmed(SimConfig(nodes=120, degree=6, loss=0.05, seed=3))
        alert = sim.send_alert(0, at=11_000)
        sim.run_until(60_000)
        return len(sim.holders(alert)), sim.spreads[alert.id].time_to(1.0, 120), dict(sim.messages)

    assert figures() == figures()


def test_outsider_content_does_not_spread() -> None:
    sim = warmed(SimConfig(nodes=50, degree=4, seed=2))
    outsider = sim.send_alert(7, at=11_000)  # node 7 is not an author: nobody vouched for it
    sim.run_until(30_000)
    assert sim.holders(outsider) == [7]
    assert sim.rejections["outside-horizon"] > 0
