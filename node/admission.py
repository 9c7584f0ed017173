"""Screening a push before its signatures are checked (issue 15, finding 7).

A relay used to verify every envelope of a push and commit the push's nonce
before the mesh looked at budgets, so a peer pushing ten times its author's
quota cost the node it reached a signature check (and, with it, a share of the
machine's CPU, which every honest push on the host waits for) per envelope,
of which nine in ten were then deferred. Now the relay reads what each unknown
envelope *claims* (its author and type: ``protocol.envelope.claimed``, a
bounded unpack and no crypto) and hands the claims to the mesh (``mesh.Screen``)
first. The mesh refuses, as deferrals the sender keeps and sends again, the
claims it would refuse anyway for the peer's standing or for a live budget that
is already spent; only the rest are verified and go through the usual
admission.

The guarantees stay those of the full path:

- an author's budget is only looked at here, never charged: it is spent only by
  envelopes whose signature holds, so envelopes forged under an honest author's
  key cannot drain it (they pass the screen while the author has budget, and are
  refused, blaming their sender, at verification);
- a screened-out envelope is deferred, never lost: the push reply names it
  (``deferred``), as a budget refusal after verification would;
- nothing here blames a peer for an envelope's contents (no signature was
  checked); only overrunning the peer's own live bucket costs its score, as it
  always did.

``Turns`` is the order batches are admitted in. It was one line for every
peer, so an honest peer's alert, checked at once, waited for the flooder's
batches still being verified before it. Then a batch waited for the batches its
own peer sent before it; but a peer pushes a quiet author's alert *beside* the
batch it has in flight (``mesh.outbox``), and waiting for that batch here gave
back what the sender won. Now ordinary content waits only for any earlier batch
that carries trust records (vouches, revocations, node records) or bytes that
claim nothing; such a batch in turn waits for every batch before it. So a vouch
and the alert it enables keep their order whoever relays them, and ordinary
content, whose arrival order the network and the senders' queues decide anyway,
queues behind no backlog.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import mesh
from mesh.interfaces import Item
from protocol import envelope_id
from protocol.envelope import claimed

# Content whose order among peers does not matter. A receipt is one too: it
# enables nothing; counted as a trust record, the receipts every node sends while
# alerts flow made nearly every batch wait for every batch before it, the
# flooder's included (finding 7).
ORDINARY: frozenset[str] = frozenset({"alert", "ack", "receipt", "proposal", "endorsement", "objection"})


def claims(raws: Sequence[bytes], known: Sequence[Item | None]) -> list[mesh.Claim]:
    """What the envelopes not already held (``known`` is None) say about
    themselves; an envelope whose bytes do not even name an author and a type
    makes no claim and is left to verification (which refuses it)."""
    out = []
    for raw, item in zip(raws, known, strict=True):
        if item is not None:
            continue
        claim = claimed(raw)
        if claim is not None:
            out.append(mesh.Claim(envelope_id(raw), *claim))
    return out


def without(
    raws: Sequence[bytes], known: Sequence[Item | None], refused: frozenset[bytes]
) -> tuple[list[bytes], list[Item | None]]:
    """``raws`` and ``known`` with the screened-out envelopes taken out, in order."""
    kept = [
        (raw, item)
        for raw, item in zip(raws, known, strict=True)
        if item is not None or not isinstance(raw, bytes) or envelope_id(raw) not in refused
    ]
    return [raw for raw, _ in kept], [item for _, item in kept]


def orders_all(known: Sequence[Item | None], made: Sequence[mesh.Claim]) -> bool:
    """Whether a batch must keep its place among every peer's batches (``Turns``):
    it carries something other than ordinary content, or bytes that claim nothing."""
    unknown = sum(item is None for item in known)
    return len(made) < unknown or any(claim.kind not in ORDINARY for claim in made)


class Turns:
    """When each batch may be admitted (module docstring): ``take`` returns the
    future to wait for (None: now) and this batch's own turn, which the caller
    completes once the batch is admitted (or given up)."""

    def __init__(self) -> None:
        self._open: set[asyncio.Future[None]] = set()
        self._barrier: asyncio.Future[None] | None = None  # the latest batch that orders all

    def take(self, orders: bool) -> tuple[asyncio.Future[None] | None, asyncio.Future[None]]:
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[None] = loop.create_future()
        waits = {f for f in (self._barrier,) if f is not None and not f.done()}
        if orders:
            waits |= {f for f in self._open if not f.done()}
            self._barrier = turn
        self._open.add(turn)
        turn.add_done_callback(self._ended)
        return _all_of(loop, list(waits)), turn

    def _ended(self, turn: asyncio.Future[None]) -> None:
        self._open.discard(turn)
        if self._barrier is turn:
            self._barrier = None


def _all_of(loop: asyncio.AbstractEventLoop, futures: list[asyncio.Future[None]]) -> asyncio.Future[None] | None:
    """A future done when all of ``futures`` are (None when there are none)."""
    if len(futures) <= 1:
        return futures[0] if futures else None
    together: asyncio.Future[None] = loop.create_future()
    left = [len(futures)]

    def one_done(_: asyncio.Future[None]) -> None:
        left[0] -= 1
        if left[0] == 0 and not together.done():
            together.set_result(None)

    for future in futures:
        future.add_done_callback(one_done)
    return together
