"""The dashboard in headless Chromium against real node processes: sign in,
compose and send at A, see it arrive live at B without reloading, acknowledge at
B, see B's acknowledgement on A's alert page; a viewer cannot send (neither in
the page nor by posting); a form without its CSRF token is refused; the phone
check-in page works on a 390 px wide screen; Spanish by Accept-Language."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from node.devmesh import LocalMesh, LocalNode

pytestmark = pytest.mark.slow
PASSWORD = "contraseña-de-prueba-larga"


def url(node: LocalNode, path: str) -> str:
    return f"http://127.0.0.1:{node.local_port}{path}"


def sign_in(browser: Any, node: LocalNode, name: str, **context: Any) -> Any:
    page = browser.new_context(**context).new_page()
    page.goto(url(node, "/ui/login"))
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/ui/alerts")
    return page


def csrf(page: Any) -> str:
    value: str = page.locator("form.logout input[name=csrf]").get_attribute("value")
    return value


@pytest.fixture
def orgs(mesh_factory: Any) -> tuple[LocalNode, LocalNode]:
    mesh: LocalMesh = mesh_factory(2)
    a, b = mesh.nodes
    mesh.connect([(0, 1)])
    a.api.post("/api/v1/responders", {"name": "Ana", "role": "admin", "password": PASSWORD})
    b.api.post("/api/v1/responders", {"name": "Bruno", "role": "responder", "password": PASSWORD})
    b.api.post("/api/v1/responders", {"name": "Vera", "role": "viewer", "password": PASSWORD})
    return a, b


def test_send_at_a_live_at_b_ack_seen_at_a(browser: Any, orgs: Any, shots: Path) -> None:
    a, b = orgs
    ana = sign_in(browser, a, "Ana")
    bruno = sign_in(browser, b, "Bruno")
    bruno.screenshot(path=str(shots / "alerts-empty.png"), full_page=True)

    ana.goto(url(a, "/ui/compose"))
    ana.fill("#headline", "Hostigamiento a defensora en Juchitán")
    ana.fill("#region-search", "Oaxaca")
    ana.click("#region-results button")  # the region picker fills MX-OAX
    assert "MX-OAX" in ana.input_value("#regions")
    ana.fill("#instruction", "Llamar a la fiscalía y acompañar en el domicilio")
    ana.click("button[value=preview]")
    assert "Oaxaca (MX-OAX)" in ana.inner_text(".preview")
    ana.screenshot(path=str(shots / "compose-preview.png"), full_page=True)
    ana.click("button[value=send]")
    ana.wait_for_url("**/ui/alerts/*")
    alert_id = ana.url.split("/ui/alerts/")[1].split("?")[0]

    item = bruno.locator(f'#alerts li[data-id="{alert_id}"]')  # no reload: server-sent events
    item.wait_for(timeout=20_000)
    assert "Hostigamiento a defensora" in item.inner_text()
    assert bruno.locator("#live").is_visible()
    bruno.screenshot(path=str(shots / "alerts-live.png"), full_page=True)

    item.locator("a").click()
    bruno.wait_for_url(f"**/ui/alerts/{alert_id}")
    bruno.click("button[value=responding]")
    bruno.wait_for_selector(".notice")
    bruno.screenshot(path=str(shots / "alert-detail.png"), full_page=True)

    rows = ana.locator("#responses tr.response")  # A's page refreshes its responses by itself
    rows.first.wait_for(timeout=20_000)
    text = rows.first.inner_text()
    assert b.name in text and ("responding" in text)
    ana.screenshot(path=str(shots / "alert-acknowledged.png"), full_page=True)


def test_a_viewer_cannot_send(browser: Any, orgs: Any) -> None:
    _, b = orgs
    vera = sign_in(browser, b, "Vera")
    assert vera.locator("nav >> text=Send an alert").count() == 0
    assert vera.goto(url(b, "/ui/compose")).status == 403
    vera.goto(url(b, "/ui/alerts"))
    form = {"csrf": csrf(vera), "headline": "Should not go out", "regions": "MX-OAX", "action": "send"}
    assert vera.request.post(url(b, "/ui/compose"), form=form).status == 403
    assert "Should not go out" not in str(b.api.get("/api/v1/alerts"))


def test_forms_without_the_csrf_token_are_refused(browser: Any, orgs: Any) -> None:
    a, b = orgs
    alert_id = a.send(headline="Marcha del sábado")
    bruno = sign_in(browser, b, "Bruno")
    bruno.wait_for_timeout(100)
    for _ in range(100):
        if alert_id in b.alert_ids():
            break
        bruno.wait_for_timeout(100)
    refused = bruno.request.post(url(b, f"/ui/alerts/{alert_id}/note"), form={"text": "sin token"})
    assert refused.status == 403
    forged = bruno.request.post(url(b, f"/ui/alerts/{alert_id}/note"), form={"text": "x", "csrf": "adivinado"})
    assert forged.status == 403
    ok = bruno.request.post(url(b, f"/ui/alerts/{alert_id}/note"), form={"text": "con token", "csrf": csrf(bruno)})
    assert ok.ok
    notes = [n["text"] for n in b.api.get(f"/api/v1/alerts/{alert_id}")["notes"]]
    assert notes == ["con token"]
    anonymous = browser.new_context().request.post(url(b, f"/ui/alerts/{alert_id}/note"), form={"text": "x"})
    assert anonymous.status == 401


def test_phone_check_in_at_390_px(browser: Any, orgs: Any, shots: Path) -> None:
    _, b = orgs
    bruno = sign_in(browser, b, "Bruno")
    bruno.goto(url(b, "/ui/checkins"))
    bruno.fill("#who", "Lucía (periodista)")
    bruno.fill("#c-region", "MX-GRO")
    bruno.fill("#in", "2h")
    bruno.click("form.card button[type=submit]")
    link = bruno.locator("#checkin-link").get_attribute("href")
    assert link and link.startswith("/checkin/")
    bruno.screenshot(path=str(shots / "checkins.png"), full_page=True)

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True).new_page()
    phone.goto(url(b, link))
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    button = phone.locator("button")
    box = button.bounding_box()
    assert box and box["width"] >= 200 and box["height"] >= 44  # easy to hit with a thumb
    phone.screenshot(path=str(shots / "phone-checkin.png"))
    button.tap()
    phone.wait_for_selector("text=Checked in")
    plans = b.api.get("/api/v1/checkins")["checkins"]
    assert plans[0]["last_ok"] and plans[0]["state"] == "stopped"  # a one-time check-in is done


def test_spanish_and_sign_in_rate_limit(browser: Any, orgs: Any, shots: Path) -> None:
    _, b = orgs
    page = sign_in(browser, b, "Bruno", locale="es-MX", extra_http_headers={"Accept-Language": "es-MX,es;q=0.9"})
    assert page.locator("h1").inner_text() == "Alertas"
    page.screenshot(path=str(shots / "alertas-es.png"), full_page=True)
    stranger = browser.new_context().new_page()
    statuses = []
    for _ in range(7):
        stranger.goto(url(b, "/ui/login"))
        stranger.fill("#name", "Bruno")
        stranger.fill("#password", "no-es-la-contraseña")
        with stranger.expect_response("**/ui/login") as response:
            stranger.click("button[type=submit]")
        statuses.append(response.value.status)
    assert statuses[:5] == [401] * 5 and statuses[-1] == 429


SCENARIO = """
name = "Simulacro: persona armada en la marcha"
participants = ["Ana"]
wait = "2s"
[[step]]
at = "0s"
region = "MX-CMX"
severity = "severe"
headline = "SIMULACRO: persona armada cerca del templete"
instruction = "Ubicar al equipo de acompañamiento"
"""


def test_admin_runs_a_drill_and_reads_its_report(browser: Any, orgs: Any, shots: Path) -> None:
    a, b = orgs
    ana = sign_in(browser, a, "Ana", viewport={"width": 390, "height": 844})
    assert ana.evaluate("document.documentElement.scrollWidth") <= 390  # the dashboard fits a phone too
    ana.goto(url(a, "/ui/drills"))
    ana.fill("#scenario", SCENARIO)
    ana.click("form.card button[type=submit]")
    ana.wait_for_url("**/ui/drills")
    assert "SIMULACRO en curso" in ana.inner_text("main") or "DRILL in progress" in ana.inner_text("main")
    for _ in range(60):
        ana.reload()
        if ana.locator("article.report").count():
            break
        ana.wait_for_timeout(500)
    report = ana.locator("article.report").first
    assert "Simulacro: persona armada en la marcha" in report.inner_text()
    assert report.locator("img").get_attribute("src", timeout=1000).startswith("data:image/svg+xml")
    drills = [x for x in b.api.get("/api/v1/alerts")["alerts"] if x["status"] == "exercise"]
    assert drills and drills[0]["headline"].startswith("SIMULACRO")  # it crossed the mesh, labelled
    ana.set_viewport_size({"width": 1280, "height": 900})
    ana.screenshot(path=str(shots / "drills.png"), full_page=True)
