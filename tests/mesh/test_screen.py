"""`Screen`: a push's claims looked at before verification (issue 15, finding 7).

The mesh refuses, before the node checks a signature, what `Received` would
refuse anyway for a spent live budget or the peer's standing; it never charges
an author's budget for a claim (only verified items spend it), so envelopes
forged under an honest author's key cannot drain it."""

from __future__ import annotations

from collections.abc import Sequence

from mesh import (
    Claim,
    Item,
    Limits,
    MeshNode,
    PeerInvalid,
    Received,
    ReconcileDone,
    Rejected,
    Screen,
    Standing,
    Store,
)
from mesh.events import Action

from .builders import NOW, alert, key, vouch
from .test_gossip import ALLY, ALLY2, ME, P1, P2, STRANGER, node

LIMITS = Limits(author_rate_per_s=1.0, author_burst=10.0)


def claim(item: Item) -> Claim:
    return Claim(item.id, item.author, item.kind, item.created)


def refused(actions: Sequence[Action]) -> dict[bytes, str]:
    return {a.item_id: a.reason for a in actions if isinstance(a, Rejected)}


def stored_ids(actions: Sequence[Action]) -> list[bytes]:
    return [a.item.id for a in actions if isinstance(a, Store)]


def screen_then_receive(mesh: MeshNode, peer: bytes, items: list[Item], now: int) -> tuple[list[bytes], set[bytes]]:
    """What the relay does: screen the claims, verify and admit the rest. Returns
    (stored ids, deferred ids)."""
    out = refused(mesh.handle(Screen(peer, [claim(i) for i in items]), now))
    rest = [i for i in items if i.id not in out]
    actions = mesh.handle(Received(peer, rest), now) if rest else []
    deferred = set(out) | {i for i, why in refused(actions).items() if why.endswith("-limited")}
    return stored_ids(actions), deferred


def test_claims_past_an_authors_spent_budget_are_refused_before_verification() -> None:
    mesh = node(limits=LIMITS)
    flood = [alert(ALLY, n) for n in range(25)]
    out = refused(mesh.handle(Screen(P1, [claim(i) for i in flood]), NOW))
    assert len(out) == 15 and set(out.values()) == {"author-rate-limited"}
    assert set(out) == {i.id for i in flood[10:]}  # the first ten fit the burst, in order
    # Looking did not spend: all ten that passed are admitted once verified.
    assert len(stored_ids(mesh.handle(Received(P1, flood[:10]), NOW))) == 10
    # Now the budget is spent: the next claim is refused at the screen.
    assert refused(mesh.handle(Screen(P1, [claim(alert(ALLY, 99))]), NOW)) == {
        alert(ALLY, 99).id: "author-rate-limited"
    }


def test_forged_claims_under_an_honest_authors_key_do_not_drain_its_budget() -> None:
    mesh = node(limits=LIMITS)
    for round_ in range(5):  # a forger names ALLY again and again; nothing it sends verifies
        forged = [Claim(key(f"forged{round_}-{n}"), ALLY, "alert") for n in range(50)]
        mesh.handle(Screen(P1, forged), NOW)
        mesh.handle(PeerInvalid(P1, "bad-signature"), NOW)
    honest = [alert(ALLY, n) for n in range(10)]
    stored, deferred = screen_then_receive(mesh, P2, honest, NOW)
    assert len(stored) == 10 and not deferred  # ALLY's whole burst is still there


def test_a_screened_relay_stores_and_defers_exactly_what_the_full_path_would() -> None:
    """Flooding author, honest author, trust record and own item mixed, batch after
    batch: the same ids stored and deferred with the screen as without it."""

    def batches() -> list[list[Item]]:
        out = []
        for b in range(8):
            now = NOW + b * 1_000
            out.append(
                [alert(ALLY, 1000 * b + n, created=now) for n in range(7)]
                + [alert(ALLY2, b, created=now), vouch(ALLY2, key(f"new{b}"), created=now)]
            )
        return out

    plain, screened = node(limits=LIMITS), node(limits=LIMITS)
    for b, batch in enumerate(batches()):
        now = NOW + b * 1_000
        actions = plain.handle(Received(P1, batch), now)
        want = (stored_ids(actions), {i for i, why in refused(actions).items() if why.endswith("-limited")})
        got = screen_then_receive(screened, P1, batch, now)
        assert got == want, f"batch {b}"
    assert len(screened) == len(plain)


def test_what_the_screen_leaves_to_the_full_path() -> None:
    """Trust records, this node's own items, fetched ids and authors outside the
    horizon are never refused before verification."""
    mesh = node(limits=Limits(author_rate_per_s=0.0, author_burst=0.0))  # every budget spent
    passing = [
        Claim(vouch(ALLY, STRANGER).id, ALLY, "vouch"),
        Claim(alert(ME, 1).id, ME, "alert"),
        Claim(alert(STRANGER, 1).id, STRANGER, "alert"),  # refused for the horizon, after verification
        Claim(key("node record"), ALLY, "node"),
    ]
    assert refused(mesh.handle(Screen(P1, passing), NOW)) == {}
    assert refused(mesh.handle(Screen(P1, [claim(alert(ALLY, 1))]), NOW)) == {
        alert(ALLY, 1).id: "author-rate-limited"
    }


def test_a_cut_off_peer_has_every_claim_refused_and_a_throttled_ones_are_all_verified() -> None:
    """A throttled peer's items are refused after verification anyway, but they are
    verified, so one that goes on sending invalid signatures sinks to a cut-off
    (screening them out kept the nemesis's forger throttled and never cut off)."""
    mesh = node(limits=Limits(author_rate_per_s=0.0, author_burst=0.0))  # every budget spent
    claims = [claim(alert(ALLY, n)) for n in range(3)] + [claim(vouch(ALLY, STRANGER))]
    for n in range(6):
        mesh.handle(PeerInvalid(P1, "bad-signature"), NOW + n)
    assert mesh.standing(P1) is Standing.THROTTLED
    assert refused(mesh.handle(Screen(P1, claims), NOW + 10)) == {}
    for n in range(5):
        mesh.handle(PeerInvalid(P1, "bad-signature"), NOW + 20 + n)
    assert mesh.standing(P1) is Standing.CUT_OFF
    out = refused(mesh.handle(Screen(P1, claims), NOW + 30))
    assert len(out) == 4 and set(out.values()) == {"peer-cut-off"}


def test_a_peer_that_overruns_its_own_bucket_is_refused_and_scored() -> None:
    mesh = node(limits=Limits(peer_rate_per_s=0.0, peer_burst=5.0, author_burst=1000.0))
    claims = [claim(alert(ALLY, n)) for n in range(8)]
    out = refused(mesh.handle(Screen(P1, claims), NOW))
    assert list(out.values()) == ["peer-rate-limited"] * 3
    score = mesh.score(P1)
    assert score is not None and score < Limits().max_score


def test_claims_in_a_range_being_fetched_pass_up_to_what_the_fetch_may_bring() -> None:
    """A returning node's backlog fetched by range (`FetchRange`) is solicited, as
    fetched ids are: its claims are not screened against the author's live budget
    (they were, and past the author's first burst the whole backlog was deferred:
    10,000 alerts took 136 s to catch up instead of 8.5 s). Only as many as the
    range fetch may still bring pass; beyond it, and outside the range, the live
    budget screens as before."""
    limits = Limits(author_rate_per_s=0.0, author_burst=2.0, catch_up_peer_burst=5.0, catch_up_peer_rate_per_s=0.0)
    mesh = node(limits=limits)
    everything = ((NOW, b""), (2**64 - 1, b""))
    mesh.handle(ReconcileDone(P1, have=[], need=[], ranges=[everything]), NOW)  # FetchRange, limit 5
    backlog = [alert(ALLY, n, created=NOW + 1 + n) for n in range(9)]
    out = refused(mesh.handle(Screen(P1, [claim(i) for i in backlog]), NOW + 10))
    # Five by the range, then the live budget's two, then refused.
    assert set(out) == {i.id for i in backlog[7:]} and set(out.values()) == {"author-rate-limited"}
    # A claim without a creation time, or from another peer, is screened as a push.
    outside = [alert(ALLY, 50 + n, created=NOW + 100 + n) for n in range(3)]
    no_time = [Claim(i.id, i.author, i.kind) for i in outside]
    assert set(refused(mesh.handle(Screen(P1, no_time), NOW + 10))) == {outside[2].id}
    assert set(refused(mesh.handle(Screen(P2, [claim(i) for i in outside]), NOW + 10))) == {outside[2].id}
    stored, deferred = screen_then_receive(mesh, P1, backlog[:7], NOW + 10)
    assert len(stored) == 7 and not deferred  # five on the catch-up budget, two on the live one
    assert refused(mesh.handle(Screen(P1, [claim(backlog[7])]), NOW + 10)) == {
        backlog[7].id: "author-rate-limited"  # the range fetch brought all it may, the live budget is spent
    }
