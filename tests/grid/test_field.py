"""Field safety on the grid (issue 16), through the one desk entry point the
phone page and SMS both call (``node.response.field``), deadlines driven by the
fake clock: a duress PIN checks in exactly like the PIN and raises exactly one
silent severe alert, sealed to the check-in's recipients; an SOS raises a
sealed severe alert at once with its location; taps are dated by the tap,
within the check-in's window; a retried tap acts once; standing links and phone
numbers find their holder. The page over real HTTP is tests/browser/test_phone.py."""

from __future__ import annotations

from typing import Any

import pytest

from node.incidents import list_alerts
from node.response.field import FieldDesk, FieldError, Holder
from node.response.pins import PinError
from tests.grid.grid import Grid, GridNode

HOUR_MS = 3_600_000


def field_alerts(node: GridNode) -> list[dict[str, Any]]:
    return [x for x in list_alerts(node.service, region=None) if x.get("event") in ("threat", "other")]


async def three(grid: Grid) -> tuple[GridNode, GridNode, GridNode, FieldDesk]:
    """A relays between B (the organization) and C (the ally a check-in alerts)."""
    a, b, c = [await grid.add(name) for name in ("a", "b", "c")]
    await grid.pair("a", "b")
    await grid.pair("b", "c")
    desk = b.service.desk
    desk.add_responder("Ana", "responder", [], None)
    desk.field.duress_delay_s = (0.0, 0.0)  # the grid's settle waits for it either way
    return a, b, c, desk.field


def holder(field: FieldDesk, token: str) -> Holder:
    found = field.holder_by_token(token)
    assert found is not None
    return found


async def test_duress_checks_in_like_the_pin_and_raises_one_sealed_alert(grid: Grid) -> None:
    a, b, c, field = await three(grid)
    plan, token = field.checkins.start(
        "Lucía",
        "MX-OAX",
        interval_ms=HOUR_MS,
        grace_ms=600_000,
        note="",
        to=["c"],
        pin="4821",
        duress_pin="9153",
    )
    tap = grid.clock.now
    await grid.advance(5_000)
    normal = field.check_in(holder(field, token), "4821", tap + 1_000)
    await grid.settle()
    assert normal.outcome == "checked-in" and normal.at == tap + 1_000 and not field_alerts(c)
    duress = field.check_in(holder(field, token), "9153", tap + 1_000)
    assert (duress.outcome, duress.at, duress.reason) == (normal.outcome, normal.at, normal.reason)
    assert duress.holder.next_deadline == normal.holder.next_deadline == tap + 1_000 + HOUR_MS
    await grid.settle()
    (alert,) = field_alerts(c)
    assert alert["headline"] == "Duress: Lucía checked in with their duress PIN"
    assert alert["sealed"] and alert["severity"] == "severe" and len(field_alerts(b)) == 1
    assert not field_alerts(a) and a.store.get(bytes.fromhex(alert["id"])) is not None  # A relays ciphertext
    escalation = b.service.desk.escalation_json(alert["id"])
    assert escalation is not None and escalation["state"] in ("paging", "exhausted")
    await grid.advance(60_000, step_ms=10_000)
    assert len(field_alerts(c)) == 1  # exactly one, however long

    wrong = field.check_in(holder(field, token), "0000", tap + 2_000)
    missing = field.check_in(holder(field, token), None, tap + 2_000)
    assert wrong.outcome == missing.outcome == "wrong-pin" and not wrong.acted
    assert field.checkins.plans()[0]["last_ok"] == tap + 1_000  # a refused tap records nothing
    assert plan.id == field.checkins.plans()[0]["id"]


async def test_a_tap_is_dated_by_the_tap_within_the_window(grid: Grid) -> None:
    b = await grid.add("b")
    field = b.service.desk.field
    started = grid.clock.now
    _plan, token = field.checkins.start(
        "Equipo Sur", "GT", interval_ms=HOUR_MS, grace_ms=60_000, note="", to=[]
    )
    await grid.advance(30 * 60_000, step_ms=60_000)
    now = grid.clock.now
    answer = field.check_in(holder(field, token), None, now - 10 * 60_000)  # sent late: dated by the tap
    assert answer.at == now - 10 * 60_000 and answer.holder.next_deadline == answer.at + HOUR_MS
    backdated = field.check_in(holder(field, token), None, started - 24 * HOUR_MS)  # a hostile page
    assert backdated.at == answer.at  # never before the last check-in (nor before the plan began)
    future = field.check_in(holder(field, token), None, now + HOUR_MS)
    assert future.at == now  # never after now


async def test_a_retried_tap_acts_once(grid: Grid) -> None:
    _a, _b, c, field = await three(grid)
    _plan, token = field.checkins.start(
        "Lucía", "MX-OAX", interval_ms=HOUR_MS, grace_ms=60_000, note="", to=["c"]
    )
    first = field.sos(holder(field, token), None, "", None, grid.clock.now, tap_id="t1")
    await grid.advance(1_000)
    again = field.sos(holder(field, token), None, "", None, grid.clock.now, tap_id="t1")
    await grid.settle()
    assert again.at == first.at and again.outcome == "help-asked" and len(field_alerts(c)) == 1


async def test_sos_with_location_is_sealed_to_the_recipients_at_once(grid: Grid) -> None:
    a, b, c, field = await three(grid)
    _plan, token = field.checkins.start(
        "Lucía",
        "MX-OAX",
        deadline=grid.clock.now + HOUR_MS,
        grace_ms=60_000,
        note="",
        to=["c"],
        pin="4821",
        duress_pin="9153",
    )
    answer = field.sos(
        holder(field, token),
        None,
        "Two cars follow us",
        (17_065_432, -96_723_456),
        grid.clock.now,
        accuracy_m=25,
    )
    assert answer.outcome == "help-asked" and answer.holder.sos_at == answer.at
    await grid.settle()
    (alert,) = field_alerts(c)
    assert alert["headline"] == "SOS: Lucía asks for help" and alert["severity"] == "severe"
    assert alert["description"] == "Two cars follow us"
    assert alert["areas"][0]["circle"] == [17_065_432, -96_723_456, 25]
    assert not field_alerts(a) and len(field_alerts(b)) == 1
    under = field.sos(holder(field, token), "9153", "", None, grid.clock.now)
    wrong = field.sos(
        holder(field, token), "1111", "", None, grid.clock.now
    )  # a wrong PIN never stops an SOS
    await grid.settle()
    assert under.outcome == wrong.outcome == "help-asked"
    assert sorted(x["headline"] for x in field_alerts(c)) == [
        "SOS under duress: Lucía asks for help",
        "SOS: Lucía asks for help",
        "SOS: Lucía asks for help",
    ]
    with pytest.raises(FieldError, match="location"):
        field.sos(holder(field, token), None, "", (91_000_000, 0), grid.clock.now)


async def test_standing_links_and_phone_numbers(grid: Grid) -> None:
    _a, _b, c, field = await three(grid)
    field.add_person("Rosa", "+50255501234", "es")
    row, token = field.link("Rosa", pin="1234", duress_pin="5678", to=["c"], region="GT")
    again, same = field.link("Rosa")
    assert same == token and again.pin == row.pin and again.region == "GT"  # the same link until revoked
    by_phone = field.holder_by_phone("+50255501234")
    assert by_phone is not None and by_phone.kind == "link" and by_phone.lang == "es"
    assert field.check_in(holder(field, token), "1234", grid.clock.now).outcome == "checked-in"
    field.check_in(holder(field, token), "5678", grid.clock.now)
    await grid.settle()
    (alert,) = field_alerts(c)
    assert (
        alert["headline"] == "Duress: Rosa checked in with their duress PIN"
        and alert["areas"][0]["region"] == "GT"
    )
    _plan, plan_token = field.checkins.start(
        "Rosa", "GT", interval_ms=HOUR_MS, grace_ms=60_000, note="", to=[]
    )
    running = field.holder_by_phone("+50255501234")
    assert running is not None and running.kind == "plan" and running.lang == "es"  # her check-in first
    field.revoke("Rosa")
    assert field.holder_by_token(token) is None and field.holder_by_token(plan_token) is not None
    assert field.holder_by_phone("+50200000000") is None
    with pytest.raises(FieldError, match="phone"):
        field.add_person("Mara", "5551234", "es")


@pytest.mark.parametrize(
    ("pin", "duress", "says"),
    [
        ("12", "", "4 to 8 digits"),
        ("1234", "1234", "differ"),
        ("", "1234", "--pin"),
        ("1234", "56789", "as many"),
    ],
)
async def test_pins_that_cannot_work_are_refused(grid: Grid, pin: str, duress: str, says: str) -> None:
    b = await grid.add("b")
    with pytest.raises(PinError, match=says):
        b.service.desk.checkins.start(
            "X", "GT", interval_ms=HOUR_MS, grace_ms=0, note="", to=[], pin=pin, duress_pin=duress
        )


async def test_a_duress_alert_survives_a_stop_before_it_left(grid: Grid) -> None:
    """The answer is written before the duress alert's work starts; a node that
    stops in between raises it on its next start (and a normal PIN's record
    raises nothing)."""
    _a, _b, c, field = await three(grid)
    _plan, token = field.checkins.start(
        "Lucía",
        "MX-OAX",
        interval_ms=HOUR_MS,
        grace_ms=60_000,
        note="",
        to=["c"],
        pin="4821",
        duress_pin="9153",
    )
    field.duress_delay_s = (3600.0, 3600.0)  # the background task would wait an hour: it never gets to run
    assert field.check_in(holder(field, token), "4821", grid.clock.now, tap_id="n").acted
    assert field.check_in(holder(field, token), "9153", grid.clock.now, tap_id="d").acted
    await grid.stop("b")
    assert not field_alerts(c)
    await grid.start("b")
    await grid.advance(1_000)  # the first tick resumes what the stopped node left
    (alert,) = field_alerts(c)
    assert alert["headline"] == "Duress: Lucía checked in with their duress PIN"
    await grid.stop("b")
    await grid.start("b")
    await grid.advance(1_000)
    assert len(field_alerts(c)) == 1  # done once: never again


async def test_wrong_pins_in_a_row_lock_check_ins_but_never_an_sos(grid: Grid) -> None:
    _a, _b, c, field = await three(grid)
    _plan, token = field.checkins.start(
        "Lucía",
        "MX-OAX",
        interval_ms=HOUR_MS,
        grace_ms=60_000,
        note="",
        to=["c"],
        pin="4821",
        duress_pin="9153",
    )
    for guess in ("0000", "1111", "2222", "3333", "4444"):
        assert field.check_in(holder(field, token), guess, grid.clock.now).outcome == "wrong-pin"
    right = field.check_in(holder(field, token), "4821", grid.clock.now)
    duress = field.check_in(holder(field, token), "9153", grid.clock.now)
    assert right.outcome == duress.outcome == "locked" and not right.acted  # the same for both PINs
    assert field.sos(holder(field, token), None, "", None, grid.clock.now).outcome == "help-asked"
    await grid.advance(15 * 60_000, step_ms=60_000)
    assert field.check_in(holder(field, token), "4821", grid.clock.now).outcome == "checked-in"
    assert field.check_in(holder(field, token), "0000", grid.clock.now).outcome == "wrong-pin"  # counted anew
    assert field.check_in(holder(field, token), "4821", grid.clock.now).outcome == "checked-in"
    assert [x["headline"] for x in field_alerts(c)] == ["SOS: Lucía asks for help"]
