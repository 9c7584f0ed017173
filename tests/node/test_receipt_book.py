"""``node.receipts``: what a node owes (batched, one envelope a second at most) and
how the author counts what it was told."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from node.receipts import OWED_FOR_MS, RECEIPT_EVERY_MS, Batch, ReceiptBook, tally
from protocol import Receipt, fingerprint
from protocol.receipt import RECEIPT_MAX_HELD

T0 = 1_795_000_000_000
A, B, C, D = (bytes([n]) * 32 for n in range(1, 5))


def alert(n: int) -> bytes:
    return n.to_bytes(32, "big")


def test_one_receipt_per_second_whatever_the_alert_rate() -> None:
    book = ReceiptBook()
    for n in range(1000):
        book.owe(A if n % 2 else B, alert(n), T0 + n, now=T0 + n)
    sent: list[tuple[int, Batch]] = []
    now = T0 + 1000
    while book.owed():
        batch = book.next_batch(now)
        if batch is not None:
            assert book.next_batch(now + RECEIPT_EVERY_MS - 1) is None  # nothing more within the second
            sent.append((now, batch))
        now += 250
    times = [at for at, _ in sent]
    assert all(later - earlier >= RECEIPT_EVERY_MS for earlier, later in itertools.pairwise(times))
    assert sum(len(b.held) for _, b in sent) == 1000 and all(len(b.held) <= RECEIPT_MAX_HELD for _, b in sent)
    assert [b.author for _, b in sent[:2]] == [B, A]  # the author waiting longest first, then the next


def test_answered_alerts_are_not_owed_again() -> None:
    book = ReceiptBook()
    book.owe(A, alert(1), T0, now=T0)
    book.owe(A, alert(2), T0, now=T0)
    book.answered([alert(1)])  # a receipt of this node, read back at start
    book.owe(A, alert(1), T0, now=T0)
    batch = book.next_batch(T0)
    assert batch is not None and batch.held == {alert(2): T0}
    assert book.owed() == 0 and book.due_at() is None


def test_what_was_stored_over_a_day_ago_is_not_owed() -> None:
    book = ReceiptBook()
    book.owe(A, alert(1), T0, now=T0 + OWED_FOR_MS)
    assert book.owed() == 0
    book.owe(A, alert(2), T0, now=T0)
    assert book.next_batch(T0 + OWED_FOR_MS) is None and book.owed() == 0


def test_a_batch_put_back_waits_behind_the_others() -> None:
    book = ReceiptBook()
    book.owe(A, alert(1), T0, now=T0)
    book.owe(B, alert(2), T0, now=T0)
    first = book.next_batch(T0)
    assert first is not None and first.author == A
    book.put_back(first)  # A's key is not known yet
    second = book.next_batch(T0 + RECEIPT_EVERY_MS)
    assert second is not None and second.author == B
    again = book.next_batch(T0 + 2 * RECEIPT_EVERY_MS)
    assert again == first


def test_the_author_keeps_the_earliest_time_each_holder_gave() -> None:
    book = ReceiptBook()
    assert book.record(b"r1", B, Receipt.of({alert(1): T0 + 5, alert(2): T0 + 6})) == (alert(1), alert(2))
    book.record(b"r2", B, Receipt.of({alert(1): T0 + 9}))
    book.record(b"r3", C, Receipt.of({alert(1): T0 + 7}))
    assert book.holders(alert(1)) == {B: T0 + 5, C: T0 + 7}
    assert book.named_by(b"r2") == (alert(1),) and book.named_by(b"nothing") == ()


def test_tally_counts_the_expected_names_the_missing_and_the_others() -> None:
    names = {B: "Brigada Norte", C: "Casa de la Memoria", D: "Comité Vecinal"}
    old_c = bytes([9]) * 32  # C rotated: its receipt was signed by its earlier key
    newest = {old_c: C}
    doc = tally({B: T0 + 2, old_c: T0 + 1, A: T0 + 3}, [B, C, D], names, lambda k: newest.get(k, k))
    assert (doc["reached"], doc["of"]) == (2, 3)
    assert [(o["name"], o["stored_at"]) for o in doc["organizations"]] == [
        ("Casa de la Memoria", T0 + 1),
        ("Brigada Norte", T0 + 2),
    ]
    assert doc["missing"] == [{"key": D.hex(), "name": "Comité Vecinal", "fingerprint": fingerprint(D)}]
    assert [o["key"] for o in doc["others"]] == [A.hex()]


@settings(max_examples=100)
@given(st.lists(st.tuples(st.sampled_from([A, B, C]), st.integers(0, 600), st.integers(0, 5000)), max_size=300))
def test_every_owed_alert_is_sent_exactly_once_at_the_pace(owed: list[tuple[bytes, int, int]]) -> None:
    book = ReceiptBook()
    expected: dict[bytes, bytes] = {}
    for author, n, offset in owed:
        if alert(n) not in expected:
            expected[alert(n)] = author
            book.owe(author, alert(n), T0 + offset, now=T0 + offset)
    sent: dict[bytes, bytes] = {}
    last = None
    now = T0 + 5000
    while book.owed():
        batch = book.next_batch(now)
        if batch is not None:
            assert last is None or now - last >= RECEIPT_EVERY_MS
            last = now
            for a in batch.held:
                assert a not in sent
                sent[a] = batch.author
            book.answered(batch.held)
        now += 400
    assert sent == expected
