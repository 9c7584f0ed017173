"""Re-paging through the desk, with a fake clock and a real store (SQLite and
PostgreSQL): after the chain is exhausted everyone in it is paged again every
``repage_every``, each person once per round, until an ack, a cancel or the
alert's expiry; each round is on the timeline, and a restart neither forgets
nor repeats one. Steps: on-call at 0, backup at 1 min, all at 2 min; exhausted
at 3 min; rounds at 8, 13, 18 … min; the alert expires at 60 min."""

from __future__ import annotations

from node.config import Config
from tests.response.test_page_outcome import (
    ALLY,
    T0,
    FakeNode,
    World,
    _cancel,
    _state,
    restart,
    setup_org,
    tick,
    world,
)

__all__ = ["world"]

MIN = 60_000
EVERYONE = ["Ana", "Bruno", "Carmen", "Diego"]
CHAIN = ["Ana", "Bruno", *EVERYONE]  # on-call, backup, then all


def repaging_node(world: World) -> FakeNode:
    config = Config(name="Brigada Ejemplo", watch_regions=["MX"], ack_timeout="60s", repage_every="5m")
    return FakeNode(world.store, world.now, config)


def paged_by_minute(node: FakeNode, world: World, minutes: range) -> dict[int, list[str]]:
    """Tick once a minute; who was paged at which minute."""
    fired: dict[int, list[str]] = {}
    for minute in minutes:
        before = len(world.paged)
        tick(node, T0 + minute * MIN)
        if len(world.paged) > before:
            fired[minute] = world.paged[before:]
    return fired


def timeline(node: FakeNode, alert: str) -> list[str]:
    return [n["text"] for n in node.desk.timeline(alert)]


def test_rounds_page_the_whole_chain_at_the_right_instants_and_stop_at_the_ack(world: World) -> None:
    node = repaging_node(world)
    alert = setup_org(node)
    fired = paged_by_minute(node, world, range(0, 14))
    assert fired == {0: ["Ana"], 1: ["Bruno"], 2: EVERYONE, 8: EVERYONE, 13: EVERYONE}
    node.desk.acknowledge(alert, by="Carmen")
    assert paged_by_minute(node, world, range(14, 40)) == {}
    texts = timeline(node, alert)
    assert [t for t in texts if t.startswith("re-paging round")] == [
        "re-paging round 1: no acknowledgement yet, paged the whole chain again",
        "re-paging round 2: no acknowledgement yet, paged the whole chain again",
    ]
    assert "page (whole chain, round 2): Ana, Bruno, Carmen, Diego" in texts
    assert _state(node, alert) == "acknowledged"


def test_a_restart_neither_forgets_nor_repeats_a_round(world: World) -> None:
    node = repaging_node(world)
    alert = setup_org(node)
    paged_by_minute(node, world, range(0, 8))
    assert world.paged == CHAIN
    world.now[0] = T0 + 8 * MIN  # round 1 is decided, then the node dies before paging anyone
    node.desk.tick()
    node = restart(node)
    assert world.paged == CHAIN + EVERYONE  # sent once after the start
    assert paged_by_minute(node, world, range(8, 13)) == {}  # not again
    node = restart(node)
    assert paged_by_minute(node, world, range(13, 14)) == {13: EVERYONE}  # round 2 on time
    assert sum(t.startswith("page (whole chain, round 1)") for t in timeline(node, alert)) == 1


def test_a_cancel_stops_the_rounds(world: World) -> None:
    node = repaging_node(world)
    alert = setup_org(node)
    paged_by_minute(node, world, range(0, 9))
    _cancel(node, ALLY, alert, T0 + 9 * MIN)
    assert paged_by_minute(node, world, range(9, 40)) == {} and _state(node, alert) == "cancelled"


def test_the_alerts_expiry_stops_the_rounds(world: World) -> None:
    node = repaging_node(world)
    alert = setup_org(node)  # expires at 60 min
    fired = paged_by_minute(node, world, range(0, 90))
    assert max(fired) == 58 and _state(node, alert) == "expired"
    assert world.store.due_escalations(T0 + 1000 * MIN) == []
    assert "alert expired: escalation stopped" in timeline(node, alert)

