"""Ingest rate: signed alerts per second one real node accepts from a peer.

A scripted peer pairs with a running node and pushes pre-signed ~1 KiB alerts in
frames as large as the body limit allows. Each push is answered only after the
batch is verified (in the node's worker processes, node.verifier) and durably
stored (SQLite, synchronous=FULL). The node has one
further peer, so every accepted alert is also forwarded: a sink process
(`bench/mesh_sink.py`) that answers over real pinned HTTPS but verifies nothing,
so the figure is the measured node's own work; its CPU time is the node process's
plus its workers'. The clock stops when the last
alert has been both acknowledged to the pusher and forwarded to the sink.
In the same run, the raw PyNaCl verification rate of the same envelopes is the
baseline; the printed ratio is what to compare across machines (issue 14 asks ≥ 0.5).

    python bench/ingest.py [--alerts 2000] [--rounds 3] [--pushers 1] [--per-frame K] [--json]

``--pushers N`` splits the alerts between N peers pushing at once, each with one
frame in flight (as a mesh's outbox sends): a relay hears from several peers,
and that is where verification on every core and group commits overlap.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import nacl.signing  # noqa: E402

from node import keystore  # noqa: E402
from node.devmesh import LocalMesh, LocalNode  # noqa: E402
from node.door import PAIR  # noqa: E402
from node.transport import MeshClient  # noqa: E402
from protocol import Envelope, Identity, NodeRecord, Vouch, codec, framing, sign_envelope, signing  # noqa: E402
from tests.e2e.harness import ScriptedPeer, now_ms  # noqa: E402


class SinkPeer(ScriptedPeer):
    """The sink's identity as a peer of the node: its record names the sink's
    address and certificate, so the node's pushes really go there."""

    def __init__(self, port: int, tls_fp: bytes, seed: bytes) -> None:
        super().__init__("Nodo Sumidero")
        self.port, self.tls_fp = port, tls_fp
        self.identity = Identity.from_random(seed)  # the sink signs its answers with it

    def record(self) -> Envelope:
        body = NodeRecord(
            name=self.name, enc=self.identity.enc_public, tls=self.tls_fp, addresses=(f"127.0.0.1:{self.port}",)
        )
        return sign_envelope(self.identity, body, created=now_ms(), expires=0)


class Sink:
    """The sink process and the running total it reports after every push."""

    def __init__(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        seed = os.urandom(64)
        (home / "sink.seed").write_bytes(seed)
        (home / "sink.seed").chmod(0o600)
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "mesh_sink.py"), str(home)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        port, fingerprint = self.proc.stdout.readline().split()
        self.peer = SinkPeer(int(port), bytes.fromhex(fingerprint), seed)
        self.received = 0
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.changed:
                self.received = int(line)
                self.changed.notify_all()

    def wait_for(self, count: int, timeout: float = 120.0) -> int:
        """Block until the sink has received ``count`` envelopes in all (or timeout)."""
        with self.changed:
            self.changed.wait_for(lambda: self.received >= count, timeout)
            return self.received

    def settle(self, quiet: float = 1.0) -> int:
        """The total once nothing has arrived for ``quiet`` seconds."""
        while True:
            with self.changed:
                before = self.received
                if not self.changed.wait(quiet) and self.received == before:
                    return before

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its threads, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (the node's signature workers)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def node_cpu_seconds(pid: int) -> tuple[float, dict[int, float]]:
    """CPU time of the node process and of each of its workers (node.verifier)."""
    return cpu_seconds(pid), {child: cpu_seconds(child) for child in children(pid)}


def cpu_spent(before: tuple[float, dict[int, float]], after: tuple[float, dict[int, float]]) -> tuple[float, float]:
    """(node process, its workers) CPU seconds between two readings; a worker that
    started in between counts from zero."""
    workers = sum(spent - before[1].get(child, 0.0) for child, spent in after[1].items())
    return after[0] - before[0], workers


def raw_verify_rate(envelopes: list, seconds: float = 2.0) -> tuple[float, float]:
    """Verifications per wall second and per CPU second of this process."""
    jobs = []
    for env in envelopes:
        doc = codec.decode(env.raw)
        sig = doc.pop("s")
        jobs.append(
            (
                nacl.signing.VerifyKey(env.author),
                signing.signed_message(signing.PURPOSE_ENVELOPE, codec.encode(doc)),
                sig,
            )
        )
    count, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        for key, msg, sig in jobs[:500]:
            key.verify(msg, sig)
        count += min(500, len(jobs))
    return count / (time.perf_counter() - start), count / (time.process_time() - cpu)


async def push_all(peer: ScriptedPeer, target: LocalNode, frames: list[list[bytes]], say: Any) -> int:
    client = MeshClient(peer.identity, now_ms)
    await client.start()
    accepted = 0
    try:
        address = peer.address_of(target)
        for k, frame in enumerate(frames):
            accepted += (await client.call(address, "/mesh/v1/push", {"e": frame}))["accepted"]
            if (k + 1) % 10 == 0:
                say(f"  {k + 1}/{len(frames)} frames, {accepted} accepted")
    finally:
        await client.close()
    return accepted


async def push_from_all(target: LocalNode, runs: list[tuple[ScriptedPeer, list[list[bytes]]]], say: Any) -> int:
    """Every pusher's frames at once, each over its own connection, one frame in flight."""
    counts = await asyncio.gather(*(push_all(peer, target, frames, say) for peer, frames in runs))
    return sum(counts)


def load(target: LocalNode, alerts: int, say: Any) -> tuple[ScriptedPeer, list[bytes], list[Envelope]]:
    """A fresh pushing peer with its own authors: per-peer (burst 2,000) and
    per-author (1/s, burst 300) limits would otherwise refuse later rounds.

    The authors are vouched for by the measured node itself, as established
    authors are: a vouch only a day old by another key makes its authors share
    the voucher's one budget (burst 300, docs/mesh.md "Budgets"), which would
    defer most of a 2,000-alert round."""
    peer = ScriptedPeer("Nodo de Carga")
    authors = [Identity.from_random(os.urandom(64)) for _ in range(max(1, alerts // 200))]
    node_identity = keystore.unlock(target.home)  # devmesh nodes have no passphrase
    vouches = [
        sign_envelope(
            node_identity,
            Vouch(subject=author.sign_public, enc=author.enc_public, name="Autora de Prueba"),
            created=now_ms(),
            expires=0,
        ).raw
        for author in authors
    ]
    say(f"signing {alerts} alerts from {len(authors)} authors …")
    filler = "Descripción de prueba. " * 38
    envelopes = [
        peer.alert(f"Ingest {i}", author=authors[i % len(authors)], description=filler)
        for i in range(alerts)
    ]
    return peer, vouches, envelopes


def frames_of(raws: list[bytes], per_frame: int | None) -> list[list[bytes]]:
    """As many alerts to a frame as fit (a catch-up's or a burst's pushes), or
    ``per_frame`` (1: one alert a request, as a mesh relays a lone alert)."""
    if per_frame is None:
        return framing.batches(raws)
    return [raws[i : i + per_frame] for i in range(0, len(raws), per_frame)]


def one_round(
    target: LocalNode, sink: Sink, alerts: int, say: Any, pushers: int = 1, per_frame: int | None = None
) -> dict[str, Any]:
    """Baseline, then the node's ingest of the same number of fresh alerts, back to back,
    from ``pushers`` peers at once (each with one frame in flight, as a mesh outbox)."""
    loads = [load(target, alerts // pushers, say) for _ in range(pushers)]
    baseline, baseline_cpu = raw_verify_rate([e for _, _, envelopes in loads for e in envelopes])
    for peer, vouches, _ in loads:
        peer.pair_with(target)
        peer.push(target, vouches)
    before = sink.settle()  # the pairing's records and vouches reach the sink first
    runs = [(peer, frames_of([e.raw for e in envelopes], per_frame)) for peer, _, envelopes in loads]
    size = len(loads[0][2][0].raw)
    say(f"pushing {sum(len(f) for _, f in runs)} frames of ≈{size}-byte alerts over {pushers} connection(s) …")
    assert target.proc is not None
    cpu_before = node_cpu_seconds(target.proc.pid)
    start = time.perf_counter()
    accepted = asyncio.run(push_from_all(target, runs, say))
    acked = time.perf_counter() - start
    forwarded = sink.wait_for(before + accepted) - before
    elapsed = time.perf_counter() - start
    main_cpu, worker_cpu = cpu_spent(cpu_before, node_cpu_seconds(target.proc.pid))
    node_cpu = main_cpu + worker_cpu
    # The pushers have no listener: unpaired, the node stops trying to forward to them.
    for peer, _ in runs:
        target.api.delete(f"/api/v1/peers/{peer.key.hex()}")
    if accepted < alerts // pushers * pushers or forwarded < accepted:
        raise SystemExit(f"{accepted} of {alerts} alerts accepted, {forwarded} forwarded to the sink")
    rate = accepted / elapsed
    rate_cpu = accepted / node_cpu
    return {
        "raw_verify_per_s": round(baseline),
        "ingest_per_s": round(rate),
        "ratio": round(rate / baseline, 3),
        "raw_verify_per_cpu_s": round(baseline_cpu),
        "ingest_per_node_cpu_s": round(rate_cpu),
        "cpu_ratio": round(rate_cpu / baseline_cpu, 3),
        "node_process_cpu_s": round(main_cpu, 3),
        "worker_cpu_s": round(worker_cpu, 3),
        "node_cpu_per_alert_us": round(node_cpu / accepted * 1e6),
        "frames": sum(len(f) for _, f in runs),
        "acked_s": round(acked, 3),
        "forwarded_s": round(elapsed, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--alerts", type=int, default=2000, help="alerts per round (≤ 2,000: one peer's burst)")
    parser.add_argument("--rounds", type=int, default=3, help="the median round is reported")
    parser.add_argument(
        "--pushers", type=int, default=1, help="peers pushing at once (the alerts are split between them)"
    )
    parser.add_argument(
        "--per-frame",
        type=int,
        default=None,
        metavar="K",
        help="alerts per pushed frame (default: as many as fit 64 KiB; 1: a request per alert)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    pairings = 2 + args.rounds * args.pushers  # the sink, the warm-up's pusher, every round's pushers
    if pairings > PAIR.burst:
        parser.error(
            f"--rounds {args.rounds} with --pushers {args.pushers} pairs {pairings} peers from one "
            f"address, over the node's pair budget of {PAIR.burst:g} a minute (node/door.py); "
            f"use at most {int(PAIR.burst - 2) // args.pushers} rounds with {args.pushers} pushers"
        )

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    rounds = []
    with tempfile.TemporaryDirectory(prefix="amparo-ingest-") as tmp, LocalMesh(Path(tmp), 1) as mesh:
        sink = Sink(Path(tmp) / "sink")
        try:
            mesh.init_all()
            mesh.start_all()
            target = mesh.nodes[0]
            sink.peer.pair_with(target)
            say("warming up (not measured) …")
            one_round(target, sink, 300, lambda _text: None)
            for k in range(args.rounds):
                rounds.append(one_round(target, sink, args.alerts, say, args.pushers, args.per_frame))
                say(f"round {k + 1}/{args.rounds}: {rounds[-1]}")
        finally:
            sink.stop()
    median = sorted(rounds, key=lambda r: r["ratio"])[len(rounds) // 2]
    result = {"alerts": args.alerts, "pushers": args.pushers, "rounds": rounds, **median}
    if args.json:
        print(json.dumps(result))
    else:
        m = median
        print(f"median round of {len(rounds)}; all ratios {[r['ratio'] for r in rounds]}")
        print(f"raw Ed25519 verify:  {m['raw_verify_per_s']:>7,}/s wall   {m['raw_verify_per_cpu_s']:>7,}/CPU-s")
        print(
            f"node ingest (verify + store + forward, HTTPS): {m['ingest_per_s']:>7,}/s wall   "
            f"{m['ingest_per_node_cpu_s']:>7,}/node-CPU-s"
        )
        print(
            f"node CPU: {m['node_process_cpu_s']} s in the node process, "
            f"{m['worker_cpu_s']} s in its signature workers; {m['node_cpu_per_alert_us']} µs an alert "
            f"in {m['frames']} frames"
        )
        print(f"ratio: {m['ratio']} wall, {m['cpu_ratio']} per CPU second  (issue 14 asks ≥ 0.5)")


if __name__ == "__main__":
    main()
