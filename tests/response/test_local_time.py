"""Times in the reader's zone, and deadlines that cannot be met refused: pages
and hand-over notices show times in the responder's own zone, else the node's
``timezone``; a time typed without an offset is on the node's clock; a shift
that would already have ended and a check-in deadline in the past are refused
with a message naming the field. Fake clock, real store (SQLite and PostgreSQL).
T0 is 2026-11-18 11:06:40 UTC, 05:06:40 in Mexico City (CST, UTC-6)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from node import clock_text
from node.config import Config
from node.response import desk as desk_mod
from node.response.api import _instant
from node.response.checkin_plan import CheckinError
from node.response.checkin_routes import _deadline_at
from node.response.desk import DeskError
from node.store import ResponderRow, Store
from node.web import views
from protocol import Alert, Area, sign_envelope
from tests.node.test_store import row
from tests.response.test_page_outcome import ALLY, T0, FakeNode, tick

HOUR = 3_600_000
MEXICO = clock_text.zone("America/Mexico_City")


@dataclass
class Sent:
    """What each person's channels were given: (title, body) per message."""

    to: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def bodies(self, person: str) -> list[str]:
        return [body for _, body in self.to.get(person, [])]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Sent:
    record = Sent()

    def notify(urls: list[str], title: str, body: str, policy: object) -> bool:
        record.to.setdefault(urls[0].rsplit("/", 1)[-1], []).append((title, body))
        return True

    monkeypatch.setattr(desk_mod, "_notify", notify)
    monkeypatch.setattr(desk_mod, "_check_channel", lambda url, policy: None)
    return record


@pytest.fixture
def node(store_url: str) -> Iterator[FakeNode]:
    store = Store(store_url)
    config = Config(name="Brigada Ejemplo", watch_regions=["MX"], timezone="America/Mexico_City")
    yield FakeNode(store, [T0], config)
    store.close()


def add_people(node: FakeNode) -> None:
    node.desk.add_responder("Ana", "responder", ["json://127.0.0.1:9/Ana"], None)  # the node's zone
    node.desk.add_responder("Bruno", "responder", ["json://127.0.0.1:9/Bruno"], None, tz="Europe/Madrid")


def test_a_page_shows_its_times_in_the_readers_zone_else_the_nodes(node: FakeNode, sent: Sent) -> None:
    add_people(node)
    alert = Alert(headline="Defensora amenazada", areas=(Area("MX-OAX"),), effective=T0 + HOUR // 2)
    env = sign_envelope(ALLY, alert, created=T0, expires=T0 + HOUR)
    (stored,) = node.store.add_envelopes([row(env)])
    node.desk.on_delivered(stored)  # no shift: the on-call step pages everyone
    tick(node, T0)
    (ana,) = sent.bodies("Ana")
    (bruno,) = sent.bodies("Bruno")
    assert "Effective: 2026-11-18 05:36 CST\nExpires: 2026-11-18 06:06 CST" in ana
    assert "Effective: 2026-11-18 12:36 CET\nExpires: 2026-11-18 13:06 CET" in bruno


def test_a_zone_the_zone_data_dropped_still_gets_the_page(node: FakeNode, sent: Sent) -> None:
    """A stored zone name the installed zone data no longer knows: the page
    goes out anyway, in the node's zone."""
    node.store.put_responder(ResponderRow("Ana", "responder", ["json://127.0.0.1:9/Ana"], tz="Gone/Zone"), T0)
    env = sign_envelope(
        ALLY, Alert(headline="Defensora amenazada", areas=(Area("MX-OAX"),)), created=T0, expires=T0 + HOUR
    )
    (stored,) = node.store.add_envelopes([row(env)])
    node.desk.on_delivered(stored)
    tick(node, T0)
    (ana,) = sent.bodies("Ana")
    assert "Expires: 2026-11-18 06:06 CST" in ana


def test_a_hand_over_notice_is_in_each_persons_zone(node: FakeNode, sent: Sent) -> None:
    add_people(node)
    node.desk.add_shift("Ana", T0, 12, None, False)
    node.now[0] = T0 + HOUR
    node.desk.hand_over("Bruno", "the Juchitán case is open")
    node.run_spawned()
    (ana,) = sent.bodies("Ana")
    (bruno,) = sent.bodies("Bruno")
    assert ana.startswith("Bruno is on call from 2026-11-18 06:06 CST")
    assert bruno.startswith("Bruno is on call from 2026-11-18 13:06 CET")


def test_a_responders_time_zone_is_checked_and_listed(node: FakeNode) -> None:
    with pytest.raises(DeskError, match=r"^tz: unknown time zone 'Mars/Olympus_Mons': use an IANA name"):
        node.desk.add_responder("Ana", "responder", [], None, tz="Mars/Olympus_Mons")
    node.desk.add_responder("Ana", "responder", [], None, tz="America/Bogota")
    node.desk.add_responder("Bruno", "responder", [], None)
    assert {r["name"]: r["tz"] for r in node.desk.responders()} == {"Ana": "America/Bogota", "Bruno": ""}


def test_a_shift_that_would_already_have_ended_is_refused(node: FakeNode) -> None:
    node.desk.add_responder("Ana", "responder", [], None)
    with pytest.raises(
        DeskError, match=r"^start: this shift would end at 2026-11-18 03:06 CST, which is already past"
    ):
        node.desk.add_shift("Ana", T0 - 10 * HOUR, 8, None, False)
    with pytest.raises(DeskError, match="already past"):
        node.desk.add_shift("Ana", T0 - 8 * HOUR, 8, None, False)  # ends this very instant
    assert node.desk.rotation().shifts == ()
    node.desk.add_shift("Ana", T0 - 2 * HOUR, 8, None, False)  # under way: still to be covered
    assert [s.responder for s in node.desk.rotation().shifts] == ["Ana"]


def test_a_typed_start_without_an_offset_is_on_the_nodes_clock() -> None:
    assert _instant("2026-11-18T05:06:40", 1, MEXICO) == T0
    assert _instant("2026-11-18T11:06:40+00:00", 1, MEXICO) == T0
    assert _instant("now", T0, MEXICO) == T0
    with pytest.raises(DeskError, match=r"^start: now, Unix ms, or an ISO time such as 2026-12-01T08:00"):
        _instant("tomorrow morning", T0, MEXICO)


def test_a_check_in_deadline_in_the_past_is_refused_with_when() -> None:
    with pytest.raises(
        CheckinError,
        match=r"^at: the deadline 2026-11-18 04:00 CST is already past \(it is 2026-11-18 05:06 CST\)$",
    ):
        _deadline_at("2026-11-18T04:00", T0, MEXICO)
    with pytest.raises(CheckinError, match=r"^at: not a time: 'seis de la tarde'"):
        _deadline_at("seis de la tarde", T0, MEXICO)
    assert _deadline_at("2026-11-18 18:00", T0, MEXICO) == T0 + (12 * 60 + 53) * 60_000 + 20_000


def test_the_dashboard_shows_times_in_the_pages_zone() -> None:
    """The ``when`` filter of every dashboard template reads the zone the view
    passes in (the node's ``timezone``)."""
    template = views._env("es").from_string("{{ at|when }} · {{ none|when }}")
    assert template.render(at=T0, none=0, zone=MEXICO) == "2026-11-18 05:06:40 CST · —"
    assert template.render(at=T0, none=0) == "2026-11-18 11:06:40 UTC · —"
