"""A peer's standing outlives a restart (issue 11, item 5): every transition is
reported as `SaveStanding`, and `MeshNode(standings=…)` starts from what was saved."""

from __future__ import annotations

from mesh import (
    Disconnect,
    Limits,
    MeshNode,
    PeerInvalid,
    PeerUp,
    Received,
    SavedStanding,
    SaveStanding,
    Standing,
    StartReconcile,
    Tick,
)
from mesh.events import Action
from mesh.peers import PeerScore

from .builders import NOW, alert, rng
from .test_gossip import ALLY, ME, P1, P2, TRUST, node, pushed_to, rejected, stored


def _cut_off(mesh: MeshNode, peer: bytes, now: int) -> list[Action]:
    actions: list[Action] = []
    for n in range(11):
        actions += mesh.handle(PeerInvalid(peer, "bad-signature"), now + n)
    return actions


def _restart(saved: dict[bytes, SavedStanding], now: int) -> MeshNode:
    mesh = MeshNode(
        ME, random=rng(), now=now, peers=[P1, P2], stored=TRUST, marks={P1: 2, P2: 2}, standings=saved
    )
    for peer in (P1, P2):
        mesh.handle(PeerUp(peer), now)
    return mesh


def test_every_transition_is_saved_and_only_transitions() -> None:
    mesh = node()
    actions = _cut_off(mesh, P1, NOW)
    saves = [a for a in actions if isinstance(a, SaveStanding)]
    assert [s.saved.standing for s in saves] == [Standing.THROTTLED, Standing.CUT_OFF]
    assert all(s.peer == P1 for s in saves)
    assert saves[-1].saved == mesh.saved_standing(P1)
    assert saves[-1].saved.banned_until == NOW + 10 + Limits().ban_ms
    # A penalty that changes no standing writes nothing.
    assert not [a for a in mesh.handle(PeerInvalid(P2, "malformed"), NOW) if isinstance(a, SaveStanding)]


def test_a_cut_off_peer_stays_cut_off_after_a_restart_until_its_deadline() -> None:
    before = node()
    saves = [a for a in _cut_off(before, P1, NOW) if isinstance(a, SaveStanding)]
    deadline = saves[-1].saved.banned_until
    after = _restart({P1: saves[-1].saved}, NOW + 60_000)
    assert after.standing(P1) is Standing.CUT_OFF and after.standing(P2) is Standing.GOOD
    assert after.saved_standing(P1) == saves[-1].saved
    assert rejected(after.handle(Received(P1, [alert(ALLY, 77)]), NOW + 120_000)) == ["peer-cut-off"]
    assert P1 not in pushed_to(after.handle(Tick(), NOW + 120_000))
    # At the deadline: probation, pushes and a reconciliation resume, and that is saved too.
    woke = after.handle(Tick(), deadline)
    assert after.standing(P1) is Standing.THROTTLED
    assert StartReconcile(P1) in woke
    assert SaveStanding(P1, SavedStanding(Standing.THROTTLED, Limits().probation_score)) in woke


def test_a_ban_that_ran_out_while_the_node_was_down_ends_at_the_first_tick() -> None:
    saved = SavedStanding(Standing.CUT_OFF, -1.0, NOW + 1000)
    after = _restart({P1: saved}, NOW + 5000)
    assert after.standing(P1) is Standing.CUT_OFF  # until the first refresh
    actions = after.handle(Tick(), NOW + 5000)
    assert after.standing(P1) is Standing.THROTTLED
    assert not [a for a in actions if isinstance(a, Disconnect)]


def test_a_throttled_peer_stays_throttled_and_its_items_are_dropped() -> None:
    after = _restart({P1: SavedStanding(Standing.THROTTLED, 45.0)}, NOW)
    assert after.standing(P1) is Standing.THROTTLED
    actions = after.handle(Received(P1, [alert(ALLY, 5)]), NOW + 1)
    assert rejected(actions) == ["peer-throttled"] and not stored(actions)


def test_restore_is_deterministic_and_clamped() -> None:
    limits = Limits()
    wild = PeerScore.restore(limits, NOW, SavedStanding(Standing.GOOD, 1e9))
    assert wild.score == limits.max_score and wild.banned_until == 0
    low = PeerScore.restore(limits, NOW, SavedStanding(Standing.CUT_OFF, -1e9, NOW + 5))
    assert low.score == limits.cut_off_at - 1.0 and low.banned_until == NOW + 5
    good = PeerScore.restore(limits, NOW, SavedStanding(Standing.GOOD, 80.0, NOW + 5))
    assert good.banned_until == 0  # a deadline means nothing outside CUT_OFF
    a = _restart({P1: SavedStanding(Standing.CUT_OFF, -1.0, NOW + 10)}, NOW)
    b = _restart({P1: SavedStanding(Standing.CUT_OFF, -1.0, NOW + 10)}, NOW)
    assert a.saved_standing(P1) == b.saved_standing(P1)


def test_a_saved_standing_applies_to_a_peer_linked_later() -> None:
    """The node passes saved standings for its peers; one whose link is only
    made later (PeerAdded, a push) still starts from what was saved."""
    saved = {P1: SavedStanding(Standing.CUT_OFF, -1.0, NOW + 99)}
    mesh = MeshNode(ME, random=rng(), now=NOW, stored=TRUST, standings=saved)
    assert mesh.standing(P1) is None
    assert rejected(mesh.handle(Received(P1, [alert(ALLY, 5)]), NOW)) == ["peer-cut-off"]
    assert mesh.standing(P1) is Standing.CUT_OFF
