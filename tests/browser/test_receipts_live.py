"""The page of an alert this organization sent counts who received it, live, in
Spanish: "Llegó a 0 de 1" with the ally named as not yet there, then "1 de 1"
once the ally comes back, stores the alert and its delivery receipt arrives,
without a reload. Headless Chromium against real node processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from node.devmesh import LocalMesh
from tests.browser.test_dashboard import PASSWORD, sign_in, url

pytestmark = pytest.mark.slow


def test_the_reached_counter_follows_the_receipts(browser: Any, mesh_factory: Any, shots: Path) -> None:
    mesh: LocalMesh = mesh_factory(2)
    a, b = mesh.nodes
    mesh.connect([(0, 1)])
    b.stop()
    alert_id = a.send(headline="Desalojo en la comunidad de San Isidro")
    a.api.post("/api/v1/responders", {"name": "Ana", "role": "responder", "password": PASSWORD})
    page = sign_in(browser, a, "Ana", locale="es-MX", extra_http_headers={"Accept-Language": "es-MX,es"})
    page.goto(url(a, f"/ui/alerts/{alert_id}"))
    page.wait_for_selector('#receipts[data-live="open"]', timeout=20_000)
    page.evaluate("window.__marker = 1")  # gone if the page reloads
    box = page.locator("#receipts")
    assert "Llegó a 0 de 1 organizaciones" in box.inner_text()
    assert f"Todavía no: {b.name}" in box.inner_text()

    b.start()  # it catches up, stores the alert and answers it
    page.locator('#receipts .reached[data-reached="1"]').wait_for(timeout=60_000)
    text = box.inner_text()
    assert "Llegó a 1 de 1 organizaciones" in text and b.name in text and "Todavía no" not in text
    assert page.evaluate("window.__marker") == 1  # no reload
    page.screenshot(path=str(shots / "alert-receipts-live.png"), full_page=True)
