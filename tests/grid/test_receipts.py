"""Delivery receipts on real nodes under the grid's fake clock (docs/protocol.md
§6.7): a burst of alerts is answered by a few batched receipts, never more than
one a second per node, one envelope for every author; a node that stored alerts and stopped before answering
answers them after its restart; a relay that cannot read a restricted alert
does not answer it."""

from __future__ import annotations

import itertools

from node import incidents
from node.receipts import RECEIPT_EVERY_MS
from node.store import StoredEnvelope
from protocol.receipt import RECEIPT_MAX_HELD
from tests.grid.grid import TICK_MS, Grid


def receipts_by(grid: Grid, holder: str, at: str) -> list[StoredEnvelope]:
    """The receipt envelopes ``holder`` signed that node ``at`` stores."""
    key = grid[holder].service.key
    return [r for r in grid[at].service.store.iter_all() if r.type == "receipt" and r.author == key]


def send(grid: Grid, name: str, headline: str, **fields: object) -> bytes:
    doc = {"regions": ["MX-OAX"], "severity": "severe", "headline": headline} | fields
    return bytes.fromhex(incidents.send_alert(grid[name].service, doc)["id"])


async def three_in_a_line(grid: Grid) -> None:
    for name in ("a", "b", "c"):
        await grid.add(name, delivery_receipts=True)
    await grid.pair("a", "b")
    await grid.pair("b", "c")


async def test_a_burst_is_answered_by_few_receipts_at_most_one_a_second(grid: Grid) -> None:
    await three_in_a_line(grid)
    a = grid["a"].service
    burst = [send(grid, "a", f"Retén en la carretera {n}") for n in range(RECEIPT_MAX_HELD + 44)]
    await grid.settle()
    await grid.advance(4 * TICK_MS)
    for alert in burst:
        receipts = a.receipts_of(a.store.get(alert))  # type: ignore[arg-type]
        assert receipts is not None and (receipts["reached"], receipts["of"]) == (2, 2), receipts
    for holder in ("b", "c"):
        sent = receipts_by(grid, holder, "a")
        assert 2 <= len(sent) <= 4  # 300 alerts (256 at most to a receipt), answered as they came
        times = sorted(r.created for r in sent)
        assert all(later - earlier >= RECEIPT_EVERY_MS for earlier, later in itertools.pairwise(times))


async def test_alerts_stored_before_a_stop_are_answered_after_the_restart(grid: Grid) -> None:
    await three_in_a_line(grid)
    first = send(grid, "a", "Amenaza a una periodista")
    await grid.settle()  # b and c store it; neither has ticked, so neither has answered
    assert receipts_by(grid, "b", "b") == []
    await grid.stop("b")
    await grid.start("b")
    await grid.advance(2 * TICK_MS)
    a = grid["a"].service
    receipts = a.receipts_of(a.store.get(first))  # type: ignore[arg-type]
    assert receipts is not None and receipts["reached"] == 2
    before = len(receipts_by(grid, "b", "b"))
    await grid.stop("b")
    await grid.start("b")  # answered already: its own receipt, read back, says so
    await grid.advance(2 * TICK_MS)
    assert len(receipts_by(grid, "b", "b")) == before == 1


async def test_only_the_recipients_of_a_restricted_alert_answer_it(grid: Grid) -> None:
    await three_in_a_line(grid)
    sealed = send(grid, "a", "Casa segura: cambio de ubicación", scope="restricted", to=["b"])
    await grid.settle()
    await grid.advance(2 * TICK_MS)
    assert grid["c"].service.store.get(sealed) is not None  # c relays the ciphertext …
    assert receipts_by(grid, "c", "c") == []  # … and, not a recipient, answers nothing
    a = grid["a"].service
    receipts = a.receipts_of(a.store.get(sealed))  # type: ignore[arg-type]
    assert receipts is not None
    assert (receipts["reached"], receipts["of"], [o["name"] for o in receipts["organizations"]]) == (1, 1, ["b"])
    b = grid["b"].service
    assert b.receipts_of(b.store.get(sealed)) is None  # type: ignore[arg-type]  # not b's alert: not b's business


async def test_one_receipt_envelope_answers_every_author_and_each_reads_its_own(grid: Grid) -> None:
    """Receipts flood the horizon like alerts, so the mesh pays per envelope: b
    answers a's and c's alerts of the same moment in one, sealed to both, and
    each author counts only its own alerts from it."""
    await three_in_a_line(grid)
    from_a = send(grid, "a", "Allanamiento en la radio comunitaria")
    from_c = send(grid, "c", "Corte de ruta en el cruce")
    await grid.settle()
    await grid.advance(2 * TICK_MS)
    both = receipts_by(grid, "b", "b")
    assert len(both) == 1
    for name, alert, other, other_name in (("a", from_a, from_c, "c"), ("c", from_c, from_a, "a")):
        service = grid[name].service
        receipts = service.receipts_of(service.store.get(alert))  # type: ignore[arg-type]
        assert receipts is not None and {o["name"] for o in receipts["organizations"]} == {"b", other_name}
        assert service.receipts.holders(other) == {}  # the other author's pairs are not kept
