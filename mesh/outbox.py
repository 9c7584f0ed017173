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
* Failures back off with the one backoff policy (`mesh.backoff`: from
  `backoff_base_ms`, doubling, capped at `backoff_cap_ms`, jittered from an
  injected `Random`), so peers that come back are not hammered in lock-step
  by everyone at once.
* A push may come back *partly deferred*: the receiver names the items it
  refused for a budget (rate limits, see `mesh.peers`). They are not
  delivered: they wait in a retry set, and the mark stops just before the
  oldest of them until a later push gets them through, so neither a counter
  nor a restart can treat them as delivered. The retry set backs off with the
  one backoff policy, counted in consecutive deferrals (reset when retried
  items go through). If the receiver took part of the batch, the rest of the
  queue keeps flowing meanwhile: one author's spent budget must not hold up
  everybody else's alerts. If it deferred the whole batch, the log behind it
  backs off: that is backpressure from the receiver, and the backlog is sent
  in order at the pace it accepts, however long the outage was. Queue-jumpers
  (below) do not wait for that backoff, only for a failed push's: a batch made
  only of a flooding author's relayed alerts, all deferred, must not hold back
  the next honest alert for the seconds the backoff doubles to (the nemesis's
  hostile phase, finding 7).
* Some items jump the queue (`offer`): revocations, which must take effect
  before the alerts of the key they revoke, items a reconciliation found
  the peer lacking, and new items of *quiet* authors (within
  `Pacing.quiet_author_*`), so that one author's flood, admitted up to its
  budget, delays nobody else's alerts by more than the batch in flight. They
  do not move the mark.
* A batch that would hold only delivery receipts waits up to
  `Pacing.linger_ms` for company (the next alert, more receipts), which takes
  them along. Every node's receipts cross every link, and a push costs a relay
  far more than one more item in it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass

from sortedcontainers import SortedDict

from mesh.backoff import Backoff
from mesh.interfaces import Item


@dataclass(frozen=True, slots=True)
class Pacing:
    """Knobs of the outbound queues."""

    batch_items: int = 64
    batch_bytes: int = 512 * 1024
    backoff_base_ms: int = 1_000
    backoff_cap_ms: int = 5 * 60_000
    push_timeout_ms: int = 60_000
    priority_limit: int = 10_000
    # A new item by an author this node hears little from (its bucket: this burst,
    # refilled at this rate) jumps every peer's queue (`MeshNode._accept`): an
    # honest alert does not wait behind a flooding author's backlog, hop by hop.
    quiet_author_burst: float = 20.0
    quiet_author_rate_per_s: float = 1.0
    # A batch that would hold only bookkeeping (`LINGERING_KINDS`: delivery receipts)
    # waits up to this long for company: the next alert, or more receipts. Every node's
    # receipts cross every link, each arriving at its own random moment, and a push
    # costs a relay far more than one more item in it (docs/performance.md).
    linger_ms: int = 0


LINGERING_KINDS = frozenset({"receipt"})
LINGER_SCAN = 256  # log entries looked at to decide whether a batch lingers


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

    def after(self, seq: int) -> Iterator[tuple[int, Item]]:
        for key in self._items.irange(minimum=seq, inclusive=(False, True)):
            yield key, self._items[key]


@dataclass(frozen=True, slots=True)
class Batch:
    id: int
    items: tuple[Item, ...]
    seqs: tuple[int, ...]  # each item's local seq
    upto: int  # the mark once acknowledged
    resume: int  # where the cursor goes back to if it fails
    early: tuple[tuple[int, Item], ...]  # queue-jumpers in it, re-offered on failure
    retried: tuple[tuple[int, Item], ...]  # deferred items sent again, back to the retry set on failure
    sent_at: int
    beside: bool = False  # queue-jumpers only, sent while a log batch is in flight (`next_beside`)


class PeerOutbox:
    """One peer's outbound queue; see the module docstring for the design."""

    def __init__(self, peer: bytes, mark: int, pacing: Pacing) -> None:
        self.peer = peer
        self.mark = mark
        self.acked = mark  # every log item up to here was answered (delivered, or held below)
        self.cursor = mark
        self.pacing = pacing
        self.up = False
        self.in_flight: Batch | None = None
        self.beside: Batch | None = None  # queue-jumpers in flight beside `in_flight`
        self.failures = 0
        self._woken = False  # a request from the peer ended this backoff already (`heard`)
        self.deferrals = 0
        self.retry_at = 0
        self._next_id = 1
        self._early: dict[bytes, tuple[int, Item]] = {}
        self._sent_early: set[bytes] = set()
        self._held: dict[bytes, int] = {}  # deferred by the peer, not yet delivered: id -> seq
        self._retry: dict[bytes, tuple[int, Item]] = {}  # deferred items waiting to be sent again
        self._retry_due = 0
        self.log_due = 0  # the log waits until then after a push deferred whole
        self._linger_from: int | None = None  # receipts only are waiting for company since then

    # -- queue ----------------------------------------------------------------------------
    def offer(self, item: Item, seq: int) -> bool:
        """Send `item` ahead of the log; False when the priority queue is full."""
        if item.id in self._early or len(self._early) >= self.pacing.priority_limit:
            return False
        self._early[item.id] = (seq, item)
        return True

    @property
    def held(self) -> int:
        """Items the peer deferred and has not taken yet."""
        return len(self._held)

    def pending(self, log: SeqLog) -> bool:
        return bool(self._early) or bool(self._retry) or log.last_seq > self.cursor

    def ready(self, now: int) -> bool:
        return self.up and self.in_flight is None and now >= self.retry_at

    def _fits(self, count: int, size: int, item: Item) -> bool:
        return count < self.pacing.batch_items and not (count and size + len(item.raw) > self.pacing.batch_bytes)

    def next_batch(self, log: SeqLog, now: int, skip: Callable[[Item], bool]) -> Batch | None:
        """The next batch to push, if allowed now: queue-jumpers first, then the log in order
        (the log and the deferred items only once their backoffs are over, the log only
        once receipts alone have waited out `Pacing.linger_ms`)."""
        if not self.ready(now):
            return None
        retrying = bool(self._retry) and now >= self._retry_due
        if not (self._early or retrying) and self._lingers(log, now, skip):
            return None  # receipts only: they wait for company
        items: list[Item] = []
        seqs: list[int] = []
        size = 0
        taken: dict[str, list[tuple[int, Item]]] = {"early": [], "retried": []}
        queues = [("early", self._early)] + ([("retried", self._retry)] if retrying else [])
        for name, queue in queues:
            for item_id, (seq, item) in list(queue.items()):
                if not self._fits(len(items), size, item):
                    break
                del queue[item_id]
                taken[name].append((seq, item))
                items.append(item)
                seqs.append(seq)
                size += len(item.raw)
        start = walk = self.cursor
        chosen = {item.id for item in items}  # a queue-jumper is in the log too: once per batch
        if self.beside is not None:  # and once in flight: if that push fails, it is offered again
            chosen.update(item.id for item in self.beside.items)
        for seq, item in log.after(self.cursor) if now >= self.log_due else ():
            if not self._fits(len(items), size, item):
                break
            walk = seq
            if item.id in self._sent_early:
                self._sent_early.discard(item.id)
                continue
            if item.id in chosen:
                continue
            if skip(item) or item.id in self._early or item.id in self._held or item.id in self._retry:
                continue  # not for this peer, or already queued ahead of the log
            items.append(item)
            seqs.append(seq)
            size += len(item.raw)
        self.cursor = walk
        if not items:
            return None
        early, retried = tuple(taken["early"]), tuple(taken["retried"])
        batch = Batch(self._next_id, tuple(items), tuple(seqs), walk, start, early, retried, now)
        self._next_id += 1
        self.in_flight = batch
        return batch

    def _lingers(self, log: SeqLog, now: int, skip: Callable[[Item], bool]) -> bool:
        """Whether what the log holds for this peer is receipts only, none waiting
        longer than `Pacing.linger_ms`: then the batch waits (`wakeup_at` says until
        when). Anything else to send, or a full batch of receipts, goes at once and
        takes them along: sending an alert alone and its receipts after it cost the
        mesh more CPU than the receipts' checks at the next relay (docs/performance.md)."""
        if not self._only_receipts(log, now, skip):
            self._linger_from = None
            return False
        if self._linger_from is None:
            self._linger_from = now
        return now < self._linger_from + self.pacing.linger_ms

    def _only_receipts(self, log: SeqLog, now: int, skip: Callable[[Item], bool]) -> bool:
        """Whether the log's next batch for this peer would be receipts only, and not full."""
        if self.pacing.linger_ms <= 0 or now < self.log_due:
            return False
        count = 0
        for looked, (_, item) in enumerate(log.after(self.cursor)):
            if looked >= LINGER_SCAN:
                return False
            if item.id in self._sent_early or item.id in self._early or item.id in self._held:
                continue  # sent, or to be sent, ahead of the log
            if item.id in self._retry or skip(item):
                continue
            if item.kind not in LINGERING_KINDS:
                return False
            count += 1
            if count >= self.pacing.batch_items:
                return False
        return count > 0

    def next_beside(self, now: int) -> Batch | None:
        """Queue-jumpers to push now *beside* the log batch in flight: an honest
        alert must not wait for the answer to a batch of a flooding author's
        alerts, which a busy peer takes seconds to verify (issue 15, finding 7).
        At most one such batch is in flight; it never moves the cursor or the mark."""
        if not (self.up and self.in_flight is not None and self.beside is None and self._early):
            return None
        if now < self.retry_at:
            return None
        items: list[Item] = []
        early: list[tuple[int, Item]] = []
        size = 0
        for item_id, (seq, item) in list(self._early.items()):
            if not self._fits(len(items), size, item):
                break
            del self._early[item_id]
            early.append((seq, item))
            items.append(item)
            size += len(item.raw)
        seqs = tuple(seq for seq, _ in early)
        batch = Batch(self._next_id, tuple(items), seqs, 0, self.cursor, tuple(early), (), now, beside=True)
        self._next_id += 1
        self.beside = batch
        return batch

    def settle(self) -> int | None:
        """Advance the mark over items skipped without a push; the new mark, if it moved."""
        if self.in_flight is None and self.cursor > self.acked:
            self.acked = self.cursor
        return self._advance()

    def _advance(self) -> int | None:
        """Move the mark up to `acked`, but never past an item the peer deferred."""
        candidate = self.acked
        if self._held:
            candidate = min(candidate, min(self._held.values()) - 1)
        if candidate > self.mark:
            self.mark = candidate
            return self.mark
        return None

    # -- outcomes -------------------------------------------------------------------------
    def result(
        self, batch_id: int, ok: bool, now: int, rng: random.Random, deferred: Collection[bytes] = ()
    ) -> int | None:
        """Apply a push outcome; the new mark when it advanced. Stale results are ignored.

        `deferred`: ids of the batch the peer refused for a budget. They wait in the
        retry set (backing off), the mark stays below them, and the rest of the
        queue goes on unless the peer deferred the whole batch."""
        batch = self._answered(batch_id)
        if batch is None:
            return None
        if not ok:
            self.failures += 1
            self.retry_at = now + self.backoff_ms(rng, self.failures)
            self._rewind(batch)
            return None
        self.failures = 0
        self._woken = False
        pairs = zip(batch.seqs, batch.items, strict=True)
        later = {item.id: (seq, item) for seq, item in pairs if item.id in deferred}
        for item_id in [i.id for i in batch.items if i.id not in later]:
            self._held.pop(item_id, None)
        for seq, item in batch.early:
            if seq > self.cursor and item.id not in later:
                self._sent_early.add(item.id)
        self.retry_at = now
        if later:
            # Items already under the mark (a reconciliation's offers) do not hold it back.
            self._held.update((item_id, seq) for item_id, (seq, _) in later.items() if seq > self.mark)
            self._retry.update(later)
            self.deferrals += 1
            self._retry_due = now + self.backoff_ms(rng, self.deferrals)
            if len(later) == len(batch.items) and not batch.beside:  # nothing taken: the log backs off
                self.log_due = self._retry_due
        elif batch.retried:
            self.deferrals = 0  # what was deferred went through
        self.acked = max(self.acked, batch.upto)
        return self._advance()

    def _answered(self, batch_id: int) -> Batch | None:
        """The batch in flight with this id, no longer in flight (None: stale)."""
        if self.in_flight is not None and self.in_flight.id == batch_id:
            batch, self.in_flight = self.in_flight, None
            return batch
        if self.beside is not None and self.beside.id == batch_id:
            batch, self.beside = self.beside, None
            return batch
        return None

    def expire(self, now: int, rng: random.Random) -> bool:
        """A push nobody answered is a failed push; True when one timed out."""
        late = [
            batch
            for batch in (self.in_flight, self.beside)
            if batch is not None and now >= batch.sent_at + self.pacing.push_timeout_ms
        ]
        for batch in late:
            self.result(batch.id, False, now, rng)
        return bool(late)

    def backoff_ms(self, rng: random.Random, attempts: int) -> int:
        """The one backoff policy (`mesh.backoff`) with this queue's pacing."""
        return Backoff(self.pacing.backoff_base_ms, self.pacing.backoff_cap_ms).delay_ms(attempts, rng)

    def _rewind(self, batch: Batch) -> None:
        if not batch.beside:  # a batch beside the log took nothing from it
            self.cursor = batch.resume
        requeued = {item.id: (seq, item) for seq, item in batch.early}
        requeued.update(self._early)
        self._early = requeued
        self._retry.update((item.id, (seq, item)) for seq, item in batch.retried)

    def unsent(self, batch_id: int, held: Callable[[bytes], bool]) -> None:
        """The batch in flight was never sent (`PushUnsent`): take it back, and drop
        the queue-jumpers the node no longer ``held`` (their write failed)."""
        batch = self._answered(batch_id)
        if batch is not None:
            self._rewind(batch)
        self.drop(held)

    def drop(self, held: Callable[[bytes], bool]) -> None:
        """Forget queue-jumpers that are not ``held`` any more: a new item whose
        write failed must never reach a peer (its author was told it was not sent)."""
        for item_id in [i for i in self._early if not held(i)]:
            del self._early[item_id]

    # -- link -----------------------------------------------------------------------------
    def link_up(self, now: int) -> None:
        self.up = True
        self.failures = 0
        self._woken = False
        self.deferrals = 0
        self.retry_at = self.log_due = now

    def heard(self, now: int) -> None:
        """The peer answered us unasked (it sent a request): a queue backing off after
        failed pushes is retried now. Nothing changes while a batch is in flight
        (its answer or timeout decides) or when nothing failed; and only once
        until a push works again, the failures still counted: a peer that keeps
        sending requests while our pushes to it fail (the nemesis's flooder, seed
        15015) otherwise had its every request answered by a full push of ours
        at once, fifty a second, on the node it was flooding."""
        if self.up and self.failures and self.in_flight is None and not self._woken:
            self._woken = True  # once until a push works: see below
            self.retry_at = min(self.retry_at, now)

    def link_down(self) -> None:
        """Stop sending; a batch in flight will be sent again, its late result ignored."""
        self.up = False
        for batch in (self.beside, self.in_flight):  # the log batch last: its cursor wins
            if batch is not None:
                self._rewind(batch)
        self.in_flight = self.beside = None

    @property
    def linger_until(self) -> int:
        """When receipts waiting for company go anyway (0: none is waiting)."""
        return 0 if self._linger_from is None else self._linger_from + self.pacing.linger_ms

    def wakeup_at(self, log: SeqLog) -> int | None:
        if self.in_flight is not None:
            timeouts = [b.sent_at + self.pacing.push_timeout_ms for b in (self.in_flight, self.beside) if b is not None]
            if self.up and self.beside is None and self._early:
                timeouts.append(self.retry_at)  # queue-jumpers go beside it once a backoff is over
            return min(timeouts)
        if not self.up:
            return None
        due = [
            when
            for when, waiting in (
                (self.retry_at, bool(self._early)),
                (max(self.retry_at, self.log_due, self.linger_until), log.last_seq > self.cursor),
                (max(self.retry_at, self._retry_due), bool(self._retry)),
            )
            if waiting
        ]
        return min(due) if due else None
