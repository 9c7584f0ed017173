"""Hostile peers inside the nemesis, run in their own network namespace (the
"guest", ``Fabric.add_guest``) on the mesh's bridge, speaking the real mesh
protocol over HTTPS like any peer:

- the **flooder**: paired with one node (so its alerts are valid and inside the
  horizon), it pushes 10 × its author quota (``Limits.author_burst`` plus
  ``author_rate_per_s`` over the attack) of signed alerts as fast as the node
  answers, and relays the sybils' vouches and alerts;
- the **forger**: paired with another node, it pushes a valid alert and three
  whose signatures are flipped, every ``FORGE_EVERY_S``, until it is refused;
- **30 sybils**: identities no honest node vouched for (they vouch for each
  other), pushing their alerts to every node at once.

Each runs in a namespace of its own (its own address, as a node's per-address
limits see it): ``python -m tests.nemesis.hostile pair|attack`` reads its plan
(``role``: flooder, forger or sybils) as JSON on stdin and prints what happened
as JSON on stdout; times are ``time.monotonic()``,
which is one clock for every process on the machine (namespaces do not change
it), so the harness compares them with what it saw in the nodes' logs.
Identities come from the run's seed, so both commands (two processes) are the
same peers, and a run reproduces.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from mesh.peers import Limits
from node.pairing import read_invite
from node.transport import MeshClient, PeerAddress, TransportError
from protocol import (
    Alert,
    Area,
    Envelope,
    Identity,
    NodeRecord,
    Vouch,
    codec,
    envelope_id,
    sign_envelope,
    signing,
)
from protocol.envelope import VERSION

SYBILS = 30
FLOOD_FACTOR = 10
FLOOD_BATCH = 100
FLOOD_SENDERS = 2  # pushes in flight at once
FORGE_EVERY_S = 0.3
FORGED_PER_PUSH = 3  # with one valid alert: a relay that lets forgeries through among good items
FORGE_FOR_S = 30.0  # the forger goes on until it is refused three times, or this long
SYBIL_WAVES = 3
GUEST_PORT = 7170  # nothing listens there: a node that dials its hostile peers back is refused at once


def now_ms() -> int:
    return int(time.time() * 1000)


def identity(seed: int, role: str) -> Identity:
    """The same peer in every process of a run (``seed``), distinct per ``role``."""
    return Identity.from_random(hashlib.blake2b(f"amparo-nemesis/{seed}/{role}".encode()).digest())


def flood_size(seconds: float) -> int:
    """10 × what one author may push in ``seconds``: its burst plus its rate (the
    node's default ``Limits``)."""
    limits = Limits()
    return int(FLOOD_FACTOR * (limits.author_burst + limits.author_rate_per_s * seconds))


def alert(author: Identity, headline: str) -> Envelope:
    body = Alert(headline=headline, areas=(Area("MX-OAX"),), severity="severe")
    now = now_ms()
    return sign_envelope(author, body, created=now, expires=now + 3600_000)


def flood_raws(author: Identity, count: int) -> list[bytes]:
    """``count`` valid alerts, signed without being read back (``sign_envelope``
    verifies what it signed, twice the cost): one body, each a millisecond older."""
    body = Alert(
        headline="Inundación: retén en la carretera", areas=(Area("MX-OAX"),), severity="severe"
    ).to_wire()
    now = now_ms()
    raws = []
    for i in range(count):
        doc = {
            "a": author.sign_public,
            "b": body,
            "c": now - i,
            "t": "alert",
            "v": VERSION,
            "x": now + 3600_000,
        }
        sig = signing.sign(author.signing_key, signing.PURPOSE_ENVELOPE, codec.encode(doc))
        raws.append(codec.encode(doc | {"s": sig}))
    return raws


def bad_signature(env: Envelope) -> bytes:
    """``env`` with one bit of its signature flipped (everything else intact)."""
    doc = codec.decode(env.raw)
    assert isinstance(doc, dict)
    sig = bytearray(doc["s"])
    sig[7] ^= 0x01
    return codec.encode(doc | {"s": bytes(sig)})


def address(doc: dict[str, str]) -> PeerAddress:
    return PeerAddress(bytes.fromhex(doc["key"]), (doc["address"],), bytes.fromhex(doc["tls"]))


@dataclass
class Guest:
    """One hostile identity and the client it speaks with."""

    me: Identity
    name: str
    host: str

    def record(self) -> Envelope:
        body = NodeRecord(
            name=self.name, enc=self.me.enc_public, tls=b"\x00" * 32, addresses=(f"{self.host}:{GUEST_PORT}",)
        )
        return sign_envelope(self.me, body, created=now_ms(), expires=0)

    async def pair(self, client: MeshClient, target: PeerAddress, token: str) -> None:
        record, secret, _ = read_invite(token, now_ms())
        body = record.body
        assert isinstance(body, NodeRecord)
        vouch = sign_envelope(
            self.me, Vouch(subject=record.author, enc=body.enc, name=body.name), created=now_ms(), expires=0
        )
        await client.call(target, "/mesh/v1/pair", {"s": secret, "r": self.record().raw, "v": vouch.raw})


ERRORS: Counter[str] = Counter()  # what the failed calls said, for the report


async def _push(client: MeshClient, target: PeerAddress, raws: list[bytes]) -> tuple[int, dict[str, Any]]:
    """(HTTP status, reply): a refusal is a status, not an exception."""
    try:
        return 200, await client.call(target, "/mesh/v1/push", {"e": raws})
    except TransportError as exc:
        ERRORS[f"{exc.status} {str(exc)[:120]}"] += 1
        return exc.status, {}


# -- the attacks ----------------------------------------------------------------------------


async def flood(seed: int, target: PeerAddress, seconds: float, sybil_raws: list[bytes]) -> dict[str, Any]:
    me = identity(seed, "flooder")
    raws = flood_raws(me, flood_size(seconds))
    batches = [raws[i : i + FLOOD_BATCH] for i in range(0, len(raws), FLOOD_BATCH)]
    out: dict[str, Any] = {
        "signed": len(raws),
        "sent": 0,
        "accepted": 0,
        "deferred": 0,
        "statuses": Counter(),
    }
    client = MeshClient(me, now_ms)
    await client.start()
    await _ready()
    try:
        out["started"] = time.monotonic()
        _status, reply = await _push(client, target, sybil_raws)  # relaying the sybils first
        out["sybils_relayed_accepted"] = int(reply.get("accepted", 0))
        queue = list(reversed(batches))

        async def sender() -> None:
            while queue and time.monotonic() - out["started"] < seconds:
                batch = queue.pop()
                out["sent"] += len(batch)
                status, reply = await _push(client, target, batch)
                out["statuses"][status] += 1
                out["accepted"] += int(reply.get("accepted", 0))
                out["deferred"] += len(reply.get("deferred", ()))
                if (reply.get("deferred") or status == 429) and "first_refused" not in out:
                    out["first_refused"] = time.monotonic()

        await asyncio.gather(*(sender() for _ in range(FLOOD_SENDERS)))
        out["ended"] = time.monotonic()
    finally:
        await client.close()
    out["ids"] = [envelope_id(raw).hex() for raw in raws]
    return out


async def _ready() -> None:
    """Tell the harness everything is signed, and wait for its word: the attackers
    start together, and the harness times them from then (signing thousands of
    alerts takes a loaded machine many seconds)."""
    print(json.dumps({"ready": True}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def forge(seed: int, target: PeerAddress, seconds: float) -> dict[str, Any]:
    me = identity(seed, "forger")
    out: dict[str, Any] = {"valid_ids": [], "invalid_sent": 0, "statuses": Counter()}
    client = MeshClient(me, now_ms)
    await client.start()
    await _ready()
    try:
        out["started"] = time.monotonic()
        refused_after = 0
        while time.monotonic() - out["started"] < seconds and refused_after < 3:
            good = alert(me, "Aviso con firma válida")
            bad = [
                bad_signature(alert(me, f"Aviso con firma falsificada {k}")) for k in range(FORGED_PER_PUSH)
            ]
            # Its one valid alert counts as sent whatever the answer: a push whose
            # answer timed out may have been stored (finding 15), and the checker
            # must not call a signed alert of this peer a forgery.
            out["valid_ids"].append(good.id.hex())
            status, _reply = await _push(client, target, [good.raw, *bad])
            out["statuses"][status] += 1
            if status == 200:
                out["invalid_sent"] += FORGED_PER_PUSH
            elif status == 429:
                out.setdefault("refused_at", time.monotonic())
                refused_after += 1
            await asyncio.sleep(FORGE_EVERY_S)
    finally:
        await client.close()
    return out


def sybil_traffic(seed: int) -> tuple[list[Identity], list[bytes]]:
    """30 identities vouching for each other in a ring, each with an alert."""
    crowd = [identity(seed, f"sybil{i}") for i in range(SYBILS)]
    raws = []
    for i, me in enumerate(crowd):
        other = crowd[(i + 1) % len(crowd)]
        raws.append(
            sign_envelope(
                me,
                Vouch(subject=other.sign_public, enc=other.enc_public, name=f"Sybil {i}"),
                created=now_ms(),
                expires=0,
            ).raw
        )
        raws.append(alert(me, f"Alerta de una identidad falsa {i}").raw)
    return crowd, raws


async def sybils(seed: int, targets: list[PeerAddress], seconds: float) -> dict[str, Any]:
    crowd, raws = sybil_traffic(seed)
    statuses: Counter[int] = Counter()
    clients = [MeshClient(me, now_ms) for me in crowd]
    for client in clients:
        await client.start()
    await _ready()
    try:
        for wave in range(SYBIL_WAVES):
            pushes = [
                _push(client, target, raws[2 * i : 2 * i + 2])
                for i, client in enumerate(clients)
                for target in targets
            ]
            for status, _reply in await asyncio.gather(*pushes):
                statuses[status] += 1
            if wave + 1 < SYBIL_WAVES:
                await asyncio.sleep(seconds / SYBIL_WAVES)
    finally:
        for client in clients:
            await client.close()
    return {"keys": [me.sign_public.hex() for me in crowd], "statuses": statuses}


# -- commands -------------------------------------------------------------------------------


async def pair(plan: dict[str, Any]) -> dict[str, Any]:
    """Pair ``plan["role"]`` (the flooder or the forger) with its node (the invite
    token comes from the harness, as an operator would hand it over)."""
    me = identity(plan["seed"], plan["role"])
    client = MeshClient(me, now_ms)
    await client.start()
    try:
        guest = Guest(me, f"Nodo Hostil Ficticio ({plan['role']})", plan["host"])
        await guest.pair(client, address(plan["target"]), plan["token"])
    finally:
        await client.close()
    return {"key": me.sign_public.hex()}


async def attack(plan: dict[str, Any]) -> dict[str, Any]:
    seed, seconds, role = plan["seed"], float(plan["seconds"]), plan["role"]
    if role == "flooder":
        _crowd, sybil_raws = sybil_traffic(seed)
        out = await flood(seed, address(plan["target"]), seconds, sybil_raws)
    elif role == "forger":
        out = await forge(seed, address(plan["target"]), FORGE_FOR_S)
    else:
        out = await sybils(seed, [address(t) for t in plan["everyone"]], seconds)
    return out | {"errors": dict(ERRORS.most_common(8))}


def main(argv: list[str]) -> int:
    command = {"pair": pair, "attack": attack}.get(argv[0] if argv else "")
    if command is None:
        print("usage: python -m tests.nemesis.hostile pair|attack < plan.json", file=sys.stderr)
        return 2
    if command is attack:
        # The attackers share this machine's cores with the nodes they attack; on a
        # real network they run on hosts of their own. At the lowest priority they
        # still send everything they would, as fast as the nodes take it, but their
        # own signing and handshakes no longer take the cores the nodes need to
        # defend themselves (finding 17: at normal priority the three attackers
        # used 175 % of the two cores while the honest probes were timed).
        os.nice(19)
    plan = json.loads(sys.stdin.readline())
    print(json.dumps(asyncio.run(command(plan))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
