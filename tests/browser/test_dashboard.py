"""The dashboard in headless Chromium against real node processes: sign in,
compose and send at A, see it arrive live at B without reloading (with its
sound, once the page has been touched), acknowledge at B, see B's
acknowledgement on A's alert page; a viewer cannot send or acknowledge (neither
in the page nor by posting); the session cookie is HttpOnly and SameSite=Strict;
a form without its CSRF token is refused; wrong passwords lock only that
account from that address; the alert page shows every CAP field, its CAP
document and one incident timeline in time order; the phone check-in page works
on a 390 px wide screen; Spanish by Accept-Language.

Screenshots of every page go to artifacts/screenshots/ (see conftest.py)."""

from __future__ import annotations

import time
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


# Headless Chromium lets every page play sound, so the desktop browsers' rule is
# emulated: an AudioContext starts suspended and only resumes during a user
# gesture. The page must then offer its "enable sound" control.
AUTOPLAY_POLICY = """
(() => {
  const Real = window.AudioContext;
  window.__contexts = 0;
  window.AudioContext = class extends Real {
    constructor(...args) { super(...args); window.__contexts += 1; this.suspend(); }
    resume() { return navigator.userActivation.isActive ? super.resume() : Promise.resolve(); }
  };
})();
"""


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
    bruno.context.add_init_script(AUTOPLAY_POLICY)
    bruno.reload()
    sound = bruno.locator("#sound")
    sound.wait_for(state="visible")  # the context is suspended: say so
    bruno.screenshot(path=str(shots / "alerts-empty.png"), full_page=True)
    sound.click()
    sound.wait_for(state="hidden")
    assert bruno.evaluate("audio.state") == "running"
    bruno.evaluate("window.__marker = 1")  # gone if the page reloads

    ana.goto(url(a, "/ui/compose"))
    ana.fill("#headline", "Hostigamiento a defensora en Juchitán")
    ana.fill("#region-search", "Oaxaca")
    ana.click("#region-results button")  # the region picker fills MX-OAX
    assert "MX-OAX" in ana.input_value("#regions")
    ana.fill("#instruction", "Llamar a la fiscalía y acompañar en el domicilio")
    ana.select_option("select[name=severity]", "severe")  # no default, as `alert send --severity`
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
    assert bruno.evaluate("window.__marker") == 1  # the same page, not a reload
    assert bruno.evaluate("[window.__amparoBeeps, window.__contexts]") == [1, 1]
    bruno.screenshot(path=str(shots / "alerts-live.png"), full_page=True)
    a.send(headline="Segunda alerta: patrulla frente a la radio comunitaria")
    bruno.locator("#alerts li").nth(1).wait_for(timeout=20_000)
    assert bruno.evaluate("[window.__amparoBeeps, window.__contexts]") == [2, 1]  # one context for the page

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
    ana.goto(url(a, "/ui/peers"))
    assert b.name in ana.inner_text("main")
    ana.screenshot(path=str(shots / "peers.png"), full_page=True)
    a.api.post("/api/v1/responders", {"name": "Carla", "role": "responder", "password": PASSWORD})
    now = int(time.time() * 1000)
    a.api.post("/api/v1/oncall/shifts", {"responder": "Ana", "backup": "Carla", "start": now, "hours": 12})
    a.api.post("/api/v1/oncall/shifts", {"responder": "Carla", "backup": "Ana", "start": now + 12 * 3_600_000,
                                         "hours": 12})
    ana.goto(url(a, "/ui/oncall"))
    assert "Carla" in ana.inner_text("main")
    ana.screenshot(path=str(shots / "oncall.png"), full_page=True)


def test_a_viewer_cannot_send(browser: Any, orgs: Any) -> None:
    _, b = orgs
    vera = sign_in(browser, b, "Vera")
    assert vera.locator("nav >> text=Send an alert").count() == 0
    assert vera.goto(url(b, "/ui/compose")).status == 403
    vera.goto(url(b, "/ui/alerts"))
    form = {"csrf": csrf(vera), "headline": "Should not go out", "regions": "MX-OAX", "action": "send"}
    assert vera.request.post(url(b, "/ui/compose"), form=form).status == 403
    assert "Should not go out" not in str(b.api.get("/api/v1/alerts"))


def test_a_viewer_cannot_acknowledge(browser: Any, orgs: Any) -> None:
    a, b = orgs
    alert_id = a.send(headline="Allanamiento en la casa de la asamblea")
    wait_for_alert(b, alert_id)
    vera = sign_in(browser, b, "Vera")
    vera.goto(url(b, f"/ui/alerts/{alert_id}"))
    assert "Allanamiento" in vera.inner_text("h1")
    assert vera.locator("button[value=responding]").count() == 0  # no buttons for a viewer …
    refused = vera.request.post(url(b, f"/ui/alerts/{alert_id}/ack"), form={"csrf": csrf(vera), "state": "seen"})
    assert refused.status == 403  # … and posting the form anyway is refused
    assert "viewer" in refused.text()
    assert b.api.get(f"/api/v1/alerts/{alert_id}")["responses"] == []


def test_the_session_cookie_is_httponly_and_strict(browser: Any, orgs: Any) -> None:
    _, b = orgs
    page = sign_in(browser, b, "Bruno")
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "amparo_session"]
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert "amparo_session" not in page.evaluate("document.cookie")  # scripts cannot read it


def wait_for_alert(node: LocalNode, alert_id: str) -> None:
    for _ in range(200):
        if alert_id in node.alert_ids():
            return
        time.sleep(0.1)
    raise AssertionError(f"{alert_id[:12]} never reached {node.name}")


def test_forms_without_the_csrf_token_are_refused(browser: Any, orgs: Any) -> None:
    a, b = orgs
    alert_id = a.send(headline="Marcha del sábado")
    bruno = sign_in(browser, b, "Bruno")
    wait_for_alert(b, alert_id)
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
    bruno.fill("#c-pin", "4821")
    bruno.fill("#c-duress", "9153")
    bruno.click("form.card button[type=submit]")
    link = bruno.locator("#checkin-link").get_attribute("href")
    assert link and link.startswith("/checkin/")
    bruno.screenshot(path=str(shots / "checkins.png"), full_page=True)

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True).new_page()
    phone.goto(url(b, link))
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    button = phone.locator("button.safe")
    box = button.bounding_box()
    assert box and box["width"] >= 200 and box["height"] >= 44  # easy to hit with a thumb
    phone.screenshot(path=str(shots / "phone-checkin.png"))
    phone.fill("#pin", "4821")  # the check-in has PINs: the page asks for one
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
    stranger.goto(url(b, "/ui/login"))
    stranger.screenshot(path=str(shots / "sign-in.png"), full_page=True)
    statuses = []
    for _ in range(7):
        stranger.goto(url(b, "/ui/login"))
        stranger.fill("#name", "Bruno")
        stranger.fill("#password", "no-es-la-contraseña")
        with stranger.expect_response("**/ui/login") as response:
            stranger.click("button[type=submit]")
        statuses.append(response.value.status)
    assert statuses == [401] * 5 + [429] * 2  # this address, this account: locked for a short while
    assert "Too many failed attempts" in stranger.inner_text(".error")
    stranger.screenshot(path=str(shots / "sign-in-locked.png"), full_page=True)
    vera = sign_in(browser, b, "Vera")  # the same address (127.0.0.1), another account: signs in
    assert vera.locator("h1").inner_text() == "Alerts"



def test_compose_takes_regions_as_people_type_them_and_refuses_in_spanish(browser: Any, orgs: Any) -> None:
    _, b = orgs
    page = sign_in(browser, b, "Bruno", locale="es-MX", extra_http_headers={"Accept-Language": "es-MX,es;q=0.9"})
    page.goto(url(b, "/ui/compose"))
    page.fill("#headline", "Amenazas a periodistas comunitarias")
    page.fill("#regions", "Oaxka")
    page.select_option("select[name=severity]", "moderate")
    with page.expect_response("**/ui/compose") as refused:
        page.click("button[value=preview]")
    assert refused.value.status == 400
    said = page.inner_text(".error")
    assert said == "región desconocida 'Oaxka': ¿quisiste decir MX-OAX (Oaxaca, México)?"
    page.fill("#regions", "Estado de México, oaxaca")
    page.click("button[value=preview]")
    preview = page.inner_text(".preview")
    assert "MX-MEX" in preview and "MX-OAX" in preview
    assert page.input_value("#regions") == "MX-MEX MX-OAX"  # shown as they will be sent


CAP_DOCUMENT = """<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>PC-OAX-2026-0142</identifier>
  <sender>proteccion-civil@oaxaca.example</sender>
  <sent>2026-11-30T22:10:00-06:00</sent>
  <status>Actual</status><msgType>Alert</msgType><scope>Public</scope>
  <info>
    <language>es-MX</language>
    <category>Safety</category>
    <event>Bloqueo carretero</event>
    <urgency>Expected</urgency><severity>Moderate</severity><certainty>Likely</certainty>
    <effective>2026-11-30T23:00:00-06:00</effective>
    <headline>Bloqueo en la carretera a Juchitán</headline>
    <instruction>Evitar el tramo; acompañantes por la ruta de la costa</instruction>
    <area>
      <areaDesc>Tramo La Ventosa – Juchitán, km 12</areaDesc>
      <circle>16.4350,-95.0200 3.5</circle>
      <geocode><valueName>ISO3166-2</valueName><value>MX-OAX</value></geocode>
    </area>
  </info>
</alert>"""


def test_alert_page_shows_cap_fields_and_one_timeline_in_time_order(browser: Any, orgs: Any, shots: Path) -> None:
    a, b = orgs
    alert_id = a.api.post("/api/v1/alerts/import", {"cap": CAP_DOCUMENT, "expires": "6h"})["id"]
    wait_for_alert(b, alert_id)
    b.api.post(f"/api/v1/alerts/{alert_id}/ack", {"state": "responding", "note": "salimos", "by": "Bruno"})
    for _ in range(200):
        if a.api.get(f"/api/v1/alerts/{alert_id}")["responses"]:
            break
        time.sleep(0.1)
    a.api.post(f"/api/v1/alerts/{alert_id}/cancel", {"reason": "Bloqueo levantado"})
    time.sleep(0.01)  # the debrief comes strictly later, whatever the clock's resolution
    a.api.post(f"/api/v1/alerts/{alert_id}/note", {"text": "Debrief: nadie quedó varado", "author": "Ana"})

    ana = sign_in(browser, a, "Ana")
    ana.goto(url(a, f"/ui/alerts/{alert_id}"))
    fields = ana.inner_text("dl.fields")
    assert "es-MX" in fields  # language
    assert "2026-12-01 05:00:00 UTC" in fields  # effective
    area = ana.inner_text("table.areas tr.area")
    assert "Tramo La Ventosa – Juchitán, km 12" in area and "16.435000, -95.020000, 3.500 km" in area
    steps = ana.locator("ol.timeline li.step")
    kinds = [c.split("step-")[1] for c in steps.evaluate_all("els => els.map(e => e.className)")]
    kinds = [k for k in kinds if k != "escalation"]  # paging steps, if this node pages anyone
    assert kinds == ["sent", "ack", "cancel", "debrief"]  # the note after the cancel comes last
    assert "nadie quedó varado" in steps.last.inner_text()
    ana.screenshot(path=str(shots / "alert-timeline.png"), full_page=True)

    shown = a.amparo("alert", "show", alert_id).stdout.split("TIMELINE:")[1]  # the CLI prints the same order
    positions = [shown.index(word) for word in ("sent: Bloqueo", "ack (responding): Bruno: salimos", "cancel: Bloqueo levantado", "debrief:")]
    assert positions == sorted(positions)

    href = ana.locator("dl.fields a[href$='/cap']").get_attribute("href")
    assert href == f"/ui/alerts/{alert_id}/cap"  # under /ui: the session is enough, no API token
    response = ana.request.get(url(a, href))  # with the page's cookies, as following the link does
    assert response.status == 200 and response.headers["content-type"].startswith("application/cap+xml")
    document = response.text()
    assert f"<identifier>{alert_id}</identifier>" in document and "<areaDesc>Tramo La Ventosa" in document
    signed_out = browser.new_context().request.get(url(a, f"/ui/alerts/{alert_id}/cap"), max_redirects=0)
    assert signed_out.status == 303  # to the sign-in page


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


def test_an_update_from_the_dashboard_shows_the_current_state_everywhere(browser: Any, orgs: Any) -> None:
    """Issue 13 item 2 on the dashboard: after an update the alert page and the
    list show the new headline, at the sender and at the ally; the page the
    form lands on is the incident's; the first headline stays in the timeline."""
    a, b = orgs
    alert_id = a.send(headline="Retén ficticio en la carretera a Tlaxiaco", severity="moderate")
    wait_for_alert(b, alert_id)
    ana = sign_in(browser, a, "Ana")
    ana.goto(url(a, f"/ui/alerts/{alert_id}"))
    ana.fill("#u-headline", "Retén retirado")
    ana.click("form[action$='/update'] button[type=submit]")
    ana.wait_for_url(f"**/ui/alerts/{alert_id}?done=update")
    assert ana.inner_text("h1") == "Retén retirado"
    assert "Retén ficticio" in ana.inner_text("ol.timeline li.step-sent")
    assert "Retén retirado" in ana.inner_text("ol.timeline li.step-update")
    ana.goto(url(a, "/ui/alerts"))
    assert "Retén retirado" in ana.inner_text("main") and "Retén ficticio" not in ana.inner_text("main")

    for _ in range(200):  # the update travels to B
        if b.api.get(f"/api/v1/alerts/{alert_id}")["updates"] == 1:
            break
        time.sleep(0.1)
    bruno = sign_in(browser, b, "Bruno")
    assert "Retén retirado" in bruno.inner_text("main") and "Retén ficticio" not in bruno.inner_text("main")
