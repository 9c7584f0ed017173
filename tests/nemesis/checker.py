"""The checker: what every node holds against what every author was told.

- converged(): polls every node's store (read-only) until all hold the same set
  of gossiped envelopes and that set includes every acknowledged id, or a
  deadline passes; the time it took is one convergence sample.
- verdict(): after the last round, the figures the run is judged by: lost,
  forged, divergent nodes, store integrity, unexpected deaths.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from protocol import ProtocolError
from protocol.envelope import decode
from tests.nemesis.cluster import Cluster

POLL_S = 0.5


@dataclass
class Verdict:
    nodes: int
    seed: int
    seconds: float
    rounds: int
    faults: dict[str, int]
    ops: dict[str, int]
    acknowledged: int
    lost: int
    forged: int
    divergent: list[str]
    integrity: dict[str, str]
    unexpected_deaths: list[str]
    killed_caught_up: dict[str, bool]
    convergence_s: list[float]
    not_converged: int
    fault_errors: list[str] = field(default_factory=list)
    ahead_of_clock: int = 0  # signed with a clock an hour ahead: no peer may take them yet
    refusals: dict[str, int] = field(default_factory=dict)  # what the nodes said when they refused
    lost_ids: list[str] = field(default_factory=list)
    forged_ids: list[str] = field(default_factory=list)
    siege: dict[str, Any] = field(default_factory=dict)  # the hostile phase's figures
    disk: list[dict[str, Any]] = field(default_factory=list)  # what each full disk showed
    problems: list[str] = field(default_factory=list)  # failed checks of the hostile phase and the disk

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0 and self.forged == 0 and not self.divergent and not self.unexpected_deaths
            and all(v == "ok" for v in self.integrity.values()) and all(self.killed_caught_up.values())
            and self.not_converged == 0 and not self.fault_errors and not self.problems
        )

    def percentile(self, p: float) -> float | None:
        xs = sorted(self.convergence_s)
        if not xs:
            return None
        return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]

    def as_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["ok"] = self.ok
        doc["convergence_p50_s"] = self.percentile(50)
        doc["convergence_p99_s"] = self.percentile(99)
        return doc

    def table(self) -> str:
        p50, p99 = self.percentile(50), self.percentile(99)
        median = statistics.median(self.convergence_s) if self.convergence_s else None
        rows = [
            ("result", "PASS" if self.ok else "FAIL"),
            ("nodes / seed / seconds", f"{self.nodes} / {self.seed} / {self.seconds:.0f}"),
            ("rounds", str(self.rounds)),
            ("faults injected", ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())) or "none"),
            ("operations", ", ".join(f"{k} {v}" for k, v in sorted(self.ops.items()))),
            ("acknowledged envelopes", str(self.acknowledged)),
            ("lost", str(self.lost)),
            ("dated ahead of the clock window", f"{self.ahead_of_clock} (held back by every peer, by design)"),
            ("forged", str(self.forged)),
            ("divergent nodes", ", ".join(self.divergent) or "none"),
            ("integrity_check", ", ".join(sorted(set(self.integrity.values())))),
            ("unexpected deaths", ", ".join(self.unexpected_deaths) or "none"),
            ("killed and caught up", ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in self.killed_caught_up.items()) or "none killed"),
            ("heal → identical (p50 / p99)", f"{_s(p50)} / {_s(p99)} (median {_s(median)}, {len(self.convergence_s)} heals)"),
            ("heals not converged", str(self.not_converged)),
        ]
        rows += self._siege_rows() + self._disk_rows()
        if self.problems:
            rows.append(("FAILED CHECKS", "; ".join(self.problems)))
        if self.fault_errors:
            rows.append(("fault errors", "; ".join(self.fault_errors)))
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


    def _siege_rows(self) -> list[tuple[str, str]]:
        s = self.siege
        if not s:
            return []
        flood, forge = s.get("flood") or {}, s.get("forge") or {}
        return [
            ("honest p99: quiet / attacked", f"{_s(s['propagation_p99_quiet_s'])} / {_s(s['propagation_p99_attacked_s'])}"
             f" (× {s['slowdown']}, {s['probes'][0]} + {s['probes'][1]} probes)"),
            ("cores busy: quiet / attacked", " / ".join(_pct(x) for x in s.get("cpu_busy") or (None, None))),
            ("flooder throttled after", f"{_s(s['flooder_throttled_after_s'])} ({flood.get('sent')} pushed, "
             f"{flood.get('accepted')} stored, {flood.get('deferred')} deferred)"),
            ("forger cut off after", f"{_s(s['forger_cut_off_after_s'])} ({forge.get('invalid_sent')} bad signatures taken in)"),
            ("sybil envelopes stored", f"{s['sybil_envelopes_stored']} (pushes answered {s['sybil_pushes']})"),
        ]

    def _disk_rows(self) -> list[tuple[str, str]]:
        return [
            ("full disk", f"{d.get('node')}: new alert while full → {d.get('while_full')}, "
             f"logged {'yes' if d.get('logged_full') else 'NO'}; freed → new work after "
             f"{d.get('resumed_after_s', 'never')} s, logged {'yes' if d.get('logged_recovery') else 'NO'}")
            for d in self.disk
        ]


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f} s"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def snapshot(cluster: Cluster) -> tuple[dict[int, frozenset[bytes]], frozenset[bytes]]:
    """Each node's ids, and the ids anywhere dated beyond the clock window (set apart)."""
    out: dict[int, frozenset[bytes]] = {}
    ahead: set[bytes] = set()
    for node in cluster.nodes:
        try:
            out[node.index], future = node.held_ids()
            ahead |= future
        except sqlite3.Error:
            out[node.index] = frozenset()  # mid-restart: not converged this poll
    return out, frozenset(ahead)


def converged(cluster: Cluster, must: set[bytes], deadline_s: float, since: float | None = None) -> float | None:
    """Seconds (from ``since``, default now) until every node holds the same set,
    containing ``must``; None at the deadline."""
    start = time.monotonic() if since is None else since
    while time.monotonic() - start < deadline_s:
        sets, ahead = snapshot(cluster)
        first = next(iter(sets.values()))
        if all(s == first for s in sets.values()) and must - ahead <= first:
            return time.monotonic() - start
        time.sleep(POLL_S)
    return None


def forged(cluster: Cluster, honest: dict[bytes, int], guests: Mapping[bytes, frozenset[bytes]] | None = None) -> list[str]:
    """Ids held anywhere that no honest author wrote, whose signature does not
    verify, or that their own author's node does not hold. ``guests``: the hostile
    peers inside the horizon, and the ids each of them sent (those are not forged)."""
    guests = guests or {}
    held_by = {n.index: n.held() for n in cluster.nodes}
    bad = []
    for rows in held_by.values():
        for eid, (_kind, author, raw) in rows.items():
            try:
                env = decode(raw, now=int(time.time() * 1000), check_time=False)
                good = env.id == eid and env.author == author
            except ProtocolError:
                good = False
            origin = honest.get(author)
            if good and origin is None and eid in guests.get(author, frozenset()):
                continue
            if not good or origin is None or eid not in held_by[origin]:
                bad.append(eid.hex())
    return sorted(set(bad))
