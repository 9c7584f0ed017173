"""The current state of an incident (issue 13 item 2): one function,
``alerts.current_state``, gives what the list, ``show``, the dashboard, the feeds
and CAP show; the history stays in the timeline. The node tests run a real node
service on a SQLite file (no network); the end-to-end test is
tests/e2e/test_cap_feeds.py::test_after_an_update_the_list_and_the_feed_show_the_new_headline."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import pytest

from node.alerts import current_state, is_cancelled
from node.allies import feeds
from node.config import Config
from node.incidents import alert_detail, cancel_alert, list_alerts, update_alert
from node.service import NodeService
from node.store import Store
from node.timeline import history
from protocol import Alert, Area
from tests.node.test_alert_revise import ISTMO, NOW, ORIGINAL, US, _sent


@pytest.fixture
def node(tmp_path: Path) -> NodeService:
    """A node whose clock moves a second per reading, so updates sort by time
    (two in the same millisecond have no order but their ids')."""
    ticks = itertools.count(NOW, 1000)
    store = Store(f"sqlite:///{tmp_path / 'amparo.db'}")
    return NodeService(tmp_path, Config(name="Brigada Ejemplo"), US, store, clock=lambda: next(ticks))


REF = (b"\x01" * 32,)


def _update(**changes: object) -> Alert:
    return replace(ORIGINAL, msg_type="update", references=REF, **changes)  # type: ignore[arg-type]


def test_without_updates_the_original_is_the_current_state() -> None:
    assert current_state(ORIGINAL, []) is ORIGINAL


def test_the_latest_update_wins_field_by_field() -> None:
    first = _update(headline="Réplica de 5.1", severity="extreme")
    second = _update(headline="Réplica de 5.1", severity="moderate", instruction="Volver a casa.")
    now = current_state(ORIGINAL, [first, second])
    assert (now.headline, now.severity, now.instruction) == ("Réplica de 5.1", "moderate", "Volver a casa.")
    assert (now.msg_type, now.references) == ("alert", ())  # still the incident, not an update


def test_an_update_of_the_areas_is_the_current_areas() -> None:
    now = current_state(ORIGINAL, [_update(areas=(Area("MX-VER"),))])
    assert now.areas == (Area("MX-VER"),)


def test_a_cancel_changes_nothing_shown_but_is_told_apart() -> None:
    update = _update(headline="Réplica de 5.1")
    cancel = replace(ORIGINAL, msg_type="cancel", references=REF, description="Falsa alarma.")
    now = current_state(ORIGINAL, [update, cancel])
    assert now.headline == "Réplica de 5.1" and now.description == ORIGINAL.description
    assert is_cancelled([update, cancel]) and not is_cancelled([update])


def test_status_and_scope_stay_the_originals() -> None:
    now = current_state(ORIGINAL, [_update(status="exercise", scope="members")])
    assert (now.status, now.scope) == (ORIGINAL.status, ORIGINAL.scope)


def test_the_list_and_show_give_the_current_state_and_keep_the_history(node: NodeService) -> None:
    alert_id = _sent(node)
    update_alert(node, node.store.get(alert_id), {"headline": "Réplica de 5.1", "severity": "extreme"})
    listed = list_alerts(node, region=None)
    assert [(a["id"], a["headline"], a["severity"]) for a in listed] == [
        (alert_id.hex(), "Réplica de 5.1", "extreme")
    ]  # one incident, as its update shows it
    shown = alert_detail(node, node.store.get(alert_id))
    assert (shown["headline"], shown["updates"], shown["areas"][0]["desc"]) == (
        "Réplica de 5.1",
        1,
        ISTMO.desc,
    )
    assert [t["headline"] for t in shown["timeline"]] == ["Réplica de 5.1"]
    assert [(s.kind, s.text) for s in history(shown)][:2] == [
        ("sent", ORIGINAL.headline),
        ("update", "Réplica de 5.1"),
    ]


def test_an_update_of_an_update_belongs_to_the_incident(node: NodeService) -> None:
    alert_id = _sent(node)
    first = update_alert(node, node.store.get(alert_id), {"headline": "Réplica de 5.1"})
    second = update_alert(node, node.store.get(bytes.fromhex(first["id"])), {"severity": "minor"})
    assert second["incident"] == alert_id.hex()
    assert second["changed"] == {"severity": ["severe", "minor"]}  # the headline of the first update stays
    shown = alert_detail(node, node.store.get(alert_id))
    assert (shown["headline"], shown["severity"], shown["updates"]) == ("Réplica de 5.1", "minor", 2)
    assert {t["incident"] for t in shown["timeline"]} == {alert_id.hex()}


def test_a_cancel_given_an_update_cancels_the_incident(node: NodeService) -> None:
    alert_id = _sent(node)
    first = update_alert(node, node.store.get(alert_id), {"headline": "Réplica de 5.1"})
    done = cancel_alert(node, node.store.get(bytes.fromhex(first["id"])), {"reason": "Sin daños."})
    assert (done["incident"], done["headline"], done["reason"]) == (
        alert_id.hex(),
        "Réplica de 5.1",
        "Sin daños.",
    )
    shown = alert_detail(node, node.store.get(alert_id))
    assert (shown["cancelled"], shown["cancel_reason"]) == (True, "Sin daños.")  # why, for the detail page


def test_a_feed_entry_shows_the_phase_and_the_latest_time() -> None:
    entry = feeds.FeedEntry(
        current_state(ORIGINAL, [_update(headline="Réplica de 5.1")]),
        "ab" * 32,
        NOW,
        "Brigada Ejemplo",
        updated=NOW + 60_000,
        phase="update",
    )
    document = feeds.render("MX", [entry], base="https://amparo.example", node_key=b"\x02" * 32,
                            node_name="Brigada Ejemplo", now=NOW)  # fmt: skip
    assert b"<title>UPDATE: SEVERE: R\xc3\xa9plica de 5.1</title>" in document
    assert f"/feeds/cap/{'ab' * 32}.xml".encode() in document and b"<updated>2026-11-18" in document
