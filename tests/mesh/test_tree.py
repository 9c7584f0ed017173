"""Tree push (`mesh.tree`) through `MeshNode` events: prune, announce, graft, and what stays eager."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from mesh import (
    Announce,
    Announced,
    Authored,
    Fetch,
    Graft,
    Grafted,
    MeshNode,
    PeerDown,
    PeerUp,
    Prune,
    Pruned,
    Push,
    PushResult,
    Received,
    ReconcileDone,
    SignalFailed,
    Tick,
    Timing,
)
from mesh.events import Action
from mesh.tree import SIGNAL_RETRIES, SIGNAL_ROOTS, Mode
from protocol.framing import MAX_SIGNAL_ROOTS

from .builders import NOW, alert, key, pushed_to, revoke, rng, vouch

ME, ALLY = key("me"), key("ally")
P1, P2, P3 = key("p1"), key("p2"), key("p3")
TRUST = [(vouch(ME, ALLY), 1)]
TREE = Timing(tree_push=True, graft_jitter_ms=0)  # exact repair times; jitter has its own test


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
    assert of(Prune, again) == [Prune(P2, (ALLY,))]
    assert mesh.tree.mode(P2, ALLY) is Mode.LAZY and mesh.tree.mode(P1, ALLY) is Mode.EAGER
    later = feed(mesh, Received(P1, [second]), NOW + 10)
    assert pushed_to(later) == {P3: [second.id]}  # not to P2 any more, and never back to P1
    assert of(Announce, later) == []  # batched: not yet
    due = NOW + 10 + TREE.announce_delay_ms
    assert mesh.wakeup_at() == due
    assert of(Announce, feed(mesh, Tick(), due)) == [Announce(P2, (second.id,))]


def test_each_author_has_its_own_tree() -> None:
    """A duplicate prunes the link from its author's tree only: another author's
    first item floods, and its own duplicates shape its own tree."""
    other = key("other")
    mesh = MeshNode(
        ME, random=rng(), now=NOW, peers=(P1, P2, P3), stored=[*TRUST, (vouch(ME, other), 2)],
        marks=dict.fromkeys((P1, P2, P3), 2), timing=TREE,
    )  # fmt: skip
    for peer in (P1, P2, P3):
        mesh.handle(PeerUp(peer), NOW)
    feed(mesh, Received(P1, [alert(ALLY, 1)]))
    feed(mesh, Received(P2, [alert(ALLY, 1)]), NOW + 1)  # P2 is out of ALLY's tree
    theirs = alert(other, 2)
    assert pushed_to(feed(mesh, Received(P3, [theirs]), NOW + 2)) == {P1: [theirs.id], P2: [theirs.id]}
    assert of(Prune, feed(mesh, Received(P1, [theirs]), NOW + 3)) == [Prune(P1, (other,))]
    assert mesh.tree.mode(P1, other) is Mode.LAZY and mesh.tree.mode(P1, ALLY) is Mode.EAGER
    assert mesh.tree.mode(P2, other) is Mode.EAGER and mesh.tree.mode(P2, ALLY) is Mode.LAZY
    mine = alert(ALLY, 3)
    assert pushed_to(feed(mesh, Received(P1, [mine]), NOW + 4)) == {P3: [mine.id]}


def test_a_prune_or_graft_naming_no_author_moves_every_tree_of_the_link() -> None:
    """What a node before per-author trees sends."""
    mesh = node()
    feed(mesh, Received(P1, [alert(ALLY, 1)]))
    feed(mesh, Received(P2, [alert(ALLY, 1)]), NOW + 1)
    feed(mesh, Grafted(P2), NOW + 2)
    assert mesh.tree.mode(P2, ALLY) is Mode.EAGER and mesh.tree.mode(P2) is Mode.EAGER
    feed(mesh, Pruned(P3), NOW + 3)
    assert mesh.tree.mode(P3, ALLY) is Mode.LAZY and mesh.tree.mode(P3, key("anyone")) is Mode.LAZY


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


def test_receipts_cross_tree_links_only_and_are_never_announced() -> None:
    """Every node sends receipts: announced, they multiplied the ids on every lazy
    link, and a late one started a repair and a graft like a late alert (between
    real nodes with 40 ms links, a storm of grafts). A lost one comes by reconciliation."""
    mesh = node()
    feed(mesh, Pruned(P2))
    receipt = replace(alert(ALLY, 7), kind="receipt")
    item = alert(ALLY, 8)
    actions = feed(mesh, Received(P1, [receipt]), NOW + 1)
    actions += feed(mesh, Received(P1, [item]), NOW + 2)
    assert pushed_to(actions) == {P3: [receipt.id, item.id]}  # the tree's eager link
    later = feed(mesh, Tick(), NOW + 2 + TREE.announce_delay_ms)
    assert of(Announce, later) == [Announce(P2, (item.id,))]
    assert P2 not in pushed_to(later + feed(mesh, Tick(), NOW + 60_000))
    failed = mesh.handle(Received(P1, [replace(alert(ALLY, 9), kind="receipt")]), NOW + 70_000)
    for push in of(Push, failed):
        assert isinstance(push, Push)
        mesh.handle(PushResult(push.peer, push.batch_id, False), NOW + 71_000)
    assert of(Announce, feed(mesh, Tick(), NOW + 130_000)) == []  # a failed push of one: not announced


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
    assert of(Fetch, repair) == [Fetch(P2, (missing.id,))]
    assert of(Graft, repair) == []  # the item's author names the tree: grafted when it comes
    # P2 did not answer in time: the next announcer is asked (P2 was never grafted).
    retry = feed(mesh, Tick(), deadline + TREE.graft_retry_ms)
    assert of(Fetch, retry) == [Fetch(P3, (missing.id,))] and of(Graft, retry) == [] == of(Prune, retry)
    arrived = feed(mesh, Received(P3, [missing]), deadline + TREE.graft_retry_ms + 50)
    assert missing.id in mesh and of(Prune, arrived) == []
    assert of(Graft, arrived) == [Graft(P3, (ALLY,))]
    assert mesh.tree.mode(P3, ALLY) is Mode.EAGER and mesh.tree.mode(P2, ALLY) is Mode.LAZY
    assert mesh.tree.missing() == []
    # On along the eager links (P1 never pruned), never back to P3 nor to P2, which announced it.
    assert pushed_to(arrived) == {P1: [missing.id]}


def test_an_announced_id_the_tree_brings_in_time_is_not_fetched() -> None:
    mesh = node(replace(TREE, swap_after_ms=None))  # the optimisation has its own test
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


def test_an_unanswered_prune_is_sent_again_while_the_link_stays_lazy() -> None:
    """A lost prune would leave the old parent pushing every item beside the new one."""
    mesh = node()
    first = alert(ALLY, 1)
    feed(mesh, Received(P1, [first]))
    prune = Prune(P2, (ALLY,))
    failed = SignalFailed(P2, graft=False, roots=(ALLY,))
    assert of(Prune, feed(mesh, Received(P2, [first]), NOW + 5)) == [prune]
    resent = [of(Prune, feed(mesh, failed, NOW + 10 + n)) for n in range(SIGNAL_RETRIES + 1)]
    assert resent == [[prune]] * SIGNAL_RETRIES + [[]]  # a peer that never answers is down: PeerUp resets it
    assert of(Prune, feed(mesh, Received(P2, [first]), NOW + 20)) == [prune]  # a new prune: retries start over
    assert of(Prune, feed(mesh, failed, NOW + 21)) == [prune]
    feed(mesh, Grafted(P2, (ALLY,)), NOW + 22)  # eager again at our end: the old prune is void
    assert of(Prune, feed(mesh, failed, NOW + 23)) == []


def grafting_p2() -> MeshNode:
    """A node whose lazy link to P2 announced an item that did not come: it fetches
    it from P2, and grafts P2 into its author's tree when it comes."""
    mesh = node()
    feed(mesh, Pruned(P2))
    missing = alert(ALLY, 2)
    feed(mesh, Announced(P2, [missing.id]), NOW + 10)
    assert of(Fetch, feed(mesh, Tick(), NOW + 10 + TREE.graft_timeout_ms)) == [Fetch(P2, (missing.id,))]
    assert of(Graft, feed(mesh, Received(P2, [missing]), NOW + 20 + TREE.graft_timeout_ms)) == [Graft(P2, (ALLY,))]
    return mesh


def test_an_unanswered_graft_is_sent_again_while_the_link_stays_eager() -> None:
    mesh = grafting_p2()
    failed = SignalFailed(P2, graft=True, roots=(ALLY,))
    assert of(Graft, feed(mesh, failed, NOW + 4_000)) == [Graft(P2, (ALLY,))]
    feed(mesh, Pruned(P2), NOW + 4_100)  # the peer pruned it since: nothing to graft again
    assert of(Graft, feed(mesh, failed, NOW + 7_000)) == []


def test_no_signal_goes_again_to_a_peer_that_is_down() -> None:
    mesh = grafting_p2()
    feed(mesh, PeerDown(P2), NOW + 1_000)
    assert of(Graft, feed(mesh, SignalFailed(P2, graft=True, roots=(ALLY,)), NOW + 4_000)) == []


def test_a_flooding_node_sends_no_signal_again() -> None:
    mesh = node(Timing())
    assert feed(mesh, SignalFailed(P2, graft=True)) == []


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
    due = mesh.wakeup_at()
    assert due is not None and NOW + Timing().graft_timeout_ms <= due
    assert of(Fetch, feed(mesh, Tick(), due)) == [Fetch(P2, (item.id,))]
    assert of(Graft, feed(mesh, Received(P2, [item]), due + 50)) == [Graft(P2, (ALLY,))]  # push it to us again


def test_a_graft_replaces_the_tree_link_that_did_not_bring_the_item() -> None:
    """The parent's push did not come (lost, or the parent went quiet): the grafted
    link takes its place, and the repaired item is not pushed back to it."""
    mesh = node()
    feed(mesh, Pruned(P2))
    feed(mesh, Pruned(P3))
    feed(mesh, Received(P1, [alert(ALLY, 1)]))  # P1 is our tree parent
    missing = alert(ALLY, 2)
    feed(mesh, Announced(P2, [missing.id]), NOW + 10)
    repair = feed(mesh, Tick(), NOW + 10 + TREE.graft_timeout_ms)
    assert of(Fetch, repair) == [Fetch(P2, (missing.id,))]
    arrived = feed(mesh, Received(P2, [missing]), NOW + 700)
    assert of(Graft, arrived) == [Graft(P2, (ALLY,))] and of(Prune, arrived) == [Prune(P1, (ALLY,))]
    assert mesh.tree.mode(P1, ALLY) is Mode.LAZY and mesh.tree.mode(P2, ALLY) is Mode.EAGER
    assert pushed_to(arrived) == {}  # P1 most likely holds it, P2 sent it, P3 is lazy
    announced = of(Announce, feed(mesh, Tick(), NOW + 5_000))
    assert sorted(announced, key=repr) == sorted([Announce(P1, (missing.id,)), Announce(P3, (missing.id,))], key=repr)


def test_repair_timers_are_spread_so_an_orphaned_subtree_is_not_fetched_node_by_node() -> None:
    jittered = replace(TREE, graft_jitter_ms=1_000)
    deadlines = set()
    for seed in range(20):
        mesh = MeshNode(ME, random=rng(seed), now=NOW, peers=[P1], stored=TRUST, timing=jittered)
        mesh.handle(Announced(P1, [alert(ALLY, 1).id]), NOW)
        deadlines.add(mesh.wakeup_at())
    lowest = NOW + jittered.graft_timeout_ms
    assert all(lowest <= d < lowest + jittered.graft_jitter_ms for d in deadlines if d is not None)
    assert len(deadlines) > 10


def test_a_failed_push_is_announced_instead_of_pushed_again() -> None:
    """Mostly the reply was lost, or the peer got it by another path meanwhile: an id
    costs 32 bytes, and a peer that still lacks it fetches it from the announcement."""
    mesh = node()
    item = alert(ALLY, 1)
    actions = mesh.handle(Received(P1, [item]), NOW)
    for push in of(Push, actions):
        assert isinstance(push, Push)
        mesh.handle(PushResult(push.peer, push.batch_id, push.peer != P2), NOW + 3_000)
    later = feed(mesh, Tick(), NOW + 60_000)
    assert P2 not in pushed_to(later)
    announced = [a for a in of(Announce, later + feed(mesh, Tick(), NOW + 60_200)) if isinstance(a, Announce)]
    assert [(a.peer, a.ids) for a in announced] == [(P2, (item.id,))]
    assert mesh.tree.mode(P2) is Mode.EAGER  # the link stays in the tree


def test_a_failed_revocation_is_pushed_again_in_full() -> None:
    mesh = node()
    revocation = revoke(ME, key("gone"), created=NOW + 1)
    actions = mesh.handle(Received(P1, [revocation]), NOW)
    assert pushed_to(actions) == {P2: [revocation.id], P3: [revocation.id]}  # once per batch
    for push in of(Push, actions):
        assert isinstance(push, Push)
        mesh.handle(PushResult(push.peer, push.batch_id, push.peer != P2), NOW + 3_000)
    assert pushed_to(feed(mesh, Tick(), NOW + 60_000)) == {P2: [revocation.id]}


def test_an_announcement_well_ahead_of_the_tree_swaps_the_parent_for_the_announcer() -> None:
    """Plumtree's optimisation: the announcer's path is faster than the tree's."""
    mesh = node()
    feed(mesh, Pruned(P2))
    feed(mesh, Pruned(P3))
    feed(mesh, Received(P1, [alert(ALLY, 1)]))
    item = alert(ALLY, 2)
    feed(mesh, Announced(P2, [item.id]), NOW + 10)
    late = feed(mesh, Received(P1, [item]), NOW + 300)  # before the repair, after the announcement
    assert of(Graft, late) == [Graft(P2, (ALLY,))] and of(Prune, late) == [Prune(P1, (ALLY,))]
    assert mesh.tree.mode(P2, ALLY) is Mode.EAGER and mesh.tree.mode(P1, ALLY) is Mode.LAZY
    assert of(Fetch, feed(mesh, Tick(), NOW + 10_000)) == []


def test_without_the_optimisation_a_late_tree_copy_keeps_its_link() -> None:
    mesh = node(replace(TREE, swap_after_ms=None))
    feed(mesh, Pruned(P2))
    item = alert(ALLY, 2)
    feed(mesh, Announced(P2, [item.id]), NOW + 10)
    late = feed(mesh, Received(P1, [item]), NOW + 300)
    assert of(Graft, late) == [] and of(Prune, late) == []
    assert mesh.tree.mode(P1) is Mode.EAGER


# -- hop counts (Plumtree's optimisation by hops) -------------------------------------------


def test_pushes_and_announcements_carry_this_nodes_hop_count() -> None:
    mesh = node()
    feed(mesh, Pruned(P3))
    item = alert(ALLY, 1)
    actions = feed(mesh, Received(P1, [item], hops=[3]))
    assert [(a.peer, a.hops) for a in of(Push, actions)] == [(P2, (4,))]
    announced = of(Announce, feed(mesh, Tick(), NOW + TREE.announce_delay_ms))
    assert announced == [Announce(P3, (item.id,), (4,))]
    own = alert(ME, 2)
    assert {a.hops for a in of(Push, feed(mesh, Authored(own), NOW + 1_000))} == {(0,)}


def test_a_peer_without_hop_counts_gets_none_back_and_nothing_changes() -> None:
    """A node before the field sends none: no hop count is made up, and the tree
    behaves as it did (the time-based optimisation only)."""
    mesh = node()
    feed(mesh, Pruned(P3))
    item = alert(ALLY, 1)
    actions = feed(mesh, Received(P1, [item]))
    assert [(a.peer, a.hops) for a in of(Push, actions)] == [(P2, ())]
    assert of(Announce, feed(mesh, Tick(), NOW + TREE.announce_delay_ms)) == [Announce(P3, (item.id,))]
    later = feed(mesh, Announced(P3, [alert(ALLY, 1).id], hops=[0]), NOW + 200)
    assert of(Graft, later) == [] and of(Prune, later) == []


def test_nonsense_hop_counts_are_ignored() -> None:
    mesh = node()
    item = alert(ALLY, 1)
    actions = feed(mesh, Received(P1, [item], hops=[-4]))
    assert {a.hops for a in of(Push, actions)} == {()}
    other = alert(ALLY, 2)
    actions = feed(mesh, Received(P1, [other], hops=[10**9]), NOW + 1)
    assert {a.hops for a in of(Push, actions)} == {()}


def test_a_repair_grafts_the_announcer_nearest_the_author() -> None:
    """The repaired link becomes a tree link: the announcer with the fewest hops,
    not the first to announce, or the subtree below inherits a long path."""
    mesh = node()
    feed(mesh, Pruned(P2))
    feed(mesh, Pruned(P3))
    missing = alert(ALLY, 1)
    feed(mesh, Announced(P2, [missing.id], hops=[7]))
    feed(mesh, Announced(P3, [missing.id], hops=[2]), NOW + 20)
    repair = feed(mesh, Tick(), NOW + TREE.graft_timeout_ms)
    assert of(Fetch, repair) == [Fetch(P3, (missing.id,))]
    arrived = feed(mesh, Received(P3, [missing]), NOW + TREE.graft_timeout_ms + 50)
    assert of(Graft, arrived) == [Graft(P3, (ALLY,))]
    assert {a.hops for a in of(Push, arrived)} == {(3,)}  # the announced count, plus one


def test_an_announcement_from_much_nearer_the_author_swaps_the_tree_link() -> None:
    """Plumtree's optimisation proper: the tree's copy came along a path at least
    `optimize_hops` longer than the announcer's; the announcer becomes our parent."""
    mesh = node()
    feed(mesh, Pruned(P2))
    feed(mesh, Pruned(P3))
    item = alert(ALLY, 1)
    feed(mesh, Received(P1, [item], hops=[6]))  # we are at 7
    near = TREE.optimize_hops or 0
    assert near >= 1
    small = feed(mesh, Announced(P2, [item.id], hops=[7 - near]), NOW + 100)  # 1 hop fewer than needed
    assert of(Graft, small) == [] and of(Prune, small) == []
    swap = feed(mesh, Announced(P3, [item.id], hops=[6 - near]), NOW + 150)
    assert of(Graft, swap) == [Graft(P3, (ALLY,))] and of(Prune, swap) == [Prune(P1, (ALLY,))]
    assert mesh.tree.mode(P3, ALLY) is Mode.EAGER and mesh.tree.mode(P1, ALLY) is Mode.LAZY


def test_an_announcement_ahead_of_a_longer_tree_copy_swaps_to_the_nearest_announcer() -> None:
    mesh = node()
    feed(mesh, Pruned(P2))
    feed(mesh, Pruned(P3))
    feed(mesh, Received(P1, [alert(ALLY, 1)], hops=[0]))
    item = alert(ALLY, 2)
    feed(mesh, Announced(P2, [item.id], hops=[6]), NOW + 10)  # first, but far
    feed(mesh, Announced(P3, [item.id], hops=[1]), NOW + 20)
    late = feed(mesh, Received(P1, [item], hops=[5]), NOW + 300)
    assert of(Graft, late) == [Graft(P3, (ALLY,))] and of(Prune, late) == [Prune(P1, (ALLY,))]


def test_the_time_based_swap_does_not_move_to_a_path_with_more_hops() -> None:
    mesh = node()
    feed(mesh, Pruned(P2))
    feed(mesh, Pruned(P3))
    feed(mesh, Received(P1, [alert(ALLY, 1)], hops=[0]))
    item = alert(ALLY, 2)
    feed(mesh, Announced(P2, [item.id], hops=[4]), NOW + 10)  # faster, but 5 hops against our 2
    late = feed(mesh, Received(P1, [item], hops=[1]), NOW + 300)
    assert of(Graft, late) == [] and of(Prune, late) == []
    assert mesh.tree.mode(P1) is Mode.EAGER


def test_a_signal_names_at_most_as_many_authors_as_the_wire_takes() -> None:
    assert SIGNAL_ROOTS == MAX_SIGNAL_ROOTS
    mesh = node()
    authors = [key(f"author {n}") for n in range(SIGNAL_ROOTS + 5)]
    mesh._signal(Prune(P2, tuple(authors)), actions := [])  # one batch's duplicates of many authors
    assert [len(a.roots) for a in actions if isinstance(a, Prune)] == [SIGNAL_ROOTS, 5]
