"""Request budgets at the mesh listener's door (SPEC §8: every request has a
budget before it may write anything).

Item limits (``mesh.peers``) count envelopes; they do not see a request that
carries none. So each request also spends a token, from one of three buckets:

- an authenticated peer's own bucket (by sender key): spent after its signature
  verifies, before the nonce or anything else is written, and looked at, without
  spending, before its body is even read;
- the bucket of the address it comes from, for everything that is not (yet) an
  active peer's signed request: unsigned or unknown senders, and failed
  signatures. Such a request can never write, but costs a body read and a
  signature check. A request that claims an active peer's key (which is
  public) is let in on that peer's budget, so its failed signatures spend a
  bucket of their own, for that address claiming that key, looked at before
  the body is read: a forger is refused at the door, and the peer it names
  (elsewhere) is not;
- a small per-address bucket for ``/mesh/v1/pair``, which an operator uses a few
  times a year: it stops strangers hammering invite secrets.

Budgets are durations, so they run on a monotonic clock in ms, never the wall
clock: a clock step must neither refill nor drain them. That clock is an
argument (``RequestBudget(clock)``, ``mesh_api.make_app(service, budget)``), so
tests/node/test_door.py moves it by hand; ``monotonic_ms`` is the real one.

A sender over budget is answered 429 at once. Budgets are in memory: a restart
refills them, which costs an attacker a restart of the node it attacks. IPv6
addresses are counted by /64, since one host commonly holds a whole /64; the
table of addresses is bounded, forgetting the fullest (least used) buckets first.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from mesh.peers import TokenBucket

MAX_ADDRESSES: Final = 10_000


@dataclass(frozen=True, slots=True)
class Rate:
    per_s: float
    burst: float


# An honest peer sends one push batch at a time (one frame each), a few
# reconciliation rounds and fetches: far below 20 requests a second on average,
# and a backlog of hundreds of frames fits in the burst.
PEER: Final = Rate(per_s=20.0, burst=400.0)
ADDRESS: Final = Rate(per_s=5.0, burst=100.0)
PAIR: Final = Rate(per_s=1 / 60, burst=10.0)


def monotonic_ms() -> int:
    """The real clock of the budgets (see the module docstring)."""
    return int(time.monotonic() * 1000)


def address_key(remote: str | None) -> str:
    """IPv4 as is, IPv6 by its /64; anything unparsable is one shared key."""
    try:
        ip = ipaddress.ip_address(remote or "")
    except ValueError:
        return "?"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _address(remote: str | None, claimed: bytes | None) -> str:
    key = address_key(remote)
    return key if claimed is None else f"{key} as {claimed.hex()}"


class RequestBudget:
    def __init__(
        self,
        clock: Callable[[], int] = monotonic_ms,
        peer: Rate = PEER,
        address: Rate = ADDRESS,
        pair: Rate = PAIR,
    ) -> None:
        self._clock = clock
        self._rates = {"peer": peer, "address": address, "pair": pair}
        self._buckets: dict[str, dict[bytes | str, TokenBucket]] = {"peer": {}, "address": {}, "pair": {}}

    def _bucket(self, kind: str, key: bytes | str, now: int) -> TokenBucket:
        table = self._buckets[kind]
        bucket = table.get(key)
        if bucket is None:
            if len(table) >= MAX_ADDRESSES:
                self._forget_fullest(table, now)
            rate = self._rates[kind]
            bucket = table[key] = TokenBucket(rate.per_s, rate.burst, now)
        return bucket

    @staticmethod
    def _forget_fullest(table: dict[bytes | str, TokenBucket], now: int) -> None:
        for bucket in table.values():
            bucket.take(now, 0.0)  # refill to now
        fullest = sorted(table, key=lambda k: table[k].tokens, reverse=True)
        for key in fullest[: len(table) // 2]:
            del table[key]

    def tracked(self, kind: str) -> int:
        """How many senders (``peer``) or addresses (``address``, ``pair``) have a bucket."""
        return len(self._buckets[kind])

    def peer_has_budget(self, key: bytes) -> bool:
        """Look without spending: a peer over budget is refused before its body is read."""
        now = self._clock()
        bucket = self._bucket("peer", key, now)
        bucket.take(now, 0.0)
        return bucket.tokens >= 1.0

    def spend_peer(self, key: bytes) -> bool:
        return self._bucket("peer", key, self._clock()).take(self._clock())

    def address_has_budget(self, remote: str | None, claimed: bytes | None = None) -> bool:
        """Look without spending (``claimed``: the active peer a request names)."""
        now = self._clock()
        bucket = self._bucket("address", _address(remote, claimed), now)
        bucket.take(now, 0.0)
        return bucket.tokens >= 1.0

    def spend_address(self, remote: str | None, claimed: bytes | None = None) -> bool:
        return self._bucket("address", _address(remote, claimed), self._clock()).take(self._clock())

    def spend_pair(self, remote: str | None) -> bool:
        return self._bucket("pair", address_key(remote), self._clock()).take(self._clock())
