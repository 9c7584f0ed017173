"""The hostile phase of a nemesis run (``tests.nemesis.hostile`` are the attackers).

With the mesh healed and no other fault, honest probe alerts are written one
after another and timed from the author's answer until every node holds them:
first for ``seconds`` in quiet, then for ``seconds`` while the flooder, the
forger and the sybils attack at once. The checks (issue 15, SPEC §8
"Availability"):

- honest propagation p99 during the attack ≤ ``SLOWDOWN`` × its quiet value;
- the flooder throttled within ``THROTTLE_S``: from its first push until its
  node logs ``throttling peer <key>`` (``NodeService._note_throttled``);
- the forger cut off within ``CUT_OFF_S``: from its first push until its node
  logs ``cutting off peer <key>`` (the mesh's ``Disconnect``);
- no sybil's envelope stored on any node (checked again after the last round).

The nodes' logs are watched from here, on this process's monotonic clock, which
is the attackers' clock too: a node's own clock may be skewed by libfaketime.
"""

from __future__ import annotations

import json
import os
import queue
import random
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.nemesis.cluster import Cluster, NetNode
from tests.nemesis.hostile import FORGE_FOR_S
from tests.nemesis.net import MESH_PORT
from tests.nemesis.workload import Workload

HOSTILE_KINDS = ("flood", "forge", "sybils")
ROLES = ("flooder", "forger", "sybils")  # one namespace each, in this order (``Fabric.guest_ns``)
SLOWDOWN = 2.0
THROTTLE_S = 5.0
CUT_OFF_S = 10.0
PROBE_EVERY_S = 0.25
POLL_S = 0.05
ARRIVAL_S = 60.0  # a probe not everywhere by then counts as this slow
REPO = Path(__file__).resolve().parents[2]
PAIR_S = 120.0
READY_S = 180.0  # signing thousands of alerts on a loaded two-core machine


def p99(xs: list[float]) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, round(0.99 * (len(s) - 1)))]


@dataclass
class SiegeReport:
    quiet_s: list[float] = field(default_factory=list)  # honest propagation without the attack
    attacked_s: list[float] = field(default_factory=list)  # … during it
    throttled_after_s: float | None = None
    cut_off_after_s: float | None = None
    sybils_stored: int = 0
    flood: dict[str, Any] = field(default_factory=dict)
    forge: dict[str, Any] = field(default_factory=dict)
    sybil_statuses: dict[str, int] = field(default_factory=dict)
    errors: dict[str, dict[str, int]] = field(default_factory=dict)  # what the attackers' failed calls said
    slowest: list[str] = field(default_factory=list)  # the slowest probes under attack: where they lagged
    flood_target: int = -1
    forge_target: int = -1
    # The machine's cores busy during each phase (0..1, /proc/stat): on a shared
    # host, what the flood's admitted part costs every node is taken from the probes.
    cpu_busy_quiet: float | None = None
    cpu_busy_attacked: float | None = None

    def figures(self) -> dict[str, Any]:
        quiet, attacked = p99(self.quiet_s), p99(self.attacked_s)
        return {
            "propagation_p99_quiet_s": quiet,
            "propagation_p99_attacked_s": attacked,
            "slowdown": None if not quiet or attacked is None else round(attacked / quiet, 2),
            "probes": [len(self.quiet_s), len(self.attacked_s)],
            "flooder_throttled_after_s": self.throttled_after_s,
            "forger_cut_off_after_s": self.cut_off_after_s,
            "sybil_envelopes_stored": self.sybils_stored,
            "flood": {k: self.flood.get(k) for k in ("sent", "accepted", "deferred", "statuses")},
            "forge": {k: self.forge.get(k) for k in ("invalid_sent", "statuses")},
            "sybil_pushes": self.sybil_statuses,
            "attackers_errors": self.errors,
            "slowest_probes_attacked": self.slowest,
            "targets": {"flooder": self.flood_target, "forger": self.forge_target},
            "cpu_busy": [self.cpu_busy_quiet, self.cpu_busy_attacked],
        }

    def summary(self) -> str:
        """One line for the run's progress (the figures are in the verdict)."""
        return (
            f"hostile peers: flooder throttled {_s(self.throttled_after_s)}, forger cut off "
            f"{_s(self.cut_off_after_s)}, {self.sybils_stored} sybil envelopes stored; honest p99 "
            f"{p99(self.quiet_s) or 0:.2f} s quiet, {p99(self.attacked_s) or 0:.2f} s under attack"
        )

    def problems(self) -> list[str]:
        out = []
        if p99(self.quiet_s) is None or p99(self.attacked_s) is None:
            out.append("no honest propagation measured")
        if self.throttled_after_s is None or self.throttled_after_s > THROTTLE_S:
            out.append(f"flooder not throttled within {THROTTLE_S:g} s ({_s(self.throttled_after_s)})")
        if self.cut_off_after_s is None or self.cut_off_after_s > CUT_OFF_S:
            out.append(
                f"invalid-signature peer not cut off within {CUT_OFF_S:g} s ({_s(self.cut_off_after_s)})"
            )
        if self.sybils_stored:
            out.append(f"{self.sybils_stored} sybil envelopes stored")
        quiet, attacked = p99(self.quiet_s), p99(self.attacked_s)
        if quiet is not None and attacked is not None and attacked > SLOWDOWN * quiet:
            out.append(f"honest p99 {attacked:.2f} s under attack > {SLOWDOWN:g} × {quiet:.2f} s without")
        return out


def _s(x: float | None) -> str:
    return "never" if x is None else f"after {x:.1f} s"


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of every core so far (/proc/stat; zeros where there is none)."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


def cpu_busy(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    """The part of the machine's cores busy between two ``cpu_ticks`` (None: unknown)."""
    total = after[1] - before[1]
    return round((after[0] - before[0]) / total, 2) if total > 0 else None


class LogWatch:
    """New lines of a node's log, from where it ends now."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0
        self.text = ""

    def poll(self) -> str:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except OSError:
            return self.text
        self.offset += len(chunk)
        self.text += chunk.decode("utf-8", "replace")
        return self.text


def held_by(nodes: list[NetNode], ids: list[bytes]) -> dict[int, set[bytes]]:
    """Which of ``ids`` each node holds now (a node whose store cannot be read holds none)."""
    marks = ",".join("?" * len(ids))
    out: dict[int, set[bytes]] = {}
    for node in nodes:
        try:
            con = sqlite3.connect(f"file:{node.db_path()}?mode=ro", uri=True, timeout=5)
            try:
                rows = con.execute(f"SELECT id FROM envelopes WHERE id IN ({marks})", ids)
                out[node.index] = {bytes(r[0]) for r in rows}
            finally:
                con.close()
        except sqlite3.Error:
            out[node.index] = set()
    return out


@dataclass
class Probe:
    author: int
    answered: float  # monotonic, when the author said sent
    arrived: dict[int, float] = field(default_factory=dict)  # node -> seconds after ``answered``

    def slowest(self) -> str:
        """Where it was slow: ``author → node: seconds`` for the last two arrivals."""
        last = sorted(self.arrived.items(), key=lambda kv: -kv[1])[:2]
        return f"{self.author} → " + ", ".join(f"{i}: {t:.1f} s" for i, t in last)


def propagation(
    cluster: Cluster, work: Workload, rng: random.Random, seconds: float, probes: list[Probe] | None = None
) -> list[float]:
    """Probe alerts from random nodes for ``seconds``: the time from each author's
    answer until every node holds it (each probe's arrivals go to ``probes``)."""
    pending: dict[bytes, Probe] = {}
    samples: list[float] = []
    done = probes if probes is not None else []
    lock = threading.Lock()
    writing = threading.Event()
    writing.set()
    everyone = {node.index for node in cluster.nodes}

    def watch() -> None:
        while writing.is_set() or pending:
            with lock:
                ids = list(pending)
            if ids:
                now = time.monotonic()
                holding = held_by(cluster.nodes, ids)
                with lock:
                    for eid in ids:
                        probe = pending[eid]
                        for i, held in holding.items():
                            if eid in held:
                                probe.arrived.setdefault(i, now - probe.answered)
                        if set(probe.arrived) == everyone or now - probe.answered > ARRIVAL_S:
                            samples.append(min(now - probe.answered, ARRIVAL_S))
                            done.append(pending.pop(eid))
            time.sleep(POLL_S)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        op = work.one(rng.choice(cluster.nodes), "alert", rng)
        if op.outcome == "ok":
            with lock:
                pending[bytes.fromhex(op.id)] = Probe(op.node, op.ended)
        time.sleep(PROBE_EVERY_S)  # the probes' pace, not a wait for a condition
    writing.clear()
    watcher.join(ARRIVAL_S + 10)
    return samples


class _Attacker:
    """One ``tests.nemesis.hostile`` process: a JSON line in (its plan, then ``go``),
    JSON lines out (``ready``, then what happened)."""

    def __init__(self, cmd: list[str], errors: Path, plan: dict[str, Any]) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with open(errors, "ab") as err:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, env=env, cwd=REPO
            )
        self.errors, self.what = errors, f"{plan['role']} {cmd[-1]}"
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._say(json.dumps(plan))

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put("")  # it ended

    def _say(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def next(self, timeout: float) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"hostile {self.what} gave no answer within {timeout:.0f} s") from None
        if not line:
            tail = self.errors.read_text("utf-8", "replace")[-3000:]
            raise RuntimeError(f"hostile {self.what} ended ({self.proc.wait(10)}):\n{tail}")
        doc: dict[str, Any] = json.loads(line)
        return doc

    def go(self) -> None:
        self._say("go")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


class _Watch:
    """Watches nodes' logs, in a thread, for a line each; ``seen``: when it appeared."""

    def __init__(self, wanted: dict[str, tuple[NetNode, str]]) -> None:
        self.wanted = {name: (LogWatch(node.log_file), needle) for name, (node, needle) in wanted.items()}
        self.seen: dict[str, float] = {}
        self._on = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._on.set()
        self._thread.start()

    def stop(self) -> None:
        self._on.clear()
        self._thread.join(10)
        self._look()  # a last look: the line may have come with the attack's end

    def _look(self) -> None:
        for name, (log, needle) in self.wanted.items():
            if name not in self.seen and needle in log.poll():
                self.seen[name] = time.monotonic()

    def _run(self) -> None:
        while self._on.is_set() and len(self.seen) < len(self.wanted):
            self._look()
            time.sleep(POLL_S)


class Siege:
    """The hostile peers of one run: paired at set-up, attacking in ``run``."""

    def __init__(self, cluster: Cluster, seed: int, rng: random.Random) -> None:
        self.cluster, self.seed = cluster, seed
        honest = [i for i in range(len(cluster.nodes)) if i != cluster.disk_node]
        self.flood_target, self.forge_target = rng.sample(honest, 2)
        self.keys: dict[str, str] = {}
        self.sybil_keys: list[bytes] = []
        self.guest_ids: dict[bytes, frozenset[bytes]] = {}  # a hostile peer's key -> the ids it sent

    def _guest(self, role: str, command: str, plan: dict[str, Any]) -> _Attacker:
        ns = self.cluster.fabric.guest_ns(ROLES.index(role))
        cmd = ["ip", "netns", "exec", ns, sys.executable, "-m", "tests.nemesis.hostile", command]
        return _Attacker(
            cmd, self.cluster.root / f"hostile-{role}.err", {"seed": self.seed, "role": role, **plan}
        )

    def _address(self, i: int) -> dict[str, str]:
        node = self.cluster.nodes[i]
        info = node.call("GET", "/api/v1/id", timeout=30)
        return {"key": info["key"], "address": f"{node.mesh_ip}:{MESH_PORT}", "tls": info["tls_fingerprint"]}

    def setup(self) -> None:
        fabric = self.cluster.fabric
        fabric.add_guests(len(ROLES))
        for role, i in (("flooder", self.flood_target), ("forger", self.forge_target)):
            token = self.cluster.nodes[i].call("POST", "/api/v1/peers/invite", {}, timeout=30)["token"]
            plan = {"host": fabric.guest_ip(ROLES.index(role)), "target": self._address(i), "token": token}
            self.keys[role] = self._guest(role, "pair", plan).next(PAIR_S)["key"]

    def run(self, work: Workload, rng: random.Random, seconds: float) -> SiegeReport:
        report = SiegeReport()
        before = cpu_ticks()
        report.quiet_s = propagation(self.cluster, work, rng, seconds)
        report.cpu_busy_quiet = cpu_busy(before, cpu_ticks())
        probes: list[Probe] = []
        plans = {
            "flooder": {"seconds": seconds, "target": self._address(self.flood_target)},
            "forger": {"seconds": seconds, "target": self._address(self.forge_target)},
            "sybils": {
                "seconds": seconds,
                "everyone": [self._address(i) for i in range(len(self.cluster.nodes))],
            },
        }
        watch = _Watch(
            {
                "throttled": (
                    self.cluster.nodes[self.flood_target],
                    f"throttling peer {self.keys['flooder'][:16]}",
                ),
                "cut": (
                    self.cluster.nodes[self.forge_target],
                    f"cutting off peer {self.keys['forger'][:16]}",
                ),
            }
        )
        attackers = {role: self._guest(role, "attack", plans[role]) for role in ROLES}
        try:
            for attacker in attackers.values():
                attacker.next(READY_S)  # signed and connected: ready
            watch.start()
            for attacker in attackers.values():
                attacker.go()
            before = cpu_ticks()
            report.attacked_s = propagation(self.cluster, work, rng, seconds, probes)
            report.cpu_busy_attacked = cpu_busy(before, cpu_ticks())
            results = {
                role: attacker.next(seconds + FORGE_FOR_S + 60) for role, attacker in attackers.items()
            }
        finally:
            watch.stop()
            for attacker in attackers.values():
                attacker.close()
        missing = [role for role in ROLES if role not in results]
        if missing:
            raise RuntimeError(f"the hostile peers did not report: {missing} (see the run's output)")
        report.flood, report.forge, crowd = results["flooder"], results["forger"], results["sybils"]
        report.sybil_statuses = crowd["statuses"]
        report.errors = {role: results[role]["errors"] for role in ROLES if results[role]["errors"]}
        self.sybil_keys = [bytes.fromhex(k) for k in crowd["keys"]]
        self.guest_ids = {
            bytes.fromhex(self.keys["flooder"]): frozenset(bytes.fromhex(i) for i in report.flood["ids"]),
            bytes.fromhex(self.keys["forger"]): frozenset(
                bytes.fromhex(i) for i in report.forge["valid_ids"]
            ),
        }
        if "throttled" in watch.seen:
            report.throttled_after_s = round(watch.seen["throttled"] - report.flood["started"], 2)
        if "cut" in watch.seen:
            report.cut_off_after_s = round(watch.seen["cut"] - report.forge["started"], 2)
        report.sybils_stored = self.sybils_stored()
        report.flood_target, report.forge_target = self.flood_target, self.forge_target
        report.slowest = [
            p.slowest() for p in sorted(probes, key=lambda p: -max(p.arrived.values(), default=0))[:3]
        ]
        return report

    def sybils_stored(self) -> int:
        """Envelopes by any sybil, of any type, on any node."""
        keys = self.sybil_keys
        if not keys:
            return 0
        marks = ",".join("?" * len(keys))
        total = 0
        for node in self.cluster.nodes:
            con = sqlite3.connect(f"file:{node.db_path()}?mode=ro", uri=True, timeout=10)
            try:
                total += int(
                    con.execute(f"SELECT count(*) FROM envelopes WHERE author IN ({marks})", keys).fetchone()[
                        0
                    ]
                )
            finally:
                con.close()
        return total
