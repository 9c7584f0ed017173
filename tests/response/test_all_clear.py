"""The all-clear, with a fake clock and a real store (both backends): everyone a
page reached hears of the alert's cancel, and of each update, once per person,
in their own language, saying who cancelled and why or what changed, with the
incident's link. A second delivery of the same envelope and a restart tell
nobody twice; a crash half-way finishes with the people not yet told. The
notifier stands in for Apprise (real channels: tests/e2e/test_all_clear.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from node.config import Config
from node.response import desk as desk_mod
from node.store import Store, StoredEnvelope
from protocol import Alert, Area, Identity, fingerprint, sign_envelope
from tests.node.test_store import row
from tests.response.test_page_outcome import ALLY, ALLY_ROTATED, STRANGER, T0, TIMEOUT, Crash, FakeNode, tick

INCIDENT = Alert(
    headline="Defensora amenazada", areas=(Area("MX-OAX"),), severity="severe", instruction="Acompañarla"
)


@dataclass
class Phones:
    """What each person's channels received, in order: (person, title, body)."""

    got: list[tuple[str, str, str]] = field(default_factory=list)
    crash_at: list[str] = field(default_factory=list)

    def who(self, since: int = 0) -> list[str]:
        return [person for person, _, _ in self.got[since:]]


@pytest.fixture
def phones(monkeypatch: pytest.MonkeyPatch) -> Phones:
    phones = Phones()

    def notify(urls: list[str], title: str, body: str, policy: object) -> bool:
        person = urls[0].rsplit("/", 1)[-1]
        if person in phones.crash_at:
            phones.crash_at.remove(person)
            raise Crash
        phones.got.append((person, title, body))
        return True

    monkeypatch.setattr(desk_mod, "_notify", notify)
    monkeypatch.setattr(desk_mod, "_check_channel", lambda url, policy: None)
    return phones


@pytest.fixture
def node(store_url: str) -> Iterator[FakeNode]:
    store = Store(store_url)
    config = Config(
        name="Brigada Ejemplo", watch_regions=["MX"], ack_timeout="60s", public_url="https://b.example"
    )
    yield FakeNode(store, [T0], config)
    store.close()


def org(node: FakeNode) -> str:
    """Ana on call (Spanish), Bruno backup, Carmen (never paged: a viewer); the
    ally's alert has paged Ana, then Bruno."""
    node.desk.add_responder("Ana", "responder", ["json://127.0.0.1:9/Ana"], None, lang="es")
    node.desk.add_responder("Bruno", "responder", ["json://127.0.0.1:9/Bruno"], None)
    node.desk.add_responder("Carmen", "viewer", ["json://127.0.0.1:9/Carmen"], None)
    node.desk.add_shift("Ana", T0, 24, "Bruno", False)
    alert = deliver(node, sign_envelope(ALLY, INCIDENT, created=T0, expires=T0 + 3_600_000))
    tick(node, T0)
    tick(node, T0 + TIMEOUT)
    return alert.id.hex()


def deliver(node: FakeNode, env: object) -> StoredEnvelope:
    (stored,) = node.store.add_envelopes([row(env)])  # type: ignore[arg-type]
    node.desk.on_delivered(stored)
    node.run_spawned()
    return stored


def follow_up(author: Identity, alert_hex: str, at: int, **fields: object) -> object:
    body = Alert(
        **{"headline": INCIDENT.headline, "areas": INCIDENT.areas, "severity": "severe"} | fields,  # type: ignore[arg-type]
        references=(bytes.fromhex(alert_hex),),
    )
    return sign_envelope(author, body, created=at, expires=at + 3_600_000)


def test_a_cancel_tells_everyone_paged_once_in_their_language(node: FakeNode, phones: Phones) -> None:
    alert = org(node)
    assert phones.who() == ["Ana", "Bruno"]
    cancel = follow_up(
        ALLY, alert, T0 + 70_000, msg_type="cancel", description="Ya está a salvo con su familia"
    )
    stored = deliver(node, cancel)
    assert phones.who(2) == ["Ana", "Bruno"]  # Carmen was never paged: she hears nothing
    sender = fingerprint(ALLY.sign_public)
    (_, es_title, es_body), (_, en_title, en_body) = phones.got[2:]
    assert es_title.startswith("CANCELADA: GRAVE · Oaxaca (MX-OAX): Defensora amenazada"), es_title
    assert f"Cancelada por {sender}: Ya está a salvo con su familia" in es_body
    assert en_title.startswith("CANCELLED: SEVERE") and f"Cancelled by {sender}: Ya está a salvo" in en_body
    assert f"https://b.example/ui/alerts/{alert}" in en_body.splitlines()  # the incident, not the cancel
    assert "Acompañarla" not in en_body  # a cancel asks for nothing
    node.desk.on_delivered(stored)  # the same envelope again (a replay, a second path)
    node.run_spawned()
    tick(node, T0 + 100 * TIMEOUT)  # and no step pages anyone after the cancel
    assert phones.who(2) == ["Ana", "Bruno"]
    notes = [n["text"] for n in node.desk.timeline(alert)]
    assert sum("all-clear" in t and "— told: Ana, Bruno" in t for t in notes) == 1
    assert [(d["kind"], d["state"], d["reached"]) for d in node.desk.all_clear.told(alert)] == [
        ("cancel", "sent", ["Ana", "Bruno"])
    ]


def test_an_update_says_what_changed(node: FakeNode, phones: Phones) -> None:
    alert = org(node)
    first = follow_up(
        ALLY, alert, T0 + 70_000, msg_type="update", headline="Defensora detenida", severity="extreme"
    )
    deliver(node, first)
    (_, es_title, es_body), (_, _, en_body) = phones.got[2:]
    assert es_title.startswith("ACTUALIZACIÓN: EXTREMA · Oaxaca (MX-OAX): Defensora detenida"), es_title
    assert "titular: “Defensora amenazada” → “Defensora detenida”; gravedad: grave → extrema" in es_body
    assert "headline: “Defensora amenazada” → “Defensora detenida”; severity: severe → extreme" in en_body
    second = follow_up(
        ALLY,
        alert,
        T0 + 80_000,
        msg_type="update",
        headline="Defensora detenida",
        severity="extreme",
        areas=(Area("MX-OAX"), Area("MX-CHP")),
        instruction="Llamar a la fiscalía",
    )
    deliver(node, second)
    (_, _, later) = phones.got[-1]
    assert ": instruction changed; regions: MX-OAX → MX-OAX, MX-CHP\n" in later  # only what this one changed
    assert "headline" not in later and "ACCIÓN: Llamar a la fiscalía" not in later  # Bruno reads English
    assert "ACTION: Llamar a la fiscalía" in later


def test_only_the_author_cancels_and_its_rotated_key_counts(node: FakeNode, phones: Phones) -> None:
    node.family = {ALLY.sign_public, ALLY_ROTATED.sign_public}
    alert = org(node)
    deliver(node, follow_up(STRANGER, alert, T0 + 70_000, msg_type="cancel", description="Broma"))
    assert phones.who(2) == [] and node.desk.all_clear.told(alert) == []
    deliver(node, follow_up(ALLY_ROTATED, alert, T0 + 71_000, msg_type="cancel", description="Resuelto"))
    assert phones.who(2) == ["Ana", "Bruno"]


def test_a_crash_while_telling_finishes_the_rest_after_a_restart(node: FakeNode, phones: Phones) -> None:
    alert = org(node)
    tick(node, T0 + 2 * TIMEOUT)  # everyone: Ana and Bruno again (each is told once all the same)
    phones.crash_at.append("Ana")
    (stored,) = node.store.add_envelopes([row(follow_up(ALLY, alert, T0 + 130_000, msg_type="cancel"))])
    node.desk.on_delivered(stored)
    with pytest.raises(Crash):
        node.run_spawned()
    node.crash()
    again = FakeNode(node.store, node.now, node.config)
    tick(again, T0 + 131_000)  # the first tick after the start resumes the all-clear
    assert phones.who(4) == ["Bruno"]  # Ana may have been reached: not told again
    again.desk.on_delivered(stored)
    tick(again, T0 + 200_000)
    assert phones.who(4) == ["Bruno"]
    notes = [n["text"] for n in again.desk.timeline(alert)]
    assert any("stopped while telling Ana" in t for t in notes)
    assert f"all-clear: cancelled by {fingerprint(ALLY.sign_public)} — told: Bruno" in notes


def test_an_alert_nobody_was_paged_about_tells_nobody(node: FakeNode, phones: Phones) -> None:
    outside = deliver(
        node,
        sign_envelope(ALLY, Alert(headline="Lejos", areas=(Area("CO"),)), created=T0, expires=T0 + 60_000),
    )
    deliver(node, follow_up(ALLY, outside.id.hex(), T0 + 1_000, msg_type="cancel", areas=(Area("CO"),)))
    assert phones.got == [] and node.desk.all_clear.told(outside.id.hex()) == []


def test_a_cancel_that_arrives_before_its_alert_pages_nobody(node: FakeNode, phones: Phones) -> None:
    org(node)
    late = sign_envelope(
        ALLY, Alert(headline="Retén", areas=(Area("MX-CHP"),)), created=T0, expires=T0 + 3_600_000
    )
    (cancel,) = node.store.add_envelopes([row(follow_up(ALLY, late.id.hex(), T0 + 1_000, msg_type="cancel"))])
    node.desk.on_delivered(cancel)  # gossip has no order: the cancel first …
    deliver(node, late)  # … then its alert
    tick(node, T0 + 10 * TIMEOUT)
    assert node.desk.pages(late.id.hex()) == [] and node.desk.escalation_json(late.id.hex()) is None
