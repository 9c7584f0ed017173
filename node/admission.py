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
"""

from __future__ import annotations

from collections.abc import Sequence

import mesh
from mesh.interfaces import Item
from protocol import envelope_id
from protocol.envelope import claimed


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
