"""The node's one drill runner: ``amparo drill run`` (through ``POST
/api/v1/drills``) and the dashboard's "Run drill" button both start a scenario
here, and both read its outcome the same way.

The runner opens the drill's paging window on the response desk (only the
scenario's participants are paged for exercises), sends each step's exercise
alert at its time, waits for acknowledgements, and keeps the report as a
``drill`` record (``report-<id>``) that outlives the node's restarts. One
drill runs at a time: the desk pages from one participants list. An operator
who has every answer may end the wait early (``finish``); the steps still go
out on time.

Time comes from the host's clock and waiting from ``wait_until``, injected:
the node waits on the event loop (``wall_wait_until``), a test hands in a
fake that moves its clock, so a whole drill with minutes between steps runs in
milliseconds (tests/response/test_drill_runner.py). A run lives in memory
while it runs; a node stopped in the middle of one keeps the alerts already
sent and writes no report.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from node import incidents
from node.errors import Refused
from node.incidents import AlertHost
from node.response import drill
from node.response.drill import DrillError, Scenario

log = logging.getLogger("amparo.drill")

WaitUntil = Callable[[int], Awaitable[None]]
LATE_ACKS_MS = 60_000  # the paging window outlasts the wait a little, for acknowledgements under way
RECHECK_MS = 1_000  # the real wait looks at the clock again at least this often


class DrillNotFound(Refused):
    code, status = "not-found", 404


def wall_wait_until(clock: Callable[[], int]) -> WaitUntil:
    """Waiting on the event loop until ``clock()`` reaches an instant (Unix ms).
    It rechecks the clock at least every ``RECHECK_MS``, so a clock step
    shortens or lengthens the wait instead of being slept through."""

    async def until(instant: int) -> None:
        while (left := instant - clock()) > 0:
            await asyncio.sleep(min(left, RECHECK_MS) / 1000)

    return until


@dataclass
class DrillRun:
    """A scenario being run: what was sent so far, for whoever asks."""

    id: str
    plan: Scenario
    wait_ms: int
    started: int
    sent: list[dict[str, Any]] = field(default_factory=list)
    finishing: asyncio.Event = field(default_factory=asyncio.Event)  # skip the wait after the last step
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def ends(self) -> int:
        """When the wait for acknowledgements after the last step is over."""
        return self.started + self.plan.steps[-1].at_ms + self.wait_ms

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.plan.name,
            "state": "running",
            "participants": list(self.plan.participants),
            "steps": len(self.plan.steps),
            "started": self.started,
            "ends": self.ends,
            "sent": list(self.sent),
        }


class DrillRunner:
    """Runs one scenario at a time inside the node (see the module docstring)."""

    def __init__(self, host: AlertHost, wait_until: WaitUntil | None = None) -> None:
        self.host = host
        self.wait_until = wait_until or wall_wait_until(host.clock)
        self.running: DrillRun | None = None

    def start(self, plan: Scenario, wait_ms: int | None = None) -> DrillRun:
        """Open the paging window and run ``plan`` in the background.
        ``wait_ms`` replaces the scenario's wait for acknowledgements."""
        if self.running is not None:
            raise DrillError(f"a drill is already running ({self.running.plan.name!r}); run one at a time")
        now = self.host.clock()
        run = DrillRun(self._new_id(now), plan, plan.wait_ms if wait_ms is None else wait_ms, now)
        if run.ends - now > drill.MAX_DRILL_MS:
            raise DrillError(
                "a drill lasts at most 24 h, its steps and the wait for acknowledgements together"
            )
        self.host.desk.start_drill(plan.name, list(plan.participants), run.ends + LATE_ACKS_MS)
        self.running = run
        self.host.spawn(self._run(run))
        return run

    def _new_id(self, now: int) -> str:
        """The start's Unix ms, moved on past any report already kept under it."""
        while self.host.store.get_record("drill", f"report-{now}") is not None:
            now += 1
        return str(now)

    def finish(self, run_id: str) -> dict[str, Any]:
        """End the wait for acknowledgements: the report is written as soon as
        the last step is sent."""
        if self.running is None or self.running.id != run_id:
            raise DrillNotFound(f"drill {run_id}: not running")
        self.running.finishing.set()
        return self.running.json()

    def overview(self) -> dict[str, Any]:
        """The running drill, if any, and the reports kept, newest first."""
        kept = [d for k, d in self.host.store.list_records("drill") if k.startswith("report-")]
        reports = [{k: d.get(k) for k in ("id", "name", "state", "at")} for d in kept]
        return {
            "running": self.running.json() if self.running is not None else None,
            "reports": sorted(reports, key=lambda d: -int(d["at"] or 0)),
        }

    def find(self, run_id: str) -> dict[str, Any]:
        """The running drill, or the report a finished one left."""
        if self.running is not None and self.running.id == run_id:
            return self.running.json()
        kept = self.host.store.get_record("drill", f"report-{run_id}") if run_id.isdigit() else None
        if kept is None:
            raise DrillNotFound(f"drill {run_id}: none such (a drill stopped with its node leaves no report)")
        return dict(kept)

    async def _run(self, run: DrillRun) -> None:
        try:
            try:
                await self._steps(run)
                await self._wait_for_acks(run)
                steps = drill.outcome(self._results(run))
                self._keep(run, "done", *drill.told(run.plan.name, steps), steps=steps)
            except Refused as exc:  # a step the node would not send: the report says which and why
                self._keep(run, "failed", *_stopped(run, exc.message))
            except Exception:
                log.exception("drill %r failed", run.plan.name)
                self._keep(run, "failed", *_stopped(run, "a fault in the node (its log has the details)"))
        finally:
            self.running = None
            run.ended.set()

    async def _steps(self, run: DrillRun) -> None:
        for step in run.plan.steps:
            await self.wait_until(run.started + step.at_ms)
            alert_id = incidents.send_drill_alert(self.host, step.alert)
            run.sent.append({"id": alert_id, "headline": step.alert["headline"], "at": self.host.clock()})

    async def _wait_for_acks(self, run: DrillRun) -> None:
        """Until the scenario's wait is over, or someone finishes the drill."""
        waiting = asyncio.ensure_future(self.wait_until(run.ends))
        finishing = asyncio.ensure_future(run.finishing.wait())
        try:
            await asyncio.wait({waiting, finishing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
            finishing.cancel()
        if waiting.done() and not waiting.cancelled() and (fault := waiting.exception()) is not None:
            raise fault

    def _results(self, run: DrillRun) -> list[dict[str, Any]]:
        rows = (self.host.store.get(bytes.fromhex(s["id"])) for s in run.sent)
        return [incidents.alert_detail(self.host, row) for row in rows if row is not None]

    def _keep(
        self, run: DrillRun, state: str, markdown: str, svg: str, steps: list[dict[str, Any]] | None = None
    ) -> None:
        """The report, kept: its English text and chart (what ``amparo drill
        run`` writes out) and, for a drill that ran to its end, each step's
        answers (``outcome``), from which the dashboard tells it in its reader's
        language."""
        now = self.host.clock()
        doc = run.json() | {"state": state, "at": now, "markdown": markdown, "svg": svg}
        if steps is not None:
            doc["outcome"] = steps
        self.host.store.put_record("drill", f"report-{run.id}", doc, now)


def _stopped(run: DrillRun, reason: str) -> tuple[str, str]:
    """The report of a drill that could not go on."""
    return drill.stopped(run.plan.name, len(run.sent), reason), drill.chart([])
