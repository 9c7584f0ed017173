"""Delivery receipts on the node (docs/protocol.md §6.7): "did it get through?".

Both sides live in one ``ReceiptBook``, in memory, rebuilt at start from the
envelopes in the store (``NodeService`` shows it every stored envelope), like
the directory of names:

* **Owed.** Every alert of another author that this node stores, and can read
  (a restricted alert only when this node is a recipient), is owed to its
  author. Owed pairs wait per author, and at most one receipt envelope leaves
  this node per ``RECEIPT_EVERY_MS`` whatever the alert rate: one author's
  pairs at a time (up to ``RECEIPT_MAX_HELD``), the author waiting longest
  first. A node seals each receipt to itself as well, so at start it reads its
  own receipts back and owes again only what no receipt of its own answers: a
  crash between storing an alert and answering it loses nothing.
* **Received.** A receipt sealed to this node says which of its alerts another
  node stored, and when. ``tally`` turns that into "reached 14 of 15", with
  who is still missing.

Nothing here reads a clock or touches the store: times are arguments.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from protocol import Receipt, fingerprint
from protocol.receipt import RECEIPT_MAX_HELD, RECEIPT_MAX_LIFETIME_MS

RECEIPT_EVERY_MS: Final = 1000  # at most one receipt envelope per second per node
RECEIPT_TTL_MS: Final = RECEIPT_MAX_LIFETIME_MS  # a receipt expires a day after it is made
OWED_FOR_MS: Final = RECEIPT_MAX_LIFETIME_MS  # an alert stored longer ago than this is no longer answered


@dataclass(frozen=True)
class Batch:
    """One receipt to send: ``author``'s alerts this node stored, with the times."""

    author: bytes
    held: dict[bytes, int]

    def receipt(self) -> Receipt:
        return Receipt.of(self.held)


class ReceiptBook:
    """What this node owes other authors, and what other nodes told it."""

    def __init__(self) -> None:
        self._owed: OrderedDict[bytes, dict[bytes, int]] = OrderedDict()  # author -> {alert: stored at}
        self._answered: set[bytes] = set()  # alert ids a receipt of this node already names
        self._held: dict[bytes, dict[bytes, int]] = {}  # our alert -> {holder key: stored at}
        self._named: dict[bytes, tuple[bytes, ...]] = {}  # receipt id -> the alerts it names
        self._next_at = 0

    # -- owed ------------------------------------------------------------------------------
    def owe(self, author: bytes, alert: bytes, stored_at: int, *, now: int) -> None:
        """This node stored ``alert`` by ``author`` at ``stored_at`` (not owed any
        more once ``OWED_FOR_MS`` have passed since)."""
        if alert not in self._answered and stored_at > now - OWED_FOR_MS:
            self._owed.setdefault(author, {})[alert] = stored_at

    def answered(self, alerts: Iterable[bytes]) -> None:
        """A receipt of this node names ``alerts`` (sent now, or read back at start)."""
        for alert in alerts:
            self._answered.add(alert)
            for author in list(self._owed):
                if self._owed[author].pop(alert, None) is not None and not self._owed[author]:
                    del self._owed[author]

    def owed(self) -> int:
        return sum(len(pairs) for pairs in self._owed.values())

    def due_at(self) -> int | None:
        """When the next receipt may leave (None: nothing owed)."""
        return self._next_at if self._owed else None

    def next_batch(self, now: int) -> Batch | None:
        """The next receipt to send at ``now``, or None (nothing owed, or one left
        less than ``RECEIPT_EVERY_MS`` ago). Pairs stored too long ago are dropped."""
        if now < self._next_at:
            return None
        while self._owed:
            author, pairs = self._owed.popitem(last=False)
            fresh = {a: at for a, at in pairs.items() if at > now - OWED_FOR_MS}
            if not fresh:
                continue
            taken = dict(sorted(fresh.items(), key=lambda pair: pair[1])[:RECEIPT_MAX_HELD])
            rest = {a: at for a, at in fresh.items() if a not in taken}
            if rest:
                self._owed[author] = rest  # at the back: other authors go first
            self._next_at = now + RECEIPT_EVERY_MS
            return Batch(author, taken)
        return None

    def put_back(self, batch: Batch) -> None:
        """A batch that could not be sealed yet (the author's key is not known): it
        waits behind the others."""
        pairs = self._owed.setdefault(batch.author, {})
        for alert, at in batch.held.items():
            if alert not in self._answered:
                pairs[alert] = at

    # -- received --------------------------------------------------------------------------
    def record(self, receipt_id: bytes, holder: bytes, receipt: Receipt) -> tuple[bytes, ...]:
        """``holder`` says it stored these alerts; returns their ids. The earliest
        time a holder gives for an alert is kept (a resent receipt says it again)."""
        for alert, at in receipt.held:
            holders = self._held.setdefault(alert, {})
            holders[holder] = min(at, holders.get(holder, at))
        named = tuple(alert for alert, _ in receipt.held)
        self._named[receipt_id] = named
        return named

    def named_by(self, receipt_id: bytes) -> tuple[bytes, ...]:
        """The alerts a receipt this node could open names (for the live stream)."""
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
