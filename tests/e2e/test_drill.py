"""Drills on real nodes: everything is labelled an exercise — pages, an ally
node's webhooks (``drill: true``), Apprise messages and ``amparo watch`` (DRILL)
— only the drill's participants are paged, and the report shows
time-to-acknowledge per responder and per organization, with what was missed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.response import drill
from tests.e2e.harness import LOOPBACK_TARGETS
from tests.e2e.test_allies import Receiver, drained, subscribe
from tests.e2e.test_escalation import Catcher, configure
from tests.e2e.test_gossip import wait_until
from tests.e2e.test_stream import watch_in_a_terminal

pytestmark = pytest.mark.slow

SCENARIO = """
name = "Armed person at the Saturday march"
participants = ["Ana"]
wait = "6s"
[[step]]
at = "0s"
region = "MX-CMX"
severity = "severe"
headline = "Armed person near the stage"
instruction = "Locate the team"
[[step]]
at = "1s"
region = "MX-CMX"
severity = "extreme"
headline = "Two observers not answering"
"""


def test_drill_pages_only_participants_and_reports_acks(tmp_path: Path) -> None:
    from node.devmesh import LocalMesh

    mesh = LocalMesh(tmp_path / "mesh", 2, settings=LOOPBACK_TARGETS)
    mesh.init_all()
    configure(mesh.nodes[0].home, ack_timeout="60s")
    mesh.start_all()
    try:
        a, b = mesh.nodes
        mesh.connect([(0, 1)])
        catcher = Catcher()
        for name in ("Ana", "Bruno"):
            a.amparo("responder", "add", name, "--channel", catcher.url(name))
        ally = Receiver()  # B's allies: a webhook and an Apprise channel, both taking drills
        subscribe(b, "--region", "MX", "--exercises", "--webhook", ally.url("hook"))
        subscribe(b, "--region", "MX", "--exercises", "--apprise", f"json://127.0.0.1:{ally.port}/phone")
        ignoring = subscribe(b, "--region", "MX", "--webhook", ally.url("no-drills"))
        a.amparo("oncall", "schedule", "--responder", "Bruno", "--backup", "Ana", "--hours", "24")
        (tmp_path / "scenario.toml").write_text(SCENARIO)
        out = tmp_path / "report"
        # B (another organization) acknowledges the first drill alert as soon as it arrives.
        import threading

        def ally_acks() -> None:
            wait_until(lambda: bool(b.alert_ids()), timeout=30, what="the drill at B")
            first = sorted(b.api.get("/api/v1/alerts")["alerts"], key=lambda x: x["created"])[0]
            assert first["status"] == "exercise"
            b.api.post(f"/api/v1/alerts/{first['id']}/ack", {"state": "responding"})
            a.amparo("alert", "ack", first["id"], "--state", "responding", "--by", "Ana")

        helper = threading.Thread(target=ally_acks)
        helper.start()
        result = a.amparo("drill", "run", str(tmp_path / "scenario.toml"), "--out", str(out), "--json")
        helper.join(timeout=30)
        summary = json.loads(result.stdout)
        assert len(summary["alerts"]) == 2
        report = (out / "drill-report.md").read_text()
        assert f"organization **{b.name}**: responding after" in report
        assert "responder **Ana** acknowledged locally after" in report
        assert "nobody acknowledged" in report  # the second step was missed
        svg = (out / "drill-chart.svg").read_text()
        assert svg.startswith("<svg") and b.name[:20] in svg
        # Bruno is on call but not in the drill: he is never paged; Ana is.
        wait_until(lambda: "Ana" in catcher.who(), timeout=10, what="the participant to be paged")
        assert "Bruno" not in catcher.who()
        assert all("[DRILL]" in page["title"] for _, page in catcher.pages)
        catcher.server.shutdown()

        # every channel of the ally's node labels it too: webhooks, Apprise, amparo watch
        wait_until(lambda: len(ally.got) >= 4, timeout=30, what="B's allies to get both drill alerts")
        drained(mesh, b, [])  # everything B will ever send has been sent
        hooks = ally.alerts("hook")
        assert len(hooks) == 2 and all(h["drill"] is True and h["alert"]["status"] == "exercise" for h in hooks)
        phone = ally.alerts("phone")
        assert len(phone) == 2 and all(m["title"].startswith("[DRILL] ") for m in phone), phone
        assert ally.alerts("no-drills") == []  # a subscription without --exercises never sees a drill
        assert ignoring["id"]
        ally.down()
        watched = watch_in_a_terminal(b, "--since", "0", "--count", "2")
        for headline in ("Armed person near the stage", "Two observers not answering"):
            line = next(x for x in watched.splitlines() if headline in x)
            assert " DRILL " in line, watched
        as_json = b.amparo("watch", "--since", "0", "--count", "2", "--json").stdout
        assert [json.loads(x)["status"] for x in as_json.splitlines()] == ["exercise", "exercise"]
    finally:
        mesh.stop_all()


def test_scenario_errors_name_the_field() -> None:
    with pytest.raises(drill.DrillError, match="step"):
        drill.load('name = "x"\n')
    with pytest.raises(drill.DrillError, match=r"step\[0\]\.headline"):
        drill.load('name = "x"\n[[step]]\nregion = "MX"\n')
    with pytest.raises(drill.DrillError, match="TOML"):
        drill.load("name = ")
    plan = drill.load(
        Path(__file__).resolve().parents[2].joinpath("docs/drills/armed-person-at-march.toml").read_text()
    )
    assert plan.participants == ("Ana", "Bruno") and all(s.alert["exercise"] for s in plan.steps)
