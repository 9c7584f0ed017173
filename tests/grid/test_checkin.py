"""Check-ins on the grid, their deadlines driven by the fake clock: a missed
check-in raises exactly one alert however long nobody answers, sealed to the
chosen ally (the relay holds ciphertext only), and checking in afterwards
cancels it; checking in on time raises nothing, ever. The phone link over real
HTTP is tests/e2e/test_checkin.py."""

from __future__ import annotations

from typing import Any

from node.incidents import alert_detail, list_alerts
from tests.grid.grid import Grid, GridNode

HOUR_MS = 3_600_000


def missed(node: GridNode) -> list[dict[str, Any]]:
    shown = list_alerts(node.service, region=None)
    return [x for x in shown if x.get("event") == "checkin-missed"]


async def test_a_missed_checkin_raises_one_alert_and_checking_in_cancels_it(grid: Grid) -> None:
    a, b, c = [await grid.add(name) for name in ("a", "b", "c")]
    await grid.pair("a", "b")
    await grid.pair("b", "c")
    desk = b.service.desk
    desk.add_responder("Ana", "responder", [], None)
    desk.add_shift("Ana", grid.clock.now, 24, None, False)
    plan, _token = desk.checkins.start(
        "Lucía",
        "MX-OAX",
        deadline=grid.clock.now + 2_000,
        grace_ms=2_000,
        note="At the march, blue jacket",
        to=["c"],
    )
    await grid.advance(4_000 - 1)
    assert not missed(b) and not missed(c)  # not before the grace period is over
    await grid.advance(1)
    (alert,) = missed(c)
    assert alert["headline"] == "Missed check-in: Lucía" and "blue jacket" in alert["description"]
    assert alert["sealed"] and missed(b)  # B raised it and can read it; A relays ciphertext only
    assert not missed(a) and a.store.get(bytes.fromhex(alert["id"])) is not None
    assert [p["tried"] for p in desk.pages(alert["id"])] == [["Ana"]]
    await grid.advance(HOUR_MS, step_ms=60_000)  # every tick after: still exactly one
    assert [x["id"] for x in missed(c)] == [alert["id"]] and len(missed(b)) == 1

    desk.checkins.ok(plan.id)  # what the phone link does
    await grid.settle()
    escalation = desk.escalation_json(alert["id"])
    assert escalation is not None and escalation["state"] == "cancelled"
    row = c.store.get(bytes.fromhex(alert["id"]))
    assert row is not None and alert_detail(c.service, row)["cancelled"]  # the cancel reached the ally


async def test_checking_in_on_time_raises_nothing(grid: Grid) -> None:
    b = await grid.add("b")
    desk = b.service.desk
    plan, _token = desk.checkins.start("Equipo Sur", "GT", interval_ms=3_000, grace_ms=2_000, note="", to=[])
    for _ in range(3):
        await grid.advance(2_000)
        desk.checkins.ok(plan.id)
    desk.checkins.stop(plan.id)
    await grid.advance(HOUR_MS, step_ms=60_000)
    assert not missed(b)
    assert [p["state"] for p in desk.checkins.plans()] == ["stopped"]


async def test_a_check_in_without_peers_alerts_this_organization_only(grid: Grid) -> None:
    """ "No peers yet: only this organization will be alerted", as the form says:
    the alert is sealed to this node alone (it used to fail on every tick)."""
    a, b = await grid.add("a"), await grid.add("b")
    await grid.pair("a", "b")
    desk = b.service.desk
    desk.add_responder("Ana", "responder", [], None)
    plan, _token = desk.checkins.start(
        "Lucía", "MX-GRO", deadline=grid.clock.now + 1_000, grace_ms=1_000, note="", to=[]
    )
    await grid.advance(2_000)
    (alert,) = missed(b)
    assert alert["sealed"] and alert["headline"] == "Missed check-in: Lucía"
    assert [p["tried"] for p in desk.pages(alert["id"])] == [["Ana"]]
    assert not missed(a)  # the ally relays it, and cannot read it
    desk.checkins.ok(plan.id)
    await grid.settle()
    row = b.store.get(bytes.fromhex(alert["id"]))
    assert row is not None and alert_detail(b.service, row)["cancelled"]
