"""Outbound queues: one batch in flight, backoff that grows and caps, durable catch-up mark."""

from __future__ import annotations

from mesh.interfaces import Item
from mesh.outbox import Pacing, PeerOutbox, SeqLog

from .builders import NOW, alert, key, receipt, rng

PEER = key("peer")
PACING = Pacing(batch_items=3, backoff_base_ms=1_000, backoff_cap_ms=8_000, push_timeout_ms=5_000)


def never(_: Item) -> bool:
    return False


def filled(count: int) -> SeqLog:
    log = SeqLog()
    for seq in range(1, count + 1):
        log.append(seq, alert(key("a"), seq))
    return log


def linked_up(count: int) -> tuple[SeqLog, PeerOutbox]:
    """A log of ``count`` alerts and a fresh outbox whose peer just came up."""
    box = PeerOutbox(PEER, 0, PACING)
    box.link_up(NOW)
    return filled(count), box


def assert_backed_off(delays: list[int], nominals: list[int]) -> None:
    """Each wait lies between half and all of its nominal delay (mesh.backoff's jitter)."""
    for delay, nominal in zip(delays, nominals, strict=True):
        assert nominal // 2 <= delay <= nominal


def accepted_next(box: PeerOutbox, log: SeqLog, now: int) -> int | None:
    """Send the next batch and have the peer accept all of it; the new mark."""
    batch = box.next_batch(log, now, never)
    assert batch is not None
    return box.result(batch.id, True, now, rng())


def test_one_batch_in_flight_and_mark_advances_on_ack() -> None:
    log, box = linked_up(5)
    first = box.next_batch(log, NOW, never)
    assert first is not None and [i.id for i in first.items] == [alert(key("a"), n).id for n in (1, 2, 3)]
    assert box.next_batch(log, NOW, never) is None  # one in flight
    assert box.result(first.id, True, NOW + 10, rng()) == 3
    second = box.next_batch(log, NOW + 10, never)
    assert second is not None and len(second.items) == 2
    assert box.result(second.id, True, NOW + 20, rng()) == 5
    assert not box.pending(log)


def test_backoff_grows_and_caps_and_the_batch_is_resent() -> None:
    log, box = linked_up(2)
    now = NOW
    delays = []
    for _ in range(7):
        batch = box.next_batch(log, now, never)
        assert batch is not None and len(batch.items) == 2  # the same items again
        assert box.result(batch.id, False, now, rng()) is None
        delays.append(box.retry_at - now)
        assert box.next_batch(log, box.retry_at - 1, never) is None  # backing off
        now = box.retry_at
    assert_backed_off(delays, [1000, 2000, 4000, 8000, 8000, 8000, 8000])
    assert box.mark == 0
    assert accepted_next(box, log, now) == 2
    assert box.failures == 0


def test_unanswered_push_times_out_and_stale_results_are_ignored() -> None:
    log, box = linked_up(1)
    batch = box.next_batch(log, NOW, never)
    assert batch is not None
    assert not box.expire(NOW + 4_999, rng())
    assert box.expire(NOW + 5_000, rng())
    assert box.result(batch.id, True, NOW + 5_001, rng()) is None  # too late, already failed
    assert box.mark == 0


def test_rebuild_after_restart_starts_from_the_persisted_mark() -> None:
    log = filled(6)
    before = PeerOutbox(PEER, 0, PACING)
    before.link_up(NOW)
    batch = before.next_batch(log, NOW, never)
    assert batch is not None
    saved = before.result(batch.id, True, NOW, rng())
    assert saved == 3
    after = PeerOutbox(PEER, saved, PACING)  # a restart: only the mark survived
    after.link_up(NOW)
    resumed = after.next_batch(log, NOW, never)
    assert resumed is not None and [i.id for i in resumed.items] == [alert(key("a"), n).id for n in (4, 5, 6)]


def test_skipped_items_advance_the_mark_without_a_push() -> None:
    log, box = linked_up(3)
    assert box.next_batch(log, NOW, lambda _: True) is None
    assert box.settle() == 3


def test_a_far_behind_peer_gets_the_whole_backlog_in_order() -> None:
    log, box = linked_up(500)
    sent: list[bytes] = []
    while (batch := box.next_batch(log, NOW, never)) is not None:
        sent += [i.id for i in batch.items]
        box.result(batch.id, True, NOW, rng())
    assert sent == [alert(key("a"), n).id for n in range(1, 501)]
    assert box.mark == 500


def test_a_partly_deferred_batch_lets_the_queue_flow_and_retries_the_rest_later() -> None:
    log, box = linked_up(9)
    first = box.next_batch(log, NOW, never)
    assert first is not None
    two = alert(key("a"), 2).id
    # The peer took 1 and 3 and deferred 2 for a budget: the mark may only pass 1.
    assert box.result(first.id, True, NOW, rng(), deferred={two}) == 1
    assert box.held == 1 and box.deferrals == 1
    # The rest of the queue does not wait for one author's budget.
    second = box.next_batch(log, NOW, never)
    assert second is not None and [i.id for i in second.items] == [alert(key("a"), n).id for n in (4, 5, 6)]
    assert box.result(second.id, True, NOW, rng()) is None  # 2 still holds the mark at 1
    due = box.wakeup_at(log)
    assert due == NOW  # 7..9 are waiting
    third = box.next_batch(log, NOW, never)
    assert third is not None and two not in [i.id for i in third.items]  # not due yet
    box.result(third.id, True, NOW, rng())
    retry_at = box.wakeup_at(log)
    assert retry_at is not None and NOW + 500 <= retry_at <= NOW + 1_000
    again = box.next_batch(log, retry_at, never)
    assert again is not None and [i.id for i in again.items] == [two]
    assert box.result(again.id, True, retry_at, rng()) == 9
    assert box.held == 0 and box.deferrals == 0 and not box.pending(log)


def test_a_wholly_deferred_batch_backs_the_queue_off_and_comes_first_again() -> None:
    log, box = linked_up(6)
    now = NOW
    delays = []
    for _ in range(3):
        batch = box.next_batch(log, now, never)
        assert batch is not None and [i.id for i in batch.items] == [alert(key("a"), n).id for n in (1, 2, 3)]
        assert box.result(batch.id, True, now, rng(), deferred={i.id for i in batch.items}) is None
        assert box.next_batch(log, box.log_due - 1, never) is None  # backpressure: the queue waits
        delays.append(box.log_due - now)
        now = box.log_due
    assert_backed_off(delays, [1000, 2000, 4000])
    assert box.mark == 0
    assert accepted_next(box, log, now) == 3
    assert box.deferrals == 0


def test_a_queue_jumper_does_not_wait_for_a_wholly_deferred_batch() -> None:
    """Finding 7 (nemesis, seed 27): a batch made only of a flooding author's relayed
    alerts, deferred whole, backed the queue off for seconds, and the next honest
    alert, a queue-jumper, waited out the doubling backoff behind it."""
    log, box = linked_up(3)
    batch = box.next_batch(log, NOW, never)
    assert batch is not None
    box.result(batch.id, True, NOW, rng(), deferred={i.id for i in batch.items})
    honest = alert(key("b"), 1)
    log.append(4, honest)
    assert box.offer(honest, 4)
    jumped = box.next_batch(log, NOW + 1, never)
    assert jumped is not None and [i.id for i in jumped.items] == [honest.id]  # not the backed-off log
    assert box.wakeup_at(log) == jumped.sent_at + PACING.push_timeout_ms
    box.result(jumped.id, True, NOW + 2, rng())
    assert box.wakeup_at(log) == box.log_due > NOW + 2  # the log still waits for its backoff
    assert box.next_batch(log, NOW + 3, never) is None
    resumed = box.next_batch(log, box.log_due, never)
    assert resumed is not None and [i.id for i in resumed.items] == [alert(key("a"), n).id for n in (1, 2, 3)]


def test_a_restart_resends_what_the_peer_deferred() -> None:
    log, box = linked_up(3)
    batch = box.next_batch(log, NOW, never)
    assert batch is not None
    saved = box.result(batch.id, True, NOW, rng(), deferred={alert(key("a"), 3).id})
    assert saved == 2
    after = PeerOutbox(PEER, saved, PACING)  # only the mark survives a restart
    after.link_up(NOW)
    resumed = after.next_batch(log, NOW, never)
    assert resumed is not None and [i.id for i in resumed.items] == [alert(key("a"), 3).id]


def test_queue_jumpers_go_first_and_return_after_failure() -> None:
    log, box = linked_up(3)
    urgent = alert(key("b"), 99)
    assert box.offer(urgent, 100)
    batch = box.next_batch(log, NOW, never)
    assert batch is not None and batch.items[0] == urgent
    box.result(batch.id, False, NOW, rng())
    again = box.next_batch(log, box.retry_at, never)
    assert again is not None and again.items[0] == urgent


def test_link_down_drops_the_batch_in_flight() -> None:
    log, box = linked_up(2)
    batch = box.next_batch(log, NOW, never)
    assert batch is not None
    box.link_down()
    assert box.next_batch(log, NOW, never) is None
    box.link_up(NOW + 1)
    again = box.next_batch(log, NOW + 1, never)
    assert again is not None and again.items == batch.items and again.id != batch.id


def test_hearing_from_the_peer_ends_a_backoff_but_not_a_batch_in_flight() -> None:
    """``heard`` (mesh.PeerHeard): the peer sent us a request, so a queue backing off
    after failed pushes goes now, once until a push works; a batch still in flight
    is left to its answer or timeout, and a queue that never failed is not touched."""
    log, box = linked_up(2)
    now = NOW
    for _ in range(4):
        batch = box.next_batch(log, now, never)
        assert batch is not None
        box.result(batch.id, False, now, rng())
        now = box.retry_at
    now -= 1
    assert box.next_batch(log, now, never) is None  # backing off, seconds to go
    box.heard(now)
    again = box.next_batch(log, now, never)
    assert again is not None and len(again.items) == 2  # at once, the same items
    box.heard(now)  # in flight: nothing changes
    assert box.in_flight is again and box.next_batch(log, now, never) is None
    box.result(again.id, False, now, rng())
    assert box.failures == 5 and box.retry_at - now >= PACING.backoff_cap_ms // 2  # still counted
    box.heard(now + 1)  # once until a push works: the peer's requests do not drive our pushes
    assert box.next_batch(log, now + 1, never) is None
    now = box.retry_at
    again = box.next_batch(log, now, never)
    assert again is not None and box.result(again.id, True, now, rng()) == 2
    quiet = PeerOutbox(PEER, 0, PACING)
    quiet.link_up(NOW)
    quiet.heard(NOW + 5)
    assert quiet.failures == 0 and quiet.retry_at == NOW


def test_a_queue_jumper_goes_beside_the_batch_in_flight_and_never_moves_the_mark() -> None:
    """Finding 7: an honest alert offered while a log batch is in flight is pushed
    at once beside it. A failed or timed-out push beside the log offers it again
    without rewinding the log; once delivered, the log walk does not send it again."""
    log, box = linked_up(6)
    first = box.next_batch(log, NOW, never)
    assert first is not None and box.next_beside(NOW) is None  # nothing to jump
    honest = alert(key("honest"), 99)
    log.append(7, honest)
    box.offer(honest, 7)
    beside = box.next_beside(NOW + 1)
    assert beside is not None and beside.items == (honest,) and box.next_beside(NOW + 1) is None  # one at a time
    assert box.result(beside.id, False, NOW + 2, rng()) is None  # failed: offered again, the log untouched
    assert box.cursor == first.upto and box.in_flight is first
    again = box.next_beside(box.retry_at)
    assert again is not None and again.items == (honest,)
    assert box.expire(NOW + 2 + PACING.push_timeout_ms + 10_000, rng())  # both time out
    assert box.in_flight is None and box.beside is None and box.cursor == 0
    sent: list[bytes] = []
    now = box.retry_at
    while (batch := box.next_batch(log, now, never)) is not None:
        sent += [i.id for i in batch.items]
        if beside := box.next_beside(now):
            sent += [i.id for i in beside.items]
            box.result(beside.id, True, now, rng())
        box.result(batch.id, True, now, rng())
    assert sorted(sent) == sorted(i.id for _, i in log.after(0)) and box.mark == 7  # each once


def test_a_queue_jumper_delivered_beside_the_log_is_skipped_when_the_log_reaches_it() -> None:
    log, box = linked_up(3)
    first = box.next_batch(log, NOW, never)
    assert first is not None
    honest = alert(key("honest"), 99)
    log.append(4, honest)
    box.offer(honest, 4)
    beside = box.next_beside(NOW)
    assert beside is not None
    assert box.result(beside.id, True, NOW + 1, rng(), deferred=()) is None  # the mark waits for the log
    assert box.result(first.id, True, NOW + 2, rng()) == 3
    assert box.next_batch(log, NOW + 3, never) is None and box.settle() == 4  # walked past, not resent


# -- receipts wait for company (Pacing.linger_ms) ------------------------------------------
LINGER = Pacing(batch_items=3, backoff_base_ms=1_000, push_timeout_ms=5_000, linger_ms=500)


def lingering(*items: Item) -> tuple[SeqLog, PeerOutbox]:
    log = SeqLog()
    for seq, item in enumerate(items, start=1):
        log.append(seq, item)
    box = PeerOutbox(PEER, 0, LINGER)
    box.link_up(NOW)
    return log, box


def test_receipts_alone_wait_for_the_linger_then_go_together() -> None:
    log, box = lingering(receipt(key("r1")), receipt(key("r2")))
    assert box.next_batch(log, NOW, never) is None
    assert box.wakeup_at(log) == NOW + 500  # the runner wakes the mesh then
    assert box.next_batch(log, NOW + 499, never) is None
    batch = box.next_batch(log, NOW + 500, never)
    assert batch is not None and [i.kind for i in batch.items] == ["receipt", "receipt"]
    assert box.result(batch.id, True, NOW + 510, rng()) == 2  # the mark covers them as usual


def test_an_alert_takes_the_waiting_receipts_along_at_once() -> None:
    log, box = lingering(receipt(key("r1")))
    assert box.next_batch(log, NOW, never) is None
    log.append(2, alert(key("a"), 1))
    batch = box.next_batch(log, NOW + 10, never)
    assert batch is not None and [i.kind for i in batch.items] == ["receipt", "alert"]
    assert box.linger_until == 0


def test_a_queue_jumper_takes_the_waiting_receipts_along() -> None:
    jumper = alert(key("a"), 1)
    waiting = receipt(key("r1"))
    log, box = lingering(waiting, jumper)
    assert box.offer(jumper, 2)
    batch = box.next_batch(log, NOW, never)
    assert batch is not None and batch.items == (jumper, waiting)
    assert box.result(batch.id, True, NOW + 5, rng()) == 2


def test_a_full_batch_of_receipts_does_not_wait() -> None:
    log, box = lingering(*(receipt(key(f"r{n}")) for n in range(3)))
    batch = box.next_batch(log, NOW, never)
    assert batch is not None and len(batch.items) == 3


def test_receipts_skipped_for_this_peer_do_not_make_an_alert_wait() -> None:
    mine = receipt(key("r1"))
    log, box = lingering(mine, alert(key("a"), 1))
    batch = box.next_batch(log, NOW, lambda item: item.id == mine.id)
    assert batch is not None and [i.kind for i in batch.items] == ["alert"]


def test_without_a_linger_receipts_go_at_once() -> None:
    log = SeqLog()
    log.append(1, receipt(key("r1")))
    box = PeerOutbox(PEER, 0, PACING)
    box.link_up(NOW)
    assert box.next_batch(log, NOW, never) is not None
