"""node.admission: the claims a push is screened by, and the order batches are
admitted in (``Turns``: per peer, trust records in order for everyone)."""

from __future__ import annotations

import asyncio

from mesh import Claim, Item
from node.admission import Turns, claims, orders_all, without
from protocol import Identity, Vouch, envelope_id, sign_envelope
from tests.grid.test_screen import alerts

X, Y = b"x" * 32, b"y" * 32
NOW = 1_700_000_000_000


async def test_ordinary_content_waits_for_no_other_batch_not_even_its_own_peers() -> None:
    """Finding 7: a peer pushes a quiet author's alert beside its flood batch still
    in verification; waiting for that batch would give back what the sender won."""
    turns = Turns()
    before, flood = turns.take(orders=False)
    assert before is None
    before_x, honest_x = turns.take(orders=False)
    before_y, honest_y = turns.take(orders=False)
    assert before_x is None and before_y is None
    for turn in (flood, honest_x, honest_y):
        turn.set_result(None)


async def test_a_batch_with_trust_records_keeps_its_place_among_everyones() -> None:
    turns = Turns()
    _, from_x = turns.take(orders=False)
    _, from_y = turns.take(orders=False)
    before_vouch, vouch = turns.take(orders=True)  # e.g. a vouch, relayed by X
    before_alert, alert = turns.take(orders=False)  # the alert it enables, relayed by Y
    assert before_vouch is not None and before_alert is not None
    from_y.set_result(None)
    await asyncio.sleep(0)
    assert not before_vouch.done()  # X's earlier batch is still under way
    from_x.set_result(None)
    await asyncio.sleep(0)
    assert before_vouch.done() and not before_alert.done()  # the alert still waits for the vouch
    vouch.set_result(None)
    await asyncio.sleep(0)
    assert before_alert.done()
    alert.set_result(None)
    assert turns.take(orders=False)[0] is None  # nothing open: nothing to wait for


def test_claims_are_read_without_a_signature_check_and_known_copies_make_none() -> None:
    author = Identity.from_random(bytes(64))
    raws = alerts(author, 3, NOW)
    vouch = sign_envelope(author, Vouch(subject=X, enc=Y, name="Ficticia"), created=NOW, expires=0).raw
    known: list[Item | None] = [None, Item(envelope_id(raws[1]), NOW, 0, author.sign_public, "alert", raws[1]), None]
    made = claims([*raws, vouch, b"\x93not an envelope"], [*known, None, None])
    assert made == [  # with the creation time each names (a range fetch's claims pass by it)
        Claim(envelope_id(raws[0]), author.sign_public, "alert", NOW),
        Claim(envelope_id(raws[2]), author.sign_public, "alert", NOW - 2),
        Claim(envelope_id(vouch), author.sign_public, "vouch", NOW),
    ]
    assert orders_all([None, None], made[:2]) is False
    assert orders_all([None, None, None], made) is True  # a vouch
    assert orders_all([None, None, None], made[:2]) is True  # bytes that claim nothing
    receipt = Claim(b"r" * 32, author.sign_public, "receipt")
    assert orders_all([None, None, None], [*made[:2], receipt]) is False  # bookkeeping, not trust
    kept, kept_known = without([*raws], known, frozenset({envelope_id(raws[2])}))
    assert kept == raws[:2] and kept_known == known[:2]
