"""Issue 13, item 9, in process (tests/web/conftest.py): the list says which
alerts somebody acknowledged, and a row that arrives live is the same row; the
node's own timeline steps and the alert a missed check-in raises read in the
reader's language; overdue check-ins are red; the Drills page's banner lasts as
long as the drill, and its reports list CLI runs and chart missed steps; the
compose form starts from the command line's defaults."""

from __future__ import annotations

import asyncio
import re

from node import incidents
from node.alerts import DEFAULTS
from node.response import drill
from node.response.drill_runner import DrillRunner
from tests.web.conftest import T0, Dashboard, text_of, until


def send(d: Dashboard, headline: str, **fields: object) -> str:
    doc = {"headline": headline, "regions": ["MX-OAX"], "severity": "severe"} | fields
    return str(incidents.send_alert(d.node, doc)["id"])


def row_of(html: str, alert_id: str) -> str:
    found = re.search(rf'<li class="alert[^"]*" data-id="{alert_id}">.*?</li>', html, re.DOTALL)
    assert found, f"no row for {alert_id[:12]}"
    return found[0]


async def test_the_list_says_which_alerts_were_acknowledged_and_by_whom(dashboard: Dashboard) -> None:
    answered = send(dashboard, "Retén en la entrada de la comunidad")
    silent = send(dashboard, "Patrulla frente a la radio comunitaria")
    row = incidents.find_alert(dashboard.node, answered)
    incidents.acknowledge(dashboard.node, row, {"state": "seen", "by": "Ana"})

    html = await dashboard.page("/ui/alerts", lang="es")
    acked = row_of(html, answered)
    assert 'class="alert sev-severe answered"' in acked
    assert "Respondieron: Brigada Ejemplo (visto)" in text_of(acked)
    assert "Nadie ha respondido todavía." in text_of(row_of(html, silent))
    listed = {a["id"]: a for a in incidents.list_alerts(dashboard.node, region=None)}
    assert [r["state"] for r in listed[answered]["responses"]] == ["seen"]  # the API's list says it too
    assert listed[silent]["responses"] == []

    live = await dashboard.page(f"/ui/alerts/{answered}/item", lang="es")  # what app.js puts in the list
    assert text_of(live) == text_of(acked)


async def test_a_missed_check_in_reads_in_spanish_from_the_alert_to_its_timeline(
    dashboard: Dashboard,
) -> None:
    d = dashboard
    plan, _token = d.node.desk.checkins.start(
        "Lucía", "MX-GRO", deadline=T0 + 60_000, grace_ms=60_000, note="Ruta a Chilpancingo", to=[]
    )
    d.clock[0] = T0 + 121_000
    d.node.desk.tick()  # deadline and grace over: the node raises the alert and pages
    alert_id = next(p["alert"] for p in d.node.desk.checkins.plans() if p["id"] == plan.id)
    await until(lambda: len(d.node.desk.timeline(alert_id)) >= 2, "the page's step on the timeline")

    notes = d.node.desk.timeline(alert_id)
    assert [(n["message"], n["params"]) for n in notes] == [
        ("paged %(step)s", {"step": "on-call"}),
        ("page (%(step)s): %(people)s", {"step": "on-call", "people": "Ana"}),
    ]
    assert [n["text"] for n in notes] == ["paged on-call", "page (on-call): Ana"]  # English for the CLI

    spanish = text_of(await d.page(f"/ui/alerts/{alert_id}", lang="es"))
    assert "Reporte de llegada no recibido: Lucía" in spanish
    assert "Intenten localizar a la persona ahora" in spanish
    assert "se avisó a: guardia" in spanish and "aviso (guardia): Ana" in spanish
    for english in ("Missed check-in", "paged on-call", "page (on-call)", "Try to reach them"):
        assert english not in spanish
    english_page = text_of(await d.page(f"/ui/alerts/{alert_id}", lang="en"))
    assert "Missed check-in: Lucía" in english_page and "page (on-call): Ana" in english_page
    assert "Reporte de llegada no recibido: Lucía" in text_of(await d.page("/ui/alerts", lang="es"))

    d.clock[0] += 60_000
    d.node.desk.checkins.ok(plan.id)  # late: the alert is cancelled with "Lucía checked in."
    spanish = text_of(await d.page(f"/ui/alerts/{alert_id}", lang="es"))
    assert "Lucía se reportó." in spanish and "checked in" not in spanish
    assert "Cancelada por Brigada Ejemplo: Lucía se reportó." in spanish  # the banner: who and why
    assert "alerta cancelada: el escalamiento se detuvo" in spanish


async def test_a_note_from_before_messages_were_kept_shows_its_text(dashboard: Dashboard) -> None:
    alert_id = send(dashboard, "Amenaza a la defensora")
    dashboard.node.desk.note(
        alert_id, "page (backup): Bruno", kind="escalation"
    )  # text only, as older nodes wrote
    spanish = text_of(await dashboard.page(f"/ui/alerts/{alert_id}", lang="es"))
    assert "escalamiento : page (backup): Bruno" in spanish


async def test_overdue_check_ins_are_red(dashboard: Dashboard) -> None:
    d = dashboard
    d.node.desk.checkins.start("Lucía", "MX-GRO", deadline=T0 + 60_000, grace_ms=600_000, note="", to=[])
    d.node.desk.checkins.start("Mateo", "MX-OAX", deadline=T0 + 7_200_000, grace_ms=600_000, note="", to=[])
    d.clock[0] = T0 + 120_000  # Lucía is late, still within her grace: overdue, not yet missed
    html = await d.page("/ui/checkins", lang="es")
    rows = {
        who: red
        for red, who in re.findall(
            r'<tr class="plan( overdue)?">\s*<td data-label="Quién">([^<]+)</td>', html
        )
    }
    assert rows == {"Lucía": " overdue", "Mateo": ""}
    assert "ATRASADO" in text_of(html)
    css = await (await d.client.get("/ui/static/app.css")).text()
    assert "tr.overdue td { color: #b30000; }" in css  # red, as docs/responders.md says

    d.clock[0] = T0 + 700_000
    d.node.desk.tick()  # grace over: missed, and the alert is raised
    assert "ATRASADO: alerta enviada" in text_of(await d.page("/ui/checkins", lang="es"))


SCENARIO = """
name = "Simulacro de la marcha"
participants = ["Ana"]
wait = "1m"
[[step]]
at = "0s"
region = "MX-CMX"
severity = "severe"
headline = "SIMULACRO: persona armada cerca del templete"
[[step]]
at = "1m"
region = "MX-CMX"
severity = "extreme"
headline = "SIMULACRO: dos observadoras no responden"
"""


async def test_the_drill_banner_lasts_as_long_as_the_drill(dashboard: Dashboard) -> None:
    d = dashboard
    release = asyncio.Event()

    async def wait_until(instant: int) -> None:
        if instant > T0:
            await release.wait()  # the drill goes on until the test lets it
        d.clock[0] = max(d.clock[0], instant)

    d.node.drills = DrillRunner(
        d.node, wait_until=wait_until
    )  # what `amparo drill run` starts (POST /api/v1/drills)
    run = d.node.drills.start(drill.load(SCENARIO))
    await until(lambda: len(run.sent) == 1, "the first step")
    html = await d.page("/ui/drills", lang="es")
    assert "drill-banner" in html and "Simulacro de la marcha" in html
    assert "SIMULACRO en curso" in text_of(await d.page("/ui/alerts", lang="es"))  # the health strip
    release.set()
    await asyncio.wait_for(run.ended.wait(), timeout=5)
    assert d.node.desk.drill_participants() == {"Ana"}  # the paging window outlasts the drill a little …
    html = await d.page("/ui/drills", lang="es")
    assert "drill-banner" not in html  # … the banner does not
    assert "SIMULACRO en curso" not in text_of(await d.page("/ui/alerts", lang="es"))
    assert "Informe del simulacro: Simulacro de la marcha" in html  # the CLI's run, listed and in Spanish


def test_the_chart_shows_missed_steps() -> None:
    steps = [
        {
            "headline": "persona armada",
            "answers": [{"who": "Ana", "local": True, "state": "responding", "seconds": 45.0}],
        },
        {"headline": "dos observadoras no responden", "answers": []},
    ]
    markdown, svg = drill.told("Marcha", steps)
    assert (
        "- **nobody acknowledged**" in markdown and "## Missed\n\n- dos observadoras no responden" in markdown
    )
    assert svg.count("<rect") == 2 and svg.count('class="missed"') == 1
    assert "2: dos observadoras no responden" in svg and ">nobody acknowledged</text>" in svg
    markdown, svg = drill.told("Marcha", steps, "es")
    assert ">nadie respondió</text>" in svg and "Tiempo de respuesta (s)" in svg
    assert "**Ana** respondió en este nodo a los 45.0 s" in markdown


async def test_compose_starts_from_the_command_lines_defaults(dashboard: Dashboard) -> None:
    html = await dashboard.page("/ui/compose")
    selects = re.findall(r'<select name="(\w+)"[^>]*>(.*?)</select>', html, re.DOTALL)
    chosen = {
        name: picked[0]
        for name, options in selects
        if (picked := re.findall(r'value="([^"]*)" selected', options))
    }
    assert "severity" not in chosen  # `amparo alert send` needs --severity; so does the form
    assert re.search(r'<select name="severity" required>', html)
    assert chosen == {k: DEFAULTS[k] for k in ("urgency", "certainty", "event", "scope")}
    assert 'name="expires" value="6h"' in html

    form = {
        "headline": "Retén en la carretera",
        "regions": "MX-OAX",
        "urgency": "unknown",
        "certainty": "unknown",
        "event": "other",
        "scope": "members",
        "expires": "6h",
        "action": "send",
    }
    status, page = await dashboard.post("/ui/compose", form, lang="es")
    assert status == 400 and "Elige una gravedad" in page  # nothing is sent without one
    assert incidents.list_alerts(dashboard.node, region=None) == []
    status, _ = await dashboard.post("/ui/compose", form | {"severity": "moderate"})
    assert status == 200
    (sent,) = incidents.list_alerts(dashboard.node, region=None)
    cli = incidents.find_alert(dashboard.node, send(dashboard, "Retén en la carretera", severity="moderate"))
    as_cli = incidents.alert_detail(dashboard.node, cli)  # what `alert send --severity moderate` makes
    fields = ("severity", "urgency", "certainty", "event", "scope", "language", "status")
    assert {k: sent[k] for k in fields} == {k: as_cli[k] for k in fields}
    assert sent["expires"] - sent["created"] == as_cli["expires"] - as_cli["created"]


async def test_a_country_is_named_in_the_readers_language(dashboard: Dashboard) -> None:
    alert_id = send(dashboard, "Alerta nacional de prueba", regions=["MX", "MX-OAX"])
    assert "México (MX), Oaxaca (MX-OAX)" in text_of(
        await dashboard.page(f"/ui/alerts/{alert_id}", lang="es")
    )
    assert "Mexico (MX), Oaxaca (MX-OAX)" in text_of(
        await dashboard.page(f"/ui/alerts/{alert_id}", lang="en")
    )
