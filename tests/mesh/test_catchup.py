"""Catch-up in the simulator and through `MeshNode` events: budgets defer, never lose.

The end-to-end test with real processes is tests/e2e/test_catchup.py."""

from __future__ import annotations

import dataclasses

from mesh import (
    Authored,
    Claim,
    Fetch,
    FetchDone,
    FetchRange,
    FetchRangeDone,
    Limits,
    MeshNode,
    NotStored,
    PeerDown,
    PeerUp,
    Push,
    PushResult,
    PushUnsent,
    Received,
    ReconcileDone,
    Rejected,
    SaveMark,
    Screen,
    StartReconcile,
    Tick,
    Timing,
)
from mesh.events import Action
from mesh.gossip import RANGE_CONTINUE_MIN
from mesh.sim import SimConfig, Simulation

from .builders import NOW, alert, key, rng, vouch

ME, ALLY, PEER = key("me"), key("ally"), key("peer")
BACKLOG = 3_000


def delivered_but_missing(sim: Simulation, sender: int, receiver: int) -> int:
    """Items the sender counts as delivered (seq <= its saved mark) that the receiver lacks."""
    mark = sim.nodes[sender].marks.get(sim.keys[receiver], 0)
    held = sim.nodes[receiver].mesh
    return sum(1 for item, seq in sim.nodes[sender].disk if seq <= mark and item.id not in held)


def test_a_node_back_from_an_outage_gets_a_backlog_far_over_every_live_budget() -> None:
    sim = Simulation(SimConfig(nodes=2, degree=2, seed=3))
    sim.run_until(5_000)
    sim.take_down([1], at=5_500)
    sent = [sim.send_alert(0, at=6_000 + 10 * n) for n in range(BACKLOG)]  # 100 a second
    sim.bring_up([1], at=40_000)
    sim.run_until(40_000)
    now = 40_000
    while not all(item.id in sim.nodes[1].mesh for item in sent) and now < 40_000 + 120_000:
        now += 1_000
        sim.run_until(now)
        assert delivered_but_missing(sim, 0, 1) == 0  # never counted delivered before it is there
    missing = [item for item in sent if item.id not in sim.nodes[1].mesh]
    assert not missing, f"{len(missing)} of {BACKLOG} still missing after 2 minutes"
    # Far more than the author's live budget allows in that time: drained at the catch-up rate.
    limits = Limits()
    live_budget = limits.author_burst + limits.author_rate_per_s * (now - 40_000) / 1000
    assert live_budget < BACKLOG


def node(limits: Limits, peers: tuple[bytes, ...] = (PEER,)) -> MeshNode:
    mesh = MeshNode(
        ME,
        random=rng(),
        now=NOW,
        peers=peers,
        stored=[(vouch(ME, ALLY), 1), (vouch(ME, PEER), 2)],
        marks=dict.fromkeys(peers, 2),
        limits=limits,
    )
    for peer in peers:
        mesh.handle(PeerUp(peer), NOW)
    return mesh


def reasons(actions: list[Action]) -> list[str]:
    return [a.reason for a in actions if isinstance(a, Rejected)]


def test_pushed_items_over_a_budget_are_deferred_not_remembered_and_fetched_soon() -> None:
    mesh = node(Limits(author_burst=2, author_rate_per_s=0.001))
    backlog = [alert(ALLY, n) for n in range(5)]
    actions = mesh.handle(Received(PEER, backlog), NOW)
    assert reasons(actions) == ["author-rate-limited"] * 3
    # Not remembered as refused: the next reconciliation fetches them, and soon.
    wake = mesh.wakeup_at()
    assert wake is not None and wake <= NOW + Timing().catch_up_again_ms
    assert StartReconcile(PEER) in mesh.handle(Tick(), wake)
    done = mesh.handle(ReconcileDone(PEER, have=[], need=[i.id for i in backlog]), wake)
    fetches = [a for a in done if isinstance(a, Fetch)]
    assert [i for f in fetches for i in f.ids] == [i.id for i in backlog[2:]]
    # What we asked for draws on the catch-up budget, not on the exhausted live one.
    fetched = mesh.handle(Received(PEER, backlog[2:]), wake)
    assert reasons(fetched) == [] and all(i.id in mesh for i in backlog)


def test_fetches_are_paced_by_the_catch_up_allowance_and_the_rest_comes_next_session() -> None:
    limits = Limits(catch_up_peer_burst=100, catch_up_peer_rate_per_s=10)
    mesh = node(limits)
    need = [alert(ALLY, n) for n in range(250)]
    actions = mesh.handle(ReconcileDone(PEER, have=[], need=[i.id for i in need]), NOW)
    asked = [i for a in actions if isinstance(a, Fetch) for i in a.ids]
    assert len(asked) == 100
    mesh.handle(Received(PEER, need[:90]), NOW + 10)
    mesh.handle(FetchDone(PEER, tuple(asked)), NOW + 10)  # ten never came (a capped reply)
    wake = mesh.wakeup_at()
    assert wake is not None and wake <= NOW + Timing().catch_up_again_ms
    later = wake + 20_000  # the allowance refilled, up to its burst
    assert StartReconcile(PEER) in mesh.handle(Tick(), later)
    again = mesh.handle(ReconcileDone(PEER, have=[], need=[i.id for i in need[90:]]), later)
    asked_again = [i for a in again if isinstance(a, Fetch) for i in a.ids]
    assert asked_again == [i.id for i in need[90:190]]  # the ten that never came are asked again


def test_a_deferred_push_keeps_the_mark_below_it_until_the_peer_takes_it() -> None:
    mesh = node(Limits())
    first, second = alert(ME, 1), alert(ME, 2)
    push = next(a for a in mesh.handle(Authored(first), NOW) if isinstance(a, Push))
    mesh.handle(PushResult(PEER, push.batch_id, True), NOW)
    actions = mesh.handle(Authored(second), NOW + 1)
    (push,) = [a for a in actions if isinstance(a, Push)]
    result = mesh.handle(PushResult(PEER, push.batch_id, True, (second.id,)), NOW + 2)
    assert not [a for a in result if isinstance(a, SaveMark) and a.seq >= 4]
    assert mesh.mark(PEER) == 3
    retry = mesh.handle(Tick(), NOW + 10_000)
    (push,) = [a for a in retry if isinstance(a, Push)]
    assert push.items == (second,)
    done = mesh.handle(PushResult(PEER, push.batch_id, True), NOW + 10_001)
    assert SaveMark(PEER, 4) in done


def test_forty_fresh_keys_share_their_vouchers_budget_and_new_vouches_are_capped() -> None:
    limits = Limits(author_burst=50, author_rate_per_s=0.001, peer_burst=10_000, vouch_burst=20)
    mesh = node(limits)
    fresh = [key(f"fresh-{n}") for n in range(40)]
    vouches = [vouch(ALLY, k) for k in fresh]
    first = mesh.handle(Received(PEER, vouches), NOW)
    assert reasons(first) == ["vouch-rate-limited"] * 20  # deferred, so not scored
    assert mesh.score(PEER) == limits.max_score
    vouched = fresh[:20]
    flood = [alert(k, n) for k in vouched for n in range(10)]
    actions = mesh.handle(Received(PEER, flood), NOW + 1)
    stored = sum(1 for item in flood if item.id in mesh)
    assert stored == limits.author_burst  # 200 alerts, one budget: the pool ALLY holds for its fresh vouchees
    assert set(reasons(actions)) == {"voucher-rate-limited"}
    # The pool is apart from ALLY's own budget (its 20 vouches took 20 of it): a
    # flooding vouchee does not starve its voucher's own alerts (nemesis, seed 15015).
    assert reasons(mesh.handle(Received(PEER, [alert(ALLY, 999)]), NOW + 2)) == []
    day = limits.fresh_vouch_ms
    later = mesh.handle(Received(PEER, [alert(vouched[0], 1_000, created=NOW + day)]), NOW + day)
    assert reasons(later) == []  # a day later the key stands on its own budget


def test_a_flooding_fresh_key_leaves_its_vouchers_pool_to_the_other_fresh_keys() -> None:
    """Finding 7: in a federation whose vouches were a day old, a fresh flooder used
    up the pool its voucher holds for all its fresh vouchees, and the honest alerts
    of the others were deferred two hops away. A fresh key takes at most its share
    (``Limits.fresh_share``) of the pool; the pool still bounds them all together."""
    limits = Limits(author_burst=100, author_rate_per_s=0.001, peer_burst=10_000)
    mesh = node(limits)
    flooder, honest, third = key("flooder"), key("honest"), key("third")
    mesh.handle(Received(PEER, [vouch(ALLY, k) for k in (flooder, honest, third)]), NOW)
    flood = [alert(flooder, n) for n in range(300)]
    mesh.handle(Received(PEER, flood), NOW + 1)
    assert sum(1 for item in flood if item.id in mesh) == 50  # half the pool
    probe = alert(honest, 1, created=NOW + 2)
    assert reasons(mesh.handle(Received(PEER, [probe]), NOW + 2)) == [] and probe.id in mesh
    rest = [alert(k, n, created=NOW + 3) for k in (honest, third) for n in range(2, 60)]
    mesh.handle(Received(PEER, rest), NOW + 3)
    assert sum(1 for item in rest if item.id in mesh) == 49  # the pool's other half, less the probe


def test_the_screen_gives_a_flooding_fresh_key_no_more_than_its_share() -> None:
    """The same rule before verification (``Screen``): past its share, a fresh key's
    claims are deferred unverified while another fresh vouchee's pass."""
    limits = Limits(author_burst=100, author_rate_per_s=0.001, peer_burst=10_000)
    mesh = node(limits)
    flooder, honest = key("flooder"), key("honest")
    mesh.handle(Received(PEER, [vouch(ALLY, k) for k in (flooder, honest)]), NOW)
    mesh.handle(Received(PEER, [alert(flooder, n) for n in range(50)]), NOW + 1)  # its share, spent
    more = [alert(flooder, n) for n in range(50, 60)]
    probe = alert(honest, 1, created=NOW + 2)
    claims = [Claim(i.id, i.author, i.kind) for i in (*more, probe)]
    refused = {a.item_id for a in mesh.handle(Screen(PEER, claims), NOW + 2) if isinstance(a, Rejected)}
    assert refused == {i.id for i in more}


def test_backdated_vouches_meet_the_cap_on_new_vouches() -> None:
    """A vouch counts as new when it brings a key new to this node into the
    horizon, whatever its signed ``created`` says (a voucher can backdate)."""
    mesh = node(Limits(vouch_burst=20))
    two_days_ago = NOW - 2 * Limits().fresh_vouch_ms
    old = [vouch(ALLY, key(f"backdated-{n}"), created=two_days_ago) for n in range(40)]
    actions = mesh.handle(Received(PEER, old), NOW)
    assert sum(1 for item in old if item.id in mesh) == 20
    assert reasons(actions) == ["vouch-rate-limited"] * 20
    # A vouch for a key already inside the horizon introduces nobody: not capped.
    again = vouch(ALLY, PEER, created=two_days_ago)
    assert reasons(mesh.handle(Received(PEER, [again]), NOW + 1)) == []


def test_items_waiting_for_a_deferred_vouch_are_deferred_with_it() -> None:
    mesh = node(Limits(vouch_burst=1))
    first, second = key("first"), key("second")
    actions = mesh.handle(Received(PEER, [vouch(ALLY, first), vouch(ALLY, second), alert(second)]), NOW)
    assert reasons(actions) == ["vouch-rate-limited", "vouch-deferred"]
    # Without a deferred vouch in the batch, an outsider is refused for good (and remembered).
    later = mesh.handle(Received(PEER, [alert(key("stranger"))]), NOW + 1)
    assert reasons(later) == ["outside-horizon"]


def test_fresh_keys_share_their_vouchers_one_catch_up_burst_when_fetched() -> None:
    """A fresh key's backlog is fetched on its voucher's catch-up budget: forty keys
    vouched for today buy no more backlog than the voucher's own would, and an
    honest new ally's backlog still drains at catch-up speed (not 1/s)."""
    limits = Limits(catch_up_author_burst=30, catch_up_author_rate_per_s=0.001)
    mesh = node(limits)
    fresh = [key(f"fetched-{n}") for n in range(10)]
    mesh.handle(Received(PEER, [vouch(ALLY, k) for k in fresh]), NOW)  # pushed: ALLY's live budget
    flood = [alert(k, n) for k in fresh for n in range(20)]
    actions = mesh.handle(ReconcileDone(PEER, have=[], need=[i.id for i in flood]), NOW + 1)
    assert sum(len(a.ids) for a in actions if isinstance(a, Fetch)) == 200
    fetched = mesh.handle(Received(PEER, flood), NOW + 2)
    assert sum(1 for item in flood if item.id in mesh) == 30  # ALLY's one catch-up burst, shared
    assert set(reasons(fetched)) == {"voucher-catch-up-limited"}
    # Refused for a holder's budget: no early session that would fetch them again at once.
    wake = mesh.wakeup_at()
    assert wake is None or wake >= NOW + Timing().reconcile_every_ms // 2


def fetch_nothing(mesh: MeshNode, ids: list[bytes], at: int) -> list[Action]:
    """A reconciliation names ``ids``; the fetch for them comes back empty; then a tick later."""
    actions = mesh.handle(ReconcileDone(PEER, have=[], need=ids), at)
    asked = [i for a in actions if isinstance(a, Fetch) for i in a.ids]
    assert asked == ids
    mesh.handle(FetchDone(PEER, tuple(asked)), at + 10)
    return mesh.handle(Tick(), at + 10 + Timing().catch_up_again_ms)


def test_an_empty_fetch_is_taken_for_loss_and_asked_again_soon() -> None:
    """Under loss a fetch request or its reply is lost now and then: ask again in seconds."""
    mesh = node(Limits())
    ids = [alert(ALLY, n).id for n in range(10)]
    assert StartReconcile(PEER) in fetch_nothing(mesh, ids, NOW)
    # Something came in between: the count of empty fetches starts again.
    arrived = alert(ALLY, 0)
    later = NOW + 10_000
    mesh.handle(ReconcileDone(PEER, have=[], need=ids), later)
    mesh.handle(Received(PEER, [arrived]), later + 5)
    mesh.handle(FetchDone(PEER, tuple(ids)), later + 10)
    for round_ in range(2):
        assert StartReconcile(PEER) in fetch_nothing(mesh, ids[1:], later + 10_000 * (round_ + 1))


def test_a_peer_that_names_ids_but_never_hands_them_over_waits_for_the_regular_session() -> None:
    """Found with quiet droppers in the simulator: every fetch came back empty and each
    neighbour reconciled with the peer again every few seconds."""
    mesh = node(Limits())
    ids = [alert(ALLY, n).id for n in range(10)]
    at = NOW
    for _ in range(2):  # one or two empty fetches in a row: maybe loss, asked again soon
        assert StartReconcile(PEER) in fetch_nothing(mesh, ids, at)
        at += 10_000
    assert StartReconcile(PEER) not in fetch_nothing(mesh, ids, at)  # the third: withheld
    wake = mesh.wakeup_at()
    assert wake is not None and wake >= at + Timing().reconcile_every_ms // 2  # the regular, jittered session


def test_fetches_asked_on_a_clock_an_hour_ahead_are_asked_again_once_the_links_restart() -> None:
    """Fetch deadlines are wall-clock instants: ids asked for while the clock was an
    hour ahead, whose answer was lost, stayed "being fetched" for an hour after the
    clock was corrected, so no link asked for them (issue 15, the nemesis's
    ``jump``). The node restarts every link when its clock steps back
    (``PeerDown`` + ``PeerUp``); a link that goes down forgets its fetches."""
    mesh = node(Limits())
    need = [alert(ALLY, n, created=NOW + n) for n in range(5)]
    ahead = NOW + 3_600_000
    asked = mesh.handle(ReconcileDone(PEER, have=[], need=[i.id for i in need]), ahead)
    assert {i for a in asked if isinstance(a, Fetch) for i in a.ids} == {i.id for i in need}
    # the answer never comes; the clock is corrected; the node restarts the link
    mesh.handle(PeerDown(PEER), NOW + 1_000)
    mesh.handle(PeerUp(PEER), NOW + 1_000)
    again = mesh.handle(ReconcileDone(PEER, have=[], need=[i.id for i in need]), NOW + 2_000)
    assert {i for a in again if isinstance(a, Fetch) for i in a.ids} == {i.id for i in need}


def test_a_quiet_authors_alert_jumps_the_queue_ahead_of_a_flood_backlog() -> None:
    """A flood admitted up to its budget (300 alerts) used to go out to every peer
    ahead of any honest alert stored after it, 64 a batch, one batch in flight,
    hop after hop (the nemesis's flooder, seed 15015). A quiet author's new item
    now jumps the queues, and does not even wait for the answer to the flood
    batch in flight: it is pushed beside it at once (finding 7). The flood goes
    on in order, without it."""
    other = key("other")
    mesh = node(Limits(peer_burst=10_000), peers=(PEER, other))
    mesh.handle(Tick(), NOW)
    flood = [alert(ALLY, n) for n in range(300)]
    pushed = mesh.handle(Received(PEER, flood), NOW + 1)
    first = [a for a in pushed if isinstance(a, Push) and a.peer == other]
    assert len(first) == 1 and len(first[0].items) == 64  # the first flood batch is in flight
    honest = alert(ME, 9_999, created=NOW + 2)
    beside = [a for a in mesh.handle(Authored(honest), NOW + 2) if isinstance(a, Push) and a.peer == other]
    assert [[i.id for i in a.items] for a in beside] == [[honest.id]], "the honest alert waits behind the flood"
    after = mesh.handle(PushResult(other, first[0].batch_id, ok=True), NOW + 3)
    nxt = [a for a in after if isinstance(a, Push) and a.peer == other]
    assert nxt and honest.id not in {i.id for i in nxt[0].items}  # in flight beside it: not sent twice
    mesh.handle(PushResult(other, beside[0].batch_id, ok=True), NOW + 4)
    rest = []
    for step in range(10):
        rest += [i.id for i in nxt[0].items]
        more = mesh.handle(PushResult(other, nxt[0].batch_id, ok=True), NOW + 5 + step)
        nxt = [a for a in more if isinstance(a, Push) and a.peer == other]
        if not nxt:
            break
    assert rest == [i.id for i in flood[64:]]  # the flood, in order, once


def test_a_receipt_never_jumps_the_queue() -> None:
    """Receipts are bookkeeping: a quiet author's receipt waits its turn in the
    log behind the flood, while its alert would jump it (the test above)."""
    other = key("other")
    mesh = node(Limits(peer_burst=10_000), peers=(PEER, other))
    mesh.handle(Tick(), NOW)
    pushed = mesh.handle(Received(PEER, [alert(ALLY, n) for n in range(300)]), NOW + 1)
    first = [a for a in pushed if isinstance(a, Push) and a.peer == other]
    receipt = dataclasses.replace(alert(ME, 9_999, created=NOW + 2), kind="receipt")
    mesh.handle(Authored(receipt), NOW + 2)
    after = mesh.handle(PushResult(other, first[0].batch_id, ok=True), NOW + 3)
    nxt = [a for a in after if isinstance(a, Push) and a.peer == other]
    assert nxt and receipt.id not in {i.id for i in nxt[0].items}


def test_a_new_item_whose_write_failed_is_never_pushed_and_its_links_do_not_stall() -> None:
    """The nemesis's full disk (seed 15015): a node's own alert refused with 503
    ("nothing was saved or sent") reached its peers anyway, as a queue-jumper
    requeued when its never-sent batch timed out, and that link pushed nothing
    for the push timeout (60 s). Now the batch the node never sent is taken back
    at once (`PushUnsent`) and the forgotten item dropped from every queue."""
    mesh = node(Limits())
    refused = alert(ME, 1, created=NOW + 1)
    pushes = [a for a in mesh.handle(Authored(refused), NOW + 1) if isinstance(a, Push)]
    assert [i.id for p in pushes for i in p.items] == [refused.id]  # made in the same turn as Store
    mesh.handle(NotStored([refused.id]), NOW + 1)
    mesh.handle(PushUnsent(PEER, pushes[0].batch_id), NOW + 1)
    later = alert(ME, 2, created=NOW + 2)
    again = [a for a in mesh.handle(Authored(later), NOW + 2) if isinstance(a, Push)]
    assert [i.id for p in again for i in p.items] == [later.id]  # at once, and without the refused one
    mesh.handle(PushResult(PEER, again[0].batch_id, ok=True), NOW + 3)
    assert not [a for a in mesh.handle(Tick(), NOW + 120_000) if isinstance(a, Push)]


# -- ranges fetched whole (FetchRange) -------------------------------------------------------

EVERYTHING = ((NOW - 1, b""), (2**64 - 1, b""))  # a range after the node's own records


def test_ranges_we_hold_nothing_in_are_fetched_by_range_on_the_catch_up_budget() -> None:
    """A returning node's backlog named as a range draws on catch-up budgets like one
    named by ids, up to the count asked for; after that it is a push like any other."""
    limits = Limits(author_burst=1, author_rate_per_s=0.001, catch_up_peer_burst=5, catch_up_peer_rate_per_s=0.001)
    mesh = node(limits)
    actions = mesh.handle(ReconcileDone(PEER, have=[], need=[], ranges=[EVERYTHING]), NOW)
    assert [a for a in actions if isinstance(a, FetchRange | Fetch)] == [FetchRange(PEER, (EVERYTHING,), 5)]
    backlog = [alert(ALLY, n, created=NOW + n) for n in range(8)]
    fetched = mesh.handle(Received(PEER, backlog), NOW + 10)
    # Five asked for (the catch-up allowance), on the catch-up budget; then the live one: 1.
    assert reasons(fetched) == ["author-rate-limited"] * 2
    assert sum(item.id in mesh for item in backlog) == 6
    # Outside the range (or from another peer) is never solicited.
    mesh2 = node(limits, peers=(PEER, ALLY))
    mesh2.handle(ReconcileDone(PEER, have=[], need=[], ranges=[((NOW + 100, b""), (NOW + 200, b""))]), NOW)
    assert reasons(mesh2.handle(Received(PEER, [alert(ALLY, n, created=NOW + n) for n in range(3)]), NOW)) == [
        "author-rate-limited"
    ] * 2


def test_one_range_fetch_at_a_time_and_what_it_leaves_comes_next_session() -> None:
    mesh = node(Limits())
    first = mesh.handle(ReconcileDone(PEER, have=[], need=[], ranges=[EVERYTHING]), NOW)
    (fetch,) = [a for a in first if isinstance(a, FetchRange)]
    # A session ending while it is under way: no second range fetch, the next session soon.
    again = mesh.handle(ReconcileDone(PEER, have=[], need=[], ranges=[EVERYTHING]), NOW + 1_000)
    assert not [a for a in again if isinstance(a, FetchRange)]
    # Cut short (a budget deferred part of a page, the limit, a failed call): soon again.
    mesh.handle(Received(PEER, [alert(ALLY, 1, created=NOW + 1)]), NOW + 1_500)
    mesh.handle(FetchRangeDone(PEER, fetch.ranges, got=1, complete=False), NOW + 2_000)
    wake = mesh.wakeup_at()
    assert wake is not None and wake <= NOW + 2_000 + Timing().catch_up_again_ms
    assert StartReconcile(PEER) in mesh.handle(Tick(), wake)
    later = mesh.handle(ReconcileDone(PEER, have=[], need=[], ranges=[EVERYTHING]), wake)
    assert [a for a in later if isinstance(a, FetchRange)]


def test_a_range_fetch_at_its_limit_goes_on_as_the_budget_refills_without_a_new_session() -> None:
    """The catch-up budget stops a range fetch at its limit, not the peer: the rest
    of the ranges is fetched from where it stopped with what the budget refilled
    meanwhile, at once, instead of after `catch_up_again_ms` and a new session
    (at 10,000 alerts that pause was a third of the catch-up, quiet machine).
    The budget paces it exactly as before: never more than its allowance."""
    rate = 1_000
    limits = Limits(catch_up_peer_burst=500, catch_up_peer_rate_per_s=rate, author_burst=1, author_rate_per_s=0.001)
    mesh = node(limits)
    early, later = ((NOW - 1, b""), (NOW + 1_500, b"")), ((NOW + 2_000, b""), (2**64 - 1, b""))
    first = [a for a in mesh.handle(ReconcileDone(PEER, have=[], need=[], ranges=[early, later]), NOW) if isinstance(a, FetchRange)]
    assert [a.limit for a in first] == [500]
    backlog = [alert(ALLY, n, created=NOW + n) for n in range(1_000)]
    assert reasons(mesh.handle(Received(PEER, backlog[:500]), NOW + 10)) == []  # the budget is spent
    resume = (backlog[500].created, backlog[500].id[:1])
    done = mesh.handle(FetchRangeDone(PEER, first[0].ranges, got=500, complete=False, resume=resume), NOW + 410)
    # 400 ms at 1,000/s: 400 more allowed, from where it stopped (and only from there on).
    assert [a for a in done if isinstance(a, FetchRange)] == [FetchRange(PEER, ((resume, early[1]), later), 400)]
    assert StartReconcile(PEER) not in mesh.handle(Tick(), NOW + 410 + Timing().catch_up_again_ms)
    assert reasons(mesh.handle(Received(PEER, backlog[500:900]), NOW + 450)) == []  # 40 left
    # At its limit again with 100 refilled (< RANGE_CONTINUE_MIN): the next session
    # comes when the budget holds RANGE_CONTINUE_MIN, not after catch_up_again_ms.
    (cont,) = [a for a in done if isinstance(a, FetchRange)]
    resume = (backlog[900].created, b"")
    assert not mesh.handle(FetchRangeDone(PEER, cont.ranges, got=400, complete=False, resume=resume), NOW + 510)
    due = NOW + 510 + (RANGE_CONTINUE_MIN - 100) * 1_000 // rate + 1
    wake = mesh.wakeup_at()
    assert wake is not None and wake <= due
    assert mesh.reconcile_at() == due  # what a flooding node wakes for between its ticks
    assert StartReconcile(PEER) not in mesh.handle(Tick(), due - 2)
    assert StartReconcile(PEER) in mesh.handle(Tick(), due)
    # Beyond what was allowed, the live budget (burst 1): nothing was given away.
    assert reasons(mesh.handle(Received(PEER, backlog[900:903]), due)) == ["author-rate-limited"] * 2


def test_a_range_fetch_cut_short_by_a_deferral_or_a_failure_waits_for_the_next_session() -> None:
    """Only a fetch that stopped at its limit goes on by itself; one stopped by a
    deferral or a failed call (no `resume`) is found again by the next session, soon."""
    mesh = node(Limits(catch_up_peer_burst=500))
    (fetch,) = [a for a in mesh.handle(ReconcileDone(PEER, have=[], need=[], ranges=[EVERYTHING]), NOW) if isinstance(a, FetchRange)]
    mesh.handle(Received(PEER, [alert(ALLY, n, created=NOW + n) for n in range(10)]), NOW + 10)
    assert not mesh.handle(FetchRangeDone(PEER, fetch.ranges, got=10, complete=False), NOW + 20)
    wake = mesh.wakeup_at()
    assert wake is not None and wake == NOW + 20 + Timing().catch_up_again_ms


def test_a_complete_range_fetch_waits_for_the_regular_session() -> None:
    mesh = node(Limits())
    (fetch,) = [
        a for a in mesh.handle(ReconcileDone(PEER, have=[], need=[], ranges=[EVERYTHING]), NOW) if isinstance(a, FetchRange)
    ]
    mesh.handle(Received(PEER, [alert(ALLY, 1, created=NOW + 1)]), NOW + 10)
    mesh.handle(FetchRangeDone(PEER, fetch.ranges, got=1, complete=True), NOW + 20)
    wake = mesh.wakeup_at()
    assert wake is not None and wake >= NOW + Timing().reconcile_every_ms // 2


def test_a_peer_whose_range_fetches_bring_nothing_waits_for_the_regular_session() -> None:
    """As with ids: its fingerprints say it holds what it never hands over."""
    mesh = node(Limits())
    at = NOW
    for attempt in range(3):
        (fetch,) = [
            a for a in mesh.handle(ReconcileDone(PEER, have=[], need=[], ranges=[EVERYTHING]), at) if isinstance(a, FetchRange)
        ]
        mesh.handle(FetchRangeDone(PEER, fetch.ranges, got=0, complete=True), at + 10)
        soon = StartReconcile(PEER) in mesh.handle(Tick(), at + 10 + Timing().catch_up_again_ms)
        assert soon == (attempt < 2)
        at += 10_000


def test_a_range_fetch_is_forgotten_when_its_peer_goes_down_or_it_times_out() -> None:
    mesh = node(Limits(catch_up_peer_burst=50))
    mesh.handle(ReconcileDone(PEER, have=[], need=[], ranges=[EVERYTHING]), NOW)
    mesh.handle(PeerDown(PEER), NOW + 1)
    mesh.handle(PeerUp(PEER), NOW + 2)
    again = mesh.handle(ReconcileDone(PEER, have=[], need=[], ranges=[EVERYTHING]), NOW + 3)
    assert [a.limit for a in again if isinstance(a, FetchRange)] == [50]  # nothing held back for the lost one
    mesh.handle(Tick(), NOW + 3 + Timing().fetch_timeout_ms)
    late = mesh.handle(ReconcileDone(PEER, have=[], need=[], ranges=[EVERYTHING]), NOW + 4 + Timing().fetch_timeout_ms)
    assert [a for a in late if isinstance(a, FetchRange)]


def test_keys_refused_until_trust_changes_are_kept_for_reconciliation_and_dropped_when_it_does() -> None:
    """`refused_keys` lets a range holding only refused items go unfetched; a vouch
    that brings their author into the horizon makes them welcome again."""
    mesh = node(Limits())
    stranger = key("stranger")
    outside = [alert(stranger, n, created=NOW + n) for n in range(3)]
    assert reasons(mesh.handle(Received(PEER, outside), NOW)) == ["outside-horizon"] * 3
    assert sorted(mesh.refused_keys()) == sorted(i.key for i in outside)
    mesh.handle(Received(PEER, [vouch(ALLY, stranger)]), NOW + 10)
    assert len(mesh.refused_keys()) == 0
    mesh.handle(Received(PEER, outside), NOW + 20)
    assert all(i.id in mesh for i in outside)


def test_items_refused_for_the_horizon_are_fetched_soon_once_a_later_batch_widens_it() -> None:
    """A returning node fetches by range and by id at once: a new author's alerts
    can arrive before the vouch that brings it in. They are not left for the
    regular session (minutes): the vouch's arrival starts the next one soon."""
    mesh = node(Limits())
    stranger = key("stranger")
    early = [alert(stranger, n, created=NOW + n) for n in range(2)]
    assert reasons(mesh.handle(Received(PEER, early), NOW)) == ["outside-horizon"] * 2
    mesh.handle(ReconcileDone(PEER, have=[], need=[]), NOW)  # a session over: the next is minutes away
    quiet = mesh.wakeup_at()
    assert quiet is not None and quiet > NOW + 60_000
    mesh.handle(Received(PEER, [vouch(ALLY, stranger, created=NOW)]), NOW + 100)
    wake = mesh.wakeup_at()
    assert wake is not None and wake <= NOW + 100 + Timing().catch_up_again_ms
    assert StartReconcile(PEER) in mesh.handle(Tick(), wake)
    done = mesh.handle(ReconcileDone(PEER, have=[], need=[i.id for i in early]), wake)
    assert [i for a in done if isinstance(a, Fetch) for i in a.ids] == [i.id for i in early]
