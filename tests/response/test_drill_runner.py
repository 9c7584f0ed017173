"""The node's one drill runner, driven by a fake clock: a real node service
(SQLite store, no network) sends each step's exercise alert at its time, pages
only the drill's participants, waits for acknowledgements, and keeps the report.
Minutes of drill run in milliseconds because waiting is injected; the same
runner behind ``amparo drill run`` and the dashboard is exercised on real
processes in tests/e2e/test_drill.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from node import incidents
from node.config import Config
from node.response import desk as desk_mod
from node.response import drill
from node.response.drill_runner import DrillNotFound, DrillRunner
from node.service import NodeService
from node.store import Store
from protocol import Identity

T0 = 1_795_000_000_000
US = Identity.from_random(bytes(range(64)))
SCENARIO = """
name = "Persona armada en la marcha del sábado"
participants = ["Ana"]
wait = "5m"
[[step]]
at = "0s"
region = "MX-CMX"
severity = "severe"
headline = "SIMULACRO: persona armada cerca del templete"
[[step]]
at = "2m"
region = "MX-CMX"
severity = "extreme"
headline = "SIMULACRO: dos observadoras no responden"
"""


class FakeTime:
    """The node's clock and the runner's waiting: a wait moves the clock to the
    instant asked for, after ``on_wait`` (what happens in the meantime) runs."""

    def __init__(self) -> None:
        self.now = T0
        self.waits: list[int] = []
        self.on_wait: Callable[[int], None] = lambda instant: None

    def clock(self) -> int:
        return self.now

    async def until(self, instant: int) -> None:
        self.waits.append(instant)
        self.on_wait(instant)
        self.now = max(self.now, instant)
        await asyncio.sleep(0)  # let the node's other tasks (paging) run, as a real wait would


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def node(tmp_path: Path, time: FakeTime, monkeypatch: pytest.MonkeyPatch) -> NodeService:
    paged: list[str] = []
    monkeypatch.setattr(desk_mod, "_notify", lambda urls, title, body, policy: paged.append(urls[0]) or True)
    monkeypatch.setattr(desk_mod, "_check_channel", lambda url, policy: None)
    store = Store(f"sqlite:///{tmp_path / 'amparo.db'}")
    service = NodeService(
        tmp_path, Config(name="Brigada Ejemplo", ack_timeout="60s"), US, store, clock=time.clock
    )
    for name in ("Ana", "Bruno"):
        service.desk.add_responder(name, "responder", [f"json://127.0.0.1:9/{name}"], None)
    service.desk.add_shift("Bruno", T0 - 60_000, 24.0, None, False)  # on call, but not in the drill
    service.paged = paged  # type: ignore[attr-defined]
    return service


async def test_steps_go_out_on_time_and_the_report_is_kept(node: NodeService, time: FakeTime) -> None:
    runner = DrillRunner(node, wait_until=time.until)

    def meanwhile(instant: int) -> None:
        if instant == T0 + 120_000:  # 45 s into the drill, Ana acknowledges the first alert
            time.now = T0 + 45_000
            first = runner.running.sent[0]["id"]  # type: ignore[union-attr]
            incidents.acknowledge(
                node, incidents.find_alert(node, first), {"state": "responding", "by": "Ana"}
            )

    time.on_wait = meanwhile
    run = runner.start(drill.load(SCENARIO))
    assert node.desk.drill_participants() == {"Ana"}  # the paging window is open from the start
    await asyncio.wait_for(run.ended.wait(), timeout=10)

    assert time.waits == [T0, T0 + 120_000, T0 + 420_000]  # each step on time, then the wait
    assert [s["at"] for s in run.sent] == [T0, T0 + 120_000]
    for sent in run.sent:
        row = node.store.get(bytes.fromhex(sent["id"]))
        assert row is not None and row.created == sent["at"]
        assert incidents.alert_detail(node, row)["status"] == "exercise"
    report = runner.find(run.id)
    assert report["state"] == "done" and report["at"] == T0 + 420_000
    assert "responder **Ana** acknowledged locally after 45.0 s" in report["markdown"]
    assert "## Missed\n\n- SIMULACRO: dos observadoras no responden" in report["markdown"]
    assert report["svg"].startswith("<svg") and "Ana" in report["svg"]
    assert runner.running is None
    assert node.paged and all(url.endswith("/Ana") for url in node.paged)  # type: ignore[attr-defined]


async def test_progress_is_readable_while_it_runs_and_one_drill_runs_at_a_time(
    node: NodeService, time: FakeTime
) -> None:
    runner = DrillRunner(node, wait_until=time.until)
    seen: list[dict[str, object]] = []
    time.on_wait = lambda instant: seen.append(runner.find(str(T0)))
    run = runner.start(drill.load(SCENARIO), wait_ms=30_000)
    with pytest.raises(drill.DrillError, match="already running"):
        runner.start(drill.load(SCENARIO))
    await asyncio.wait_for(run.ended.wait(), timeout=10)
    assert [(s["state"], len(s["sent"])) for s in seen] == [("running", 0), ("running", 1), ("running", 2)]  # type: ignore[arg-type]
    assert seen[0]["ends"] == T0 + 150_000  # the run's own wait replaced the scenario's
    time.now = T0  # the first one over, another may start, even in the same millisecond
    again = runner.start(drill.load(SCENARIO))
    await asyncio.wait_for(again.ended.wait(), timeout=10)
    assert again.id == str(T0 + 1) and runner.find(run.id)["id"] == run.id  # both reports kept
    with pytest.raises(DrillNotFound):
        runner.find("12345")


async def test_finishing_ends_the_wait_but_not_the_steps(node: NodeService, time: FakeTime) -> None:
    never = asyncio.Event()

    async def until(instant: int) -> None:
        if instant == T0 + 420_000:
            await never.wait()  # the scenario's five minutes for acknowledgements, never over by themselves
        await time.until(instant)

    runner = DrillRunner(node, wait_until=until)
    run = runner.start(drill.load(SCENARIO))
    assert runner.finish(run.id)["state"] == "running"
    await asyncio.wait_for(run.ended.wait(), timeout=10)
    assert [s["at"] for s in run.sent] == [T0, T0 + 120_000]  # the second step still went out on time
    report = runner.find(run.id)
    assert report["state"] == "done" and report["at"] == T0 + 120_000  # written right after it
    assert runner.overview() == {
        "running": None,
        "reports": [{"id": run.id, "name": SCENARIO.split('"')[1], "state": "done", "at": T0 + 120_000}],
    }
    with pytest.raises(DrillNotFound, match="not running"):
        runner.finish(run.id)


async def test_a_step_the_node_cannot_send_ends_the_drill_with_a_report_that_says_why(
    node: NodeService, time: FakeTime
) -> None:
    runner = DrillRunner(node, wait_until=time.until)
    broken = SCENARIO.replace('severity = "extreme"', 'severity = "apocalyptic"')
    run = runner.start(drill.load(broken))
    await asyncio.wait_for(run.ended.wait(), timeout=10)
    report = runner.find(run.id)
    assert report["state"] == "failed" and len(report["sent"]) == 1
    assert "stopped after 1 step(s)" in report["markdown"] and "severity" in report["markdown"]
    assert runner.running is None


def test_a_drill_lasts_a_day_at_most(node: NodeService, time: FakeTime) -> None:
    runner = DrillRunner(node, wait_until=time.until)
    with pytest.raises(drill.DrillError, match="24 h"):
        runner.start(drill.load(SCENARIO), wait_ms=24 * 3600_000)
    assert runner.running is None and node.desk.drill_participants() == set()


def test_unknown_participants_are_named_before_anything_is_sent(node: NodeService, time: FakeTime) -> None:
    runner = DrillRunner(node, wait_until=time.until)
    with pytest.raises(desk_mod.DeskError, match="Carla"):
        runner.start(drill.load(SCENARIO.replace('["Ana"]', '["Ana", "Carla"]')))
    assert runner.running is None and node.store.list_records("drill") == []
