"""Tree push (`mesh.tree`) through `MeshNode` events: prune, announce, graft, and what stays eager."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from mesh import (
    Announce,
    Announced,
    Fetch,
    Graft,
    Grafted,
    MeshNode,
    PeerUp,
    Prune,
    Pruned,
    Push,
    PushResult,
    Received,
    ReconcileDone,
    Tick,
    Timing,
)
from mesh.events import Action
from mesh.tree import Mode

from .builders import NOW, alert, key, pushed_to, revoke, rng, vouch

ME, ALLY = key("me"), key("ally")
P1, P2, P3 = key("p1"), key("p2"), key("p3")
TRUST = [(vouch(ME, ALLY), 1)]
TREE = Timing(tree_push=True)


def node(timing: Timing = TREE, peers: Sequence[bytes] = (P1, P2, P3)) -> MeshNode:
    mesh = MeshNode(ME, random=rng(), now=NOW, peers=peers, stored=TRUST, marks=dict.fromkeys(peers, 1), timing=timing)
    for peer in peers:
        mesh.handle(PeerUp(peer), NOW)
    return mesh


def feed(mesh: MeshNode, event: object, now: int = NOW) -> list[Action]:
    """Handle ``event`` and acknowledge every push it makes, so outboxes stay free."""
    actions = mesh.handle(event, now)  # type: ignore[arg-type]
    for action in list(actions):
        if isinstance(action, Push):
            actions += mesh.handle(PushResult(action.peer, action.batch_id, True), now)
    return actions


def of(kind: type, actions: list[Action]) -> list[Action]:
    return [a for a in actions if isinstance(a, kind)]


def test_every_link_starts_eager_so_the_first_item_floods() -> None:
    mesh = node()
    first = alert(ALLY, 1)
    assert pushed_to(feed(mesh, Received(P1, [first]))) == {P2: [first.id], P3: [first.id]}
    assert all(mesh.tree.mode(p) is Mode.EAGER for p in (P1, P2, P3))


def test_a_pushed_duplicate_prunes_its_link_and_later_items_cross_it_as_announcements() -> None:
    mesh = node()
    first, second = alert(ALLY, 1), alert(ALLY, 2)
    feed(mesh, Received(P1, [first]))
    again = feed(mesh, Received(P2, [first]), NOW + 5)
    assert of(Prune, again) == [Prune(P2)]
    assert mesh.tree.mode(P2) is Mode.LAZY and mesh.tree.mode(P1) is Mode.EAGER
    later = feed(mesh, Received(P1, [second]), NOW + 10)
    assert pushed_to(later) == {P3: [second.id]}  # not to P2 any more, and never back to P1
    assert of(Announce, later) == []  # batched: not yet
    due = NOW + 10 + TREE.announce_delay_ms
    assert mesh.wakeup_at() == due
    assert of(Announce, feed(mesh, Tick(), due)) == [Announce(P2, (second.id,))]


def test_a_resend_by_the_first_sender_or_a_fetched_duplicate_prunes_nothing() -> None:
    mesh = node()
    first, wanted = alert(ALLY, 1), alert(ALLY, 2)
    feed(mesh, Received(P1, [first]))
    assert of(Prune, feed(mesh, Received(P1, [first]), NOW + 1)) == []  # its reply to P1 was lost
    assert Fetch(P2, (wanted.id,)) in feed(mesh, ReconcileDone(P2, have=[], need=[wanted.id]), NOW + 2)
    feed(mesh, Received(P1, [wanted]), NOW + 3)  # the tree brought it first
    assert of(Prune, feed(mesh, Received(P2, [wanted]), NOW + 4)) == []  # we asked P2 for it
    assert mesh.tree.mode(P2) is Mode.EAGER


def test_revocations_go_in_full_to_every_peer_and_their_duplicates_prune_nothing() -> None:
    mesh = node()
    feed(mesh, Pruned(P2))
    feed(mesh, Pruned(P3))
    revocation = revoke(ME, key("gone"), created=NOW + 1)
    declaration = revoke(key("stolen"), key("stolen"), created=NOW + 2, compromised=True)
    actions = feed(mesh, Received(P1, [revocation, declaration]), NOW + 5)
    both = {revocation.id, declaration.id}
    assert {peer: set(ids) for peer, ids in pushed_to(actions).items()} == {P2: both, P3: both}
    assert of(Announce, feed(mesh, Tick(), NOW + 5_000)) == []
    assert of(Prune, feed(mesh, Received(P3, [revocation, declaration]), NOW + 6)) == []


def test_announcements_are_batched_per_peer_and_a_full_batch_goes_at_once() -> None:
    mesh = node(replace(TREE, announce_ids=3))
    feed(mesh, Pruned(P2))
    items = [alert(ALLY, n) for n in range(5)]
    quiet: list[Action] = []
    for n, item in enumerate(items[:2]):
        quiet += feed(mesh, Received(P1, [item]), NOW + n)
    assert of(Announce, quiet) == []
    full = feed(mesh, Received(P1, [items[2]]), NOW + 2)
    assert of(Announce, full) == [Announce(P2, tuple(i.id for i in items[:3]))]
    feed(mesh, Received(P1, [items[3]]), NOW + 3)
    feed(mesh, Received(P1, [items[4]]), NOW + 4)
    rest = feed(mesh, Tick(), NOW + 3 + TREE.announce_delay_ms)
    assert of(Announce, rest) == [Announce(P2, (items[3].id, items[4].id))]


def test_an_id_the_peer_announced_to_us_is_not_announced_back() -> None:
    mesh = node()
    feed(mesh, Pruned(P2))
    item = alert(ALLY, 1)
    feed(mesh, Announced(P2, [item.id]))
    feed(mesh, Received(P1, [item]), NOW + 10)
    assert of(Announce, feed(mesh, Tick(), NOW + 10_000)) == []


def test_an_announced_id_that_does_not_come_is_fetched_from_the_announcer_and_grafts_its_link() -> None:
    mesh = node()
    feed(mesh, Pruned(P2))
    feed(mesh, Pruned(P3))
    missing = alert(ALLY, 1)
    assert feed(mesh, Announced(P2, [missing.id])) == []
    feed(mesh, Announced(P3, [missing.id]), NOW + 20)
    deadline = NOW + TREE.graft_timeout_ms
    assert mesh.wakeup_at() == deadline
    assert of(Fetch, feed(mesh, Tick(), deadline - 1)) == []
    repair = feed(mesh, Tick(), deadline)
    assert of(Graft, repair) == [Graft(P2)] and of(Fetch, repair) == [Fetch(P2, (missing.id,))]
    assert mesh.tree.mode(P2) is Mode.EAGER
    # P2 did not answer in time: the next announcer is asked.
    retry = feed(mesh, Tick(), deadline + TREE.graft_retry_ms)
    assert of(Graft, retry) == [Graft(P3)] and of(Fetch, retry) == [Fetch(P3, (missing.id,))]
    arrived = feed(mesh, Received(P3, [missing]), deadline + TREE.graft_retry_ms + 50)
    assert missing.id in mesh and of(Prune, arrived) == []
    assert mesh.tree.missing() == []
    # On along the eager links (P1 never pruned, P2 grafted), never back to P3.
    assert pushed_to(arrived) == {P1: [missing.id], P2: [missing.id]}


def test_an_announced_id_the_tree_brings_in_time_is_not_fetched() -> None:
    mesh = node()
    feed(mesh, Pruned(P2))
    item = alert(ALLY, 1)
    feed(mesh, Announced(P2, [item.id]))
    feed(mesh, Received(P1, [item]), NOW + 100)
    later = feed(mesh, Tick(), NOW + 10 * TREE.graft_timeout_ms)
    assert of(Fetch, later) == [] and of(Graft, later) == []
    assert mesh.tree.mode(P2) is Mode.LAZY


def test_pruned_and_grafted_by_the_peer() -> None:
    mesh = node()
    feed(mesh, Pruned(P2))
    one, two = alert(ALLY, 1), alert(ALLY, 2)
    assert P2 not in pushed_to(feed(mesh, Received(P1, [one]), NOW + 1))
    feed(mesh, Grafted(P2), NOW + 2)
    assert P2 in pushed_to(feed(mesh, Received(P1, [two]), NOW + 3))


def test_flooding_is_the_default_and_never_prunes() -> None:
    mesh = node(Timing())
    first = alert(ALLY, 1)
    feed(mesh, Received(P1, [first]))
    assert of(Prune, feed(mesh, Received(P2, [first]), NOW + 1)) == []
    later = alert(ALLY, 2)
    assert pushed_to(feed(mesh, Received(P1, [later]), NOW + 2)) == {P2: [later.id], P3: [later.id]}
    assert of(Announce, feed(mesh, Tick(), NOW + 10_000)) == []


def test_a_flooding_node_also_fetches_what_a_tree_peer_announced_and_did_not_bring() -> None:
    mesh = node(Timing())
    item = alert(ALLY, 1)
    feed(mesh, Announced(P2, [item.id]))
    repair = feed(mesh, Tick(), NOW + Timing().graft_timeout_ms)
    assert of(Graft, repair) == [Graft(P2)] and of(Fetch, repair) == [Fetch(P2, (item.id,))]
