"""Updates and cancels keep what they do not change (issue 12's bug).

An update or a cancel starts from the original alert's body: area
descriptions, circles and the ``effective`` time of an alert imported from CAP
survive, and only the fields a person changed differ. A real node service
(SQLite store, no network) signs and stores them; the end-to-end test through
the CLI is tests/e2e/test_cap_feeds.py::test_update_and_cancel_keep_the_imported_areas."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.alerts import open_row
from node.config import Config
from node.incidents import cancel_alert, update_alert
from node.service import NodeService
from node.store import Store
from protocol import Alert, Area, Identity, sign_envelope

NOW = 1_795_000_000_000
US = Identity.from_random(bytes(range(64)))
ISTMO = Area("MX-OAX", "Istmo de Tehuantepec", (16_433_000, -95_019_000, 25_000))
ORIGINAL = Alert(
    headline="Sismo de magnitud 6.8 en la costa de Oaxaca",
    areas=(ISTMO, Area("MX-CHP", "Costa de Chiapas")),
    severity="severe",
    scope="public",
    urgency="immediate",
    certainty="observed",
    description="Se reportan daños en Juchitán.",
    instruction="Verificar el estado de las personas acompañadas.",
    language="es",
    effective=NOW - 60_000,
)


@pytest.fixture
def node(tmp_path: Path) -> NodeService:
    store = Store(f"sqlite:///{tmp_path / 'amparo.db'}")
    return NodeService(tmp_path, Config(name="Brigada Ejemplo"), US, store, clock=lambda: NOW)


def _sent(node: NodeService) -> bytes:
    env = sign_envelope(US, ORIGINAL, created=NOW, expires=NOW + 3_600_000)
    assert node.author(env) is not None
    return env.id


def _body(node: NodeService, envelope_id: str) -> Alert:
    row = node.store.get(bytes.fromhex(envelope_id))
    assert row is not None
    body = open_row(row, node.identity).body
    assert isinstance(body, Alert)
    return body


def test_an_update_changes_only_what_was_asked(node: NodeService) -> None:
    alert_id = _sent(node)
    made = update_alert(node, node.store.get(alert_id), {"severity": "extreme", "instruction": "Evacuar."})
    update = _body(node, made["id"])
    assert update.areas == ORIGINAL.areas  # descriptions and circle kept
    assert update.effective == ORIGINAL.effective and update.language == "es"
    assert (update.severity, update.instruction) == ("extreme", "Evacuar.")
    assert update.headline == ORIGINAL.headline and update.certainty == "observed"
    assert (update.msg_type, update.references) == ("update", (alert_id,))


def test_an_update_of_the_regions_keeps_the_areas_it_still_names(node: NodeService) -> None:
    alert_id = _sent(node)
    made = update_alert(node, node.store.get(alert_id), {"regions": ["MX-OAX", "MX-VER"]})
    assert _body(node, made["id"]).areas == (ISTMO, Area("MX-VER"))


def test_regions_retyped_as_people_type_them_keep_their_areas(node: NodeService) -> None:
    alert_id = _sent(node)
    made = update_alert(node, node.store.get(alert_id), {"regions": ["mx-oax", "Veracruz"]})
    assert _body(node, made["id"]).areas == (ISTMO, Area("MX-VER"))


def test_a_cancel_keeps_the_areas_and_gives_the_reason(node: NodeService) -> None:
    alert_id = _sent(node)
    made = cancel_alert(node, node.store.get(alert_id), {"reason": "Falsa alarma."})
    cancel = _body(node, made["id"])
    assert cancel.areas == ORIGINAL.areas and cancel.effective == ORIGINAL.effective
    assert (cancel.msg_type, cancel.description, cancel.references) == (
        "cancel",
        "Falsa alarma.",
        (alert_id,),
    )
