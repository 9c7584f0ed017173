"""The crash-consistency run (docs/reliability.md, "Crash consistency"): one real
node killed with ``kill -9`` at random moments, hundreds of times, while alerts
are written through its local API and pushed to it by a peer; afterwards every
alert it acknowledged must be in its store, the store must pass
``PRAGMA integrity_check``, and no nonce may have been used twice.

    bash scripts/nemesis --crash [--kills 500] [--seed S] [--json] [--keep]
    python -m tests.nemesis.crash --help

What counts as acknowledged (SPEC §8, durability):

- **authored**: the local API answered ``POST /api/v1/alerts`` with an id (one in
  four of them restricted, so sealed to the peer);
- **relayed**: the node answered a signed ``/mesh/v1/push`` from its peer with 200
  and did not name the envelope as deferred (``crash_peer.RelayPeer``).

Nonces (the node draws every one at random when it uses it; none is a counter an
old copy could rewind, see ``node/backup.py``), collected across all the lives:

- **request nonces** of the signed requests the node sends its peer, written down
  by the peer's listener: none may come twice;
- **sealing nonces** of the restricted alerts it wrote (the XChaCha20 nonce, and
  the ephemeral key from which each recipient slot's box nonce is derived): none
  may come twice;
- **remembered nonces**: the node keeps the nonces of requests it accepted, with
  the envelopes they carried, so a replay is refused after a restart too. Every
  acknowledged push's nonce must be in its store, and after each restart the last
  acknowledged push of an earlier life is sent again, byte for byte: it must be
  refused.

No network namespaces: the node and its peer are on loopback, so the run needs no
root. Kills land while the node starts (one in ten) or while it serves, at a
moment drawn from the seed; the moment is random, the seed makes the schedule
repeatable (the node's own timing is not).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import queue
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from node.cli.client import ApiError, LocalClient, NodeUnavailable
from node.config import DB_FILE
from node.devmesh import LocalNode
from protocol import ProtocolError, Sealed, decode, envelope_id
from protocol.request import MAX_REQUEST_AGE_MS, parse_header
from tests.e2e.harness import now_ms
from tests.nemesis.crash_peer import PEER_NAME, Push, RelayPeer

STARTING_SHARE = 0.1  # kills that land while the node starts, before it answers
STARTING_WINDOW_S = 2.5  # ... at a moment within this long after the process starts
SERVING_MAX_S = 1.5  # the others: up to this long after it answers
READY_S = 90.0  # a start slower than this is a finding (the machine is shared: generous)
INTEGRITY_EVERY = 25  # kills between integrity checks of the store as the kill left it
REGIONS = ("MX-OAX", "MX-CHP", "MX-GRO", "CO-ANT", "GT")
CUT_SHORT = threading.Event()  # SIGTERM or Ctrl-C: stop killing, check what the kills so far left


@dataclass
class CrashVerdict:
    kills: int
    seed: int
    seconds: float
    kills_by_phase: dict[str, int]
    authored: int  # acknowledged by the API
    authored_sealed: int
    relayed: int  # acknowledged to the pushing peer
    authored_lost: list[str]
    relayed_lost: list[str]
    integrity: dict[str, int]  # result -> how many checks gave it
    request_nonces: int
    request_nonces_reused: int
    sealing_nonces: int
    sealing_nonces_reused: int
    push_nonces_forgotten: int
    replays: int
    replays_accepted: list[str]
    unexpected_deaths: list[str] = field(default_factory=list)
    slow_starts: list[str] = field(default_factory=list)
    tracebacks: int = 0
    operations: dict[str, int] = field(default_factory=dict)
    refusals: dict[str, int] = field(default_factory=dict)
    kills_asked: int = 0  # more than ``kills`` when the run was stopped early

    @property
    def ok(self) -> bool:
        return (
            not self.authored_lost
            and not self.relayed_lost
            and set(self.integrity) == {"ok"}
            and not self.request_nonces_reused
            and not self.sealing_nonces_reused
            and not self.push_nonces_forgotten
            and not self.replays_accepted
            and not self.unexpected_deaths
            and not self.slow_starts
            and self.tracebacks == 0
            and self.authored > 0
            and self.relayed > 0
        )

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}

    def table(self) -> str:
        rows = [
            ("result", "PASS" if self.ok else "FAIL"),
            ("kills / seed / seconds", f"{self.kills} / {self.seed} / {self.seconds:.0f}"),
            *(
                [("stopped early", f"after {self.kills} of {self.kills_asked} kills")]
                if self.kills_asked > self.kills
                else []
            ),
            ("kills while", ", ".join(f"{k} {v}" for k, v in sorted(self.kills_by_phase.items()))),
            ("operations", ", ".join(f"{k} {v}" for k, v in sorted(self.operations.items()))),
            ("authored, acknowledged", f"{self.authored} ({self.authored_sealed} sealed)"),
            ("relayed, acknowledged", str(self.relayed)),
            ("authored lost", str(len(self.authored_lost))),
            ("relayed lost", str(len(self.relayed_lost))),
            ("integrity_check", ", ".join(f"{k} ×{v}" for k, v in sorted(self.integrity.items()))),
            ("request nonces seen / reused", f"{self.request_nonces} / {self.request_nonces_reused}"),
            ("sealing nonces seen / reused", f"{self.sealing_nonces} / {self.sealing_nonces_reused}"),
            ("acked pushes whose nonce was forgotten", str(self.push_nonces_forgotten)),
            ("replays after restart / accepted", f"{self.replays} / {len(self.replays_accepted)}"),
            ("unexpected deaths", "; ".join(self.unexpected_deaths) or "none"),
            ("starts slower than 90 s", "; ".join(self.slow_starts) or "none"),
            ("tracebacks in the log", str(self.tracebacks)),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


@dataclass
class Authored:
    id: bytes
    sealed: bool
    life: int


class Life:
    """One life forked by the launcher (``crash_launcher.py``): the part of
    ``subprocess.Popen`` that ``LocalNode`` and the kill loop use."""

    def __init__(self, launcher: Launcher, pid: int) -> None:
        self.launcher, self.pid = launcher, pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.launcher.exit_code(self.pid)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            # The life may end between the poll and the signal (its launcher stopped
            # with the run, on SIGTERM): then there is nothing left to signal.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        code = self.launcher.wait_exit(self.pid, timeout if timeout is not None else 3600)
        if code is None:
            raise subprocess.TimeoutExpired(f"life {self.pid}", timeout or 0)
        self.returncode = code
        return code


class Launcher:
    """The harness's end of ``crash_launcher.py``."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.nemesis.crash_launcher"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
            bufsize=1,
        )
        self._exits: dict[int, int] = {}
        self._pids: queue.Queue[int] = queue.Queue()
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            verb, *rest = line.split()
            if verb == "pid":
                with self._changed:
                    # pids come round again (pid_max is 32768 here): the exit of an
                    # earlier life with this pid is not this one's (the launcher
                    # reports an exit before it can fork a child that reuses the pid)
                    self._exits.pop(int(rest[0]), None)
                self._pids.put(int(rest[0]))
            elif verb == "exit":
                with self._changed:
                    self._exits[int(rest[0])] = int(rest[1])
                    self._changed.notify_all()

    def spawn(self, home: Path) -> Life:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"spawn {home}\n")
        self.proc.stdin.flush()
        return Life(self, self._pids.get(timeout=120))

    def exit_code(self, pid: int) -> int | None:
        with self._changed:
            return self._exits.get(pid)

    def wait_exit(self, pid: int, timeout: float) -> int | None:
        with self._changed:
            self._changed.wait_for(lambda: pid in self._exits, timeout)
            return self._exits.get(pid)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # the launcher kills what is left and exits
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Victim(LocalNode):
    """The node under test: started without waiting, killed at a chosen moment.
    With a launcher, each life is forked from it; without, a fresh process."""

    launcher: Launcher | None = None

    def spawn(self) -> None:
        if self.launcher is not None:
            self.proc = self.launcher.spawn(self.home)  # type: ignore[assignment]
            return
        log = open(self.home / "node.log", "ab")  # noqa: SIM115 - the process owns it until it exits
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "node.cli", "--home", str(self.home), "run"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
                start_new_session=True,
            )
        finally:
            log.close()

    def answers(self) -> bool:
        try:
            self.api.get("/healthz")
            return True
        except (NodeUnavailable, ApiError, http.client.HTTPException, OSError):
            return False


@dataclass
class Burst:
    """Authors writing through the local API and the peer pushing, until stopped."""

    node: Victim
    peer: RelayPeer
    rng: random.Random
    authors: int = 2
    authored: list[Authored] = field(default_factory=list)
    ops: Counter[str] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        seeds = [self.rng.random() for _ in range(self.authors + 1)]
        self._threads = [
            threading.Thread(target=self._author, args=(random.Random(s),), daemon=True) for s in seeds[1:]
        ] + [threading.Thread(target=self._pusher, args=(random.Random(seeds[0]),), daemon=True)]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def _count(self, what: str, detail: str = "") -> None:
        with self._lock:
            self.ops[what] += 1
            if detail:
                self.refusals[detail] += 1

    def _author(self, rng: random.Random) -> None:
        client = LocalClient(self.node.home)
        seq = 0
        while not self._stop.is_set():
            seq += 1
            sealed = rng.random() < 0.25
            doc: dict[str, Any] = {
                "regions": [rng.choice(REGIONS)],
                "severity": rng.choice(["moderate", "severe", "extreme"]),
                "headline": f"Prueba de choque {seq}: retén en la carretera",
                "expires": "6h",
            }
            if sealed:
                doc |= {"scope": "restricted", "to": [PEER_NAME]}
            life = self.peer.life
            try:
                answer = client.post("/api/v1/alerts", doc)
            except ApiError as exc:
                self._count("authored refused", f"authored: {exc.code or exc}")
                self._stop.wait(0.05)
                continue
            except (NodeUnavailable, http.client.HTTPException, OSError):
                self._count("authored unanswered")
                self._stop.wait(0.05)  # the node is down: try again shortly
                continue
            with self._lock:
                self.authored.append(Authored(bytes.fromhex(answer["id"]), sealed, life))
            self._count("authored ok")

    def _pusher(self, rng: random.Random) -> None:
        asyncio.run(self._pushes(rng))

    async def _pushes(self, rng: random.Random) -> None:
        """New alerts only after an answered push: while the node is down the same
        batch waits (as a real sender's queue does), so the store grows with what
        the node could take, not with how long it was down."""
        waiting: list[bytes] = []  # not acknowledged yet: a real sender sends them again
        answered = True
        async with aiohttp.ClientSession() as session:
            while not self._stop.is_set():
                fresh = [e.raw for e in self.peer.fresh(rng.randint(1, 4))] if answered else []
                raws = waiting + fresh
                answer = await self.peer.send_push(session, self.node, raws)
                done = set(answer.acknowledged)
                waiting = [r for r in raws if decode(r, now=now_ms(), check_time=False).id not in done]
                answered = answer.status == 200
                if answered:
                    self._count("pushes ok")
                    await asyncio.sleep(0.05 * rng.uniform(0.5, 1.5))  # pacing, within the peer's quota
                else:
                    self._count(
                        "pushes refused" if answer.status else "pushes unanswered",
                        f"push: {answer.status} {answer.text[:80]}" if answer.status else "",
                    )
                    await asyncio.sleep(0.05)  # the node is down: try again shortly


def integrity_of_copy(db: Path, scratch: Path) -> str:
    """``PRAGMA integrity_check`` on a copy of the store (database and WAL) as the
    kill left it: the copy recovers from the WAL, the node's own files stay as they were."""
    scratch.mkdir(parents=True, exist_ok=True)
    for old in scratch.iterdir():
        old.unlink()
    for suffix in ("", "-wal"):
        source = db.with_name(db.name + suffix)
        if source.exists():
            shutil.copyfile(source, scratch / (db.name + suffix))
    con = sqlite3.connect(scratch / db.name, timeout=30)
    try:
        return str(con.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        con.close()


@dataclass
class Lives:
    """The kill loop's record."""

    node: Victim
    peer: RelayPeer
    rng: random.Random
    scratch: Path
    say: Callable[[str], None]
    phases: Counter[str] = field(default_factory=Counter)
    integrity: Counter[str] = field(default_factory=Counter)
    deaths: list[str] = field(default_factory=list)
    slow: list[str] = field(default_factory=list)
    replays: int = 0
    replays_accepted: list[str] = field(default_factory=list)

    def one(self, kill: int) -> None:
        """Start the node, let it run to a random moment, ``kill -9`` it."""
        self.peer.life += 1
        self.node.spawn()
        if self.rng.random() < STARTING_SHARE:
            moment = self.rng.uniform(0, STARTING_WINDOW_S)
            time.sleep(moment)  # the random moment of the kill, not a wait for a condition
            self.phases["serving" if self.node.answers() else "starting"] += 1
        else:
            moment = self.rng.uniform(0, SERVING_MAX_S)
            if not self._ready(kill):
                return
            self._replay_earlier()
            time.sleep(moment)  # the random moment of the kill, not a wait for a condition
            self.phases["serving"] += 1
        self._kill(kill)
        if kill % INTEGRITY_EVERY == 0:
            self.integrity[integrity_of_copy(self.node.home / DB_FILE, self.scratch)] += 1

    def _ready(self, kill: int) -> bool:
        began = time.monotonic()
        while not self.node.answers():
            if self.node.proc is not None and self.node.proc.poll() is not None:
                self.deaths.append(f"kill {kill}: exited {self.node.proc.returncode} while starting")
                self.say(f"UNEXPECTED: the node exited while starting:\n{self.node._log_tail()}")
                self.node.proc = None
                return False
            if time.monotonic() - began > READY_S:
                self.slow.append(f"kill {kill}: not answering after {READY_S:.0f} s")
                self._kill(kill)
                return False
            time.sleep(0.02)
        return True

    def _replay_earlier(self) -> None:
        """The last acknowledged push of an earlier life, sent again: must be refused."""
        earlier = [p for p in self.peer.pushes[-200:] if p.life < self.peer.life]
        if not earlier:
            return
        push = earlier[-1]
        status = asyncio.run(_replay(self.peer, self.node, push))
        if status == 0:
            return  # no answer (killed meanwhile): not a replay that counted
        self.replays += 1
        if status == 200:
            self.replays_accepted.append(f"life {self.peer.life} took a push of life {push.life} again")

    def _kill(self, kill: int) -> None:
        proc = self.node.proc
        assert proc is not None
        if proc.poll() is not None:
            self.deaths.append(f"kill {kill}: had already exited ({proc.returncode})")
            self.say(f"UNEXPECTED: the node exited before its kill:\n{self.node._log_tail()}")
        else:
            proc.kill()
        proc.wait(30)
        self.node.proc = None


async def _replay(peer: RelayPeer, node: Victim, push: Push) -> int:
    async with aiohttp.ClientSession() as session:
        return await peer.replay(session, node, push)


def run(
    kills: int, seed: int, root: Path, say: Callable[[str], None] = print, fresh_processes: bool = False
) -> CrashVerdict:
    rng = random.Random(seed)
    began = time.monotonic()
    node = Victim("Colectivo Ejemplo", root / "node", trust_depth=2)
    peer = RelayPeer(root / "peer")
    launcher = None if fresh_processes else Launcher(node._env())
    node.launcher = launcher
    try:
        with peer.listener:
            return _lives(node, peer, rng, kills, seed, began, say)
    finally:
        node.stop()
        if launcher is not None:
            launcher.close()


def _lives(
    node: Victim,
    peer: RelayPeer,
    rng: random.Random,
    kills: int,
    seed: int,
    began: float,
    say: Callable[[str], None],
) -> CrashVerdict:
    """Set up, then ``kills`` lives under the burst, then one last life to look at."""
    node.init()
    node.spawn()
    node.wait_ready(READY_S)
    peer.learn(node)
    peer.introduce(node)
    say(f"crash: node {node.home}, peer listener 127.0.0.1:{peer.listener.port}, seed {seed}, {kills} kills")
    node.kill()
    burst = Burst(node, peer, random.Random(rng.random()))
    lives = Lives(node, peer, random.Random(rng.random()), node.home.parent / "scratch", say)
    burst.start()
    done = 0
    try:
        for kill in range(1, kills + 1):
            if CUT_SHORT.is_set():
                say(f"stopped after {done} of {kills} kills (SIGTERM or Ctrl-C): checking what they left")
                break
            lives.one(kill)
            done = kill
            if kill % 50 == 0 or kill == kills:
                say(
                    f"{kill} kills; {len(burst.authored)} authored, {len(peer.acknowledged)} relayed acknowledged"
                )
    finally:
        burst.stop()
    peer.life += 1
    node.spawn()  # the last life: nothing writes now, only what was kept is there
    node.wait_ready(READY_S)
    verdict = _verdict(node, peer, burst, lives, done, seed, time.monotonic() - began)
    verdict.kills_asked = kills
    return verdict


def _verdict(
    node: Victim, peer: RelayPeer, burst: Burst, lives: Lives, kills: int, seed: int, seconds: float
) -> CrashVerdict:
    held, sealing, remembered = _store_view(node, peer)
    node.stop()
    lives.integrity[integrity_of_copy(node.home / DB_FILE, lives.scratch)] += 1
    request = Counter(h.nonce for h in peer.heard if h.sender == peer.node_key)
    forgotten = sum(
        1 for p in peer.pushes if _still_kept(p) and parse_header(p.header)[0].nonce not in remembered
    )
    log = (node.home / "node.log").read_text("utf-8", "replace")
    return CrashVerdict(
        kills=kills,
        seed=seed,
        seconds=seconds,
        kills_by_phase=dict(lives.phases),
        authored=len(burst.authored),
        authored_sealed=sum(a.sealed for a in burst.authored),
        relayed=len(peer.acknowledged),
        authored_lost=sorted(a.id.hex() for a in burst.authored if a.id not in held),
        relayed_lost=sorted(i.hex() for i in peer.acknowledged if i not in held),
        integrity=dict(lives.integrity),
        request_nonces=len(request),
        request_nonces_reused=sum(1 for c in request.values() if c > 1),
        sealing_nonces=len(sealing),
        sealing_nonces_reused=sum(1 for c in sealing.values() if c > 1),
        push_nonces_forgotten=forgotten,
        replays=lives.replays,
        replays_accepted=lives.replays_accepted,
        unexpected_deaths=lives.deaths,
        slow_starts=lives.slow,
        tracebacks=log.count("Traceback"),
        operations=dict(burst.ops),
        refusals=dict(burst.refusals),
    )


def _still_kept(push: Push) -> bool:
    """The node keeps a request's nonce until its timestamp would be refused anyway
    (``mesh_api``: timestamp + 2 × the request age); older ones are pruned, and a
    replay of them is refused as stale."""
    expires = parse_header(push.header)[0].timestamp + 2 * MAX_REQUEST_AGE_MS
    return expires > now_ms()


def _store_view(node: Victim, peer: RelayPeer) -> tuple[set[bytes], Counter[bytes], set[bytes]]:
    """(every id held, the sealing nonces of the node's own sealed envelopes, the
    request nonces it remembers from the peer), read from the store directly."""
    con = sqlite3.connect(f"file:{node.home / DB_FILE}?mode=ro", uri=True, timeout=30)
    try:
        held = {bytes(r[0]) for r in con.execute("SELECT id FROM envelopes")}
        own = [
            bytes(r[0]) for r in con.execute("SELECT raw FROM envelopes WHERE author = ?", (peer.node_key,))
        ]
        remembered = {
            bytes(r[0]) for r in con.execute("SELECT nonce FROM request_nonces WHERE peer = ?", (peer.key,))
        }
    finally:
        con.close()
    sealing: Counter[bytes] = Counter()
    for raw in {envelope_id(raw): raw for raw in own + list(peer.received.values())}.values():
        sealing.update(_sealing_nonces(raw))
    return held, sealing, remembered


def _sealing_nonces(raw: bytes) -> set[bytes]:
    """A sealed envelope's content nonce and the ephemeral keys its slots' nonces derive from
    (each envelope once, whether read from the store or from what the peer received)."""
    try:
        env = decode(raw, now=now_ms(), check_time=False)
    except ProtocolError:
        return set()
    body = env.body
    if not isinstance(body, Sealed):
        return set()
    return {b"n" + body.nonce} | {b"e" + wrapped[:32] for _hint, wrapped in body.slots}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/nemesis --crash",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--kills", type=int, default=500)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the node's home (log, store)")
    parser.add_argument(
        "--fresh-processes",
        action="store_true",
        help="start every life from scratch instead of forking it from a launcher (slower; see crash_launcher.py)",
    )
    args = parser.parse_args(argv)
    if args.kills < 1:
        parser.error("--kills: at least 1")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    root = Path(tempfile.mkdtemp(prefix=f"crash-{seed}-"))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: CUT_SHORT.set())
    out = sys.stderr if args.json else sys.stdout

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    try:
        verdict = run(args.kills, seed, root, say, fresh_processes=args.fresh_processes)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(verdict.as_json(), indent=2) if args.json else verdict.table())
    for why, count in sorted(verdict.refusals.items()):
        say(f"refused {count}×  {why}")
    for lost in (verdict.authored_lost + verdict.relayed_lost)[:20]:
        say(f"lost {lost}")
    if args.keep:
        say(f"home kept in {root}")
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
