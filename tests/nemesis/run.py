"""One nemesis run: build the fabric and the nodes, warm up, then rounds of
faults under load, each followed by a heal and a convergence measurement, then
the checker's verdict. ``python -m tests.nemesis.run --help``; ``scripts/nemesis``
wraps it (root).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tests.nemesis import checker
from tests.nemesis.checker import Verdict
from tests.nemesis.clock import can_skew
from tests.nemesis.cluster import Cluster
from tests.nemesis.faults import CLOCK_KINDS, DISK_KINDS, KINDS, Nemesis
from tests.nemesis.net import Fabric
from tests.nemesis.siege import HOSTILE_KINDS, Siege
from tests.nemesis.workload import Workload

WINDOW_S = 14.0  # one round's faults
SIEGE_S = 6.0  # the hostile phase: this long in quiet, then this long under attack
SETTLE_S = 240.0  # heal → identical sets, or the heal counts as not converged
FINAL_S = 360.0


def available_kinds(disk: bool = True) -> tuple[str, ...]:
    """The fault kinds this machine can inject in rounds (the clock needs ``clock.py``'s shim or libfaketime);
    ``disk=False`` leaves the full disk out. The hostile peers (``HOSTILE_KINDS``)
    attack in a phase of their own before the rounds."""
    kinds = KINDS if can_skew() else tuple(k for k in KINDS if k not in CLOCK_KINDS)
    return kinds if disk else tuple(k for k in kinds if k not in DISK_KINDS)


TMPFS_MB = 48  # the disk fault's node: enough for its store and log, quick to fill


def run(
    nodes: int, minutes: float, seed: int, root: Path, say: Callable[[str], None] = print,
    per_round: int = 3, window: float = WINDOW_S, rounds_min: int = 1, disk: bool = True,
    siege_s: float = SIEGE_S,
) -> Verdict:
    """The hostile phase, then at least ``rounds_min`` rounds of faults, and more
    until ``minutes`` under fire have passed."""
    rng = random.Random(seed)
    kinds = available_kinds(disk)
    fabric = Fabric(nodes)
    cluster = Cluster(root, nodes, fabric)
    began = time.monotonic()
    try:
        fabric.create()
        say(f"nemesis: {nodes} nodes in namespaces amp{fabric.tag}*, seed {seed}, home {root}")
        cluster.setup(tmpfs_mb=TMPFS_MB if "disk" in kinds else 0)
        keys = cluster.keys()
        work = Workload(cluster.nodes, random.Random(rng.random()))
        nemesis = Nemesis(cluster, random.Random(rng.random()), work=work)
        siege = Siege(cluster, seed, random.Random(rng.random()))
        for node in cluster.nodes:  # warm-up: each author's first alert reaches everyone
            work.one(node, "alert", rng)
        warm = checker.converged(cluster, set(work.acknowledged()), SETTLE_S)
        if warm is None:
            raise RuntimeError("the mesh did not converge before any fault (pairing or trust horizon)")
        say(f"warm: {len(work.acknowledged())} alerts everywhere in {warm:.1f} s")
        _pair_the_hostiles(siege)
        attacked = siege.run(work, random.Random(rng.random()), siege_s)
        nemesis.counts.update(HOSTILE_KINDS)
        say(attacked.summary())
        samples: list[float] = []
        missed = rounds = 0
        deaths: list[str] = []
        faults_from = time.monotonic()  # --minutes is the time under fire, not the set-up
        while rounds < rounds_min or time.monotonic() - faults_from < minutes * 60:
            chosen = nemesis.choose(rounds, kinds, min(per_round, nodes))
            work.start()
            nemesis.round(chosen, window)
            healed = time.monotonic()  # the last fault undone; the burst stops with it
            work.stop()
            rounds += 1
            deaths += _revive_the_dead(cluster, nemesis, say)
            took = checker.converged(cluster, set(work.acknowledged()), SETTLE_S, since=healed)
            if took is None:
                missed += 1
            else:
                samples.append(took)
            say(f"round {rounds}: {', '.join(chosen)}; {len(work.acknowledged())} acknowledged; "
                + (f"identical {took:.1f} s after heal" if took is not None else "NOT converged"))
        verdict = _verdict(cluster, nemesis, work, keys, samples, missed, rounds, deaths, seed, began, siege)
        attacked.sybils_stored = siege.sybils_stored()  # after every round too
        verdict.siege = attacked.figures()
        verdict.problems = attacked.problems() + nemesis.disk_problems()
        return verdict
    finally:
        cluster.stop()
        fabric.close()
        cluster.unmount()


PAIR_TRIES = 5


def _pair_the_hostiles(siege: Siege) -> None:
    """``Siege.setup`` with a pairing that could not reach its node tried again with
    a new invite, as ``Cluster.pair`` does for the honest nodes: a 20-node run's
    set-up died at load 30 of a TLS handshake slower than the 5 s connect timeout."""
    for attempt in range(1, PAIR_TRIES + 1):
        try:
            siege.setup()
            return
        except RuntimeError as exc:
            if attempt == PAIR_TRIES or "ConnectionTimeoutError" not in str(exc):
                raise
            siege.cluster.fabric.remove_guests()


def _revive_the_dead(cluster: Cluster, nemesis: Nemesis, say: Callable[[str], None]) -> list[str]:
    """A node that died without the nemesis killing it is a finding; start it again so the run goes on."""
    dead = []
    for node in cluster.nodes:
        if not node.running:
            dead.append(f"{node.name} (exit {node.proc.returncode if node.proc else '-'})")
            say(f"UNEXPECTED: {dead[-1]} died; the end of its log:\n{node._log_tail()}")
            node.start()
    return dead


def _verdict(
    cluster: Cluster, nemesis: Nemesis, work: Workload, keys: dict[bytes, int], samples: list[float],
    missed: int, rounds: int, deaths: list[str], seed: int, began: float, siege: Siege,
) -> Verdict:
    acked = work.acknowledged()
    final = checker.converged(cluster, set(acked), FINAL_S)
    sets, ahead = checker.snapshot(cluster)
    union = frozenset().union(*sets.values())
    lost = sorted({eid.hex() for eid in set(acked) - ahead for s in sets.values() if eid not in s})
    divergent = [cluster.nodes[i].name for i, s in sets.items() if s != union]
    forged = checker.forged(cluster, keys, siege.guest_ids)
    cluster.stop()  # integrity on closed stores: nothing in flight
    integrity = {n.name: n.integrity() for n in cluster.nodes}
    caught_up = {cluster.nodes[i].name: not (set(acked) - ahead - sets[i]) for i in sorted(nemesis.killed)}
    return Verdict(
        nodes=len(cluster.nodes), seed=seed, seconds=time.monotonic() - began, rounds=rounds,
        faults=dict(nemesis.counts), ops=dict(Counter(f"{o.kind} {o.outcome}" for o in work.ops)),
        acknowledged=len(acked), lost=len(lost), forged=len(forged), divergent=divergent,
        integrity=integrity, unexpected_deaths=deaths, killed_caught_up=caught_up,
        convergence_s=[round(s, 2) for s in samples], not_converged=missed + (final is None),
        fault_errors=nemesis.errors, lost_ids=lost[:20], forged_ids=forged[:20],
        ahead_of_clock=len(ahead),
        refusals=dict(Counter(f"{o.kind}: {o.detail}" for o in work.ops if o.detail)),
        disk=list(nemesis.disk),
    )


def _exit_on_term(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/nemesis", description=__doc__)
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--per-round", type=int, default=3, help="faults at once in a round (CI: 5)")
    parser.add_argument("--rounds", type=int, default=1, help="at least this many rounds (CI: 2, with --minutes 0)")
    parser.add_argument(
        "--siege-seconds", type=float, default=SIEGE_S,
        help=f"the hostile phase: this long in quiet, then this long under attack (default {SIEGE_S:g})",
    )
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the nodes' homes (logs, stores)")
    parser.add_argument(
        "--no-disk", dest="disk", action="store_false",
        help="leave out the full disk (one node's home is a 48 MiB tmpfs, filled and freed)",
    )
    parser.add_argument("--disk", action="store_true", help=argparse.SUPPRESS)  # the default now
    args = parser.parse_args(argv)
    if args.nodes < 3:
        parser.error("--nodes: at least 3 (a partition needs two sides and a graph that is not a clique)")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    root = Path(tempfile.mkdtemp(prefix=f"nemesis-{seed}-"))
    signal.signal(signal.SIGTERM, _exit_on_term)  # so the namespaces and nodes are cleaned up
    out = sys.stderr if args.json else sys.stdout  # with --json, stdout is the verdict only

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    try:
        verdict = run(
            args.nodes, args.minutes, seed, root, say, per_round=args.per_round, rounds_min=args.rounds, disk=args.disk,
            siege_s=args.siege_seconds,
        )
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(verdict.as_json(), indent=2) if args.json else verdict.table())
    for why, count in sorted(verdict.refusals.items()):
        say(f"refused {count}×  {why}")
    if args.keep:
        say(f"homes kept in {root}")
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
