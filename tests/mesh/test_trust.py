"""The trust horizon: ally-of-ally yes, depth 3 no, revocations, compromise is forever."""

from __future__ import annotations

from mesh import TrustGraph

from .builders import NOW, alert, key, revoke, vouch

ME, ALLY, ALLY2, FAR, STRANGER = (key(n) for n in ("me", "ally", "ally-of-ally", "far", "stranger"))


def chain() -> TrustGraph:
    graph = TrustGraph(ME, depth=2)
    graph.observe(vouch(ME, ALLY))
    graph.observe(vouch(ALLY, ALLY2))
    graph.observe(vouch(ALLY2, FAR))
    return graph


def test_depth_two_accepts_ally_of_ally_and_rejects_depth_three() -> None:
    graph = chain()
    assert [graph.depth_of(k) for k in (ME, ALLY, ALLY2, FAR)] == [0, 1, 2, None]
    assert graph.in_horizon(ALLY2)
    assert not graph.in_horizon(FAR)
    assert not graph.in_horizon(STRANGER)


def test_depth_is_a_parameter() -> None:
    graph = TrustGraph(ME, depth=3)
    for item in (vouch(ME, ALLY), vouch(ALLY, ALLY2), vouch(ALLY2, FAR)):
        graph.observe(item)
    assert graph.depth_of(FAR) == 3


def test_vouches_arriving_in_any_order_give_the_same_horizon() -> None:
    graph = TrustGraph(ME, depth=2)
    graph.observe(vouch(ALLY, ALLY2))  # nobody trusts ALLY yet
    assert not graph.in_horizon(ALLY2)
    graph.observe(vouch(ME, ALLY))
    assert graph.depth_of(ALLY2) == 2


def test_shorter_path_wins() -> None:
    graph = chain()
    graph.observe(vouch(ME, ALLY2))
    assert graph.depth_of(ALLY2) == 1
    assert graph.depth_of(FAR) == 2


def test_newer_revoke_removes_the_edge_and_what_hung_from_it() -> None:
    graph = chain()
    assert graph.observe(revoke(ALLY, ALLY2, created=NOW + 1))
    assert not graph.in_horizon(ALLY2)
    assert graph.in_horizon(ALLY)


def test_older_revoke_does_not_undo_a_newer_vouch_in_either_order() -> None:
    for order in ((0, 1), (1, 0)):
        graph = TrustGraph(ME)
        records = [revoke(ME, ALLY, created=NOW - 10), vouch(ME, ALLY, created=NOW)]
        for i in order:
            graph.observe(records[i])
        assert graph.in_horizon(ALLY), order


def test_revoke_then_revouch_later_restores() -> None:
    graph = TrustGraph(ME)
    graph.observe(vouch(ME, ALLY, created=NOW))
    graph.observe(revoke(ME, ALLY, created=NOW + 1))
    assert not graph.in_horizon(ALLY)
    graph.observe(vouch(ME, ALLY, created=NOW + 2))
    assert graph.in_horizon(ALLY)


def test_someone_else_cannot_revoke_my_vouch() -> None:
    graph = chain()
    graph.observe(revoke(STRANGER, ALLY, created=NOW + 5))
    graph.observe(revoke(ALLY2, ALLY, created=NOW + 5))
    assert graph.in_horizon(ALLY)


def test_compromise_is_forever_and_overrides_later_vouches() -> None:
    graph = chain()
    assert graph.observe(revoke(ALLY, ALLY, created=NOW + 1, compromised=True))
    assert graph.is_compromised(ALLY)
    assert not graph.in_horizon(ALLY)
    assert not graph.in_horizon(ALLY2)  # its vouches no longer count
    graph.observe(vouch(ME, ALLY, created=NOW + 100))
    graph.observe(vouch(ALLY, ALLY2, created=NOW + 100))
    assert not graph.in_horizon(ALLY)
    assert not graph.in_horizon(ALLY2)
    graph.observe(vouch(ME, ALLY2, created=NOW + 100))
    assert graph.in_horizon(ALLY2)  # others can still reach keys it vouched for


def test_only_the_key_itself_can_declare_compromise() -> None:
    graph = chain()
    graph.observe(revoke(STRANGER, ALLY, created=NOW + 1, compromised=True))
    assert not graph.is_compromised(ALLY)
    assert graph.in_horizon(ALLY)


def test_non_trust_items_are_ignored() -> None:
    graph = TrustGraph(ME)
    assert not graph.observe(alert(ALLY))
    assert not graph.observe(vouch(ALLY, ALLY))


def test_thousands_of_vouches_stay_cheap() -> None:
    import time

    graph = TrustGraph(ME, depth=3)
    keys = [key(f"org{i}") for i in range(3000)]
    started = time.perf_counter()
    for i, k in enumerate(keys):
        graph.observe(vouch(ME if i < 30 else keys[i // 30 - 1], k))
        assert graph.in_horizon(k) == (graph.depth_of(k) is not None)
    assert time.perf_counter() - started < 2.0
    assert len(graph.horizon()) > 1000


DAY_MS = 24 * 3_600_000


def test_freshly_vouched_keys_draw_on_their_vouchers_budget_for_a_day() -> None:
    graph = TrustGraph(ME, depth=3)
    graph.observe(vouch(ME, ALLY), seen=NOW - 10 * DAY_MS)
    graph.observe(vouch(ALLY, ALLY2), seen=NOW)
    graph.observe(vouch(ALLY2, FAR), seen=NOW)
    # My own vouch makes ALLY its own holder at once; ALLY2 is fresh (ALLY pays),
    # and FAR, fresh under a fresh key, is followed up the chain to ALLY too.
    assert [graph.budget_holder(k, NOW, DAY_MS) for k in (ME, ALLY, ALLY2, FAR)] == [ME, ALLY, ALLY, ALLY]
    assert graph.budget_holder(ALLY2, NOW + DAY_MS, DAY_MS) == ALLY2  # established after a day
    # One established vouch is enough, whatever fresh ones come on top.
    graph.observe(vouch(ME, STRANGER), seen=NOW)
    graph.observe(vouch(STRANGER, FAR), seen=NOW - 2 * DAY_MS)
    assert graph.budget_holder(FAR, NOW, DAY_MS) == FAR


def test_a_backdated_vouch_is_fresh_from_when_this_node_saw_it() -> None:
    graph = TrustGraph(ME, depth=2)
    graph.observe(vouch(ME, ALLY))
    graph.observe(vouch(ALLY, ALLY2, created=NOW - 30 * DAY_MS), seen=NOW)
    assert graph.budget_holder(ALLY2, NOW + 1, DAY_MS) == ALLY
    graph.observe(revoke(ALLY, ALLY2, created=NOW + 5))
    graph.observe(vouch(ALLY, ALLY2, created=NOW + 6), seen=NOW + 2 * DAY_MS)
    assert graph.budget_holder(ALLY2, NOW + 2 * DAY_MS, DAY_MS) == ALLY  # a new edge is fresh again
