"""``node.receipts``: what a node owes (batched for every author, one envelope a
second at most, fewer while alerts keep coming) and how the author counts what
it was told."""

from __future__ import annotations

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from node.receipts import (
    MAX_AUTHORS,
    OWED_FOR_MS,
    RECEIPT_EVERY_MS,
    RECEIPT_MAX_EVERY_MS,
    Batch,
    ReceiptBook,
    tally,
)
from protocol import Receipt, fingerprint
from protocol.receipt import RECEIPT_MAX_HELD

T0 = 1_795_000_000_000
A, B, C, D = (bytes([n]) * 32 for n in range(1, 5))


def alert(n: int) -> bytes:
    return n.to_bytes(32, "big")


class Fixed(random.Random):
    """A "random" draw that is always the same, for exact times."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


NO_SPREAD = Fixed(0.0)


def test_one_receipt_answers_every_author_and_the_pace_slows_while_alerts_keep_coming() -> None:
    book = ReceiptBook(NO_SPREAD)
    sent: list[tuple[int, Batch]] = []
    now = T0
    for n in range(400):  # an alert every 100 ms for 40 s, from two authors
        book.owe(A if n % 2 else B, alert(n), now, now=now)
        batch = book.next_batch(now)
        if batch is not None:
            sent.append((now, batch))
        now += 100
    times = [at for at, _ in sent]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert times[0] == T0  # the first alert is answered at once (with no random spread)
    assert gaps[:4] == [1000, 2000, 4000, 8000] and set(gaps[4:]) == {RECEIPT_MAX_EVERY_MS}
    assert all(set(b.authors) == {A, B} for _, b in sent[1:])  # one envelope for both authors
    assert len(sent) < 10 and all(len(b.held) <= RECEIPT_MAX_HELD for _, b in sent)


def test_nodes_answering_the_same_alerts_spread_their_receipts_over_each_wait() -> None:
    """Every node stores an alert within milliseconds of the others: receipts on
    the same clock would reach every node as one wave. Each wait is drawn: the
    first within a second, the next ones between the wait and half as long again."""
    firsts = []
    for seed in range(20):
        book = ReceiptBook(random.Random(seed))
        times = []
        now = T0
        for n in range(300):  # an alert every 100 ms for 30 s
            book.owe(A, alert(n), now, now=now)
            if book.next_batch(now) is not None:
                times.append(now)
            now += 100
        firsts.append(times[0])
        assert T0 <= times[0] <= T0 + RECEIPT_EVERY_MS  # the next 100 ms step after the draw
        every = RECEIPT_EVERY_MS
        for earlier, later in itertools.pairwise(times):
            assert every <= later - earlier <= every * 3 // 2 + 100
            every = min(2 * every, RECEIPT_MAX_EVERY_MS)
    assert len(set(firsts)) >= 8  # not one wave (ten 100 ms steps in the first second)


def test_after_a_quiet_spell_the_next_alert_is_answered_at_once() -> None:
    book = ReceiptBook(NO_SPREAD)
    now = T0
    for n in range(40):  # a burst: the pace slows down
        book.owe(A, alert(n), now, now=now)
        book.next_batch(now)
        now += 500
    while book.owed():
        book.next_batch(now)
        now += 500
    quiet = now + 2 * RECEIPT_MAX_EVERY_MS
    book.owe(A, alert(99), quiet, now=quiet)
    first = book.next_batch(quiet)
    assert first is not None and list(first.held) == [alert(99)]
    book.owe(A, alert(100), quiet + 10, now=quiet + 10)
    assert book.next_batch(quiet + RECEIPT_EVERY_MS - 1) is None
    assert book.next_batch(quiet + RECEIPT_EVERY_MS) is not None  # the shortest wait again


def test_a_restricted_alert_is_answered_only_to_its_own_author() -> None:
    """Another author must not learn that this node is a recipient of A's
    restricted alert: that pair travels in a receipt sealed to A alone."""
    book = ReceiptBook(NO_SPREAD)
    book.owe(A, alert(1), T0, now=T0, restricted=True)
    book.owe(B, alert(2), T0 + 1, now=T0 + 1)
    book.owe(A, alert(3), T0 + 2, now=T0 + 2)
    first = book.next_batch(T0 + 5)
    assert first is not None and first.authors == (A,) and set(first.held) == {alert(1), alert(3)}
    second = book.next_batch(T0 + 5 + RECEIPT_EVERY_MS)
    assert second is not None and second.authors == (B,) and set(second.held) == {alert(2)}


def test_a_receipt_is_sealed_to_at_most_as_many_authors_as_a_seal_allows() -> None:
    book = ReceiptBook(NO_SPREAD)
    authors = [n.to_bytes(32, "big") for n in range(1, 101)]
    for n, author in enumerate(authors):
        book.owe(author, alert(n), T0 + n, now=T0 + n)
    first = book.next_batch(T0 + 200)
    assert first is not None and first.authors == tuple(authors[:MAX_AUTHORS])
    rest = book.next_batch(T0 + 200 + RECEIPT_EVERY_MS)
    assert rest is not None and rest.authors == tuple(authors[MAX_AUTHORS:]) and book.owed() == 0


def test_answered_alerts_are_not_owed_again() -> None:
    book = ReceiptBook(NO_SPREAD)
    book.owe(A, alert(1), T0, now=T0)
    book.owe(A, alert(2), T0, now=T0)
    book.answered([alert(1)])  # a receipt of this node, read back at start
    book.owe(A, alert(1), T0, now=T0)
    batch = book.next_batch(T0)
    assert batch is not None and batch.held == {alert(2): T0}
    assert book.owed() == 0 and book.due_at() is None


def test_what_was_stored_over_a_day_ago_is_not_owed() -> None:
    book = ReceiptBook(NO_SPREAD)
    book.owe(A, alert(1), T0, now=T0 + OWED_FOR_MS)
    assert book.owed() == 0
    book.owe(A, alert(2), T0, now=T0)
    assert book.next_batch(T0 + OWED_FOR_MS) is None and book.owed() == 0


def test_a_batch_put_back_is_owed_again_in_its_place() -> None:
    book = ReceiptBook(NO_SPREAD)
    book.owe(A, alert(1), T0, now=T0)
    book.owe(B, alert(2), T0 + 1, now=T0 + 1)
    first = book.next_batch(T0 + 2)
    assert first is not None and first.authors == (A, B)
    book.put_back(first.of_authors([A]))  # A's key is not known yet; B's part went
    again = book.next_batch(T0 + 2 + RECEIPT_EVERY_MS)
    assert again is not None and again.held == {alert(1): T0} and book.owed() == 0


def test_the_author_keeps_the_earliest_time_each_holder_gave() -> None:
    book = ReceiptBook(NO_SPREAD)
    book.authored(alert(1))
    book.authored(alert(2))
    assert book.record(b"r1", B, Receipt.of({alert(1): T0 + 5, alert(2): T0 + 6})) == (alert(1), alert(2))
    book.record(b"r2", B, Receipt.of({alert(1): T0 + 9}))
    book.record(b"r3", C, Receipt.of({alert(1): T0 + 7}))
    assert book.holders(alert(1)) == {B: T0 + 5, C: T0 + 7}
    assert book.named_by(b"r2") == (alert(1),) and book.named_by(b"nothing") == ()


def test_pairs_for_other_authors_alerts_are_not_kept() -> None:
    """A receipt answering several authors names their alerts too: only this
    node's own are kept, live; at start, once its own alerts are known."""
    book = ReceiptBook(NO_SPREAD)
    book.authored(alert(1))
    assert book.record(b"r1", B, Receipt.of({alert(1): T0, alert(2): T0})) == (alert(1),)
    assert book.holders(alert(2)) == {}
    starting = ReceiptBook(NO_SPREAD)
    assert starting.record(b"r1", B, Receipt.of({alert(1): T0, alert(3): T0}), starting=True) == (alert(1), alert(3))
    starting.owe(A, alert(3), T0, now=T0)  # read under a key not yet known as this node's
    starting.keep_only({alert(3)})
    assert starting.holders(alert(1)) == {} and starting.holders(alert(3)) == {B: T0}
    assert starting.named_by(b"r1") == (alert(3),) and starting.owed() == 0


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
    book = ReceiptBook(NO_SPREAD)
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
                sent[a] = batch.owed[a].author
            book.answered(batch.held)
        now += 400
    assert sent == expected
