"""Issue 13, item 9, in headless Chromium against real node processes.

The Spanish dashboard has no English left: every page is rendered in Spanish
with real data (an alert acknowledged by an ally and by a responder, updated,
cancelled and debriefed; a missed check-in with its escalation and pages; a
drill and its report; check-ins; a row that arrives live), and no message of
the catalog (a fresh extraction, as tests/web/test_catalogs.py makes it) whose
Spanish differs appears in English in what a reader sees: the text, the
placeholders and labels, and the words of the drill chart.

The check-ins page fits a 390 px phone without scrolling sideways, and overdue
plans are red (docs/responders.md)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po

from node.devmesh import LocalMesh, LocalNode
from node.web import i18n, labels
from tests.browser.test_dashboard import PASSWORD, sign_in, url, wait_for_alert

pytestmark = pytest.mark.slow
WEB = Path(labels.__file__).parent
SPANISH = {"locale": "es-MX", "extra_http_headers": {"Accept-Language": "es-MX,es;q=0.9"}}

# What a reader sees: the visible text, the words in attributes (placeholders,
# labels, alternatives, titles) and the words drawn in SVG images (the drill chart).
SEEN = """() => {
  const parts = [document.title, document.body.innerText];
  for (const el of document.querySelectorAll("[placeholder], [aria-label], [alt], [title]")) {
    for (const name of ["placeholder", "aria-label", "alt", "title"]) {
      if (el.getAttribute(name)) parts.push(el.getAttribute(name));
    }
  }
  for (const img of document.querySelectorAll('img[src^="data:image/svg+xml"]')) {
    const svg = decodeURIComponent(img.getAttribute("src").split(",").slice(1).join(","));
    parts.push(svg.replace(/<[^>]+>/g, " "));
  }
  return parts.join("\\n");
}"""


def english_patterns(tmp_path: Path) -> dict[str, re.Pattern[str]]:
    """Each extracted message whose Spanish differs, as a pattern that finds it
    untranslated (its fields match any text). A message that also reads as
    part of some Spanish translation cannot be told apart, and is left out."""
    pot = tmp_path / "fresh.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "--project=Amparo",
            "-o",
            str(pot),
            ".",
        ],
        cwd=WEB,
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as handle:
        messages = [str(m.id) for m in read_po(handle) if m.id and isinstance(m.id, str)]
    spanish = i18n.translations("es")
    translated = {m: spanish.gettext(m) for m in messages}
    words = [re.sub(r"%\(\w+\)s", " ", s) for s in translated.values()]  # the Spanish, less its fields
    patterns = {}
    for message, said in translated.items():
        if said == message:
            continue  # "Amparo", "CAP 1.2": the same in both languages
        pieces = re.split(r"%\(\w+\)s", message)
        if not any(re.search(r"[A-Za-z]{2}", p) for p in pieces):
            continue  # nothing but fields
        body = ".+?".join(re.escape(p) for p in pieces)
        pattern = re.compile(rf"(?<![\w]){body}(?![\w])", re.IGNORECASE)
        if any(pattern.search(s) for s in words):
            continue  # also Spanish ("responder"): it proves nothing
        patterns[message] = pattern
    assert len(patterns) > 0.9 * len(messages), "too few of the extracted messages can be checked"
    return patterns


def english_in(text: str, patterns: dict[str, re.Pattern[str]]) -> list[str]:
    text = re.sub(r"(https?://|/ui/|/checkin/)\S*", " ", text)  # links are not words ("/ui/alerts/…")
    return sorted(m for m, p in patterns.items() if p.search(text))


def wait_for(condition: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


SCENARIO = """
name = "Simulacro: persona armada en la marcha"
participants = ["Ana"]
wait = "1s"
[[step]]
at = "0s"
region = "MX-CMX"
severity = "severe"
headline = "SIMULACRO: persona armada cerca del templete"
[[step]]
at = "1s"
region = "MX-CMX"
severity = "extreme"
headline = "SIMULACRO: dos observadoras no responden"
"""


@pytest.fixture
def orgs(mesh_factory: Any) -> tuple[LocalNode, LocalNode]:
    """A watches Mexico and escalates quickly; B is its ally."""
    mesh: LocalMesh = mesh_factory(2, watch_regions=["MX"], ack_timeout="10s")
    a, b = mesh.nodes
    mesh.connect([(0, 1)])
    a.api.post("/api/v1/responders", {"name": "Ana", "role": "admin", "password": PASSWORD})
    a.api.post("/api/v1/responders", {"name": "Carla", "role": "responder", "password": PASSWORD})
    b.api.post("/api/v1/responders", {"name": "Bruno", "role": "responder", "password": PASSWORD})
    return a, b


def incident(a: LocalNode, b: LocalNode) -> str:
    """An alert from B that A escalates, both organizations acknowledge, B
    updates and cancels, and A debriefs."""
    alert_id = b.send(
        headline="Detención de dos defensores en Tlaxiaco",
        severity="severe",
        instruction="Acompañar a las familias a la fiscalía",
    )
    wait_for_alert(a, alert_id)
    wait_for(lambda: a.api.get(f"/api/v1/alerts/{alert_id}")["notes"], "A's escalation to start")
    a.api.post(f"/api/v1/alerts/{alert_id}/ack", {"state": "seen", "by": "Ana"})
    b.api.post(
        f"/api/v1/alerts/{alert_id}/ack", {"state": "responding", "note": "vamos en camino", "by": "Bruno"}
    )
    b.api.post(f"/api/v1/alerts/{alert_id}/update", {"headline": "Trasladados a la fiscalía de Tlaxiaco"})
    b.api.post(f"/api/v1/alerts/{alert_id}/cancel", {"reason": "Liberados sin cargos"})

    def arrived() -> bool:
        seen = a.api.get(f"/api/v1/alerts/{alert_id}")
        return bool(seen["cancelled"] and len(seen["responses"]) == 2)

    wait_for(arrived, "the ack, the update and the cancel at A")
    a.api.post(
        f"/api/v1/alerts/{alert_id}/note",
        {"text": "Debrief: la fiscalía respondió en 40 min", "author": "Ana"},
    )
    return alert_id


def missed_check_in(a: LocalNode) -> str:
    """A check-in nobody answers: A raises its alert and pages through the chain."""
    a.api.post("/api/v1/checkins", {"who": "Lucía", "region": "MX-GRO", "in": "2s", "grace": "0s"})

    def raised() -> str:
        return (
            next((p["alert"] for p in a.api.get("/api/v1/checkins")["checkins"] if p.get("alert")), "") or ""
        )

    wait_for(lambda: bool(raised()), "the missed check-in's alert")
    alert_id = raised()
    wait_for(lambda: len(a.api.get(f"/api/v1/alerts/{alert_id}")["notes"]) >= 2, "its pages on the timeline")
    return alert_id


def drill_report(a: LocalNode) -> None:
    run = a.api.post("/api/v1/drills", {"scenario": SCENARIO, "wait": "1s"})
    wait_for(lambda: a.api.get(f"/api/v1/drills/{run['id']}")["state"] != "running", "the drill's report", 60)


def test_the_spanish_dashboard_has_no_english_left(
    browser: Any, orgs: Any, tmp_path: Path, shots: Path
) -> None:
    a, b = orgs
    patterns = english_patterns(tmp_path)
    acknowledged = incident(a, b)
    missed = missed_check_in(a)
    drill_report(a)
    a.api.post("/api/v1/checkins", {"who": "Mateo", "region": "MX-OAX", "in": "2h"})

    ana = sign_in(browser, a, "Ana", **SPANISH)
    english: dict[str, list[str]] = {}

    def read(path: str) -> str:
        ana.goto(url(a, path))
        seen: str = ana.evaluate(SEEN)
        if found := english_in(seen, patterns):
            english[path] = found
        return seen

    for path in (
        "/ui/alerts",
        f"/ui/alerts/{acknowledged}",
        f"/ui/alerts/{missed}",
        "/ui/compose",
        "/ui/oncall",
        "/ui/checkins",
        "/ui/peers",
        "/ui/drills",
    ):
        read(path)
    said = read(f"/ui/alerts/{missed}")
    assert "Reporte de llegada no recibido: Lucía" in said and "se avisó a: guardia" in said
    assert "Visto" in read(f"/ui/alerts/{acknowledged}")
    ana.screenshot(path=str(shots / "alerta-es.png"), full_page=True)

    ana.goto(url(a, "/ui/compose"))  # a preview, and a refusal
    ana.fill("#headline", "Amenazas a periodistas comunitarias")
    ana.fill("#regions", "Oaxaca")
    ana.select_option("select[name=severity]", "moderate")
    ana.click("button[value=preview]")
    if found := english_in(ana.evaluate(SEEN), patterns):
        english["/ui/compose (preview)"] = found

    ana.goto(url(a, "/ui/alerts"))  # a row that arrives live, and its banner
    ana.locator('#alerts[data-live="open"]').wait_for(state="attached")  # the page listens before B sends
    live = b.send(headline="Hostigamiento a la radio comunitaria", severity="extreme")
    row = ana.locator(f'#alerts li.fresh[data-id="{live}"]')
    row.wait_for(timeout=20_000)
    ana.locator(f'#alerts li[data-id="{live}"] .acks').wait_for(
        timeout=10_000
    )  # the server's row replaced it
    assert "EXTREMA" in row.inner_text().upper() and "Hostigamiento" in ana.inner_text("#live")
    if found := english_in(ana.evaluate(SEEN), patterns):
        english["/ui/alerts (live)"] = found

    signed_out = browser.new_context(**SPANISH).new_page()
    signed_out.goto(url(a, "/ui/login"))
    if found := english_in(signed_out.evaluate(SEEN), patterns):
        english["/ui/login"] = found
    assert english == {}, f"English in the Spanish dashboard: {english}"


def test_the_check_ins_page_fits_390_px_and_overdue_plans_are_red(
    browser: Any, orgs: Any, shots: Path
) -> None:
    a, _ = orgs
    a.api.post(
        "/api/v1/checkins",
        {"who": "Lucía Hernández (periodista)", "region": "MX-GRO", "in": "2s", "grace": "1h"},
    )  # overdue soon, and for an hour before it is missed
    a.api.post(
        "/api/v1/checkins", {"who": "Equipo de acompañamiento Sur", "region": "MX-OAX", "every": "30m"}
    )
    for lang, context in (("es", SPANISH), ("en", {})):
        phone = sign_in(
            browser,
            a,
            "Ana",
            viewport={"width": 390, "height": 844},
            is_mobile=True,
            has_touch=True,
            **context,
        )
        phone.goto(url(a, "/ui/checkins"))
        phone.fill("#who", "Brigada de observación")
        phone.fill("#c-region", "MX-CHP")
        phone.click("form.card button[type=submit]")  # the page with the phone link shown
        phone.locator("#checkin-link").wait_for()
        wait_for(
            lambda: phone.reload() is not None and phone.locator("tr.plan.overdue").count() == 1,  # noqa: B023
            "Lucía's plan to be overdue",
        )
        widths = phone.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1] <= 390, f"{lang}: the page scrolls sideways: {widths}"
        overdue = phone.locator("tr.plan.overdue")
        assert "Lucía Hernández" in overdue.inner_text()
        color = overdue.locator("td").first.evaluate("td => getComputedStyle(td).color")
        assert color == "rgb(179, 0, 0)", color  # red, as docs/responders.md says
        others = phone.locator("tr.plan:not(.overdue) td").first.evaluate("td => getComputedStyle(td).color")
        assert others != color  # only the overdue plan
        phone.screenshot(path=str(shots / f"checkins-390-{lang}.png"), full_page=True)
