"""A node back from an outage fetches what it missed: by range from a peer that
answers range fetches (no id of the backlog crosses the wire), by id from an older
peer, in pages that follow what a reply holds (one frame), so each id is asked
for about once, not four or five times over; the wire counters that
bench/catchup.py reads add up. In-memory grid: real nodes (store, signatures),
fake time."""

from __future__ import annotations

from typing import Any

import pytest

from node import mesh_api
from node.incidents import send_alert
from node.transport import TransportError
from protocol import framing
from protocol.envelope import envelope_id
from tests.grid.grid import Grid

BACKLOG = 300  # more than one fetch request's 256 ids, in ~1.2 KiB alerts: ~50 to a reply frame
FILLER = "Descripción de prueba. " * 38


async def outage_and_return(grid: Grid, *, pushes: bool = True) -> None:
    """B misses ``BACKLOG`` alerts of A's and comes back; until B holds what A holds.
    Without ``pushes`` A's calls to B fail, so everything comes by B's fetches."""
    await grid.add("a")
    await grid.add("b")
    await grid.pair("a", "b")
    await grid.stop("b")
    await grid.advance(60_000)  # the backlog is newer than what B holds, as after a real outage
    for i in range(BACKLOG):
        send_alert(
            grid["a"].service, {"headline": f"Retén {i}", "regions": ["MX-OAX"], "description": FILLER}
        )
    await grid.settle()
    await grid.start("b")
    grid.link("a", "b").cut = not pushes
    for _ in range(18):  # up to 3 minutes of fake time, until B holds what A holds
        if grid["b"].store.count() == grid["a"].store.count():
            break
        await grid.advance(10_000, step_ms=10_000)
    assert grid["b"].store.count() == grid["a"].store.count()


def older_listeners(monkeypatch: pytest.MonkeyPatch, *, says_ranges: bool = False) -> None:
    """Every listener of the grid answers as a node from before range fetches: the
    ``range`` of a fetch ignored (its reply has no ``next``) and, unless
    ``says_ranges``, no ``ranges`` in reconciliation replies."""
    monkeypatch.setattr(framing, "fetch_range", lambda frame: None)
    if says_ranges:
        return
    reply = mesh_api._reply

    def without_ranges(frame: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        return reply({k: v for k, v in frame.items() if k != "ranges"}, *args, **kwargs)

    monkeypatch.setattr(mesh_api, "_reply", without_ranges)


async def test_a_returning_node_fetches_what_it_missed_by_range_without_listing_ids(grid: Grid) -> None:
    await outage_and_return(grid, pushes=False)
    c = grid["b"].service.counters
    assert c.fetched == BACKLOG  # all by fetch: the case measured
    assert c.fetched_bytes > c.fetched * 1_000
    # By range, but for at most one id list: the range B shares with A, next to what B held.
    assert c.range_fetch_requests >= c.fetch_requests - 1
    assert c.fetch_requests >= c.fetched_bytes // framing.MAX_FRAME_BYTES  # a reply holds one frame
    # Listing the backlog's ids once (reconciliation) and asking for them once
    # (fetch) would be 64 bytes an alert, 5 % of these ~1.2 KiB alerts: here
    # fingerprints and bounds only.
    assert c.reconcile_messages >= 1
    assert c.reconcile_bytes + c.fetch_request_bytes < 0.01 * c.fetched_bytes


async def test_an_older_peer_is_asked_by_id_about_once_per_id(
    grid: Grid, monkeypatch: pytest.MonkeyPatch
) -> None:
    older_listeners(monkeypatch)
    await outage_and_return(grid)
    c = grid["b"].service.counters
    assert c.range_fetch_requests == 0  # its replies never said it answers range fetches
    assert c.fetched > framing.MAX_FETCH_IDS
    assert c.fetched_bytes > c.fetched * 1_000
    asked = c.fetch_request_bytes // 32
    assert asked <= c.fetched + c.fetched // 4 + framing.MAX_FETCH_IDS  # before: 4-5 x what was fetched
    assert c.fetch_requests >= c.fetched_bytes // framing.MAX_FRAME_BYTES  # a reply holds one frame
    assert c.reconcile_messages >= 1 and c.reconcile_bytes > 32 * c.fetched  # the difference, listed by id


async def test_a_peer_that_ignores_a_range_fetch_is_asked_by_id_from_then_on(
    grid: Grid, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its reconciliation replies say it answers range fetches, its fetch replies do
    not (no ``next``): the range fetch ends with nothing and the next session lists ids."""
    older_listeners(monkeypatch, says_ranges=True)
    await outage_and_return(grid, pushes=False)
    c = grid["b"].service.counters
    assert c.range_fetch_requests == 0  # counted only when answered as one
    assert grid["a"].key in grid["b"].service._no_range_fetch
    assert c.fetched == BACKLOG and c.reconcile_bytes > 32 * c.fetched


async def test_a_range_fetch_answers_a_range_in_key_order_a_frame_at_a_time(grid: Grid) -> None:
    """The listener's side: pages by ``next`` cover the range once, in key order,
    each within one frame and the asked limit; a range out of shape is refused."""
    await grid.add("a")
    await grid.add("b")
    await grid.pair("a", "b")
    a, b = grid["a"].service, grid["b"].service
    for i in range(120):  # ~50 to a frame
        grid.clock.advance(1)
        send_alert(a, {"headline": f"Retén {i}", "regions": ["MX-OAX"], "description": FILLER})
    await grid.settle()
    address = b.peer_address(a.key)
    assert address is not None
    keys = list(a.mesh.keys())
    lower, upper = keys[3], keys[-2]
    cursor: tuple[int, bytes] | None = lower
    got: list[bytes] = []
    pages = 0
    while cursor is not None:
        reply = await b.client.call(address, "/mesh/v1/fetch", framing.range_frame(cursor, upper, 256))
        raws = framing.envelope_list(reply)
        assert raws and len(framing.pack(reply)) <= framing.MAX_FRAME_BYTES
        got += [envelope_id(raw) for raw in raws]
        cursor, pages = framing.range_next(reply), pages + 1
    assert got == [k[1] for k in keys[3:-2]] and pages >= 2
    reply = await b.client.call(address, "/mesh/v1/fetch", framing.range_frame(lower, upper, 5))
    assert [envelope_id(raw) for raw in framing.envelope_list(reply)] == [k[1] for k in keys[3:8]]
    assert keys[7] < tuple(reply["next"]) <= keys[8]
    with pytest.raises(TransportError) as refused:
        await b.client.call(address, "/mesh/v1/fetch", {"ids": [], "range": [5, b"", 1, b""]})
    assert refused.value.status == 400
