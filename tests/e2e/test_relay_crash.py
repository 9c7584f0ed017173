"""Nothing acknowledged is lost when a relay is killed (issue 14, SPEC §8
"Durability"): a real node process takes bursts of pushed envelopes from two
peers at once (frames large enough for the worker processes, group commits
shared by both), and is killed with SIGKILL at a random moment of each burst.
After each restart, every envelope it acknowledged is in its database; the
rest is pushed again, as a sender does with what was never answered, and at
the end the node holds everything sent. A forged envelope in the first burst
is never stored.

CI runs ``KILLS`` kills (about 30 s on a quiet 2-core machine). A longer run with its own seed:

    python -m tests.e2e.test_relay_crash --kills 50 [--seed 7]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from node import keystore
from node.config import DB_FILE
from node.devmesh import LocalNode
from node.transport import MeshClient, TransportError
from protocol import Identity, Vouch, sign_envelope
from protocol.envelope import envelope_id
from tests.e2e.harness import ScriptedPeer, now_ms

pytestmark = pytest.mark.slow

KILLS = 2
FRAME = 24  # envelopes per push: above node.verifier.POOLED_FROM, so the workers verify them
PER_PUSHER = 240  # envelopes each peer sends per burst (ten frames)
AUTHORS = 6  # per pusher: the per-author budget (burst 300) never defers a burst
WORKERS_GONE_S = 10.0  # node.verifier.WATCHDOG_S is 1 s
BURST_S = 60.0  # a safety net: the frames before the kill are answered well within it


@dataclass
class Pusher:
    """A peer with its own authors (vouched for by the node itself) and what the
    node has acknowledged of what it sent."""

    peer: ScriptedPeer
    authors: list[Identity]
    sent: dict[bytes, bytes] = field(default_factory=dict)  # id -> raw
    acked: set[bytes] = field(default_factory=set)

    def burst(self, count: int) -> list[bytes]:
        made = [
            self.peer.alert(f"Ráfaga {len(self.sent) + i}", author=self.authors[i % len(self.authors)]).raw
            for i in range(count)
        ]
        self.sent.update((envelope_id(raw), raw) for raw in made)
        return made

    def unacknowledged(self) -> list[bytes]:
        return [raw for key, raw in self.sent.items() if key not in self.acked]

    async def push(self, node: LocalNode, raws: list[bytes]) -> None:
        """Push ``raws`` frame by frame until done or the node is gone; an answered
        frame acknowledges everything in it that was not deferred."""
        client = MeshClient(self.peer.identity, now_ms)
        await client.start()
        try:
            address = self.peer.address_of(node)
            for start in range(0, len(raws), FRAME):
                frame = raws[start : start + FRAME]
                try:
                    reply = await client.call(address, "/mesh/v1/push", {"e": frame})
                except TransportError:
                    return  # killed (or refused): nothing of this frame was acknowledged
                deferred = set(reply.get("deferred", []))
                self.acked.update(envelope_id(raw) for raw in frame if envelope_id(raw) not in deferred)
        finally:
            await client.close()


def held_ids(node: LocalNode) -> set[bytes]:
    db = sqlite3.connect(f"file:{node.home / DB_FILE}?mode=ro", uri=True, timeout=30)
    try:
        return {bytes(row[0]) for row in db.execute("SELECT id FROM envelopes")}
    finally:
        db.close()


def make_pusher(node: LocalNode, name: str) -> Pusher:
    peer = ScriptedPeer(name)
    peer.pair_with(node)
    authors = [Identity.from_random(os.urandom(64)) for _ in range(AUTHORS)]
    node_identity = keystore.unlock(node.home)  # devmesh nodes have no passphrase
    vouches = [
        sign_envelope(
            node_identity,
            Vouch(subject=a.sign_public, enc=a.enc_public, name="Autora"),
            created=now_ms(),
            expires=0,
        ).raw
        for a in authors
    ]
    assert peer.push(node, vouches)["accepted"] == len(vouches)
    return Pusher(peer, authors)


async def burst_and_kill(node: LocalNode, pushers: list[Pusher], rng: random.Random, fresh: int) -> list[int]:
    """Each pusher resends what was not acknowledged plus ``fresh`` new envelopes;
    the node is killed at a random moment of the burst. Returns the node's
    worker processes at the kill."""
    loads = [p.unacknowledged() + p.burst(fresh) for p in pushers]
    pushes = [asyncio.create_task(p.push(node, load)) for p, load in zip(pushers, loads, strict=True)]
    # The kill comes after a random number of answered frames, and a random part of
    # a frame's time later: during verification, admission, the commit or the answer.
    answered = sum(len(p.acked) for p in pushers) + FRAME * rng.randint(1, 2 * PER_PUSHER // FRAME - 2)
    deadline = time.monotonic() + BURST_S
    while sum(len(p.acked) for p in pushers) < answered and not all(t.done() for t in pushes):
        assert time.monotonic() < deadline, "the node answered no frame in time"
        await asyncio.sleep(0.005)
    await asyncio.sleep(rng.uniform(0, 0.05))  # the random moment of the kill, not a wait for a condition
    assert node.proc is not None
    workers = children(node.proc.pid)
    node.proc.kill()
    await asyncio.gather(*pushes)
    node.stop()  # reaps the killed process
    return workers


def children(pid: int) -> list[int]:
    """The node's live child processes (its signature workers)."""
    try:
        return [
            int(c)
            for task in Path(f"/proc/{pid}/task").iterdir()
            for c in (task / "children").read_text().split()
        ]
    except OSError:
        return []


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pids: list[int]) -> None:
    """Workers end on their own once their node was killed (node.verifier's watchdog)."""
    deadline = time.monotonic() + WORKERS_GONE_S
    while any(running(pid) for pid in pids):
        assert time.monotonic() < deadline, "signature workers outlived their killed node"
        time.sleep(0.05)


def run(root: Path, kills: int, seed: int) -> dict[str, int]:
    """Start a node, ``kills`` bursts each ended by a kill -9, then one burst of
    resends that runs to the end. Raises AssertionError on any loss."""
    rng = random.Random(seed)
    node = LocalNode("Nodo Relevo", root / "relay")
    node.init()
    node.start()
    try:
        pushers = [make_pusher(node, "Nodo Empuje Uno"), make_pusher(node, "Nodo Empuje Dos")]
        genuine = pushers[0].peer.alert("Falsificada", author=pushers[0].authors[0]).raw
        forged = genuine[:-1] + bytes([genuine[-1] ^ 1])  # the signature no longer matches
        assert pushers[0].peer.push(node, [forged])["invalid"] == 1
        for _ in range(kills):
            workers = asyncio.run(burst_and_kill(node, pushers, rng, PER_PUSHER))
            assert workers, "the node verified the bursts in its own process"
            wait_gone(workers)
            node.start()
            held = held_ids(node)
            for pusher in pushers:
                lost = pusher.acked - held
                assert not lost, f"{len(lost)} acknowledged envelopes lost after kill -9 (seed {seed})"
        for pusher in pushers:  # the sender resends what it was never answered for
            asyncio.run(pusher.push(node, pusher.unacknowledged()))
        held = held_ids(node)
        sent = {key for pusher in pushers for key in pusher.sent}
        assert not sent - held, f"{len(sent - held)} envelopes never stored after resending (seed {seed})"
        assert envelope_id(forged) not in held
        return {"sent": len(sent), "held": len(held & sent), "kills": kills}
    finally:
        node.stop()


def test_a_kill_during_a_burst_loses_nothing_acknowledged(tmp_path: Path) -> None:
    seed = random.SystemRandom().randrange(1 << 30)
    outcome = run(tmp_path, KILLS, seed)
    assert outcome["held"] == outcome["sent"] > KILLS * 2 * PER_PUSHER - 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 30)
    with tempfile.TemporaryDirectory(prefix="amparo-relay-crash-") as tmp:
        outcome = run(Path(tmp), args.kills, seed)
    print(f"seed {seed}: {outcome['kills']} kills, {outcome['sent']} sent, {outcome['held']} held, 0 lost")


if __name__ == "__main__":
    sys.exit(main())
