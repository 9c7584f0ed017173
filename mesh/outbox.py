"""Outbound gossip: one queue per peer, one batch in flight, backoff, catch-up mark.

Modelled on Synapse's per-destination federation queue:

* Every item stored here gets a local, monotonically increasing sequence
  number (`seq`). The `SeqLog` is that order. A peer's queue is not a copy of
  the items: it is a *cursor* into the log, so a thousand peers cost a
  thousand integers, not a thousand queues.
* Per peer, the **mark** is the highest seq the peer has acknowledged (every
  item up to it was delivered or deliberately skipped, e.g. because it came
  from that very peer). The node layer persists it when `MeshNode` emits
  `SaveMark`; after a restart the queue is simply "log entries with seq >
  mark", so nothing stored is ever forgotten for a peer.
* At most one batch is in flight per peer. Its outcome (`PushResult`, or a
  timeout) either advances the mark or rewinds the cursor to the batch start.
* Failures back off exponentially with jitter from an injected `Random`
  (`backoff_base_ms * 2**(failures-1)`, capped at `backoff_cap_ms`, then
  scaled by a factor in [0.5, 1)), so peers that come back are not hammered
  in lock-step by everyone at once.
* A peer far behind (more than `catch_up_limit` items) is not sent the whole
  backlog: the cursor jumps to the newest `catch_up_limit` items and
  reconciliation fetches the rest. Like Synapse's catch-up, this keeps a long
  outage from turning into a burst that the receiver's rate limit would drop.
* Some items jump the queue (`offer`): revocations, which must take effect
  before the alerts of the key they revoke, and items a reconciliation found
  the peer lacking. They do not move the mark.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sortedcontainers import SortedDict

from mesh.interfaces import Item


@dataclass(frozen=True, slots=True)
class Pacing:
    """Knobs of the outbound queues."""

    batch_items: int = 64
    batch_bytes: int = 512 * 1024
    backoff_base_ms: int = 1_000
    backoff_cap_ms: int = 5 * 60_000
    push_timeout_ms: int = 60_000
    catch_up_limit: int = 500
    priority_limit: int = 10_000


class SeqLog:
    """Stored items by local sequence number: the queue all peer cursors walk."""

    def __init__(self) -> None:
        self._items: SortedDict = SortedDict()

    def append(self, seq: int, item: Item) -> None:
        self._items[seq] = item

    def remove(self, seq: int) -> None:
        self._items.pop(seq, None)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def last_seq(self) -> int:
        return int(self._items.keys()[-1]) if self._items else 0

    def count_after(self, seq: int) -> int:
        return len(self._items) - int(self._items.bisect_right(seq))

    def seq_before_last(self, count: int) -> int:
        """The seq just before the newest `count` entries (0 when there are fewer)."""
        index = len(self._items) - count - 1
        return int(self._items.keys()[index]) if index >= 0 else 0

    def after(self, seq: int) -> Iterator[tuple[int, Item]]:
        for key in self._items.irange(minimum=seq, inclusive=(False, True)):
            yield key, self._items[key]


@dataclass(frozen=True, slots=True)
class Batch:
    id: int
    items: tuple[Item, ...]
    upto: int  # the mark once acknowledged
    resume: int  # where the cursor goes back to if it fails
    early: tuple[tuple[int, Item], ...]  # queue-jumpers in it, re-offered on failure
    sent_at: int


class PeerOutbox:
    """One peer's outbound queue; see the module docstring for the design."""

    def __init__(self, peer: bytes, mark: int, pacing: Pacing) -> None:
        self.peer = peer
        self.mark = mark
        self.cursor = mark
        self.pacing = pacing
        self.up = False
        self.in_flight: Batch | None = None
        self.failures = 0
        self.retry_at = 0
        self._next_id = 1
        self._early: dict[bytes, tuple[int, Item]] = {}
        self._sent_early: set[bytes] = set()

    # -- queue ----------------------------------------------------------------------------
    def offer(self, item: Item, seq: int) -> bool:
        """Send `item` ahead of the log; False when the priority queue is full."""
        if item.id in self._early or len(self._early) >= self.pacing.priority_limit:
            return False
        self._early[item.id] = (seq, item)
        return True

    def pending(self, log: SeqLog) -> bool:
        return bool(self._early) or log.last_seq > self.cursor

    def ready(self, now: int) -> bool:
        return self.up and self.in_flight is None and now >= self.retry_at

    def next_batch(self, log: SeqLog, now: int, skip: Callable[[Item], bool]) -> tuple[Batch | None, bool]:
        """The next batch to push, if allowed now; and whether backlog was left to reconciliation."""
        if not self.ready(now):
            return None, False
        items: list[Item] = []
        size = 0
        early: list[tuple[int, Item]] = []
        for item_id, (seq, item) in list(self._early.items()):
            if len(items) >= self.pacing.batch_items or (
                items and size + len(item.raw) > self.pacing.batch_bytes
            ):
                break
            del self._early[item_id]
            early.append((seq, item))
            items.append(item)
            size += len(item.raw)
        skipped_backlog = False
        if log.count_after(self.cursor) > self.pacing.catch_up_limit:
            self.cursor = log.seq_before_last(self.pacing.catch_up_limit)
            skipped_backlog = True
        start = walk = self.cursor
        for seq, item in log.after(self.cursor):
            if len(items) >= self.pacing.batch_items or (
                items and size + len(item.raw) > self.pacing.batch_bytes
            ):
                break
            walk = seq
            if item.id in self._sent_early:
                self._sent_early.discard(item.id)
                continue
            if skip(item):
                continue
            items.append(item)
            size += len(item.raw)
        self.cursor = walk
        if not items:
            return None, skipped_backlog
        batch = Batch(self._next_id, tuple(items), walk, start, tuple(early), now)
        self._next_id += 1
        self.in_flight = batch
        return batch, skipped_backlog

    def settle(self) -> int | None:
        """Advance the mark over items skipped without a push; the new mark, if it moved."""
        if self.in_flight is None and self.cursor > self.mark:
            self.mark = self.cursor
            return self.mark
        return None

    # -- outcomes -------------------------------------------------------------------------
    def result(self, batch_id: int, ok: bool, now: int, rng: random.Random) -> int | None:
        """Apply a push outcome; the new mark when it advanced. Stale results are ignored."""
        batch = self.in_flight
        if batch is None or batch.id != batch_id:
            return None
        self.in_flight = None
        if ok:
            self.failures = 0
            self.retry_at = now
            for seq, item in batch.early:
                if seq > self.cursor:
                    self._sent_early.add(item.id)
            if batch.upto > self.mark:
                self.mark = batch.upto
                return self.mark
            return None
        self.failures += 1
        self.retry_at = now + self.backoff_ms(rng)
        self._rewind(batch)
        return None

    def expire(self, now: int, rng: random.Random) -> bool:
        """A push nobody answered is a failed push; True when one timed out."""
        batch = self.in_flight
        if batch is None or now < batch.sent_at + self.pacing.push_timeout_ms:
            return False
        self.result(batch.id, False, now, rng)
        return True

    def backoff_ms(self, rng: random.Random) -> int:
        exponent = min(self.failures - 1, 32)
        delay = min(self.pacing.backoff_cap_ms, self.pacing.backoff_base_ms * 2**exponent)
        return int(delay * (0.5 + 0.5 * rng.random()))

    def _rewind(self, batch: Batch) -> None:
        self.cursor = batch.resume
        requeued = {item.id: (seq, item) for seq, item in batch.early}
        requeued.update(self._early)
        self._early = requeued

    # -- link -----------------------------------------------------------------------------
    def link_up(self, now: int) -> None:
        self.up = True
        self.failures = 0
        self.retry_at = now

    def link_down(self) -> None:
        """Stop sending; a batch in flight will be sent again, its late result ignored."""
        self.up = False
        if self.in_flight is not None:
            self._rewind(self.in_flight)
            self.in_flight = None

    def wakeup_at(self, log: SeqLog) -> int | None:
        if self.in_flight is not None:
            return self.in_flight.sent_at + self.pacing.push_timeout_ms
        if self.up and self.pending(log):
            return self.retry_at
        return None
