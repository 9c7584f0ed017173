"""Rate limits and peer standing, alone (the end-to-end flooder test is in test_gossip)."""

from __future__ import annotations

from mesh.peers import TRANSITIONS, Limits, PeerScore, RateLimits, Standing, TokenBucket

from .builders import NOW, key


def test_token_bucket_bursts_then_refills_with_time() -> None:
    bucket = TokenBucket(rate_per_s=10, burst=5, now=NOW)
    assert sum(bucket.take(NOW) for _ in range(10)) == 5
    assert not bucket.take(NOW + 50)
    assert bucket.take(NOW + 100)
    assert sum(bucket.take(NOW + 100_000) for _ in range(10)) == 5  # capped at the burst


def test_each_peer_and_author_has_its_own_bucket() -> None:
    rates = RateLimits(Limits(peer_rate_per_s=1, peer_burst=3, author_rate_per_s=1, author_burst=2))
    assert [rates.admit_peer(key("flood"), NOW) for _ in range(5)] == [True] * 3 + [False] * 2
    assert rates.admit_peer(key("honest"), NOW)
    assert [rates.admit_author(key("a"), NOW) for _ in range(3)] == [True, True, False]
    assert rates.admit_author(key("b"), NOW)


def test_score_walks_the_transition_table() -> None:
    limits = Limits()
    score = PeerScore(limits, NOW)
    seen = []
    now = NOW
    while score.standing is not Standing.CUT_OFF:
        transition = score.penalize(limits.invalid_penalty, now)
        if transition:
            seen.append((transition.source, transition.target))
    assert seen == [(Standing.GOOD, Standing.THROTTLED), (Standing.THROTTLED, Standing.CUT_OFF)]
    assert score.banned_until == now + limits.ban_ms
    assert score.refresh(now + limits.ban_ms - 1) is None
    back = score.refresh(now + limits.ban_ms)
    assert back is not None and back.target is Standing.THROTTLED
    assert score.score == limits.probation_score
    # Good behaviour over time earns the way back, with hysteresis above the throttle line.
    minutes = (limits.recover_at - limits.probation_score) / limits.recover_per_minute
    healed = score.refresh(now + limits.ban_ms + int(minutes * 60_000) + 1)
    assert healed is not None and healed.target is Standing.GOOD


def test_every_transition_in_the_table_is_reachable_from_good() -> None:
    sources = {t.source for t in TRANSITIONS}
    targets = {t.target for t in TRANSITIONS}
    assert sources == targets == set(Standing)
