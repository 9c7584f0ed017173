"""Escalation on the grid, its deadlines driven by the fake clock: silence climbs
the chain, an acknowledgement stops it for good, and a restart mid-escalation
neither forgets nor repeats a page. "Nobody else is paged" is asserted after
moving the clock an hour past every deadline, on a settled grid: no sleep to
guess with. The responders have no channel here (whom a page tried is what is
checked); tests/e2e/test_escalation.py pages through real Apprise."""

from __future__ import annotations

from typing import Any

from node.incidents import acknowledge, alert_detail, send_alert
from tests.grid.grid import Grid, GridNode

ACK_TIMEOUT_MS = 3_000
HOUR_MS = 3_600_000


async def org(grid: Grid) -> tuple[GridNode, GridNode]:
    """A sends; B watches Mexico, pages Ana (on call), then Bruno (backup), then everyone."""
    a = await grid.add("a")
    b = await grid.add("b", watch_regions=["MX"], ack_timeout="3s")
    await grid.pair("a", "b")
    desk = b.service.desk
    for name in ("Ana", "Bruno", "Carmen"):
        desk.add_responder(name, "responder", [], None)
    desk.add_shift("Ana", grid.clock.now, 24, "Bruno", False)
    return a, b


def send(node: GridNode, headline: str, region: str) -> str:
    return str(send_alert(node.service, {"headline": headline, "regions": [region]})["id"])


def paged(node: GridNode, alert: str) -> list[str]:
    """Everyone a page tried to reach for ``alert``, in chain order."""
    return [person for page in node.service.desk.pages(alert) for person in page["tried"]]


def detail(node: GridNode, alert: str) -> dict[str, Any]:
    row = node.store.get(bytes.fromhex(alert))
    assert row is not None
    return alert_detail(node.service, row)


async def test_silence_climbs_the_chain_and_an_ack_stops_it(grid: Grid) -> None:
    a, b = await org(grid)
    ignored = send(a, "Outside our regions", "CO")
    alert = send(a, "Defender threatened in Juchitán", "MX-OAX")
    await grid.settle()
    assert paged(b, alert) == ["Ana"]
    await grid.advance(ACK_TIMEOUT_MS - 1)
    assert paged(b, alert) == ["Ana"]  # not one millisecond early
    await grid.advance(1)
    assert paged(b, alert) == ["Ana", "Bruno"]
    row = b.store.get(bytes.fromhex(alert))
    assert row is not None
    ack = acknowledge(b.service, row, {"state": "responding"})
    await grid.advance(HOUR_MS, step_ms=60_000)  # past every deadline the chain had
    assert paged(b, alert) == ["Ana", "Bruno"]
    shown = detail(b, alert)
    assert shown["escalation"]["state"] == "acknowledged"
    texts = [note["text"] for note in shown["notes"]]
    assert any("acknowledged" in text for text in texts)
    assert a.store.get(bytes.fromhex(ack["id"])) is not None  # the ack reached the sender
    assert detail(b, ignored)["escalation"] is None and paged(b, ignored) == []


async def test_restart_mid_escalation_neither_forgets_nor_repeats(grid: Grid) -> None:
    a, b = await org(grid)
    alert = send(a, "Community radio raided", "MX-CHP")
    await grid.settle()
    assert paged(b, alert) == ["Ana"]
    await grid.stop("b")
    await grid.advance(ACK_TIMEOUT_MS + 1_000)  # the backup's deadline passes while B is down
    await grid.start("b")
    await grid.settle()
    assert paged(b, alert) == ["Ana"]  # nothing happens before B's first tick
    await grid.advance(1)  # the first tick after the restart fires the overdue step, once
    assert paged(b, alert) == ["Ana", "Bruno"]
    await grid.advance(2 * ACK_TIMEOUT_MS, step_ms=1_000)  # the chain runs out (re-paging is 10 min away)
    # on call, backup (paged once although its deadline passed while B was down), then everyone
    assert paged(b, alert) == ["Ana", "Bruno", "Ana", "Bruno", "Carmen"]
    assert detail(b, alert)["escalation"]["state"] == "exhausted"
    await grid.stop("b")
    await grid.advance(10 * 60_000)  # the first re-paging round falls due while B is down
    await grid.start("b")
    await grid.settle()
    await grid.advance(1)
    assert paged(b, alert)[5:] == ["Ana", "Bruno", "Carmen"]  # the round, after the restart
    await grid.advance(9 * 60_000, step_ms=60_000)
    assert len(paged(b, alert)) == 8  # once: the next round is 10 min after this one
