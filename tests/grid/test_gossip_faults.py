"""Gossip under faults on the in-process grid: a cut link catches up once healed,
a hung call holds nothing else back and finishes when released, a frame damaged
on the way is refused without blaming the sender, and a broken frame the sender
signed is refused and blamed on it. Real nodes (store, signatures, listener)
and fake time; each test runs twice: on the in-memory wire and over loopback
HTTPS, which must agree."""

from __future__ import annotations

from node.incidents import send_alert
from tests.grid.grid import TICK_MS, Grid

MINUTE_MS = 60_000
STEP_MS = 10_000  # ticks 10 s apart: the mesh's deadlines are minutes (reconciliation, backoff)


async def line_of_three(any_grid: Grid) -> None:
    grid = any_grid
    """A — B — C: C hears A only through B."""
    for name in ("a", "b", "c"):
        await grid.add(name)
    await grid.pair("a", "b")
    await grid.pair("b", "c")


def send(grid: Grid, name: str, headline: str) -> bytes:
    made = send_alert(grid[name].service, {"headline": headline, "regions": ["MX-OAX"]})
    return bytes.fromhex(made["id"])


def holders(grid: Grid, alert: bytes) -> list[str]:
    return [name for name, node in grid.nodes.items() if node.store.get(alert) is not None]


def score(grid: Grid, judge: str, peer: str) -> float:
    saved = grid[judge].service.mesh.saved_standing(grid[peer].key)
    assert saved is not None
    return saved.score


async def test_an_alert_crosses_the_line_once_the_grid_settles(any_grid: Grid) -> None:
    grid = any_grid
    await line_of_three(grid)
    alert = send(grid, "a", "Allanamiento en la radio comunitaria")
    await grid.settle()
    assert holders(grid, alert) == ["a", "b", "c"]
    stored = [node.service.counters.stored for node in grid.nodes.values()]
    await grid.advance(10 * MINUTE_MS, step_ms=STEP_MS)  # two reconciliations later: nothing new, nothing lost
    assert [node.service.counters.stored for node in grid.nodes.values()] == stored
    assert all(node.service.counters.reconciles >= 2 for node in grid.nodes.values())


async def test_a_cut_link_catches_up_after_it_heals(any_grid: Grid) -> None:
    grid = any_grid
    await line_of_three(grid)
    grid.cut("b", "c")
    alerts = [send(grid, "a", f"Retén en la carretera {i}") for i in range(5)]
    await grid.advance(3 * MINUTE_MS, step_ms=STEP_MS)
    assert all(holders(grid, alert) == ["a", "b"] for alert in alerts)
    failure = grid["b"].service.last_failure(grid["c"].key)
    assert failure is not None and "remote side" in failure[1] and "cut" in failure[1]
    assert not grid["b"].service.peer_is_up(grid["c"].key) or grid["b"].service.counters.push_failures
    grid.heal("b", "c")
    await grid.advance(6 * MINUTE_MS, step_ms=STEP_MS)  # past the backoff and the next reconciliation
    assert all(holders(grid, alert) == ["a", "b", "c"] for alert in alerts)
    assert grid["b"].service.peer_is_up(grid["c"].key)


async def test_a_hung_call_waits_without_holding_back_the_other_peer(any_grid: Grid) -> None:
    grid = any_grid
    await line_of_three(grid)
    calls = grid.link("b", "c").calls
    grid.hang("b", "c", both=False)  # B's calls to C wait in flight
    alert = send(grid, "b", "Defensora detenida en Juchitán")
    await grid.settle()  # quiet apart from the parked push
    assert holders(grid, alert) == ["a", "b"]
    assert grid.parked == grid.link("b", "c").calls - calls >= 1  # every call to C waits, none failed
    assert grid["b"].service.counters.push_failures == 0
    grid.release("b", "c")
    await grid.settle()
    assert holders(grid, alert) == ["a", "b", "c"]


async def test_a_frame_damaged_on_the_way_is_refused_and_the_sender_not_blamed(any_grid: Grid) -> None:
    grid = any_grid
    await line_of_three(grid)
    before = score(grid, "c", "b")
    grid.corrupt("b", "c")
    alert = send(grid, "b", "Desalojo en San Mateo del Mar")
    await grid.settle()
    assert holders(grid, alert) == ["a", "b"]
    assert grid["c"].service.counters.rejected.get("request-bad-signature", 0) >= 1
    assert score(grid, "c", "b") == before  # anyone on the path could have done it
    failure = grid["b"].service.last_failure(grid["c"].key)
    assert failure is not None and "HTTP 401" in failure[1]
    grid.heal("b", "c")
    await grid.advance(6 * MINUTE_MS, step_ms=STEP_MS)
    assert holders(grid, alert) == ["a", "b", "c"]


async def test_a_broken_frame_the_sender_signed_is_refused_and_blamed(any_grid: Grid) -> None:
    grid = any_grid
    await line_of_three(grid)
    before = score(grid, "c", "b")
    grid.corrupt("b", "c", lambda body: body[: len(body) // 2], signed=True)
    alert = send(grid, "b", "Amenaza a periodistas en Tuxtla")
    await grid.settle()
    assert holders(grid, alert) == ["a", "b"]
    assert grid["c"].service.counters.rejected.get("bad-frame", 0) >= 1
    assert score(grid, "c", "b") < before  # the signature says who sent it
    grid.heal("b", "c")
    await grid.advance(6 * MINUTE_MS, step_ms=STEP_MS)
    assert holders(grid, alert) == ["a", "b", "c"]


async def test_a_node_that_was_down_catches_up_after_its_restart(any_grid: Grid) -> None:
    grid = any_grid
    await line_of_three(grid)
    await grid.stop("c")
    alerts = [send(grid, "a", f"Bloqueo en el puente {i}") for i in range(5)]
    await grid.advance(2 * MINUTE_MS, step_ms=STEP_MS)  # B's pushes to C fail meanwhile
    assert grid["b"].service.counters.push_failures >= 1
    await grid.start("c")  # the same SQLite file, a new process
    await grid.advance(6 * MINUTE_MS, step_ms=STEP_MS)
    assert all(holders(grid, alert) == ["a", "b", "c"] for alert in alerts)
    assert grid["c"].service.counters.stored == len(alerts)  # each once, since the restart


async def test_a_push_that_hangs_past_its_timeout_is_sent_again(any_grid: Grid) -> None:
    grid = any_grid
    await line_of_three(grid)
    calls = grid.link("b", "c").calls
    grid.hang("b", "c", both=False)
    alert = send(grid, "b", "Desaparición en la sierra")
    await grid.settle()
    first = grid.link("b", "c").calls - calls
    await grid.advance(5 * MINUTE_MS, step_ms=STEP_MS)  # the push timeout is one minute
    assert grid.link("b", "c").calls - calls > first  # the outbox gave up waiting and tried again
    grid.release("b", "c")  # every parked call arrives now
    await grid.settle()
    # held past the request signature's window, the first ones are refused as stale;
    # a recent retry is in time
    assert grid["c"].service.counters.rejected.get("request-expired", 0) >= 1
    assert holders(grid, alert) == ["a", "b", "c"]


async def test_a_clock_that_jumps_ahead_and_back_does_not_stall_the_links(any_grid: Grid) -> None:
    """Found by the nemesis (tests/nemesis, seed 4: a node's clock jumped +1 h, then
    corrected): retries and reconciliations scheduled while the clock was ahead lay
    an hour in the future once it was set back, so the node sent nothing for an
    hour. A clock that steps back restarts the peers' timers."""
    grid = any_grid
    await line_of_three(grid)
    grid.cut("b", "c")
    await grid.advance(60 * MINUTE_MS, step_ms=STEP_MS * 30)  # the clock jumps an hour ahead
    early = send(grid, "a", "Retén en la carretera (reloj adelantado)")
    await grid.advance(MINUTE_MS, step_ms=STEP_MS)  # b retries c, and fails, on the jumped clock
    assert holders(grid, early) == ["a", "b"]
    grid.clock.now -= 61 * MINUTE_MS  # corrected
    grid.heal("b", "c")
    late = send(grid, "a", "Retén en la carretera (reloj corregido)")
    await grid.advance(2 * MINUTE_MS, step_ms=STEP_MS)
    assert holders(grid, late) == ["a", "b", "c"]


async def test_a_batch_the_store_could_not_write_comes_again_once_it_can(any_grid: Grid) -> None:
    """A full disk at B (found by the nemesis, seed 15015): the push is refused,
    not acknowledged, and B's mesh forgets the batch, so the retried push stores
    it; before, B kept the ids in memory, dropped every later copy as a duplicate
    and never held the alert."""
    import sqlalchemy.exc

    grid = any_grid
    for name in ("a", "b"):
        await grid.add(name)
    await grid.pair("a", "b")
    b = grid["b"].service
    real = b.store.add_envelopes
    failures = []

    def full_disk(*args: object, **kwargs: object) -> object:
        failures.append(1)
        raise sqlalchemy.exc.OperationalError("INSERT", {}, Exception("database or disk is full"))

    b.store.add_envelopes = full_disk  # type: ignore[method-assign]
    alert = send(grid, "a", "Desalojo en la colonia")
    await grid.settle()
    assert failures and holders(grid, alert) == ["a"]
    assert b.mesh.get(alert) is None  # forgotten: a later copy is not a duplicate
    b.store.add_envelopes = real  # type: ignore[method-assign]
    await grid.advance(2 * MINUTE_MS, step_ms=STEP_MS)  # A retries its push (backoff)
    assert holders(grid, alert) == ["a", "b"]


async def test_a_node_whose_disk_was_full_asks_its_peers_at_once_when_it_can_write_again(any_grid: Grid) -> None:
    """The nemesis's disk fault (seed 27): after the space was freed, the node took
    new work at once but lacked what it had refused for 160 s, until its peers'
    retries came out of their backoff. Its first write that works now makes it
    reconcile with every peer."""
    import sqlalchemy.exc

    grid = any_grid
    for name in ("a", "b"):
        await grid.add(name)
    await grid.pair("a", "b")
    b = grid["b"].service
    real = b.store.add_envelopes

    def full_disk(*args: object, **kwargs: object) -> object:
        raise sqlalchemy.exc.OperationalError("INSERT", {}, Exception("database or disk is full"))

    b.store.add_envelopes = full_disk  # type: ignore[method-assign]
    refused = [send(grid, "a", f"Desalojo en la colonia {n}") for n in range(3)]
    await grid.advance(MINUTE_MS, step_ms=STEP_MS)  # A retries and backs off
    assert all(holders(grid, alert) == ["a"] for alert in refused) and b.outage.failing
    b.store.add_envelopes = real  # type: ignore[method-assign]
    own = send(grid, "b", "Retén en la carretera")  # B's first write that works
    await grid.settle()  # no time passes: A's backoff has not run out
    assert holders(grid, own) == ["a", "b"]
    assert [holders(grid, alert) for alert in refused] == [["a", "b"]] * 3


async def test_a_peer_heard_from_again_gets_the_backlog_without_waiting_out_the_backoff(any_grid: Grid) -> None:
    """Found by the nemesis long run (20 nodes, seed 20261207): after a partition a
    node got what a neighbour held for it 100 to 200 s late, all at once, from that
    one neighbour: both sides had backed off, and the neighbour waited out its own
    doubling backoff although the node had been pushing to it for minutes. A request
    from the peer now ends the backoff of our queue to it."""
    grid = any_grid
    for name in ("a", "b"):
        await grid.add(name)
    await grid.pair("a", "b")
    grid.cut("a", "b")
    backlog = send(grid, "a", "Retén en la carretera (durante el corte)")
    await grid.advance(8 * MINUTE_MS, step_ms=STEP_MS)  # a's pushes fail and back off for minutes
    assert holders(grid, backlog) == ["a"]
    assert grid["a"].service.counters.push_failures >= 5
    grid.heal("a", "b")
    news = send(grid, "b", "Desalojo en la colonia (después del corte)")  # b pushes to a at once
    await grid.advance(2 * TICK_MS, step_ms=TICK_MS)
    assert holders(grid, news) == ["a", "b"]
    assert holders(grid, backlog) == ["a", "b"]  # seconds after b was heard, not minutes
