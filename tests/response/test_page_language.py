"""Pages people can act on, in their own language: a page names the sending
organization (or its key's fingerprint), the region by name, the requested
action and the link, says how to acknowledge, and is written in the
responder's language from the dashboard's catalogs. Pages go through real
Apprise to a local HTTP catcher (json://), with a fake clock and a real store.
Who acknowledged travels with the organization's ack, in its note."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from node import incidents
from node.alerts import PAGE_WORDS
from node.config import Config
from node.devmesh import LocalMesh
from node.response.desk import DeskError
from node.store import Store
from node.web import labels
from protocol import Ack, Alert, Area, fingerprint, sign_envelope
from tests.e2e.test_escalation import Catcher
from tests.node.test_store import row
from tests.response.test_page_outcome import ALLY, T0, FakeNode, tick

SENDER = "Colectivo Tierra Libre"  # a fictional organization


@pytest.fixture
def node(store_url: str) -> Iterator[FakeNode]:
    store = Store(store_url)
    config = Config(name="Brigada Ejemplo", watch_regions=["MX"], allow_private_targets=["127.0.0.0/8"])
    yield FakeNode(store, [T0], config)
    store.close()


@pytest.fixture
def catcher() -> Iterator[Catcher]:
    c = Catcher()
    yield c
    c.server.shutdown()
    c.server.server_close()


def deliver(node: FakeNode, **fields: Any) -> str:
    body = Alert(
        headline="Defensora amenazada en su casa",
        areas=(Area("MX-OAX"),),
        severity="severe",
        instruction="Acompañar a la defensora y documentar",
        **fields,
    )
    env = sign_envelope(ALLY, body, created=T0, expires=T0 + 3_600_000)
    (stored,) = node.store.add_envelopes([row(env)])
    node.desk.on_delivered(stored)
    tick(node, T0)
    return env.id.hex()


def pages_to(catcher: Catcher, who: str) -> list[dict[str, Any]]:
    return [doc for path, doc in catcher.pages if path.strip("/") == who]


def test_a_spanish_responder_gets_a_spanish_page(node: FakeNode, catcher: Catcher) -> None:
    node.desk.add_responder("Lucía", "responder", [catcher.url("lucia")], None, drills=True, lang="es")
    node.desk.add_shift("Lucía", T0, 24, None, False)
    node.author_names = lambda: {ALLY.sign_public: SENDER}  # type: ignore[method-assign]
    alert = deliver(node, status="exercise")
    (page,) = pages_to(catcher, "lucia")
    assert page["title"] == "[SIMULACRO] GRAVE · Oaxaca (MX-OAX): Defensora amenazada en su casa"
    lines = page["message"].splitlines()
    assert lines[0] == f"De: {SENDER}"
    assert lines[1] == "Caduca: 2026-11-18 12:06 UTC"  # the node's time zone (UTC by default)
    assert lines[2] == "ACCIÓN: Acompañar a la defensora y documentar"
    assert lines[3].endswith(f"/ui/alerts/{alert}")
    assert (
        lines[4]
        == f"Para confirmar: abra el enlace y pulse «Responder», o ejecute: amparo alert ack {alert[:12]}"
    )


def test_each_responder_reads_the_same_page_in_their_language(node: FakeNode, catcher: Catcher) -> None:
    node.desk.add_responder("Lucía", "responder", [catcher.url("lucia")], None, lang="es")
    node.desk.add_responder("Sam", "responder", [catcher.url("sam")], None)  # English by default
    alert = deliver(node)  # no shift: the on-call step pages everyone
    (es,) = pages_to(catcher, "lucia")
    (en,) = pages_to(catcher, "sam")
    assert es["title"].startswith("GRAVE · Oaxaca") and en["title"].startswith("SEVERE · Oaxaca")
    unknown = fingerprint(ALLY.sign_public)  # no name known for the author: its fingerprint
    assert es["message"].splitlines()[0] == f"De: {unknown}"
    assert en["message"].splitlines()[:3] == [
        f"From: {unknown}",
        "Expires: 2026-11-18 12:06 UTC",
        "ACTION: Acompañar a la defensora y documentar",
    ]
    assert en["message"].endswith(
        f"To acknowledge: open the link and press “Acknowledge”, or run: amparo alert ack {alert[:12]}"
    )


def test_a_missed_check_ins_page_is_in_the_responders_language() -> None:
    """The alert a missed check-in raises is signed in English (checkin_desk.GENERATED);
    a Spanish responder's page says it from the catalog; a person's own words stay."""
    from node.response import checkin_desk
    from node.response.desk import page_text

    alert = Alert(
        headline=checkin_desk.MISSED_HEADLINE % {"who": "Lucía"},
        areas=(Area("MX-GRO"),),
        severity="severe",
        event="checkin-missed",
        instruction=checkin_desk.MISSED_INSTRUCTION,
    )
    title, body = page_text(alert, "ab" * 32, "https://amparo.example", lang="es")
    assert title.endswith("Guerrero (MX-GRO): Reporte de llegada no recibido: Lucía")
    assert "ACCIÓN: Intenten localizar a la persona ahora" in body and "Try to reach" not in body
    title, _ = page_text(alert, "ab" * 32, "https://amparo.example", lang="en")
    assert title.endswith(": Missed check-in: Lucía")
    own = Alert(
        headline="Lucía missed her check-in at 18:00",
        areas=(Area("MX-GRO"),),
        severity="severe",
        instruction="Call her sister first",
    )
    title, body = page_text(own, "ab" * 32, "https://amparo.example", lang="es")
    assert title.endswith(": Lucía missed her check-in at 18:00") and "ACCIÓN: Call her sister first" in body


def test_a_language_without_a_catalog_is_refused_by_name(node: FakeNode) -> None:
    with pytest.raises(DeskError, match="lang: pages are written in en or es, not 'fr'"):
        node.desk.add_responder("Lucía", "responder", [], None, lang="fr")
    node.desk.add_responder("Lucía", "responder", [], None, lang="es")
    assert node.desk.responders()[0]["lang"] == "es"


def test_every_page_word_is_in_the_catalog() -> None:
    """phone_text's words are marked in node.web.labels, so extraction keeps them in the catalog."""
    assert set(PAGE_WORDS) <= set(labels.PAGE)


def test_the_person_who_acknowledged_travels_in_the_acks_note(node: FakeNode, catcher: Catcher) -> None:
    node.desk.add_responder("Lucía", "responder", [catcher.url("lucia")], None, lang="es")
    alert = deliver(node)
    stored = node.store.get(bytes.fromhex(alert))
    assert stored is not None
    made = incidents.acknowledge(cast(Any, node), stored, {"by": "Lucía", "note": "voy en camino"})
    ack_row = node.store.get(bytes.fromhex(made["id"]))
    assert ack_row is not None
    ack = node.open(ack_row).body
    assert isinstance(ack, Ack) and ack.note == "Lucía: voy en camino"
    assert (node.desk.escalation_json(alert) or {})["acked_by"] == "Lucía"
    assert incidents.ack_note("Lucía", "") == "Lucía" and incidents.ack_note("", "visto") == "visto"


@pytest.mark.slow
def test_responder_add_takes_a_language_through_the_cli_and_the_api(tmp_path: Path) -> None:
    """A real node: `amparo responder add --lang es` and the API's ``lang`` store it;
    a language without a catalog is refused with a message naming it."""
    mesh = LocalMesh(tmp_path, 1)
    mesh.init_all()
    mesh.start_all()
    try:
        (b,) = mesh.nodes
        made = json.loads(b.amparo("responder", "add", "Lucía", "--lang", "es", "--json").stdout)
        assert made["lang"] == "es"
        refused = b.amparo("responder", "add", "Lucía", "--lang", "fr", check=False)
        assert refused.returncode != 0 and "'fr' is not one of 'es', 'en'" in refused.stderr
        b.api.post("/api/v1/responders", {"name": "Sam", "lang": "en"})
        langs = {r["name"]: r["lang"] for r in b.api.get("/api/v1/responders")["responders"]}
        assert langs == {"Lucía": "es", "Sam": "en"}
    finally:
        mesh.stop_all()
