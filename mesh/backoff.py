"""The one backoff policy: how long to wait after consecutive failures, for
every retry in Amparo (gossip pushes to a peer and deferred items in
``mesh.outbox``, deliveries to allies in ``node.allies.delivery``).

Exponential from ``base_ms``, doubling per failure, capped at ``cap_ms``, then
scaled by a factor in [0.5, 1) drawn from an injected ``Random``: whoever comes
back is not hit in lock-step by everyone at once, and a test (or the
simulator) fixes the draw. Pure: no clock, no I/O.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    base_ms: int
    cap_ms: int

    def delay_ms(self, failures: int, rng: random.Random) -> int:
        """The wait after ``failures`` consecutive failures (1 for the first)."""
        exponent = min(max(failures, 1) - 1, 32)
        nominal = min(self.cap_ms, self.base_ms * 2**exponent)
        return int(nominal * (0.5 + 0.5 * rng.random()))
