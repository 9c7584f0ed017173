"""The all-clear on the grid, under the fake clock: a cancel sent by the alert's
author at another node, and a late check-in at this one, tell everyone the
pages reached exactly once, however long the grid runs after and across a
restart. "Nobody hears it twice" is asserted on a settled grid an hour later,
not after a sleep. The channels are a stand-in for Apprise that records who was
told what (real Apprise and webhooks: tests/e2e/test_all_clear.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from node import stream
from node.alerts import make_envelope
from node.incidents import cancel_alert, send_alert, update_alert
from node.response import desk as desk_mod
from node.response.checkin_plan import CheckinError
from protocol import Alert, Area
from tests.grid.grid import Grid, GridNode

ACK_TIMEOUT_MS = 3_000
HOUR_MS = 3_600_000


@pytest.fixture
def told(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    """(person, title, body) of everything the responders' channels received."""
    got: list[tuple[str, str, str]] = []

    def notify(urls: list[str], title: str, body: str, policy: object) -> bool:
        got.append((urls[0].rsplit("/", 1)[-1], title, body))
        return True

    monkeypatch.setattr(desk_mod, "_notify", notify)
    monkeypatch.setattr(desk_mod, "_check_channel", lambda url, policy: None)
    return got


def staff(node: GridNode, now: int) -> None:
    """Ana on call (Spanish), Bruno backup, Carmen in the last step."""
    desk = node.service.desk
    desk.add_responder("Ana", "responder", ["json://ana.example/Ana"], None, lang="es")
    desk.add_responder("Bruno", "responder", ["json://bruno.example/Bruno"], None)
    desk.add_responder("Carmen", "responder", ["json://carmen.example/Carmen"], None)
    desk.add_shift("Ana", now, 24, "Bruno", False)


def who(told: list[tuple[str, str, str]], since: int = 0) -> list[str]:
    return [person for person, _, _ in told[since:]]


async def test_a_cancel_from_the_author_tells_each_paged_person_once(
    grid: Grid, told: list[tuple[str, str, str]]
) -> None:
    a = await grid.add("Colectivo Tierra Libre")
    b = await grid.add("b", watch_regions=["MX"], ack_timeout="3s")
    await grid.pair(a.name, "b")
    staff(b, grid.clock.now)
    sent = send_alert(
        a.service, {"headline": "Defensora amenazada", "regions": ["MX-OAX"], "severity": "severe"}
    )
    await grid.settle()
    await grid.advance(ACK_TIMEOUT_MS)
    assert who(told) == ["Ana", "Bruno"]
    row = a.store.get(bytes.fromhex(sent["id"]))
    assert row is not None
    update_alert(a.service, row, {"headline": "Defensora detenida"})
    await grid.settle()
    assert who(told, 2) == ["Ana", "Bruno"]
    assert "“Defensora amenazada” → “Defensora detenida”" in told[3][2]
    cancel_alert(a.service, row, {"reason": "Liberada sin cargos"})
    await grid.settle()
    assert who(told, 4) == ["Ana", "Bruno"]  # Carmen's step never came: she was never paged
    _, title, body = told[4]
    assert title.startswith("CANCELADA: GRAVE · Oaxaca (MX-OAX): Defensora detenida")
    assert "Cancelada por Colectivo Tierra Libre: Liberada sin cargos" in body
    assert f"/ui/alerts/{sent['id']}" in body
    await grid.advance(HOUR_MS, step_ms=60_000)  # past every deadline the chain had
    await grid.stop("b")
    await grid.start("b")
    await grid.advance(HOUR_MS, step_ms=60_000)
    assert who(told, 6) == []
    assert b.service.desk.escalation_json(sent["id"])["state"] == "cancelled"  # type: ignore[index]


async def test_a_late_checkin_tells_each_paged_person_exactly_once(
    grid: Grid, told: list[tuple[str, str, str]]
) -> None:
    b = await grid.add("Brigada Ejemplo", ack_timeout="3s")
    await grid.add("c")
    await grid.pair("Brigada Ejemplo", "c")
    staff(b, grid.clock.now)
    desk = b.service.desk
    plan, _token = desk.checkins.start(
        "Lucía",
        "MX-OAX",
        deadline=grid.clock.now + 2_000,
        grace_ms=2_000,
        note="Marcha, chaqueta azul",
        to=["c"],
    )
    await grid.advance(4_000 + 2 * ACK_TIMEOUT_MS)  # missed; the whole chain is paged, once each step
    assert who(told) == ["Ana", "Bruno", "Ana", "Bruno", "Carmen"]
    (alert_id,) = [p["alert"] for p in desk.checkins.plans()]
    desk.checkins.ok(plan.id)  # late: what the phone link does
    with pytest.raises(CheckinError):  # pressed twice: the plan is over, nothing is cancelled again
        desk.checkins.ok(plan.id)
    await grid.settle()
    assert sorted(who(told, 5)) == [
        "Ana",
        "Bruno",
        "Carmen",
    ]  # each once, though Ana and Bruno were paged twice
    english = next(body for person, _, body in told[5:] if person == "Bruno")
    assert "Cancelled by Brigada Ejemplo: Lucía checked in." in english
    await grid.stop("Brigada Ejemplo")
    await grid.start("Brigada Ejemplo")
    await grid.advance(HOUR_MS, step_ms=60_000)
    assert len(told) == 8
    notes: list[dict[str, Any]] = b.service.desk.timeline(alert_id)
    assert sum(n["text"].startswith("all-clear: cancelled by Brigada Ejemplo") for n in notes) == 1


class Written:
    """A stream response that keeps what the handler writes."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def write(self, data: bytes) -> None:
        self.events.append(json.loads(data.decode().split("data: ", 1)[1]))


async def test_the_stream_says_who_cancelled_and_drops_a_strangers_cancel(grid: Grid) -> None:
    a = await grid.add("Colectivo Tierra Libre")
    b = await grid.add("b")
    c = await grid.add("c")
    await grid.pair(a.name, "b")
    await grid.pair("c", "b")
    sent = send_alert(a.service, {"headline": "Retén militar", "regions": ["MX-OAX"], "severity": "moderate"})
    await grid.settle()
    incident = bytes.fromhex(sent["id"])
    fake = Alert(
        headline="Retén militar",
        areas=(Area("MX-OAX"),),
        severity="extreme",
        msg_type="cancel",
        references=(incident,),
    )
    c.service.author(
        make_envelope(c.service.identity, fake, now=grid.clock.now, ttl_ms=HOUR_MS, recipients=[])
    )
    row = a.store.get(incident)
    assert row is not None
    update_alert(a.service, row, {"severity": "extreme"})
    cancel_alert(a.service, row, {"reason": "Se retiraron"})
    await grid.settle()
    written = Written()
    chosen = stream.StreamFilter(region="MX-OAX", min_severity="severe")  # the alert itself was moderate
    for stored in b.store.since_seq(0, 100, types=("alert",)):
        await stream._send(written, b.service, stored, chosen)  # type: ignore[arg-type]
    assert [(e["msg_type"], e["change"]["by"]) for e in written.events] == [
        ("update", a.name),
        ("cancel", a.name),  # not the stranger's; the moderate original is filtered out
    ]
    assert written.events[0]["change"]["changed"] == {"severity": ["moderate", "extreme"]}
    assert written.events[1]["change"]["text"] == f"Cancelled by {a.name}: Se retiraron"
