"""The all-clear on real node processes: when the author cancels, every channel
that carried the alert at the ally's node carries the cancel, saying who
cancelled and why, with the incident's link: the responders it paged (real
Apprise, each in their language), an ally's webhook and Apprise subscription,
and ``amparo watch``. A check-in answered late tells everyone its alert paged,
exactly once per person, though the chain paged them several times.

"Once" is read when the node's timeline says the all-clear was sent (it is
written after the last person was tried) and the outbox has drained; that
nobody hears it again an hour later or after a restart is asserted on the grid
with a fake clock (tests/grid/test_all_clear.py). The dashboard's live list is
tests/browser/test_all_clear_live.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from node.devmesh import LocalMesh, LocalNode
from tests.e2e.harness import LOOPBACK_TARGETS
from tests.e2e.test_allies import Receiver, drained, subscribe
from tests.e2e.test_checkin import tap
from tests.e2e.test_escalation import Catcher
from tests.e2e.test_gossip import wait_until
from tests.e2e.test_stream import watch_in_a_terminal

pytestmark = pytest.mark.slow
CANCELLED = ("CANCELLED", "CANCELADA")


@pytest.fixture
def catcher() -> Iterator[Catcher]:
    c = Catcher()
    yield c
    c.server.shutdown()
    c.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    if r.server is not None:
        r.down()


def staff(node: LocalNode, catcher: Catcher) -> None:
    """Ana (Spanish) and Bruno; no shift, so every step pages them both. Carmen
    is a viewer: never paged, never told."""
    node.api.post("/api/v1/responders", {"name": "Ana", "channels": [catcher.url("Ana")], "lang": "es"})
    node.amparo("responder", "add", "Bruno", "--channel", catcher.url("Bruno"))
    node.api.post(
        "/api/v1/responders", {"name": "Carmen", "role": "viewer", "channels": [catcher.url("Carmen")]}
    )


def messages(catcher: Catcher, who: str, *, cancels: bool) -> list[dict[str, Any]]:
    return [
        m for path, m in catcher.pages if path == f"/{who}" and m["title"].startswith(CANCELLED) == cancels
    ]


def all_clear_noted(node: LocalNode, alert_id: str) -> bool:
    notes = node.api.get(f"/api/v1/alerts/{alert_id}")["notes"]
    return any(n["text"].startswith("all-clear:") for n in notes)


def test_a_cancel_reaches_every_channel_that_carried_the_alert(
    mesh_factory: Any, catcher: Catcher, receiver: Receiver
) -> None:
    mesh: LocalMesh = mesh_factory(2, **LOOPBACK_TARGETS)
    a, b = mesh.nodes
    b.stop()
    b.configure(watch_regions=["MX"], ack_timeout="10m")
    b.start()
    mesh.connect([(0, 1)])
    staff(b, catcher)
    subscribe(b, "--region", "MX-OAX", "--webhook", receiver.url("hook"))
    subscribe(b, "--region", "MX", "--apprise", catcher.url("ally"))

    alert_id = a.send(headline="Defensora detenida en Juchitán", instruction="Llamar a la fiscalía")
    wait_until(
        lambda: len(catcher.pages) == 3, timeout=30, what="Ana, Bruno and the ally's channel to get it"
    )
    assert sorted(catcher.who()) == ["Ana", "Bruno", "ally"]
    drained(mesh, b, [alert_id])
    assert len(receiver.alerts("hook")) == 1

    a.amparo("alert", "cancel", alert_id[:12], "--reason", "Liberada sin cargos")
    wait_until(lambda: all_clear_noted(b, alert_id), timeout=30, what="the all-clear on B's timeline")
    wait_until(
        lambda: len(messages(catcher, "ally", cancels=True)) == 1, timeout=30, what="the ally's Apprise"
    )
    drained(mesh, b, [alert_id])

    link = f"/ui/alerts/{alert_id}"
    (ana,) = messages(catcher, "Ana", cancels=True)
    assert ana["title"].startswith("CANCELADA: GRAVE · Oaxaca (MX-OAX): Defensora detenida en Juchitán")
    assert f"Cancelada por {a.name}: Liberada sin cargos" in ana["message"]
    assert "Llamar a la fiscalía" not in ana["message"]  # nothing more to do
    (bruno,) = messages(catcher, "Bruno", cancels=True)
    assert f"Cancelled by {a.name}: Liberada sin cargos" in bruno["message"]
    (ally,) = messages(catcher, "ally", cancels=True)
    assert f"Cancelled by {a.name}: Liberada sin cargos" in ally["message"]
    assert all(m["message"].splitlines()[-1].endswith(link) for m in (bruno, ally))
    assert messages(catcher, "Carmen", cancels=True) == []

    first, cancel = receiver.alerts("hook")
    assert cancel["alert"]["msg_type"] == "cancel" and cancel["link"].endswith(link)
    change = cancel["change"]
    assert change["kind"] == "cancel" and change["by"] == a.name and change["reason"] == "Liberada sin cargos"
    assert change["incident"] == alert_id and change["headline"] == "Defensora detenida en Juchitán"
    assert "change" not in first

    watched = watch_in_a_terminal(b, "--since", "0", "--count", "2")
    assert "CANCELLED" in watched and f"Cancelled by {a.name}: Liberada sin cargos" in watched, watched
    assert f"incident {alert_id[:12]}" in watched
    streamed = [
        json.loads(line)
        for line in b.amparo("watch", "--since", "0", "--count", "2", "--json").stdout.splitlines()
    ]
    assert streamed[1]["change"]["text"] == f"Cancelled by {a.name}: Liberada sin cargos"

    assert [len(messages(catcher, p, cancels=True)) for p in ("Ana", "Bruno", "ally")] == [1, 1, 1]


def test_a_late_checkin_tells_each_paged_person_exactly_once(mesh_factory: Any, catcher: Catcher) -> None:
    mesh: LocalMesh = mesh_factory(2, **LOOPBACK_TARGETS)
    a, b = mesh.nodes
    b.stop()
    b.configure(ack_timeout="2s")  # every step pages Ana and Bruno again
    b.start()
    mesh.connect([(0, 1)])
    staff(b, catcher)
    started = json.loads(
        b.amparo(
            "checkin",
            "start",
            "--who",
            "Lucía",
            "--region",
            "MX-OAX",
            "--in",
            "2s",
            "--grace",
            "2s",
            "--note",
            "En la marcha, chaqueta azul",
            "--to",
            a.name,
            "--json",
        ).stdout
    )
    wait_until(
        lambda: b.api.get("/api/v1/checkins")["checkins"][0].get("alert"),
        timeout=30,
        what="the missed check-in alert",
    )
    alert_id = b.api.get("/api/v1/checkins")["checkins"][0]["alert"]
    wait_until(
        lambda: (b.api.get(f"/api/v1/alerts/{alert_id}")["escalation"] or {}).get("state") == "exhausted",
        timeout=60,
        what="the whole chain to be paged",
    )
    assert len(messages(catcher, "Ana", cancels=False)) >= 2  # paged more than once …

    assert "Checked in" in tap(started["link"])
    wait_until(lambda: all_clear_noted(b, alert_id), timeout=30, what="the all-clear on B's timeline")
    ana, bruno = messages(catcher, "Ana", cancels=True), messages(catcher, "Bruno", cancels=True)
    assert len(ana) == 1 and len(bruno) == 1  # … told once
    assert "Cancelada por" in ana[0]["message"] and "Lucía checked in." in ana[0]["message"]
    assert f"Cancelled by {b.name}: Lucía checked in." in bruno[0]["message"]
    assert messages(catcher, "Carmen", cancels=True) == []
    notes = [n["text"] for n in b.api.get(f"/api/v1/alerts/{alert_id}")["notes"]]
    assert sum(t.startswith("all-clear:") for t in notes) == 1
    assert a.api.get(f"/api/v1/alerts/{alert_id}")["cancelled"]  # the chosen ally hears it too
