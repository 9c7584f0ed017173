"""Re-paging through the desk, with a fake clock and a real store (SQLite and
PostgreSQL): after the chain is exhausted everyone in it is paged again every
``repage_every``, each person once per round, until an ack, a cancel or the
alert's expiry; each round is on the timeline, and a restart neither forgets
nor repeats one. Steps: on-call at 0, backup at 1 min, all at 2 min; exhausted
at 3 min; rounds at 8, 13, 18 … min; the alert expires at 60 min."""

from __future__ import annotations

import pytest

from node.config import Config, ConfigError, quiet_window, validate
from protocol import Alert, Area, sign_envelope
from tests.node.test_store import row
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
    fired = paged_by_minute(node, world, range(9, 40))
    assert fired == {9: EVERYONE} and _state(node, alert) == "cancelled"  # the all-clear, then nothing
    assert [s for t, s in ((p["targets"], p["state"]) for p in node.desk.pages(alert)) if t == "chain"] == [
        "sent"
    ]


def test_the_alerts_expiry_stops_the_rounds(world: World) -> None:
    node = repaging_node(world)
    alert = setup_org(node)  # expires at 60 min
    fired = paged_by_minute(node, world, range(0, 90))
    assert max(fired) == 58 and _state(node, alert) == "expired"
    assert world.store.due_escalations(T0 + 1000 * MIN) == []
    assert "alert expired: escalation stopped" in timeline(node, alert)


def test_quiet_hours_hold_the_rounds_of_an_alert_below_severe(world: World) -> None:
    """Quiet hours 11:10-12:00 UTC (T0 is 11:06:40): round 1 (due 11:14:40) waits
    until 12:00 for an alert that is neither severe nor extreme."""
    config = Config(
        name="Brigada Ejemplo",
        watch_regions=["MX"],
        ack_timeout="60s",
        repage_every="5m",
        quiet_hours="11:10-12:00",
    )
    moderate = FakeNode(world.store, world.now, config)
    alert = setup_org(moderate)  # setup_org's alert has the protocol's default severity, "unknown"
    fired = paged_by_minute(moderate, world, range(0, 15))
    assert 8 not in fired and 13 not in fired
    assert any(
        t.startswith("quiet hours: re-paging waits until 12:00 UTC") for t in timeline(moderate, alert)
    )
    assert paged_by_minute(moderate, world, range(15, 55)) == {54: EVERYONE}  # 12:00 UTC is T0 + 53:20


def test_quiet_hours_do_not_hold_a_severe_alert(world: World) -> None:
    config = Config(
        name="Brigada Ejemplo",
        watch_regions=["MX"],
        ack_timeout="60s",
        repage_every="5m",
        quiet_hours="11:10-12:00",
    )
    node = FakeNode(world.store, world.now, config)
    for name in EVERYONE:
        node.desk.add_responder(name, "responder", [f"json://127.0.0.1:9/{name}"], None)
    body = Alert(headline="Detención arbitraria", areas=(Area("MX-OAX"),), severity="severe")
    env = sign_envelope(ALLY, body, created=T0, expires=T0 + 3_600_000)
    (stored,) = node.store.add_envelopes([row(env)])
    node.desk.on_delivered(stored)
    fired = paged_by_minute(node, world, range(0, 14))
    assert fired[8] == EVERYONE and fired[13] == EVERYONE


def test_settings_that_cannot_work_are_refused_by_name() -> None:
    base = Config(name="Brigada Ejemplo")
    for changes, message in [
        ({"quiet_hours": "22h-7h"}, "quiet_hours must look like 22:00-07:00"),
        ({"quiet_hours": "25:00-07:00"}, "quiet_hours must look like 22:00-07:00"),
        ({"repage_every": "0m"}, "repage_every must look like 90s, 5m or 1h"),
        ({"repage_every": "ten"}, "repage_every must look like 90s, 5m or 1h"),
    ]:
        with pytest.raises(ConfigError, match=message):
            validate(base.with_changes(**changes))
    validate(base.with_changes(quiet_hours="22:00-07:00", repage_every="90s"))
    assert quiet_window("22:00-07:00") == (22 * 60, 7 * 60)
