"""Protection: rate limits per peer and per author, and a standing per peer.

Every peer and every author gets its own token bucket, so a flooding peer only
exhausts its own budget: honest peers' items keep flowing (SPEC §4, §8
"Availability"). Items we asked for (fetched after reconciliation) skip the
peer bucket, because the amount is bounded by what we requested, but still
count against their author.

A peer's score starts at `Limits.max_score`. Invalid data costs
`invalid_penalty`, overrunning its rate limit costs `rate_penalty` per batch,
and time (plus accepted items) slowly earns it back. The standing follows the
score through the transition table `TRANSITIONS` below (data, so docs/mesh.md
can show it):

    GOOD       --score < throttle_below-->   THROTTLED   (its traffic is dropped)
    GOOD       --score <= cut_off_at-->      CUT_OFF     (Disconnect, ban for ban_ms)
    THROTTLED  --score <= cut_off_at-->      CUT_OFF
    THROTTLED  --score >= recover_at-->      GOOD        (hysteresis above the throttle line)
    CUT_OFF    --ban expired-->              THROTTLED   (on probation, score reset)

A standing outlives a restart: every transition is reported with a
`SavedStanding` (score, standing, ban deadline in wall-clock Unix ms) that the
node persists, and `PeerScore.restore` starts from it, so a cut-off peer stays
cut off until its deadline however often the node restarts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

MINUTE_MS = 60_000


@dataclass(frozen=True, slots=True)
class Limits:
    """Every protection knob in one place; defaults suit a small organization's node."""

    peer_rate_per_s: float = 100.0
    peer_burst: float = 2000.0
    author_rate_per_s: float = 1.0
    author_burst: float = 300.0
    max_score: float = 100.0
    invalid_penalty: float = 10.0
    rate_penalty: float = 1.0
    good_item_reward: float = 0.05
    recover_per_minute: float = 1.0
    throttle_below: float = 50.0
    recover_at: float = 60.0
    cut_off_at: float = 0.0
    probation_score: float = 25.0
    ban_ms: int = 60 * MINUTE_MS


class TokenBucket:
    """Classic token bucket on an injected clock (Unix ms)."""

    __slots__ = ("burst", "rate_per_ms", "tokens", "updated")

    def __init__(self, rate_per_s: float, burst: float, now: int) -> None:
        self.rate_per_ms = rate_per_s / 1000.0
        self.burst = burst
        self.tokens = burst
        self.updated = now

    def take(self, now: int, amount: float = 1.0) -> bool:
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate_per_ms)
            self.updated = now
        if self.tokens >= amount:
            self.tokens -= amount
            return True
        return False


class Standing(enum.Enum):
    GOOD = "good"
    THROTTLED = "throttled"
    CUT_OFF = "cut-off"


class Cause(enum.Enum):
    SANK_BELOW_THROTTLE = "score < throttle_below"
    SANK_TO_CUT_OFF = "score <= cut_off_at"
    ROSE_TO_RECOVER = "score >= recover_at"
    BAN_EXPIRED = "ban expired"


@dataclass(frozen=True, slots=True)
class Transition:
    source: Standing
    cause: Cause
    target: Standing


#: Checked in order; the first transition whose source and cause hold fires.
TRANSITIONS: tuple[Transition, ...] = (
    Transition(Standing.GOOD, Cause.SANK_TO_CUT_OFF, Standing.CUT_OFF),
    Transition(Standing.GOOD, Cause.SANK_BELOW_THROTTLE, Standing.THROTTLED),
    Transition(Standing.THROTTLED, Cause.SANK_TO_CUT_OFF, Standing.CUT_OFF),
    Transition(Standing.THROTTLED, Cause.ROSE_TO_RECOVER, Standing.GOOD),
    Transition(Standing.CUT_OFF, Cause.BAN_EXPIRED, Standing.THROTTLED),
)


@dataclass(frozen=True, slots=True)
class SavedStanding:
    """What a node persists of a peer's standing, written at each transition.

    ``banned_until`` is a wall-clock instant (Unix ms), meaningful for CUT_OFF."""

    standing: Standing
    score: float
    banned_until: int = 0


class PeerScore:
    """One peer's score and standing; every change reports the transition it caused."""

    __slots__ = ("banned_until", "limits", "score", "standing", "updated")

    def __init__(self, limits: Limits, now: int) -> None:
        self.limits = limits
        self.score = limits.max_score
        self.standing = Standing.GOOD
        self.banned_until = 0
        self.updated = now

    @classmethod
    def restore(cls, limits: Limits, now: int, saved: SavedStanding) -> PeerScore:
        """Start from a persisted standing. Time heals from ``now`` on (the offline
        time is not credited); an expired ban ends at the next refresh, as usual."""
        score = cls(limits, now)
        score.standing = saved.standing
        score.score = max(limits.cut_off_at - 1.0, min(limits.max_score, saved.score))
        score.banned_until = saved.banned_until if saved.standing is Standing.CUT_OFF else 0
        return score

    def saved(self) -> SavedStanding:
        until = self.banned_until if self.standing is Standing.CUT_OFF else 0
        return SavedStanding(self.standing, self.score, until)

    def _holds(self, cause: Cause, now: int) -> bool:
        limits = self.limits
        if cause is Cause.SANK_TO_CUT_OFF:
            return self.score <= limits.cut_off_at
        if cause is Cause.SANK_BELOW_THROTTLE:
            return self.score < limits.throttle_below
        if cause is Cause.ROSE_TO_RECOVER:
            return self.score >= limits.recover_at
        return now >= self.banned_until

    def _recover(self, now: int) -> None:
        if now > self.updated:
            if self.standing is not Standing.CUT_OFF:
                gained = (now - self.updated) / MINUTE_MS * self.limits.recover_per_minute
                self.score = min(self.limits.max_score, self.score + gained)
            self.updated = now

    def _settle(self, now: int) -> Transition | None:
        for transition in TRANSITIONS:
            if transition.source is self.standing and self._holds(transition.cause, now):
                self.standing = transition.target
                if transition.target is Standing.CUT_OFF:
                    self.banned_until = now + self.limits.ban_ms
                elif transition.cause is Cause.BAN_EXPIRED:
                    self.score = self.limits.probation_score
                return transition
        return None

    def refresh(self, now: int) -> Transition | None:
        """Let time heal (and bans expire)."""
        self._recover(now)
        return self._settle(now)

    def penalize(self, points: float, now: int) -> Transition | None:
        self._recover(now)
        if self.standing is not Standing.CUT_OFF:
            self.score = max(self.limits.cut_off_at - 1.0, self.score - points)
        return self._settle(now)

    def reward(self, points: float, now: int) -> Transition | None:
        self._recover(now)
        if self.standing is not Standing.CUT_OFF:
            self.score = min(self.limits.max_score, self.score + points)
        return self._settle(now)


class RateLimits:
    """Token buckets per peer and per author; authors are bounded by the trust horizon."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._peers: dict[bytes, TokenBucket] = {}
        self._authors: dict[bytes, TokenBucket] = {}

    def admit_peer(self, peer: bytes, now: int) -> bool:
        bucket = self._peers.get(peer)
        if bucket is None:
            bucket = self._peers[peer] = TokenBucket(self.limits.peer_rate_per_s, self.limits.peer_burst, now)
        return bucket.take(now)

    def admit_author(self, author: bytes, now: int) -> bool:
        bucket = self._authors.get(author)
        if bucket is None:
            bucket = TokenBucket(self.limits.author_rate_per_s, self.limits.author_burst, now)
            self._authors[author] = bucket
        return bucket.take(now)

    def forget_peer(self, peer: bytes) -> None:
        self._peers.pop(peer, None)
