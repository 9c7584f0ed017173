"""Delivery receipts on the node (docs/protocol.md §6.7): "did it get through?".

Both sides live in one ``ReceiptBook``, in memory, rebuilt at start from the
envelopes in the store (``NodeService`` shows it every stored envelope), like
the directory of names:

* **Owed.** Every alert of another author that this node stores, and can read
  (a restricted alert only when this node is a recipient), is owed to its
  author. One receipt envelope answers what is owed to every author at once
  (up to ``RECEIPT_MAX_HELD`` pairs, the oldest first, sealed to each of them):
  a receipt floods the horizon like an alert, so what the mesh pays for
  receipts is envelopes per node, not pairs. A receipt that names a restricted
  alert names only its author's alerts (one author must never learn that this
  node is a recipient of another's restricted alert).
* **Paced.** The first receipt after a quiet spell leaves within
  ``RECEIPT_EVERY_MS``; while alerts keep coming, the wait between two
  receipts of this node doubles from ``RECEIPT_EVERY_MS`` up to
  ``RECEIPT_MAX_EVERY_MS``, and falls back once the node has been quiet that
  long. A lone urgent alert is answered within a second; a burst costs the
  mesh a handful of receipts per node, not one a second per node (N²
  envelopes a second, which slowed the alerts themselves 5 × at p50 on 20
  nodes: docs/performance.md). Every wait is drawn at random (the first within
  the second, the next ones up to half as long again): every node stores an
  alert within the same few milliseconds, and receipts on the same clock
  arrived everywhere as one wave, which held up the next alert for seconds.
* **Own, read back.** A node seals each receipt to itself as well, so at start
  it reads its own receipts back and owes again only what no receipt of its
  own answers: a crash between storing an alert and answering it loses nothing.
* **Received.** A receipt sealed to this node says which of its alerts another
  node stored, and when; pairs for other authors' alerts are not kept.
  ``tally`` turns that into "reached 14 of 15", with who is still missing.

Nothing here reads a clock or touches the store: times are arguments.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from protocol import Receipt, fingerprint
from protocol.receipt import RECEIPT_MAX_HELD, RECEIPT_MAX_LIFETIME_MS
from protocol.sealing import MAX_RECIPIENTS

RECEIPT_EVERY_MS: Final = 1000  # the shortest wait between two receipt envelopes of a node
RECEIPT_MAX_EVERY_MS: Final = 16_000  # the longest, reached after a few seconds of steady alerts
RECEIPT_TTL_MS: Final = RECEIPT_MAX_LIFETIME_MS  # a receipt expires a day after it is made
OWED_FOR_MS: Final = RECEIPT_MAX_LIFETIME_MS  # an alert stored longer ago than this is no longer answered
MAX_AUTHORS: Final = MAX_RECIPIENTS - 1  # a receipt is sealed to each author named, and to its sender


class Owed(NamedTuple):
    author: bytes
    stored_at: int
    restricted: bool


@dataclass(frozen=True)
class Batch:
    """One receipt to send: alerts this node stored (id → when), by author."""

    held: dict[bytes, int]
    owed: dict[bytes, Owed]

    @property
    def authors(self) -> tuple[bytes, ...]:
        """The authors the receipt is sealed to, in the order of their oldest pair."""
        return tuple(dict.fromkeys(self.owed[alert].author for alert in self.held))

    def receipt(self) -> Receipt:
        return Receipt.of(self.held)

    def of_authors(self, authors: Iterable[bytes]) -> Batch:
        """The part of this batch owed to ``authors``."""
        keep = set(authors)
        held = {a: at for a, at in self.held.items() if self.owed[a].author in keep}
        return Batch(held, {a: self.owed[a] for a in held})


class ReceiptBook:
    """What this node owes other authors, and what other nodes told it."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._random = rng or random.Random()  # noqa: S311 - spreads waits, no secret
        self._owed: dict[bytes, Owed] = {}  # alert -> (author, stored at, restricted)
        self._answered: set[bytes] = set()  # alert ids a receipt of this node already names
        self._own: set[bytes] = set()  # alerts this node authored (receipts for others' are not kept)
        self._held: dict[bytes, dict[bytes, int]] = {}  # our alert -> {holder key: stored at}
        self._named: dict[bytes, tuple[bytes, ...]] = {}  # receipt id -> the alerts it names
        self._next_at = 0
        self._every = RECEIPT_EVERY_MS
        self._sent_at: int | None = None

    # -- owed ------------------------------------------------------------------------------
    def owe(self, author: bytes, alert: bytes, stored_at: int, *, now: int, restricted: bool = False) -> None:
        """This node stored ``alert`` by ``author`` at ``stored_at`` (not owed any
        more once ``OWED_FOR_MS`` have passed since). ``restricted``: a sealed alert
        this node is a recipient of, answered only in a receipt of its author's alone."""
        if alert not in self._answered and stored_at > now - OWED_FOR_MS:
            if not self._owed and self._next_at <= now:  # the first after a quiet spell
                self._next_at = now + self._spread(RECEIPT_EVERY_MS)
            self._owed[alert] = Owed(author, stored_at, restricted)

    def answered(self, alerts: Iterable[bytes]) -> None:
        """A receipt of this node names ``alerts`` (sent now, or read back at start)."""
        for alert in alerts:
            self._answered.add(alert)
            self._owed.pop(alert, None)

    def owed(self) -> int:
        return len(self._owed)

    def due_at(self) -> int | None:
        """When the next receipt may leave (None: nothing owed)."""
        return self._next_at if self._owed else None

    def next_batch(self, now: int) -> Batch | None:
        """The next receipt to send at ``now``, or None (nothing owed, or the
        pace does not allow one yet). Pairs stored too long ago are dropped."""
        if now < self._next_at:
            return None
        for alert in [a for a, o in self._owed.items() if o.stored_at <= now - OWED_FOR_MS]:
            del self._owed[alert]
        if not self._owed:
            return None
        oldest = sorted(self._owed.items(), key=lambda pair: (pair[1].stored_at, pair[0]))
        first = oldest[0][1]
        if first.restricted:  # only this author's alerts may share the envelope
            chosen = [(a, o) for a, o in oldest if o.author == first.author]
        else:
            chosen = [(a, o) for a, o in oldest if not o.restricted]
        taken: dict[bytes, Owed] = {}
        authors: set[bytes] = set()
        for alert, owed in chosen:
            if len(taken) == RECEIPT_MAX_HELD:
                break
            if owed.author not in authors and len(authors) == MAX_AUTHORS:
                continue
            authors.add(owed.author)
            taken[alert] = owed
        for alert in taken:
            del self._owed[alert]
        self._pace(now)
        return Batch({a: o.stored_at for a, o in taken.items()}, taken)

    def _pace(self, now: int) -> None:
        """Double the wait while receipts follow each other; back to the shortest
        after a quiet spell as long as the wait was."""
        if self._sent_at is not None and now - self._sent_at <= 2 * self._every:
            self._every = min(2 * self._every, RECEIPT_MAX_EVERY_MS)
        else:
            self._every = RECEIPT_EVERY_MS
        self._sent_at = now
        self._next_at = now + self._every + self._spread(self._every // 2)

    def _spread(self, up_to_ms: int) -> int:
        return int(self._random.random() * up_to_ms)

    def put_back(self, batch: Batch) -> None:
        """A batch (or part of one) that could not be sealed yet (an author's key is
        not known): owed again, where it was in the order."""
        for alert, owed in batch.owed.items():
            if alert not in self._answered:
                self._owed.setdefault(alert, owed)

    # -- received --------------------------------------------------------------------------
    def authored(self, alert: bytes) -> None:
        """``alert`` is this node's own: receipts for it are kept."""
        self._own.add(alert)

    def keep_only(self, own: set[bytes]) -> None:
        """At start, once the whole store was read (only then are the keys this
        node rotated from known): ``own`` are all its alerts; what was recorded
        for anyone else's is forgotten."""
        self._own |= own
        self.answered(own & self._owed.keys())  # owed at start under a key not yet known as ours
        self._held = {a: h for a, h in self._held.items() if a in self._own}
        named = {r: tuple(a for a in alerts if a in self._own) for r, alerts in self._named.items()}
        self._named = {r: alerts for r, alerts in named.items() if alerts}

    def record(self, receipt_id: bytes, holder: bytes, receipt: Receipt, *, starting: bool = False) -> tuple[bytes, ...]:
        """``holder`` says it stored these alerts; returns those that are this
        node's (all of them while ``starting``: ``keep_only`` sorts them out).
        The earliest time a holder gives for an alert is kept (a resent receipt
        says it again)."""
        named = tuple(alert for alert, _ in receipt.held if starting or alert in self._own)
        if not named:
            return ()
        stored = dict(receipt.held)
        for alert in named:
            holders = self._held.setdefault(alert, {})
            at = stored[alert]
            holders[holder] = min(at, holders.get(holder, at))
        self._named[receipt_id] = named
        return named

    def named_by(self, receipt_id: bytes) -> tuple[bytes, ...]:
        """The alerts of this node a receipt it could open names (for the live stream)."""
        return self._named.get(receipt_id, ())

    def holders(self, alert: bytes) -> dict[bytes, int]:
        """Who said it stored ``alert``, and when."""
        return dict(self._held.get(alert, {}))


def tally(
    holders: Mapping[bytes, int],
    expected: Iterable[bytes],
    names: Mapping[bytes, str],
    author_of: Callable[[bytes], bytes],
) -> dict[str, Any]:
    """"Reached ``reached`` of ``of``": ``expected`` are the organizations that
    should hold the alert (their newest keys), ``holders`` the receipts' keys
    and times. Per organization its name and when it stored the alert; who is
    still missing; and who holds it without being expected (``others``: a node
    that joined the horizon since, for instance)."""
    by_org: dict[bytes, int] = {}
    for key, at in holders.items():
        org = author_of(key)
        by_org[org] = min(at, by_org.get(org, at))
    wanted = list(dict.fromkeys(author_of(k) for k in expected))
    reached = [_org(k, names) | {"stored_at": by_org[k]} for k in wanted if k in by_org]
    missing = [_org(k, names) for k in wanted if k not in by_org]
    others = [_org(k, names) | {"stored_at": at} for k, at in by_org.items() if k not in wanted]
    return {
        "reached": len(reached),
        "of": len(wanted),
        "organizations": sorted(reached, key=lambda o: (o["stored_at"], o["key"])),
        "missing": sorted(missing, key=lambda o: (o["name"].casefold(), o["key"])),
        "others": sorted(others, key=lambda o: (o["stored_at"], o["key"])),
    }


def _org(key: bytes, names: Mapping[bytes, str]) -> dict[str, Any]:
    return {"key": key.hex(), "name": names.get(key, ""), "fingerprint": fingerprint(key)}
