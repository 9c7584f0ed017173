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
from tests.e2e.test_allies import Receiver, subscribe
from tests.e2e.test_escalation import Catcher, configure
from tests.e2e.test_gossip import wait_until
from tests.e2e.test_stream import watch_in_a_terminal

pytestmark = pytest.mark.slow

SCENARIO = """
name = "Armed person at the Saturday march"
participants = ["Ana"]
wait = "2m"
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
        # B (another organization) acknowledges the first drill alert as soon as it arrives,
        # and so does Ana here; once A holds both answers, the wait for more is ended.
        import threading

        failed: list[BaseException] = []

        def acknowledge_then_finish() -> None:
            try:
                wait_until(lambda: bool(b.alert_ids()), timeout=30, what="the drill at B")
                first = sorted(b.api.get("/api/v1/alerts")["alerts"], key=lambda x: x["created"])[0]
                assert first["status"] == "exercise"
                b.api.post(f"/api/v1/alerts/{first['id']}/ack", {"state": "responding"})
                a.amparo("alert", "ack", first["id"], "--state", "responding", "--by", "Ana")

                def both_answers() -> bool:
                    detail = a.api.get(f"/api/v1/alerts/{first['id']}")
                    return bool(detail["responses"]) and (detail["escalation"] or {}).get("acked_by") == "Ana"

                wait_until(both_answers, timeout=30, what="both acknowledgements at A")
                running = a.api.get("/api/v1/drills")["running"]
                a.amparo("drill", "finish", running["id"])
            except BaseException as exc:
                failed.append(exc)

        helper = threading.Thread(target=acknowledge_then_finish)
        helper.start()
        result = a.amparo("drill", "run", str(tmp_path / "scenario.toml"), "--out", str(out), "--json")
        helper.join(timeout=30)
        assert not failed, failed
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

        # every channel of the ally's node labels it too: webhooks, Apprise, amparo watch.
        # B queues every delivery the moment it stores an alert, so once both alerts are
        # stored there and its outbox is empty, nothing more is on its way.
        def outbox() -> list[tuple[int, int]]:
            subs = b.api.get("/api/v1/status")["deliveries"]
            return sorted((s["deliveries"]["delivered"], s["deliveries"]["pending"]) for s in subs)

        wait_until(
            lambda: len(b.alert_ids()) == 2 and outbox() == [(0, 0), (2, 0), (2, 0)] and len(ally.got) == 4,
            timeout=30,
            what="B's allies to get both drill alerts and B's outbox to empty",
        )
        hooks = ally.alerts("hook")
        assert len(hooks) == 2 and all(
            h["drill"] is True and h["alert"]["status"] == "exercise" for h in hooks
        )
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
    plan = drill.load(drill.example("armed-person-at-march"))  # shipped with the package
    assert plan.participants == ("Ana", "Bruno") and all(s.alert["exercise"] for s in plan.steps)
    with pytest.raises(drill.DrillError, match="armed-person-at-march"):
        drill.example("no-such-scenario")  # the error lists the examples there are
