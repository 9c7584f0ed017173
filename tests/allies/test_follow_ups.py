"""Updates and cancels follow their alert to allies: every subscription that got
the alert gets them, even when the update moved the alert out of its regions;
one the incident matches only now (its severity was raised) gets them too; a
cancel by another author reaches nobody. The phone text says who cancelled and
why, or what changed, and links the incident; a webhook carries the same in
``change``. A real store; the desk's sending is stubbed (real receivers:
tests/e2e/test_all_clear.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from node.all_clear import change_json
from node.allies import delivery as delivery_mod
from node.allies import messages
from node.allies.delivery import DeliveryDesk
from node.store import Store, StoredEnvelope
from protocol import Alert, Area, Identity, sign_envelope
from tests.node.conftest import pg_schema_url, store_url
from tests.node.test_store import row
from tests.response.test_page_outcome import ALLY, STRANGER, T0, FakeNode

__all__ = ["pg_schema_url", "store_url"]  # both backends, as tests/response

ORIGINAL = Alert(headline="Retén en la carretera", areas=(Area("MX-OAX"),), severity="moderate", instruction="Evitar")


@pytest.fixture
def node(store_url: str) -> Iterator[FakeNode]:
    store = Store(store_url)
    yield FakeNode(store, [T0])
    store.close()


def subscribe(node: FakeNode, sub_id: str, regions: list[str], min_severity: str = "unknown") -> None:
    channel = {"kind": "apprise", "url": f"json://ally.example/{sub_id}"}
    doc = {"id": sub_id, "regions": regions, "channel": channel, "min_severity": min_severity, "created": 0}
    node.store.put_subscription(sub_id, doc, 0)


def store(node: FakeNode, desk: DeliveryDesk, author: Identity, body: Alert, at: int) -> StoredEnvelope:
    (stored,) = node.store.add_envelopes([row(sign_envelope(author, body, created=at, expires=at + 3_600_000))])
    desk.on_stored(stored)
    return stored


def follow(incident: StoredEnvelope, **fields: Any) -> Alert:
    return Alert(**({"headline": ORIGINAL.headline, "areas": ORIGINAL.areas, "severity": "moderate"} | fields),
                 references=(incident.id,))


def queued(node: FakeNode, sub_id: str) -> list[bytes]:
    return [d.envelope_id for d in node.store.pending_for(sub_id, T0 + 10**9, 100)]


def test_follow_ups_reach_every_subscription_that_got_the_alert(node: FakeNode) -> None:
    subscribe(node, "oaxaca", ["MX-OAX"])
    subscribe(node, "chiapas-grave", ["MX-CHP"], "severe")
    subscribe(node, "colombia", ["CO"])
    desk = DeliveryDesk(node)
    incident = store(node, desk, ALLY, ORIGINAL, T0)
    moved = store(node, desk, ALLY, follow(incident, msg_type="update", areas=(Area("MX-CHP"),), severity="extreme"), T0 + 1)
    stranger = store(node, desk, STRANGER, follow(incident, msg_type="cancel", areas=(Area("MX-CHP"),)), T0 + 2)
    cancel = store(node, desk, ALLY, follow(incident, msg_type="cancel", areas=(Area("CO"),), description="Ya retiraron"), T0 + 3)
    assert queued(node, "oaxaca") == [incident.id, moved.id, cancel.id]  # out of its regions now: it still follows
    assert queued(node, "chiapas-grave") == [moved.id, cancel.id]  # extreme in Chiapas now: from the update on
    assert queued(node, "colombia") == []  # the cancel names CO, but the incident never was there
    assert stranger.id not in queued(node, "chiapas-grave")


def test_the_phone_text_and_the_webhook_say_who_cancelled_and_why(
    node: FakeNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    subscribe(node, "oaxaca", ["MX-OAX"])
    desk = DeliveryDesk(node)
    incident = store(node, desk, ALLY, ORIGINAL, T0)
    store(node, desk, ALLY, follow(incident, msg_type="update", headline="Retén con militares"), T0 + 1)
    store(node, desk, ALLY, follow(incident, msg_type="cancel", headline="Retén con militares", description="Retirado"), T0 + 2)
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(delivery_mod, "send_apprise", lambda urls, title, body, policy: sent.append((title, body)) or True)

    async def deliver_all() -> None:
        for d in node.store.pending_for("oaxaca", T0 + 10**9, 100):
            assert await desk._send(d) is None

    asyncio.run(deliver_all())
    link = f"/ui/alerts/{incident.id.hex()}"
    (_, first), (update_title, update_body), (cancel_title, cancel_body) = sent
    assert "Evitar" in first and update_title.startswith("UPDATE: MODERATE · Oaxaca (MX-OAX): Retén con militares")
    assert "headline: “Retén en la carretera” → “Retén con militares”" in update_body
    assert cancel_title.startswith("CANCELLED: MODERATE · Oaxaca (MX-OAX): Retén con militares")
    assert "Cancelled by " in cancel_body and ": Retirado" in cancel_body and "Evitar" not in cancel_body
    assert all(body.splitlines()[-1].endswith(link) for _, body in sent)

    opened = desk._open(incident.id)
    assert opened is not None and opened[2] is None  # the alert itself: nothing to say of a change
    cancel_row = node.store.pending_for("oaxaca", T0 + 10**9, 100)[-1]
    follow_up = desk._open(cancel_row.envelope_id)
    assert follow_up is not None and follow_up[2] is not None
    change = change_json(follow_up[2], "Colectivo Ejemplo")
    assert change == {
        "kind": "cancel", "incident": incident.id.hex(), "by": "Colectivo Ejemplo", "reason": "Retirado",
        "changed": {}, "text": "Cancelled by Colectivo Ejemplo: Retirado",
        "headline": "Retén con militares", "severity": "moderate", "regions": ["MX-OAX"],
    }
    doc = json.loads(messages.webhook_body({"status": "actual"}, delivery="d", subscription="s", link=link, change=change))
    assert doc["change"] == change


def test_an_sms_subscription_gets_the_short_code_of_an_incident_this_node_pages_for(
    node: FakeNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    for sub_id, url, lang in (("sms", "smseagle://token@sms.example.org/+5215550001111", "es"),
                              ("chat", "json://ally.example/chat", "es")):
        doc = {"id": sub_id, "regions": ["MX"], "channel": {"kind": "apprise", "url": url}, "created": 0, "lang": lang}
        node.store.put_subscription(sub_id, doc, 0)
    desk = DeliveryDesk(node)
    quiet = store(node, desk, ALLY, ORIGINAL, T0)  # nobody here is paged for this one
    paged = store(node, desk, ALLY, Alert(headline="Desaparición", areas=(Area("MX-OAX"),), severity="severe"), T0 + 1)
    node.desk.on_delivered(paged)  # this node watches MX: it escalates the severe one
    sent: dict[str, list[str]] = {}
    monkeypatch.setattr(
        delivery_mod, "send_apprise",
        lambda urls, title, body, policy: sent.setdefault(urls[0].split(":")[0], []).append(body) or True,
    )

    async def deliver_all() -> None:
        for sub_id in ("sms", "chat"):
            for d in node.store.pending_for(sub_id, T0 + 10**9, 100):
                assert await desk._send(d) is None

    asyncio.run(deliver_all())
    assert node.store.open_escalations() == [paged.id.hex()]
    (quiet_sms, paged_sms) = sent["smseagle"]
    assert "ACK" not in quiet_sms and quiet.id.hex() in quiet_sms
    assert paged_sms.splitlines()[-1] == f"Responda por SMS: ACK {paged.id.hex()[:4].upper()}"
    assert not any("ACK" in body for body in sent["json"])  # not by SMS: no reply line
