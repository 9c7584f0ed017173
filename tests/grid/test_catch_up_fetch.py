"""A node back from an outage fetches what it missed in pages that follow what a
reply holds (one frame), so each id is asked for about once, not four or five
times over; the wire counters that bench/catchup.py reads add up. In-memory grid:
real nodes (store, signatures), fake time."""

from __future__ import annotations

from node.incidents import send_alert
from protocol import framing
from tests.grid.grid import Grid

BACKLOG = 300  # more than one fetch request's 256 ids, in ~1.2 KiB alerts: ~50 to a reply frame
FILLER = "Descripción de prueba. " * 38


async def test_a_returning_node_asks_for_each_missing_id_about_once(grid: Grid) -> None:
    await grid.add("a")
    await grid.add("b")
    await grid.pair("a", "b")
    await grid.stop("b")
    for i in range(BACKLOG):
        send_alert(
            grid["a"].service, {"headline": f"Retén {i}", "regions": ["MX-OAX"], "description": FILLER}
        )
    await grid.settle()
    await grid.start("b")
    for _ in range(18):  # up to 3 minutes of fake time, until B holds what A holds
        if grid["b"].store.count() == grid["a"].store.count():
            break
        await grid.advance(10_000, step_ms=10_000)
    assert grid["b"].store.count() == grid["a"].store.count()
    c = grid["b"].service.counters
    assert c.fetched > framing.MAX_FETCH_IDS  # the backlog came (mostly) by fetch: the case measured
    assert c.fetched_bytes > c.fetched * 1_000
    asked = c.fetch_request_bytes // 32
    assert asked <= c.fetched + c.fetched // 4 + framing.MAX_FETCH_IDS  # before: 4-5 x what was fetched
    assert c.fetch_requests >= c.fetched_bytes // framing.MAX_FRAME_BYTES  # a reply holds one frame
    assert c.reconcile_messages >= 1 and c.reconcile_bytes > 32 * c.fetched  # the difference, listed by id
