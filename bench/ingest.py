"""Ingest rate: signed alerts per second one real node accepts from a peer.

A scripted peer pairs with a running node (which has one further peer, so every
accepted alert is also forwarded) and pushes pre-signed ~1 KiB alerts in frames
as large as the body limit allows. Each push is answered only after the batch is
verified and durably stored (SQLite, synchronous=FULL). In the same run, the
raw PyNaCl verification rate of the same envelopes is the baseline; the printed
ratio is what to compare across machines (target ≥ 0.3).

    python bench/ingest.py [--alerts 3000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import nacl.signing  # noqa: E402

from node import wire  # noqa: E402
from node.devmesh import LocalMesh, LocalNode  # noqa: E402
from node.transport import MeshClient  # noqa: E402
from protocol import Identity, codec, signing  # noqa: E402
from tests.e2e.harness import ScriptedPeer, now_ms  # noqa: E402


def raw_verify_rate(envelopes: list, seconds: float = 2.0) -> float:
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
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for key, msg, sig in jobs[:500]:
            key.verify(msg, sig)
        count += min(500, len(jobs))
    return count / (time.perf_counter() - start)


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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--alerts", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    peer = ScriptedPeer("Nodo de Carga")
    # Many authors, as in a real federation: one author is rate-limited (1/s, burst 300).
    authors = [Identity.from_random(os.urandom(64)) for _ in range(max(1, args.alerts // 200))]
    vouches = [peer.vouch_for(author).raw for author in authors]
    say(f"signing {args.alerts} alerts from {len(authors)} authors …")
    filler = "Descripción de prueba. " * 38
    envelopes = [
        peer.alert(f"Ingest {i}", author=authors[i % len(authors)], description=filler)
        for i in range(args.alerts)
    ]
    say(f"envelope size ≈ {len(envelopes[0].raw)} bytes")
    baseline = raw_verify_rate(envelopes)
    with tempfile.TemporaryDirectory(prefix="amparo-ingest-") as tmp, LocalMesh(Path(tmp), 2) as mesh:
        mesh.init_all()
        mesh.start_all()
        mesh.connect([(0, 1)])
        target = mesh.nodes[0]
        peer.pair_with(target)
        peer.push(target, vouches)
        frames = wire.batches([e.raw for e in envelopes])
        say(f"pushing {len(frames)} frames over one keep-alive connection …")
        start = time.perf_counter()
        accepted = asyncio.run(push_all(peer, target, frames, say))
        elapsed = time.perf_counter() - start
    rate = accepted / elapsed
    result = {
        "alerts": args.alerts,
        "accepted": accepted,
        "ingest_per_s": round(rate),
        "raw_verify_per_s": round(baseline),
        "ratio": round(rate / baseline, 3),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"raw Ed25519 verify: {baseline:,.0f}/s")
        print(f"node ingest (verify + store + forward, over HTTPS): {rate:,.0f} alerts/s")
        print(f"ratio: {result['ratio']}  (target ≥ 0.3)")


if __name__ == "__main__":
    main()
