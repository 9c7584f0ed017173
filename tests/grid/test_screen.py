"""A relay screens a push before checking its signatures (node.admission, issue 15
finding 7): envelopes past their author's spent budget are deferred without a
signature check, and forged envelopes under an honest author's key do not spend
that author's budget."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from mesh import Limits
from node.transport import TransportError
from node.verifier import Verdict
from protocol import Alert, Area, Identity, codec, envelope_id, signing
from protocol.envelope import VERSION
from tests.grid.grid import Grid

BURST = int(Limits().author_burst)


def alerts(author: Identity, count: int, now: int, first: int = 0) -> list[bytes]:
    """``count`` valid alerts by ``author`` (signed directly: ``sign_envelope``
    would verify each one twice)."""
    body = Alert(headline="Retén en la carretera", areas=(Area("MX-OAX"),), severity="severe").to_wire()
    raws = []
    for n in range(first, first + count):
        doc = {"a": author.sign_public, "b": body, "c": now - n, "t": "alert", "v": VERSION, "x": now + 3_600_000}
        sig = signing.sign(author.signing_key, signing.PURPOSE_ENVELOPE, codec.encode(doc))
        raws.append(codec.encode(doc | {"s": sig}))
    return raws


def counting(grid: Grid, name: str) -> list[int]:
    """How many envelopes each call of ``name``'s verifier was given."""
    service = grid[name].service
    real, calls = service.verifier.verify, []

    async def verify(raws: Sequence[bytes], now: int, *, alone: bool = False) -> list[Verdict]:
        calls.append(len(raws))
        return await real(raws, now, alone=alone)

    service.verifier.verify = verify  # type: ignore[method-assign]
    return calls


async def test_a_push_past_its_authors_budget_is_deferred_without_a_signature_check(grid: Grid) -> None:
    await grid.add("a")
    await grid.add("b")
    await grid.pair("a", "b")
    a, b = grid["a"], grid["b"]
    calls = counting(grid, "b")
    raws = alerts(a.identity, BURST + 40, grid.clock())
    first = await b.service.relay(raws[: BURST - 10], a.key)
    assert (first.accepted, first.deferred) == (BURST - 10, ())
    second = await b.service.relay(raws[BURST - 10 :], a.key)
    took = second.accepted  # what was left of a's budget (pairing spent a little of it)
    assert 0 < took <= 10
    assert list(second.deferred) == [envelope_id(raw) for raw in raws[BURST - 10 + took :]]  # a sends them again
    assert calls == [BURST - 10, took]  # what was past the budget was never verified
    third = await b.service.relay(raws[BURST:], a.key)
    assert third.accepted == 0 and len(third.deferred) == 40 and calls[-1] == 0
    for raw in raws[BURST - 10 + took :]:
        assert b.store.get(envelope_id(raw)) is None
    rejected = b.service.counters.rejected
    assert rejected.get("author-rate-limited", 0) + rejected.get("voucher-rate-limited", 0) == 90 - took


async def test_forged_envelopes_under_an_honest_authors_key_do_not_spend_its_budget(grid: Grid) -> None:
    """A forger (c) pushes, under a's key, more envelopes than a's budget holds,
    every signature flipped: those the screen lets through are verified and
    refused, blaming c, the rest are deferred to c; and a's own alerts, relayed
    afterwards, are all taken: the forgeries spent none of a's budget."""
    for name in ("a", "b", "c"):
        await grid.add(name)
    await grid.pair("a", "b")
    await grid.pair("b", "c")
    a, b, c = grid["a"], grid["b"], grid["c"]
    now = grid.clock()
    forged = [bad_signature_raw(raw) for raw in alerts(a.identity, BURST + 20, now, first=10_000)]
    outcome = await b.service.relay(forged, c.key)
    room = outcome.invalid  # a's budget at b (pairing spent a little of it): let through, and refused
    assert outcome.accepted == 0 and BURST - 10 < room <= BURST
    assert len(outcome.deferred) == BURST + 20 - room
    assert b.service.cut_off(c.key)  # blamed for what it sent
    address = c.service.peer_address(b.key)
    assert address is not None
    with pytest.raises(TransportError) as refused:  # and now refused at the door, its body unread
        await c.service.client.call(address, "/mesh/v1/push", {"e": forged[:1]})
    assert refused.value.status == 429 and "cut off" in str(refused.value)
    assert b.service.counters.rejected.get("request-cut-off") == 1
    honest = alerts(a.identity, room, now)
    outcome = await b.service.relay(honest, a.key)
    assert (outcome.accepted, outcome.deferred) == (room, ())


def bad_signature_raw(raw: bytes) -> bytes:
    doc = codec.decode(raw)
    assert isinstance(doc, dict)
    sig = bytearray(doc["s"])
    sig[7] ^= 0x01
    return codec.encode(doc | {"s": bytes(sig)})



async def test_a_peer_sending_invalid_signatures_is_cut_off_while_throttled(grid: Grid) -> None:
    """The nemesis's forger: one valid alert and three with a flipped signature a
    push. Throttled after two pushes, it is still verified (not screened out), so
    the next ones cut it off; found when a first version of the screen refused a
    throttled peer's claims unverified and the forger stayed throttled forever."""
    await grid.add("b")
    await grid.add("c")
    await grid.pair("b", "c")
    b, c = grid["b"], grid["c"]
    now = grid.clock()
    for push in range(6):
        raws = alerts(c.identity, 4, now, first=4 * push)
        await b.service.relay([raws[0], *(bad_signature_raw(raw) for raw in raws[1:])], c.key)
        if b.service.cut_off(c.key):
            break
    assert b.service.cut_off(c.key) and push == 3  # 12 invalid signatures
