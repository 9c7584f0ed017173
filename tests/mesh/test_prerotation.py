"""Pre-rotation in the trust graph and at admission (docs/protocol.md §6.5): a key
commits to the hash of its next key; only that key may take over, by hand-over or,
after a raid, by recovery without the seized key; the recovered key keeps the old
one's place, and whoever holds the seized key can neither rotate nor re-commit."""

from __future__ import annotations

import hashlib

from mesh import MeshNode, PeerUp, Received, TrustGraph
from mesh.events import Rejected, Store
from mesh.interfaces import Item

from .builders import NOW, alert, item_id, key, rng, vouch

ME, ALLY, NEXT, FRIEND, THIEF, P1 = (key(n) for n in ("me", "ally", "ally-next", "friend", "thief", "p1"))


def commitment(k: bytes) -> bytes:
    """Any hash will do here: the mesh compares what the node layer computed."""
    return hashlib.blake2b(k, digest_size=32, person=b"test-next").digest()


def record(author: bytes, commits: bytes | None, created: int = NOW, n: int = 0) -> Item:
    """A plain node record of ``author`` committing to ``commits``."""
    ident = item_id("record", author, commits, created, n)
    return Item(
        ident, created, 0, author, "node", b"N" + ident, commits=commits, author_commitment=commitment(author)
    )


def hand_over(old: bytes, new: bytes, created: int = NOW + 10, commits: bytes | None = None) -> Item:
    ident = item_id("hand-over", old, new, created)
    return Item(
        ident,
        created,
        0,
        new,
        "node",
        b"N" + ident,
        subject=old,
        commits=commits,
        author_commitment=commitment(new),
    )


def recovery(old: bytes, new: bytes, created: int = NOW + 10, compromised: bool = True) -> Item:
    ident = item_id("recovery", old, new, created, compromised)
    return Item(
        ident,
        created,
        0,
        new,
        "node",
        b"N" + ident,
        subject=old,
        compromised=compromised,
        author_commitment=commitment(new),
        recovery=True,
    )


def graph() -> TrustGraph:
    g = TrustGraph(ME, depth=2)
    g.observe(vouch(ME, ALLY))
    g.observe(vouch(ALLY, FRIEND))
    g.observe(record(ALLY, commitment(NEXT)))
    return g


def test_the_first_commitment_holds() -> None:
    g = graph()
    assert g.commitment(ALLY) == commitment(NEXT)
    assert g.changes_commitment(record(ALLY, commitment(THIEF), created=NOW + 5))
    assert not g.changes_commitment(record(ALLY, commitment(NEXT), created=NOW + 5))
    g.observe(record(ALLY, commitment(THIEF), created=NOW + 5))
    assert g.commitment(ALLY) == commitment(NEXT)


def test_a_hand_over_must_go_to_the_committed_key() -> None:
    g = graph()
    assert not g.rotation_allowed(hand_over(ALLY, THIEF))
    assert not g.observe(hand_over(ALLY, THIEF))
    assert not g.in_horizon(THIEF) and g.retired_at(ALLY) is None
    assert g.observe(hand_over(ALLY, NEXT))
    assert g.depth_of(NEXT) == 1 and g.retired_at(ALLY) == NOW + 10


def test_a_key_without_commitment_rotates_as_before() -> None:
    g = TrustGraph(ME, depth=2)
    g.observe(vouch(ME, ALLY))
    assert g.observe(hand_over(ALLY, THIEF))
    assert g.depth_of(THIEF) == 1


def test_recovery_needs_the_committed_key() -> None:
    g = graph()
    assert not g.rotation_allowed(recovery(ALLY, THIEF))
    assert not g.observe(recovery(ALLY, THIEF))
    assert g.in_horizon(ALLY) and not g.in_horizon(THIEF)
    uncommitted = TrustGraph(ME, depth=2)
    uncommitted.observe(vouch(ME, FRIEND))
    assert not uncommitted.rotation_allowed(recovery(FRIEND, THIEF))


def test_the_recovered_key_keeps_the_seized_keys_place() -> None:
    g = graph()
    assert g.observe(recovery(ALLY, NEXT))
    assert g.is_compromised(ALLY) and not g.in_horizon(ALLY)
    assert g.depth_of(NEXT) == 1  # my vouch for the seized key counts for its successor
    assert not g.in_horizon(FRIEND)  # what the seized key vouched for no longer counts...
    g.observe(vouch(NEXT, FRIEND, created=NOW + 20))
    assert g.depth_of(FRIEND) == 2  # ...until the recovered organization vouches again
    assert g.newest(ALLY) == NEXT and g.family(NEXT) == {ALLY, NEXT}


def test_a_vouch_for_the_seized_key_after_recovery_still_reaches_the_successor() -> None:
    g = TrustGraph(ME, depth=2)
    g.observe(record(ALLY, commitment(NEXT)))
    g.observe(recovery(ALLY, NEXT))
    assert not g.in_horizon(NEXT)
    assert g.observe(vouch(ME, ALLY))
    assert g.depth_of(NEXT) == 1


def test_recovery_without_declaring_compromise_retires_the_old_key() -> None:
    g = graph()
    g.observe(recovery(ALLY, NEXT, compromised=False))
    assert not g.is_compromised(ALLY) and g.retired_at(ALLY) == NOW + 10
    assert g.depth_of(NEXT) == 1 and g.depth_of(FRIEND) == 2


def node() -> MeshNode:
    stored = [(vouch(ME, ALLY), 1), (vouch(ME, P1), 2), (record(ALLY, commitment(NEXT)), 3)]
    mesh = MeshNode(ME, random=rng(), now=NOW, peers=[P1], stored=stored, marks={P1: 3})
    mesh.handle(PeerUp(P1), NOW)
    return mesh


def outcome(mesh: MeshNode, items: list[Item], at: int = NOW + 100) -> list[str]:
    actions = mesh.handle(Received(P1, items), at)
    reasons = {a.item_id: a.reason for a in actions if isinstance(a, Rejected)}
    stored = {a.item.id for a in actions if isinstance(a, Store)}
    return ["stored" if i.id in stored else reasons.get(i.id, "?") for i in items]


def test_admission_refuses_the_thiefs_rotation_and_re_commitment() -> None:
    mesh = node()
    assert outcome(mesh, [hand_over(ALLY, THIEF)]) == ["uncommitted-key"]
    assert outcome(mesh, [recovery(ALLY, THIEF)]) == ["uncommitted-key"]
    assert outcome(mesh, [record(ALLY, commitment(THIEF), created=NOW + 20)]) == ["commitment-changed"]
    assert outcome(mesh, [alert(ALLY, 1, created=NOW + 30)]) == ["stored"]  # not yet declared


def test_after_recovery_the_seized_key_is_refused_and_the_successor_admitted() -> None:
    mesh = node()
    assert outcome(mesh, [recovery(ALLY, NEXT, created=NOW + 50)]) == ["stored"]
    late = alert(ALLY, 2, created=NOW + 60)
    backdated = alert(ALLY, 3, created=NOW - 1000)
    assert outcome(mesh, [late, backdated, alert(NEXT, 1, created=NOW + 70)]) == [
        "compromised-author",
        "compromised-author",
        "stored",
    ]
