"""MeshNode end to end, one event at a time: admission, eager push, marks, protection."""

from __future__ import annotations

from collections.abc import Sequence

from mesh import (
    Authored,
    Deliver,
    Disconnect,
    Fetch,
    Item,
    Limits,
    MeshNode,
    Pacing,
    PeerDown,
    PeerInvalid,
    PeerUp,
    Push,
    PushResult,
    Received,
    ReconcileDone,
    Rejected,
    SaveMark,
    Standing,
    StartReconcile,
    Store,
    Tick,
)
from mesh.events import Action, PeerAdded

from .builders import HOUR_MS, NOW, alert, key, pushed_to, receipt, revoke, rng, vouch

ME, ALLY, ALLY2, STRANGER = key("me"), key("ally"), key("ally2"), key("stranger")
P1, P2, P3 = key("p1"), key("p2"), key("p3")
TRUST = [(vouch(ME, ALLY), 1), (vouch(ME, ALLY2), 2)]


def node(peers: Sequence[bytes] = (P1, P2, P3), **kwargs: object) -> MeshNode:
    """A node whose peers already hold its own vouches (marks at 2) and are up."""
    kwargs.setdefault("stored", TRUST)
    kwargs.setdefault("marks", dict.fromkeys(peers, 2))
    mesh = MeshNode(ME, random=rng(), now=NOW, peers=peers, **kwargs)  # type: ignore[arg-type]
    for peer in peers:
        mesh.handle(PeerUp(peer), NOW)
    return mesh


def stored(actions: list[Action]) -> list[Item]:
    return [a.item for a in actions if isinstance(a, Store)]


def rejected(actions: list[Action]) -> list[str]:
    return [a.reason for a in actions if isinstance(a, Rejected)]


def ack_all(mesh: MeshNode, actions: list[Action], now: int = NOW) -> list[Action]:
    out: list[Action] = []
    for action in actions:
        if isinstance(action, Push):
            out += mesh.handle(PushResult(action.peer, action.batch_id, True), now)
    return out


def test_peer_up_starts_a_reconciliation() -> None:
    mesh = MeshNode(ME, random=rng(), now=NOW, peers=[P1], stored=TRUST)
    assert StartReconcile(P1) in mesh.handle(PeerUp(P1), NOW)


def test_received_item_is_stored_delivered_once_and_pushed_to_all_but_its_sender() -> None:
    mesh = node()
    item = alert(ALLY)
    actions = mesh.handle(Received(P1, [item]), NOW)
    assert stored(actions) == [item]
    assert Deliver(item) in actions
    assert pushed_to(actions) == {P2: [item.id], P3: [item.id]}
    again = mesh.handle(Received(P2, [item]), NOW + 1)
    assert stored(again) == [] and not any(isinstance(a, Deliver) for a in again)
    assert rejected(again) == ["duplicate"]


def test_authored_item_goes_to_every_peer() -> None:
    mesh = node()
    item = alert(ME)
    actions = mesh.handle(Authored(item), NOW)
    assert [s.seq for s in actions if isinstance(s, Store)] == [3]
    assert pushed_to(actions) == {P1: [item.id], P2: [item.id], P3: [item.id]}


def test_expired_items_are_not_stored() -> None:
    mesh = node()
    old = alert(ALLY, created=NOW - 2 * HOUR_MS, expires=NOW - 1)
    actions = mesh.handle(Received(P1, [old]), NOW)
    assert stored(actions) == [] and rejected(actions) == ["expired"]
    assert pushed_to(actions) == {}


def test_outside_horizon_is_rejected_and_not_relayed() -> None:
    mesh = node()
    far = key("far")
    actions = mesh.handle(Received(P1, [vouch(ALLY, ALLY2 + b""), alert(STRANGER), alert(far)]), NOW)
    assert rejected(actions) == ["outside-horizon", "outside-horizon"]
    assert alert(STRANGER).id not in mesh and alert(far).id not in mesh
    assert all(alert(STRANGER).id not in ids for ids in pushed_to(actions).values())


def test_depth_two_author_is_accepted_when_the_vouch_comes_in_the_same_batch() -> None:
    mesh = node()
    ally_of_ally = key("ally-of-ally")
    batch = [alert(ally_of_ally), vouch(ALLY, ally_of_ally)]  # alert first: order must not matter
    actions = mesh.handle(Received(P1, batch), NOW)
    assert {i.id for i in stored(actions)} == {i.id for i in batch}
    depth3 = key("depth3")
    later = mesh.handle(Received(P1, [vouch(ally_of_ally, depth3), alert(depth3)]), NOW)
    assert rejected(later) == ["outside-horizon"]


def test_revocation_takes_effect_on_arrival_and_is_relayed_first() -> None:
    mesh = node()
    actions = mesh.handle(Received(P1, [revoke(ME, ALLY, created=NOW + 1)]), NOW)
    assert rejected(actions) == []  # my own revoke, relayed back to me: accepted
    assert rejected(mesh.handle(Received(P1, [alert(ALLY, 5)]), NOW)) == ["outside-horizon"]


def test_self_declared_compromise_is_accepted_from_anyone_and_kills_the_key() -> None:
    mesh = node()
    declaration = revoke(STRANGER, STRANGER, created=NOW, compromised=True)
    actions = mesh.handle(Received(P1, [declaration]), NOW)
    assert stored(actions) == [declaration]
    assert set(pushed_to(actions)) == {P2, P3}
    ally_dead = revoke(ALLY, ALLY, created=NOW, compromised=True)
    mesh.handle(Received(P1, [ally_dead]), NOW)
    later = mesh.handle(Received(P2, [alert(ALLY, 9), vouch(ME, ALLY, created=NOW + 10)]), NOW)
    assert rejected(later) == ["compromised-author"]  # the alert; my newer vouch is stored but void
    assert not mesh.trust.in_horizon(ALLY)


def test_restart_keeps_the_seen_set_and_the_marks() -> None:
    mesh = node()
    first = alert(ALLY, 1)
    actions = mesh.handle(Received(P1, [first]), NOW)
    marks = {a.peer: a.seq for a in ack_all(mesh, actions) if isinstance(a, SaveMark)}
    assert marks == {P2: 3, P3: 3}
    second = alert(ALLY, 2)
    actions = mesh.handle(Received(P1, [second]), NOW)  # pushed, never acknowledged: then a crash
    disk = [*TRUST, (first, 3), (second, 4)]
    restarted = MeshNode(ME, random=rng(), now=NOW, peers=[P1, P2, P3], stored=disk, marks={**marks, P1: 4})
    assert rejected(restarted.handle(Received(P3, [first]), NOW)) == ["duplicate"]
    resent: list[Action] = []
    for peer in (P1, P2, P3):
        resent += restarted.handle(PeerUp(peer), NOW + 1)
    # Exactly what is past each peer's mark goes out again; nothing for P1, whose mark covers it.
    assert pushed_to(resent) == {P2: [second.id], P3: [second.id]}


def test_new_peer_starts_at_the_current_mark_and_catches_up_by_reconciliation() -> None:
    mesh = node(peers=[P1])
    mesh.handle(Received(P1, [alert(ALLY, 1)]), NOW)
    newcomer = key("newcomer")
    actions = mesh.handle(PeerAdded(newcomer), NOW)
    assert SaveMark(newcomer, 3) in actions
    up = mesh.handle(PeerUp(newcomer), NOW)
    assert StartReconcile(newcomer) in up and pushed_to(up) == {}


def test_reconcile_result_fetches_missing_and_pushes_what_the_peer_lacks() -> None:
    mesh = node()
    ours = alert(ALLY, 1)
    ack_all(mesh, mesh.handle(Received(P2, [ours]), NOW))
    stranger_alert = alert(STRANGER)
    mesh.handle(Received(P1, [stranger_alert]), NOW)  # refused: remembered
    wanted = alert(ALLY, 2).id
    actions = mesh.handle(ReconcileDone(P1, have=[ours.id], need=[wanted, stranger_alert.id, ours.id]), NOW)
    assert [a for a in actions if isinstance(a, Fetch)] == [Fetch(P1, (wanted,))]
    assert pushed_to(actions) == {P1: [ours.id]}
    fetched = mesh.handle(Received(P1, [alert(ALLY, 2)]), NOW)
    assert [i.id for i in stored(fetched)] == [wanted]


def test_periodic_reconciliation_and_retries_are_driven_by_tick() -> None:
    mesh = node(peers=[P1])
    actions = mesh.handle(Authored(alert(ME)), NOW)
    (push,) = [a for a in actions if isinstance(a, Push)]
    mesh.handle(PushResult(P1, push.batch_id, False), NOW)
    assert pushed_to(mesh.handle(Tick(), NOW + 100)) == {}
    wake = mesh.wakeup_at()
    assert wake is not None and NOW + 500 <= wake <= NOW + 1000
    assert pushed_to(mesh.handle(Tick(), wake)) == {P1: [alert(ME).id]}
    later = mesh.handle(Tick(), NOW + 10 * 60_000)
    assert StartReconcile(P1) in later


def test_peer_down_stops_pushes() -> None:
    mesh = node(peers=[P1, P2])
    mesh.handle(PeerDown(P2), NOW)
    assert set(pushed_to(mesh.handle(Authored(alert(ME)), NOW))) == {P1}


def test_invalid_data_gets_a_peer_cut_off_and_its_traffic_dropped() -> None:
    mesh = node()
    actions: list[Action] = []
    for n in range(11):
        actions += mesh.handle(PeerInvalid(P1, "bad-signature"), NOW + n)
    cut = [a for a in actions if isinstance(a, Disconnect)]
    assert len(cut) == 1 and cut[0].peer == P1 and cut[0].until > NOW
    assert mesh.standing(P1) is Standing.CUT_OFF
    after = mesh.handle(Received(P1, [alert(ALLY, 77)]), NOW + 20)
    assert rejected(after) == ["peer-cut-off"]
    assert P1 not in pushed_to(mesh.handle(Authored(alert(ME, 5)), NOW + 30))


def test_flooder_is_throttled_then_cut_off_while_honest_items_still_flow() -> None:
    limits = Limits(peer_rate_per_s=20, peer_burst=100, author_rate_per_s=20, author_burst=100)
    mesh = node(limits=limits)
    flooder, honest = P1, P2
    honest_stored = 0
    standings = []
    now = NOW
    for round_ in range(200):
        now += 100
        spam = [alert(ALLY, 10_000 + round_ * 100 + n, created=now) for n in range(100)]
        mesh.handle(Received(flooder, spam), now)
        standings.append(mesh.standing(flooder))
        good = alert(ALLY2, round_, created=now)
        honest_stored += len(stored(mesh.handle(Received(honest, [good]), now)))
    assert Standing.THROTTLED in standings
    assert standings[-1] is Standing.CUT_OFF
    assert standings.index(Standing.THROTTLED) < standings.index(Standing.CUT_OFF)
    assert honest_stored == 200
    assert mesh.standing(honest) is Standing.GOOD


def test_a_relayed_receipt_waits_for_company_then_goes_on_the_mesh_wake_up() -> None:
    mesh = node(pacing=Pacing(linger_ms=500))
    first = receipt(ALLY, 1)
    actions = mesh.handle(Received(P1, [first]), NOW)
    assert stored(actions) == [first] and pushed_to(actions) == {}
    assert mesh.linger_at() == NOW + 500 and mesh.wakeup_at() == NOW + 500
    second = receipt(ALLY2, 2)
    assert pushed_to(mesh.handle(Received(P1, [second]), NOW + 100)) == {}
    due = mesh.handle(Tick(), NOW + 500)
    assert pushed_to(due) == {P2: [first.id, second.id], P3: [first.id, second.id]}
    assert mesh.linger_at() is None


def test_an_alert_does_not_wait_and_takes_the_waiting_receipts_along() -> None:
    mesh = node(pacing=Pacing(linger_ms=500))
    waiting = receipt(ALLY, 1)
    mesh.handle(Received(P1, [waiting]), NOW)
    item = alert(ALLY, 2)  # a quiet author's: it jumps every queue (flooding), the receipt rides behind
    actions = mesh.handle(Received(P1, [item]), NOW + 10)
    assert pushed_to(actions) == {P2: [item.id, waiting.id], P3: [item.id, waiting.id]}
    assert pushed_to(ack_all(mesh, actions, NOW + 20)) == {} and mesh.linger_at() is None
