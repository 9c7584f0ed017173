"""Key rotation in the trust graph and at admission: the new key inherits the old
one's place (depth and vouches), the old key is retired from the rotation on, a
stolen (compromised) key cannot hand over, and strangers cannot rotate in."""

from __future__ import annotations

from mesh import MeshNode, PeerUp, Received, TrustGraph
from mesh.events import Rejected, Store
from mesh.interfaces import Item

from .builders import NOW, alert, key, revoke, rng, rotation, vouch

ME, ALLY, NEW, FRIEND, STRANGER, THIEF = (
    key(n) for n in ("me", "ally", "ally-new", "friend", "stranger", "thief")
)
P1 = key("p1")


def graph() -> TrustGraph:
    g = TrustGraph(ME, depth=2)
    g.observe(vouch(ME, ALLY))
    g.observe(vouch(ALLY, FRIEND))
    return g


def test_new_key_takes_the_old_keys_place_and_its_vouches_still_count() -> None:
    g = graph()
    assert g.observe(rotation(ALLY, NEW))
    assert g.depth_of(NEW) == 1 and g.depth_of(ALLY) == 1
    assert g.depth_of(FRIEND) == 2
    g.observe(vouch(NEW, key("someone")))
    assert g.depth_of(key("someone")) == 2
    assert g.family(NEW) == {ALLY, NEW}
    assert g.retired_at(ALLY) == NOW and g.retired_at(NEW) is None


def test_rotation_before_the_vouch_gives_the_same_graph() -> None:
    g = TrustGraph(ME, depth=2)
    g.observe(rotation(ALLY, NEW))
    assert not g.in_horizon(NEW)
    g.observe(vouch(ME, ALLY))
    assert g.depth_of(NEW) == 1


def test_own_rotation_keeps_own_vouches() -> None:
    g = TrustGraph(NEW, depth=2)  # this node after restarting with its new key
    g.observe(vouch(ALLY, ME))  # the old key's peers vouched for the old key
    g.observe(vouch(ME, ALLY))  # the old key vouched for its peer
    g.observe(rotation(ME, NEW))
    assert g.depth_of(ME) == 0 and g.depth_of(ALLY) == 1


def test_first_hand_over_wins() -> None:
    g = graph()
    g.observe(rotation(ALLY, NEW, created=NOW))
    assert not g.observe(rotation(ALLY, THIEF, created=NOW + 5))
    assert not g.in_horizon(THIEF)


def test_a_compromised_key_hands_over_nothing() -> None:
    g = graph()
    g.observe(rotation(ALLY, THIEF))
    g.observe(revoke(ALLY, ALLY, compromised=True))
    assert not g.in_horizon(THIEF) and not g.in_horizon(ALLY)


def node() -> MeshNode:
    stored = [(vouch(ME, ALLY), 1), (vouch(ME, P1), 2)]
    mesh = MeshNode(ME, random=rng(), now=NOW, peers=[P1], stored=stored, marks={P1: 2})
    mesh.handle(PeerUp(P1), NOW)
    return mesh


def outcome(mesh: MeshNode, items: list[Item], at: int = NOW) -> list[str]:
    actions = mesh.handle(Received(P1, items), at)
    reasons = {a.item_id: a.reason for a in actions if isinstance(a, Rejected)}
    stored = {a.item.id for a in actions if isinstance(a, Store)}
    return ["stored" if i.id in stored else reasons.get(i.id, "?") for i in items]


def test_admission_after_rotation() -> None:
    mesh = node()
    before = alert(ALLY, 1, created=NOW - 1000)
    assert outcome(mesh, [rotation(ALLY, NEW, created=NOW - 500)]) == ["stored"]
    assert outcome(mesh, [alert(NEW, 1, created=NOW), before]) == ["stored", "stored"]
    assert outcome(mesh, [alert(ALLY, 2, created=NOW)]) == ["retired-key"]


def test_a_stranger_cannot_rotate_into_the_horizon() -> None:
    mesh = node()
    assert outcome(mesh, [rotation(STRANGER, THIEF)]) == ["outside-horizon"]
    assert outcome(mesh, [alert(THIEF, 1)]) == ["outside-horizon"]


def test_a_family_is_shown_under_its_newest_key() -> None:
    g = graph()
    assert g.newest(ALLY) == ALLY and g.newest(STRANGER) == STRANGER
    g.observe(rotation(ALLY, NEW))
    newer = key("ally-newer")
    g.observe(rotation(NEW, newer, created=NOW + 1))
    assert g.newest(ALLY) == g.newest(NEW) == g.newest(newer) == newer
    assert g.family(ALLY) == {ALLY, NEW, newer}


def test_newest_ends_even_on_a_hand_over_cycle() -> None:
    g = graph()
    g.observe(rotation(ALLY, NEW))
    g.observe(rotation(NEW, ALLY, created=NOW + 1))  # nonsense, but must not loop
    assert g.newest(ALLY) in {ALLY, NEW} and g.newest(NEW) in {ALLY, NEW}
