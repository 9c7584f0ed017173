"""Protection: rate limits per peer and per author, and a standing per peer.

Every peer and every author gets its own token bucket, so a flooding peer only
exhausts its own budget: honest peers' items keep flowing (SPEC §4, §8
"Availability").

The rule for budgets (docs/mesh.md, "Budgets: backpressure, never loss"):

* A refusal for a budget is a *deferral*, never a loss. The item is not
  stored and not remembered; the push reply names it (`deferred`), and the
  sender keeps it queued and resends it after a backoff. Only refusals that
  prove something about the item (expired, outside the horizon, …) are final.
* **Live** budgets apply to what a peer pushes unasked: the peer's bucket
  (`peer_rate_per_s`, `peer_burst`) and the bucket of the author's *budget
  holder* (`author_rate_per_s`, `author_burst`).
* **Catch-up** budgets apply to what this node asked for (fetched after a
  reconciliation) from an established author: the peer's catch-up bucket
  (`catch_up_peer_*`, deep and fast: it only paces bandwidth) and the
  author's catch-up bucket (`catch_up_author_*`: as deep as a busy author's
  backlog after a long outage, refilled at a live-like rate). A peer's
  legitimate backlog drains at hundreds of items a second; a flooding author
  gains at most one catch-up burst plus a few items a second, however it is
  delivered.
* The budget holder of an author is the author itself, unless every vouch
  bringing it into the horizon is *fresh* (known here for less than
  `fresh_vouch_ms`, by a key other than this node): then its items count
  against a pool its voucher holds for all its fresh vouchees, with the live
  budget's size, pushed or fetched (`TrustGraph.budget_holder`), so forty
  fresh keys share one small budget instead of having forty, and none of them
  has a catch-up burst. The pool is apart from the voucher's own budget, so a
  flooding vouchee cannot starve its voucher's own alerts; and each fresh key
  may take at most `fresh_share` of the pool (its own bucket of that part of the
  pool's rate and burst), so one flooding vouchee cannot starve the voucher's
  other fresh vouchees either (issue 15, finding 7: in a federation whose
  vouches were all a day old, a fresh flooder's alerts used up its voucher's pool
  two hops away, and the honest alerts of the voucher's other fresh vouchees were
  deferred there for seconds).
* New vouches (created within `fresh_vouch_ms`) by one author are capped at
  `vouch_burst`, refilled at `vouches_per_hour`; beyond it they are deferred.
  No refusal for a budget scores the relay, except an overrun of the live
  peer bucket, which the peer controls.

A peer's score starts at `Limits.max_score`. Invalid data costs
`invalid_penalty`, overrunning its live rate limit costs `rate_penalty` per
batch, and time (plus accepted items) slowly earns it back. The standing
follows the score through the transition table `TRANSITIONS` below (data, so
docs/mesh.md can show it):

    GOOD       --score < throttle_below-->   THROTTLED   (its traffic is deferred)
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
from typing import TypeAlias

from mesh.interfaces import Transition

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS


@dataclass(frozen=True, slots=True)
class Limits:
    """Every protection knob in one place; defaults suit a small organization's node."""

    peer_rate_per_s: float = 100.0
    peer_burst: float = 2000.0
    author_rate_per_s: float = 1.0
    author_burst: float = 300.0
    catch_up_peer_rate_per_s: float = 1_000.0
    catch_up_peer_burst: float = 5_000.0
    catch_up_author_rate_per_s: float = 2.0
    catch_up_author_burst: float = 10_000.0
    fresh_vouch_ms: int = 24 * HOUR_MS
    # A fresh key may take at most this part of the pool its voucher holds for its
    # fresh vouchees: one of them flooding leaves the rest to the others.
    fresh_share: float = 0.5
    vouches_per_hour: float = 20.0
    vouch_burst: float = 20.0
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

    def available(self, now: int) -> float:
        """Tokens there are now (refilled for the time passed)."""
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate_per_ms)
            self.updated = now
        return self.tokens

    def take(self, now: int, amount: float = 1.0) -> bool:
        if self.available(now) >= amount:
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


StandingTransition: TypeAlias = Transition[Standing, Cause]

#: Checked in order; the first transition whose source and cause hold fires.
TRANSITIONS: tuple[StandingTransition, ...] = (
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

    def _settle(self, now: int) -> StandingTransition | None:
        for transition in TRANSITIONS:
            if transition.source is self.standing and self._holds(transition.cause, now):
                self.standing = transition.target
                if transition.target is Standing.CUT_OFF:
                    self.banned_until = now + self.limits.ban_ms
                elif transition.cause is Cause.BAN_EXPIRED:
                    self.score = self.limits.probation_score
                return transition
        return None

    def refresh(self, now: int) -> StandingTransition | None:
        """Let time heal (and bans expire)."""
        self._recover(now)
        return self._settle(now)

    def penalize(self, points: float, now: int) -> StandingTransition | None:
        self._recover(now)
        if self.standing is not Standing.CUT_OFF:
            self.score = max(self.limits.cut_off_at - 1.0, self.score - points)
        return self._settle(now)

    def reward(self, points: float, now: int) -> StandingTransition | None:
        self._recover(now)
        if self.standing is not Standing.CUT_OFF:
            self.score = min(self.limits.max_score, self.score + points)
        return self._settle(now)


class RateLimits:
    """Token buckets: live per peer and per budget holder, catch-up per peer and per
    holder, and new vouches per voucher (see the module docstring for the rule)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._peers: dict[bytes, TokenBucket] = {}
        self._authors: dict[bytes, TokenBucket] = {}
        self._catch_up_peers: dict[bytes, TokenBucket] = {}
        self._catch_up_authors: dict[bytes, TokenBucket] = {}
        self._vouchers: dict[bytes, TokenBucket] = {}
        self._shares: dict[bytes, TokenBucket] = {}  # per fresh key: its part of the voucher's pool

    @staticmethod
    def _bucket(buckets: dict[bytes, TokenBucket], key: bytes, rate: float, burst: float, now: int) -> TokenBucket:
        bucket = buckets.get(key)
        if bucket is None:
            bucket = buckets[key] = TokenBucket(rate, burst, now)
        return bucket

    def admit_peer(self, peer: bytes, now: int) -> bool:
        limits = self.limits
        return self._bucket(self._peers, peer, limits.peer_rate_per_s, limits.peer_burst, now).take(now)

    def admit_author(self, author: bytes, now: int) -> bool:
        limits = self.limits
        bucket = self._bucket(self._authors, author, limits.author_rate_per_s, limits.author_burst, now)
        return bucket.take(now)

    def _share(self, author: bytes, now: int) -> TokenBucket:
        limits = self.limits
        rate, burst = limits.author_rate_per_s * limits.fresh_share, limits.author_burst * limits.fresh_share
        return self._bucket(self._shares, author, rate, burst, now)

    def admit_fresh(self, author: bytes, pool: bytes, now: int) -> bool:
        """A fresh key's item: from its share, and from its voucher's pool (both or neither)."""
        limits = self.limits
        share = self._share(author, now)
        by_pool = self._bucket(self._authors, pool, limits.author_rate_per_s, limits.author_burst, now)
        if share.available(now) < 1.0 or by_pool.available(now) < 1.0:
            return False
        return share.take(now) and by_pool.take(now)

    def share_room(self, author: bytes, now: int) -> float:
        """Tokens in a fresh key's share of its voucher's pool now (nothing is taken)."""
        return self._share(author, now).available(now)

    def peer_room(self, peer: bytes, now: int) -> float:
        """Tokens in `peer`'s live bucket now (nothing is taken)."""
        limits = self.limits
        return self._bucket(self._peers, peer, limits.peer_rate_per_s, limits.peer_burst, now).available(now)

    def author_room(self, holder: bytes, now: int) -> float:
        """Tokens in a budget holder's live bucket now (nothing is taken)."""
        limits = self.limits
        return self._bucket(self._authors, holder, limits.author_rate_per_s, limits.author_burst, now).available(now)

    def _catch_up_peer(self, peer: bytes, now: int) -> TokenBucket:
        limits = self.limits
        rate, burst = limits.catch_up_peer_rate_per_s, limits.catch_up_peer_burst
        return self._bucket(self._catch_up_peers, peer, rate, burst, now)

    def catch_up_allowance(self, peer: bytes, now: int) -> int:
        """How many solicited items `peer` could deliver right now: what to fetch at most."""
        return int(self._catch_up_peer(peer, now).available(now))

    def catch_up_refill_ms(self, peer: bytes, amount: float, now: int) -> int:
        """Milliseconds until `peer`'s catch-up allowance holds ``amount`` (capped at
        its burst) at the refill rate: 0 when it does already."""
        bucket = self._catch_up_peer(peer, now)
        short = min(amount, bucket.burst) - bucket.available(now)
        if short <= 0:
            return 0
        if bucket.rate_per_ms <= 0:
            return 2**62  # never refills: the regular session finds the rest
        return int(short / bucket.rate_per_ms) + 1

    def admit_catch_up(self, peer: bytes, holder: bytes, now: int) -> str | None:
        """A solicited item: None when admitted, else which catch-up bucket is empty."""
        limits = self.limits
        by_peer = self._catch_up_peer(peer, now)
        rate, burst = limits.catch_up_author_rate_per_s, limits.catch_up_author_burst
        by_holder = self._bucket(self._catch_up_authors, holder, rate, burst, now)
        if by_peer.available(now) < 1.0:
            return "peer-catch-up-limited"
        if not by_holder.take(now):
            return "author-catch-up-limited"
        by_peer.take(now)
        return None

    def _vouch_bucket(self, voucher: bytes, now: int) -> TokenBucket:
        limits = self.limits
        rate = limits.vouches_per_hour / 3600.0
        return self._bucket(self._vouchers, voucher, rate, limits.vouch_burst, now)

    def may_vouch(self, voucher: bytes, now: int) -> bool:
        """Whether `voucher` may introduce one more new vouch now (nothing is taken)."""
        return self._vouch_bucket(voucher, now).available(now) >= 1.0

    def admit_vouch(self, voucher: bytes, now: int) -> bool:
        return self._vouch_bucket(voucher, now).take(now)

    def forget_peer(self, peer: bytes) -> None:
        self._peers.pop(peer, None)
        self._catch_up_peers.pop(peer, None)
