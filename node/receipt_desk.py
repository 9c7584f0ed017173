"""The receipt desk: sends the delivery receipts this node owes, and tells the
author of an alert whom it reached (docs/protocol.md §6.7).

What is owed and what was received is kept by ``node.receipts.ReceiptBook``,
filled by the node as it stores envelopes (``NodeService._owe_receipt`` is the
one place a stored alert becomes a receipt owed). This desk turns the book into
envelopes at the book's pace (at most one a second, slower while alerts keep
coming; one envelope answers several authors): as soon as the pace allows
(a timer between the node's ticks) and at every tick, so the in-process test
grid, which has no timers, sends them too. An envelope the node refuses to
store is logged; a batch that cannot be sealed yet (the author's key has not
come) waits in the book.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, Protocol

from mesh.trust import TrustGraph
from node.host import Host
from node.receipts import RECEIPT_TTL_MS, Batch, ReceiptBook, tally
from node.store import StoredEnvelope
from protocol import Envelope, decode, seal_envelope

log = logging.getLogger("amparo.receipts")


class ReceiptHost(Host, Protocol):
    """The node as the receipt desk sees it: a desk's host, plus the trust graph
    (the horizon, rotation families) and the encryption keys it knows."""

    @property
    def trust(self) -> TrustGraph: ...

    @property
    def enc_keys(self) -> dict[bytes, bytes]:
        """X25519 keys of the nodes this node has heard of, by signing key."""
        ...

    def publish(self, env: Envelope) -> bool:
        """Publish without holding the loop for the disk (``NodeService.publish``)."""
        ...


class ReceiptDesk:
    def __init__(self, host: ReceiptHost, book: ReceiptBook) -> None:
        self.host, self.book = host, book
        self._timer: asyncio.TimerHandle | None = None
        self._running = False

    def start(self) -> None:
        """Send on time between ticks from now on (what was owed at start first)."""
        self._running = True
        self.schedule()

    def stop(self) -> None:
        self._running = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def tick(self) -> None:
        self.send_next()
        self.schedule()

    def schedule(self) -> None:
        """Send what is owed as soon as the once-a-second pace allows."""
        due = self.book.due_at()
        if not self._running or due is None or self._timer is not None:
            return
        delay = max(due - self.host.clock(), 0) / 1000
        self._timer = asyncio.get_running_loop().call_later(delay, self._due)

    def _due(self) -> None:
        self._timer = None
        try:
            self.send_next()
        except Exception:
            log.exception("could not send a delivery receipt")
        self.schedule()

    def send_next(self) -> None:
        """Send the next receipt owed, if the book's pace lets one leave now:
        sealed to every author it answers and to this node (which reads its own
        receipts back at start). Pairs of an author whose key has not come yet
        wait in the book."""
        batch = self.book.next_batch(self.host.clock())
        if batch is None:
            return
        keys = {author: self._enc_key_of(author) for author in batch.authors}
        unknown = [author for author, enc in keys.items() if enc is None]
        if unknown:
            self.book.put_back(batch.of_authors(unknown))  # their record or vouch has not come yet
            batch = batch.of_authors(author for author in keys if author not in unknown)
        if not batch.held:
            return
        try:
            self._send(batch, [enc for enc in keys.values() if enc is not None])
        except Exception:
            self.book.put_back(batch)
            raise

    def _send(self, batch: Batch, author_encs: list[bytes]) -> None:
        now = self.host.clock()
        identity = self.host.identity
        env = seal_envelope(
            identity,
            batch.receipt(),
            created=now,
            expires=now + RECEIPT_TTL_MS,
            recipients=[*author_encs, identity.enc_public],
            random=os.urandom,
        )
        if not self.host.publish(env):
            log.warning("a receipt for %d alert(s) was refused by this node itself", len(batch.held))

    def _enc_key_of(self, author: bytes) -> bytes | None:
        family = self.host.trust.family(author)
        for key in [author, *sorted(family - {author})]:
            if (enc := self.host.enc_keys.get(key)) is not None:
                return enc
        return None

    def reached(self, row: StoredEnvelope) -> dict[str, Any] | None:
        """For an alert this node sent: which organizations stored it and when, of
        those that should hold it (docs/protocol.md §6.7, "of"): every organization
        inside this node's trust horizon for a public or members alert, the
        recipients for a restricted one. None for another author's alert."""
        own = set(self.host.own_keys())
        if row.type != "alert" or row.author not in own:
            return None
        env = decode(row.raw, now=row.received_at, check_time=False)
        trust = self.host.trust
        if env.sealed:
            by_enc = {enc: key for key, enc in self.host.enc_keys.items()}
            candidates = [by_enc[enc] for enc in self.host.recipients_of(env) if enc in by_enc]
        else:
            candidates = list(trust.horizon())
        expected = [k for k in candidates if k not in own and not trust.is_compromised(k)]
        return tally(self.book.holders(row.id), expected, self.host.author_names(), self.host.author_of)
