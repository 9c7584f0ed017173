"""The dashboard's live list follows an incident without a reload, in Spanish:
an update changes the row's headline and severity, a cancel strikes the row
through and the banner says who cancelled and why, from the catalog's words.
Headless Chromium against real node processes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from node.devmesh import LocalMesh
from tests.browser.test_dashboard import PASSWORD, sign_in

pytestmark = pytest.mark.slow


def test_an_update_and_a_cancel_change_the_live_row(browser: Any, mesh_factory: Any, shots: Path) -> None:
    mesh: LocalMesh = mesh_factory(2)
    a, b = mesh.nodes
    mesh.connect([(0, 1)])
    b.api.post("/api/v1/responders", {"name": "Bruno", "role": "responder", "password": PASSWORD})
    page = sign_in(browser, b, "Bruno", locale="es-MX", extra_http_headers={"Accept-Language": "es-MX,es"})
    page.evaluate("window.__marker = 1")  # gone if the page reloads

    alert_id = a.send(headline="Retén militar en la carretera a Juchitán", severity="moderate")
    row = page.locator(f'#alerts li[data-id="{alert_id}"]')
    row.wait_for(timeout=20_000)

    a.amparo("alert", "update", alert_id[:12], "--headline", "Retén con detenciones", "--severity", "extreme")
    # Locator assertions poll without evaluating strings in the page (its CSP forbids eval).
    expect(row.locator(".headline")).to_have_text("Retén con detenciones", timeout=20_000)
    assert "sev-extreme" in (row.get_attribute("class") or "")

    a.amparo("alert", "cancel", alert_id[:12], "--reason", "Se retiraron sin detenidos")
    expect(row).to_have_class(re.compile(r"\bcancelled\b"), timeout=20_000)
    banner = page.inner_text("#live")
    assert f"Cancelada por {a.name}: Se retiraron sin detenidos" in banner, banner
    assert "Retén con detenciones" in banner and "Cancelled" not in banner
    assert "cancelada" in row.inner_text()
    assert page.locator("#alerts li").count() == 1  # the incident's own row, not one per update
    assert page.evaluate("window.__marker") == 1  # no reload
    page.screenshot(path=str(shots / "alerts-live-cancelled.png"), full_page=True)
