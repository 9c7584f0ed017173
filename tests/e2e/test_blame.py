"""Blame only what a peer did (SPEC §8), and remember it across a restart.

A relay forwards what its author signed; it cannot stop an alert from expiring
in flight, cannot know the receiver's clock, and cannot know which region codes
or body types the receiver's software understands. Those refusals must be
silent. What only the relay could have caught (a bad signature, bytes that are
not an envelope) still costs it its standing, and the ban outlives a restart."""

from __future__ import annotations

from typing import Any

import pytest

from node.transport import TransportError
from protocol import Alert, Area, codec, decode
from protocol.keys import Identity
from protocol.signing import PURPOSE_ENVELOPE, sign
from tests.e2e.harness import ScriptedPeer, now_ms
from tests.e2e.test_gossip import wait_until

pytestmark = pytest.mark.slow

HOUR = 3_600_000
UNCATALOGUED = "XZ-QQQ"  # well formed (ISO 3166-2 syntax), in no pycountry release


def signed_raw(author: Identity, kind: str, body: Any, *, created: int, expires: int) -> bytes:
    """An envelope signed by hand: any type, any times, any body the codec can encode."""
    doc = {"a": author.sign_public, "b": body, "c": created, "t": kind, "v": 1, "x": expires}
    signature = sign(author.signing_key, PURPOSE_ENVELOPE, codec.encode(doc))
    return codec.encode(doc | {"s": signature})


def alert_body(headline: str, region: str = "MX-OAX") -> dict[str, Any]:
    wire = Alert(headline=headline, areas=(Area("MX"),), severity="severe").to_wire()
    return wire | {"areas": [{"region": region}]}


def refusals_a_relay_cannot_prevent(author: Identity, count: int) -> list[bytes]:
    """Validly signed by an author inside the receiver's horizon, yet refused
    for reasons that depend on time or on the receiver's version."""
    now = now_ms()
    raws = []
    for i in range(count):
        body = alert_body(f"Relayed alert {i}")
        match i % 3:
            case 0:  # expired while in flight
                raws.append(signed_raw(author, "alert", body, created=now - 2 * HOUR, expires=now - HOUR + i))
            case 1:  # from a sender whose clock runs an hour ahead
                raws.append(signed_raw(author, "alert", body, created=now + HOUR + i, expires=now + 2 * HOUR))
            case _:  # a body type from a newer version of the protocol
                petition = {"alert": bytes(32), "n": i, "signatures": 2}
                raws.append(signed_raw(author, "petition", petition, created=now + i, expires=now + HOUR))
    return raws


def _peer_row(node: Any, name: str) -> dict[str, Any]:
    peers = [p for p in node.api.get("/api/v1/status")["peers"] if p["name"] == name]
    assert len(peers) == 1, peers
    return peers[0]


def test_time_and_version_refusals_never_cost_an_honest_relay_its_standing(mesh_factory: Any) -> None:
    mesh = mesh_factory(2)
    a, b = mesh.nodes
    mesh.connect([(0, 1)])
    relay = ScriptedPeer("Nodo Relevo Honesto")
    relay.pair_with(a)
    replies = []
    for raws in _chunks(refusals_a_relay_cannot_prevent(relay.identity, 30), 3):
        replies.append(relay.push(a, raws))  # a cut-off relay would get 429 here
    assert all(r["accepted"] == 0 for r in replies), replies
    # A region code this node's catalogue does not know is still a region.
    now = now_ms()
    newer = signed_raw(
        relay.identity, "alert", alert_body("Alert for a new subdivision", UNCATALOGUED),
        created=now, expires=now + HOUR,
    )  # fmt: skip
    for _ in range(10):
        replies.append(relay.push(a, [newer]))
    assert replies[-10]["accepted"] == 1 and replies[-10]["invalid"] == 0, replies[-10]
    # The relay is in good standing and its honest alert crosses the mesh.
    assert not _peer_row(a, relay.name)["cut_off"]
    honest = relay.alert("Honest alert after forty refusals")
    assert relay.push(a, [honest.raw])["accepted"] == 1
    mesh.wait_for(honest.id.hex(), [b], timeout=20)
    mesh.wait_for(decode(newer, now=now).id.hex(), [b], timeout=20)
    rejected = a.api.get("/api/v1/status")["rejected"]
    for code in ("expired", "from-the-future", "unknown-type"):
        assert rejected.get(code, 0) >= 10, rejected  # counted, never penalized


@pytest.mark.smoke  # in the fast lane
def test_bad_signatures_still_cut_the_relay_off_even_on_expired_envelopes(mesh_factory: Any) -> None:
    """An expired or newer-type envelope with a forged signature proves the relay
    did not verify what it relayed: that is blamed."""
    mesh = mesh_factory(1)
    (a,) = mesh.nodes
    forger = ScriptedPeer("Nodo Falsificador")
    forger.pair_with(a)
    statuses = _forge_until_cut_off(forger, a)
    assert 429 in statuses, statuses
    first = statuses.index(429)  # −10 each from 100: the 10th or (time heals a little) 11th does it
    assert 10 <= first <= 11 and set(statuses[first:]) == {429}, statuses
    assert _peer_row(a, forger.name)["cut_off"]
    assert a.api.get("/api/v1/status")["rejected"].get("bad-signature", 0) >= 10


def test_a_cut_off_peer_stays_cut_off_after_the_node_restarts(mesh_factory: Any) -> None:
    mesh = mesh_factory(1)
    (a,) = mesh.nodes
    forger = ScriptedPeer("Nodo Falsificador")
    forger.pair_with(a)
    honest = ScriptedPeer("Nodo Honesto")
    honest.pair_with(a)
    assert 429 in _forge_until_cut_off(forger, a)
    assert _peer_row(a, forger.name)["cut_off"]
    a.stop()
    a.start()
    with pytest.raises(TransportError) as refused:
        forger.push(a, [forger.alert("Let me back in").raw])
    assert refused.value.status == 429, refused.value
    row = _peer_row(a, forger.name)
    assert row["cut_off"] and "refused until" in row["cut_off"], row
    assert not _peer_row(a, honest.name)["cut_off"]
    for command in (("status",), ("peer", "list")):
        shown = [line for line in a.amparo(*command).stdout.splitlines() if forger.name in line]
        assert len(shown) == 1 and "CUT OFF" in shown[0], (command, shown)
    wait_until(
        lambda: honest.push(a, [honest.alert("Honest peer after the restart").raw])["accepted"] == 1,
        timeout=20,
        what="the honest peer to be heard after the restart",
    )


def _forge_until_cut_off(forger: ScriptedPeer, node: Any) -> list[int]:
    now = now_ms()
    statuses = []
    for i in range(30):
        if i % 2:
            raw = signed_raw(forger.identity, "alert", alert_body(f"Forged {i}"), created=now - 2 * HOUR,
                             expires=now - HOUR + i)  # fmt: skip
        else:
            raw = signed_raw(forger.identity, "petition", {"n": i}, created=now, expires=now + HOUR)
        forged = bytearray(raw)
        forged[raw.index(b"\xa1s\xc4\x40") + 4 + 10] ^= 0x01  # one bit of the signature
        try:
            forger.push(node, [bytes(forged)])
            statuses.append(200)
        except TransportError as exc:
            statuses.append(exc.status or 0)
    return statuses


def _chunks(raws: list[bytes], size: int) -> list[list[bytes]]:
    return [raws[i : i + size] for i in range(0, len(raws), size)]
