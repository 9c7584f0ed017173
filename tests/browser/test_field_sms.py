"""What docs/field.md shows, in headless Chromium against a real node: a call
for help by SMS appears on the dashboard as a severe restricted alert, and a
responder's ``ACK code`` by SMS shows on its timeline as their
acknowledgement, in Spanish for a Spanish browser; the check-ins page and the
phone page of a check-in at 390 px; Lucía's standing link opens in Spanish.
Screenshots go to artifacts/screenshots/ (copied by hand to docs/screenshots/
for docs/field.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from node.devmesh import LocalMesh, LocalNode
from node.response import sms
from tests.browser.test_dashboard import PASSWORD, sign_in, url
from tests.e2e.test_gossip import wait_until

pytestmark = pytest.mark.slow
LUCIA, ANA = "+5215550001111", "+5215550002222"


def sms_in(node: LocalNode, sender: str, text: str, message_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = node.api.post("/api/v1/inbound/sms", {"from": sender, "text": text, "id": message_id})
    return answer


def test_sos_and_ack_by_sms_on_the_dashboard(browser: Any, mesh_factory: Any, shots: Path) -> None:
    mesh: LocalMesh = mesh_factory(1)
    (node,) = mesh.nodes
    node.api.post("/api/v1/responders", {"name": "Ana", "role": "admin", "password": PASSWORD, "phone": ANA,
                                         "lang": "es"})
    node.api.post("/api/v1/people", {"name": "Lucía (periodista)", "phone": LUCIA, "lang": "es"})
    standing = node.api.post("/api/v1/sos-links", {"person": "Lucía (periodista)", "pin": "4821",
                                                   "duress_pin": "9153", "region": "MX-GRO"})["link"]

    assert sms_in(node, LUCIA, "SOS", "gw-1")["kind"] == "help-asked"
    wait_until(lambda: any(a.get("headline", "").startswith("SOS") for a in node.api.get("/api/v1/alerts")["alerts"]),
               timeout=10, what="the SOS alert")
    alert = next(a for a in node.api.get("/api/v1/alerts")["alerts"] if a.get("headline", "").startswith("SOS"))
    code = sms.short_code(alert["id"], [alert["id"]])
    acked = sms_in(node, ANA, f"ACK {code}", "gw-2")
    assert acked["acted"] and acked["reply"] == f"Alerta {code} atendida. Gracias."

    ana = sign_in(browser, node, "Ana", locale="es-MX", extra_http_headers={"Accept-Language": "es-MX,es"})
    ana.goto(url(node, f"/ui/alerts/{alert['id']}"))
    ana.wait_for_selector("h1:has-text('SOS: Lucía (periodista) pide ayuda')")  # a generated headline, in Spanish
    timeline = ana.locator("ol.timeline").inner_text()
    assert "Ana: SMS" in timeline and "respondió Ana" in timeline  # the ack by SMS, by whom
    ana.screenshot(path=str(shots / "field-sos-by-sms.png"), full_page=True)

    ana.goto(url(node, "/ui/checkins"))
    ana.fill("#who", "Lucía (periodista)")
    ana.fill("#c-region", "MX-GRO")
    ana.fill("#in", "2h")
    ana.click("form.card button[type=submit]")
    link = ana.locator("#checkin-link").get_attribute("href")
    assert link and link.startswith("/checkin/")
    ana.screenshot(path=str(shots / "field-checkins.png"), full_page=True)
    phone = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="es-MX",
        extra_http_headers={"Accept-Language": "es-MX,es"},
    ).new_page()
    phone.goto(url(node, link))
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    phone.screenshot(path=str(shots / "field-phone.png"))
    phone.goto(standing)  # Lucía's own standing link: her language, a PIN field, the help button
    assert phone.locator("html").get_attribute("lang") == "es"
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    phone.screenshot(path=str(shots / "field-phone-standing.png"), full_page=True)
