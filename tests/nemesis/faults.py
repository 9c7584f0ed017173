"""The nemesis: faults chosen at random under the run's seed, several at once.

A round is a window of a few seconds in which two or three faults overlap while
the workload writes; every fault undoes itself by the window's end (a killed
node is started again, a paused one continued, a cut link mended, a skewed clock
corrected). Each fault runs in its own thread, starting at a random offset.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.nemesis.cluster import Cluster
from tests.nemesis.siege import LogWatch
from tests.nemesis.workload import Workload

# kind → the part of the window it needs; the first group comes first in every run
PROCESS_KINDS = ("kill9", "pause")
NET_KINDS = ("halves", "isolate", "flap", "bridge")
CLOCK_KINDS = ("skew", "jump")
DISK_KINDS = ("disk",)  # on the node whose home is a small tmpfs (``Cluster.disk_node``)
# In this order a short run takes every kind once with ``halves`` and ``bridge``
# (both move ports between bridges) in different rounds of three, four or five.
KINDS = ("halves", "isolate", "flap", "kill9", "pause", "bridge", "skew", "jump", "disk")
APART = frozenset({"halves", "bridge"})  # never in the same round
RESUME_S = 60.0  # a node whose disk was freed takes new work within this, or the run fails


@dataclass
class Event:
    at: float  # seconds since the run began
    kind: str
    node: int | None
    what: str


@dataclass
class Nemesis:
    cluster: Cluster
    rng: random.Random
    t0: float = field(default_factory=time.monotonic)
    log: list[Event] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    killed: set[int] = field(default_factory=set)  # nodes the nemesis killed at least once
    errors: list[str] = field(default_factory=list)
    work: Workload | None = None  # writes through the full disk go on its record
    disk: list[dict[str, object]] = field(default_factory=list)  # what each full disk showed
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, kind: str, node: int | None, what: str) -> None:
        with self._lock:
            self.log.append(Event(round(time.monotonic() - self.t0, 2), kind, node, what))

    def choose(self, round_no: int, kinds: tuple[str, ...], per_round: int) -> list[str]:
        """Every kind once before any twice (so a short run covers them all), then at random."""
        if round_no * per_round < len(kinds):
            start = round_no * per_round
            chosen = list(dict.fromkeys(kinds[(start + k) % len(kinds)] for k in range(per_round)))
            if set(chosen) >= APART:  # both move ports: keep the first, the other came round again
                chosen.remove(next(k for k in reversed(chosen) if k in APART))
        else:
            chosen = self.rng.sample(kinds, per_round)
            if set(chosen) >= APART:
                chosen.remove(self.rng.choice(sorted(APART)))
        return chosen

    def round(self, kinds: list[str], window: float) -> None:
        """Run ``kinds`` overlapping within ``window`` seconds, on distinct nodes."""
        n, disk = len(self.cluster.nodes), self.cluster.disk_node
        others = [i for i in range(n) if i != disk or "disk" not in kinds]
        victims = self.rng.sample(others, min(len(others), len(kinds)))
        if "disk" in kinds:  # the disk fault needs the tmpfs node; no other fault shares it
            victims.insert(kinds.index("disk"), disk)
        threads = []
        for kind, victim in zip(kinds, victims, strict=False):
            offset = self.rng.uniform(0, window * 0.3)
            length = self.rng.uniform(window * 0.4, window * 0.7)
            run = self._runner(kind, victim, length)
            threads.append(threading.Thread(target=self._guard, args=(run, offset, kind), daemon=True))
        for t in threads:
            t.start()
        for t in threads:
            t.join(window + 120)
        self.cluster.fabric.heal()

    def _guard(self, run: Callable[[], None], offset: float, kind: str) -> None:
        time.sleep(offset)  # the fault's random start within the window, not a wait for a condition
        try:
            run()
            with self._lock:
                self.counts[kind] += 1
        except Exception as exc:
            self.errors.append(f"{kind}: {exc}")

    def _runner(self, kind: str, victim: int, length: float) -> Callable[[], None]:
        return {
            "halves": lambda: self._halves(length),
            "bridge": lambda: self._bridge(victim, length),
            "isolate": lambda: self._isolate(victim, length),
            "flap": lambda: self._flap(victim, length),
            "kill9": lambda: self._kill9(victim, length),
            "pause": lambda: self._pause(victim, length),
            "skew": lambda: self._skew(victim, length, self.rng.choice(["+90", "-90"])),
            "jump": lambda: self._skew(victim, length, "+3600"),
            "disk": lambda: self._disk_full(victim, length),
        }[kind]

    def _halves(self, length: float) -> None:
        fabric, n = self.cluster.fabric, len(self.cluster.nodes)
        side = set(self.rng.sample(range(n), n // 2))
        for i in side:
            fabric.place(i, 1)
        self.note("halves", None, f"split {sorted(side)} | {sorted(set(range(n)) - side)}")
        time.sleep(length)
        for i in side:
            fabric.place(i, 0)
        self.note("halves", None, "healed")

    def _bridge(self, x: int, length: float) -> None:
        """Two sides that hear each other only through node ``x``: one of its ring
        neighbours on each side (so the mesh has a path through it), the other
        side on ``br2`` and ``x`` given a second link there."""
        fabric, n = self.cluster.fabric, len(self.cluster.nodes)
        far = [(x + 1 + k) % n for k in range((n - 1) // 2)]
        for i in far:
            fabric.place(i, 2)
        fabric.bridge(x, 2)
        near = sorted(set(range(n)) - set(far) - {x})
        self.note("bridge", x, f"{near} | {x} | {sorted(far)}")
        time.sleep(length)
        fabric.unbridge(x)
        for i in far:
            fabric.place(i, 0)
        self.note("bridge", x, "healed")

    def _isolate(self, i: int, length: float) -> None:
        self.cluster.fabric.cut(i)
        self.note("isolate", i, "link down")
        time.sleep(length)
        self.cluster.fabric.mend(i)
        self.note("isolate", i, "link up")

    def _flap(self, i: int, length: float) -> None:
        end = time.monotonic() + length
        flips = 0
        while time.monotonic() < end:
            self.cluster.fabric.cut(i)
            time.sleep(self.rng.uniform(0.5, 2.5))
            self.cluster.fabric.mend(i)
            time.sleep(self.rng.uniform(0.5, 2.5))
            flips += 1
        self.note("flap", i, f"{flips} flaps")

    def _kill9(self, i: int, length: float) -> None:
        node = self.cluster.nodes[i]
        node.kill9()
        self.killed.add(i)
        self.note("kill9", i, "killed")
        time.sleep(length)
        node.start()
        self.note("kill9", i, f"restarted (start {node.starts})")

    def _pause(self, i: int, length: float) -> None:
        node = self.cluster.nodes[i]
        node.signal(signal.SIGSTOP)
        self.note("pause", i, "SIGSTOP")
        time.sleep(length)
        node.signal(signal.SIGCONT)
        self.note("pause", i, "SIGCONT")

    def _skew(self, i: int, length: float, spec: str) -> None:
        node = self.cluster.nodes[i]
        node.skew(spec)
        kind = "jump" if spec == "+3600" else "skew"
        self.note(kind, i, f"clock {spec} s")
        time.sleep(length)
        node.skew("+0")
        self.note(kind, i, "clock corrected")

    def _disk_full(self, i: int, length: float) -> None:
        """Fill the node's tmpfs home to the last byte, then free the space; while
        it is full, a new alert there must be refused (and the log say why), and
        once freed, taken again without anyone's help."""
        node = self.cluster.nodes[i]
        filler = node.home / "filler"
        logged = LogWatch(node.log_file)
        seen: dict[str, object] = {"node": node.name}
        self.disk.append(seen)
        written = 0
        self._empty_the_wal(node.db_path())
        try:
            with open(filler, "wb", buffering=0) as f:  # unbuffered: closing must not write again
                for size in (1 << 20, 4096, 1):
                    try:
                        while True:
                            written += f.write(b"\0" * size) or 0
                    except OSError:
                        pass  # ENOSPC at this size: the next, smaller one fills the rest
            self.note("disk", i, f"home full ({written >> 20} MiB of filler)")
            full_at = time.monotonic()
            answers: Counter[str] = Counter()
            while time.monotonic() - full_at < length:
                answers[self._write_through(i)] += 1
                time.sleep(0.3)  # the pace of the tries, not a wait for a condition
            seen["while_full"] = dict(answers)
            seen["logged_full"] = "the store cannot be written" in logged.poll()
        finally:
            filler.unlink(missing_ok=True)
        freed = time.monotonic()
        self.note("disk", i, "space freed")
        while time.monotonic() - freed < RESUME_S:
            if self._write_through(i) == "ok":
                seen["resumed_after_s"] = round(time.monotonic() - freed, 2)
                break
            time.sleep(0.5)  # the pace of the tries, not a wait for a condition
        seen["logged_recovery"] = "the store can be written again" in logged.poll()
        self.note("disk", i, f"new work taken again after {seen.get('resumed_after_s', 'never')} s")

    @staticmethod
    def _empty_the_wal(db: Path) -> None:
        """Checkpoint the store's write-ahead log and truncate it (as SQLite itself may),
        so the node's next write needs new space: otherwise it may write for a while
        into the room the log already had, and the full disk refuses nothing."""
        con = sqlite3.connect(db, timeout=10)
        try:
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error:
            pass  # busy: the fault still fills the disk
        finally:
            con.close()

    def _write_through(self, i: int) -> str:
        """One new alert at node ``i``, on the workload's record (so an answer that
        says sent is held to it): ``ok``, ``refused:<code>`` or ``unanswered``."""
        if self.work is None:
            return "no workload"
        return self.work.one(self.cluster.nodes[i], "alert", self.rng).outcome

    def disk_problems(self) -> list[str]:
        out = []
        for seen in self.disk:
            name = seen["node"]
            answers = seen.get("while_full") or {}
            assert isinstance(answers, dict)
            # ``ok`` is a promise the checker holds the node to (lost: SQLite may still
            # have room inside its files); anything but ok or a clear refusal is a finding
            if set(answers) - {"ok", "refused:store-unavailable"}:
                out.append(f"{name}: new alerts while the disk was full got {answers}")
            if "refused:store-unavailable" in answers and not seen.get("logged_full"):
                out.append(f"{name}: refused work while full, with no log line saying the store cannot be written")
            if "resumed_after_s" not in seen:
                out.append(f"{name}: took no new work within {RESUME_S:g} s of the space being freed")
            if seen.get("logged_full") and not seen.get("logged_recovery"):
                out.append(f"{name}: no log line saying the store can be written again")
        return out
