"""Hostile traffic against a real node: forged, replayed, oversized, malformed and
stranger requests are refused; the node stays up and honest alerts still flow."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from node import provision
from node.devmesh import free_port
from node.transport import MAX_RESPONSE_BYTES, MeshClient, PeerAddress, TransportError
from tests.e2e.harness import ScriptedPeer, frame, now_ms
from tests.e2e.listeners import ThreadedListener
from tests.e2e.test_gossip import wait_until

pytestmark = pytest.mark.slow


def test_garbage_oversized_unsigned_replayed_and_wrong_cert_are_refused(mesh_factory: Any) -> None:
    mesh = mesh_factory(2)
    a, b = mesh.nodes
    mesh.connect([(0, 1)])
    peer = ScriptedPeer()
    peer.pair_with(a)

    honest = peer.alert("Honest alert before the attack")
    status, _, _ = peer.raw_post(a, "/mesh/v1/push", frame([honest.raw]))
    assert status == 200

    # Unsigned, garbage signature header, garbage body.
    assert peer.raw_post(a, "/mesh/v1/push", frame([honest.raw]), signed=False)[0] == 401
    assert peer.raw_post(a, "/mesh/v1/push", b"\x00garbage", header="v1.zz.1.2.3")[0] == 401
    assert peer.raw_post(a, "/mesh/v1/push", os.urandom(2000))[0] == 400
    # Oversized: refused by the body limit before anything is parsed.
    assert peer.raw_post(a, "/mesh/v1/push", b"\x00" * (200 * 1024))[0] == 413
    # Replayed: the very same signed request twice.
    body = frame([peer.alert("Replay me").raw])
    status, _, header = peer.raw_post(a, "/mesh/v1/push", body)
    assert status == 200
    assert peer.raw_post(a, "/mesh/v1/push", body, header=header)[0] == 409
    # A request signed for another receiver (B) is refused by A.
    b_key = peer.address_of(b).key
    from protocol.request import sign_request

    misdirected = sign_request(
        peer.identity.signing_key,
        method="POST",
        path="/mesh/v1/push",
        body=body,
        receiver=b_key,
        now=now_ms(),
        nonce=os.urandom(16),
    )
    assert peer.raw_post(a, "/mesh/v1/push", body, header=misdirected)[0] == 401
    # Wrong pinned certificate: the client refuses before sending anything.
    with pytest.raises(aiohttp.ServerFingerprintMismatch):
        peer.raw_post(a, "/mesh/v1/push", body, fingerprint=b"\x01" * 32)
    # Plain HTTP to the mesh port gets no HTTP answer at all.
    with pytest.raises(aiohttp.ClientError):
        asyncio.run(_plain_http(a.mesh_port))

    # Forged envelopes inside a correctly signed push: rejected one by one.
    forged = bytearray(peer.alert("Forged").raw)
    forged[-5] ^= 0x01
    reply = peer.push(a, [bytes(forged), b"\x93\x01\x02", peer.alert("Honest after").raw])
    assert reply["invalid"] == 2 and reply["accepted"] == 1

    # The node is still up and honest traffic still flows to its peer.
    alert_id = a.send(headline="Still working")
    mesh.wait_for(alert_id, [b], timeout=20)
    assert honest.id.hex() in b.alert_ids()


async def _plain_http(port: int) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        async with session.post(f"http://127.0.0.1:{port}/mesh/v1/push", data=b"x") as resp:
            await resp.read()


def test_strangers_cannot_inject(mesh_factory: Any) -> None:
    mesh = mesh_factory(2)
    a, b = mesh.nodes
    mesh.connect([(0, 1)])
    stranger = ScriptedPeer("Desconocido")
    # Not a peer: refused outright.
    status, text, _ = stranger.raw_post(a, "/mesh/v1/push", frame([stranger.alert("Injected").raw]))
    assert status == 403, text
    # A peer relaying an alert authored outside the trust horizon: not stored, not relayed.
    peer = ScriptedPeer()
    peer.pair_with(a)
    outsider = stranger.alert("Outsider's alert")
    reply = peer.push(a, [outsider.raw])
    assert reply["accepted"] == 0
    inside = peer.alert("Peer's own alert")
    peer.push(a, [inside.raw])
    mesh.wait_for(inside.id.hex(), [b], timeout=20)
    assert outsider.id.hex() not in a.alert_ids() | b.alert_ids()


def test_compromised_author_is_dropped_everywhere(mesh_factory: Any) -> None:
    mesh = mesh_factory(2)
    a, b = mesh.nodes
    mesh.connect([(0, 1)])
    peer = ScriptedPeer()
    peer.pair_with(a)
    before = peer.alert("Before compromise")
    peer.push(a, [before.raw])
    mesh.wait_for(before.id.hex(), [b], timeout=20)
    peer.push(a, [peer.compromise().raw])
    after = peer.alert("After compromise")
    wait_until(
        lambda: _pushed_and_refused(peer, a, after.raw), timeout=20, what="A to refuse the compromised key"
    )
    # Give gossip time to (not) carry it, then check nowhere stores it.
    later = a.send(headline="Marker after the compromise")
    mesh.wait_for(later, [b], timeout=20)
    assert after.id.hex() not in a.alert_ids() | b.alert_ids()


def _pushed_and_refused(peer: ScriptedPeer, node: Any, raw: bytes) -> bool:
    try:
        return peer.push(node, [raw])["accepted"] == 0
    except TransportError:
        return True  # refused at the door is refused too


def test_the_mesh_client_pins_a_live_nodes_certificate(mesh_factory: Any) -> None:
    """The node's own MeshClient against a running node: a wrong pin is refused
    at the TLS layer and named as such; the right pin gets an answer."""
    mesh = mesh_factory(1)
    (node,) = mesh.nodes
    peer = ScriptedPeer()
    peer.pair_with(node)
    right = peer.address_of(node)
    wrong = PeerAddress(right.key, right.addresses, bytes(b ^ 0xFF for b in right.tls_fp))

    async def go(address: PeerAddress) -> dict[str, Any]:
        client = MeshClient(peer.identity, now_ms)
        await client.start()
        try:
            return await client.call(address, "/mesh/v1/push", {"e": []})
        finally:
            await client.close()

    with pytest.raises(TransportError, match="does not match the pinned fingerprint"):
        asyncio.run(go(wrong))
    assert asyncio.run(go(right))["accepted"] == 0


def _handshake(port: int, maximum: ssl.TLSVersion) -> str:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # pinning is not the point here: the version is
    ctx.maximum_version = maximum
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as conn:
            return str(conn.version())


@pytest.mark.smoke  # in the fast lane
def test_the_mesh_listener_refuses_tls_1_2(mesh_factory: Any) -> None:
    mesh = mesh_factory(1)
    (node,) = mesh.nodes
    with pytest.raises(ssl.SSLError):
        _handshake(node.mesh_port, ssl.TLSVersion.TLSv1_2)
    assert _handshake(node.mesh_port, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"  # the control
    assert node.api.get("/healthz")["ok"]


class HostileListener(ThreadedListener):
    """A fake peer's HTTPS listener: every answer is over the response cap or never comes."""

    def __init__(self, home: Path) -> None:
        home.mkdir()
        provision.make_certificate(home, "Nodo Hostil Ficticio")
        fingerprint = provision.tls_fingerprint(home)
        assert fingerprint is not None
        self.fingerprint = fingerprint
        self.seen: list[str] = []
        super().__init__(home, free_port())

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        return app

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(request.path)
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        if len(self.seen) % 2:  # odd requests: more bytes than the cap, without a Content-Length
            chunk = b"\x00" * (1024 * 1024)
            for _ in range(MAX_RESPONSE_BYTES // len(chunk) + 2):
                await resp.write(chunk)
        else:  # even requests: hang
            await asyncio.sleep(120)
        return resp


def test_a_node_whose_peer_floods_or_hangs_its_answers_stays_up(mesh_factory: Any, tmp_path: Path) -> None:
    mesh = mesh_factory(2)
    a, b = mesh.nodes
    mesh.connect([(0, 1)])
    with HostileListener(tmp_path / "hostil") as listener:
        hostile = ScriptedPeer(
            "Nodo Hostil Ficticio", addresses=(f"127.0.0.1:{listener.port}",), tls_fp=listener.fingerprint
        )
        hostile.pair_with(a)
        sent = [a.send(headline=f"Alert {i} while a peer misbehaves") for i in range(3)]
        wait_until(lambda: len(listener.seen) >= 2, timeout=30, what="A to call the hostile peer twice")
        mesh.wait_for(sent[-1], [b], timeout=20)  # the honest peer is not held up
        assert set(sent) <= b.alert_ids()
        assert a.running and a.api.get("/healthz")["ok"]
        later = a.send(headline="After the hostile answers")
        mesh.wait_for(later, [b], timeout=20)
    log = (a.home / "node.log").read_text()
    assert "larger than the cap" in log  # A read the flood up to its cap and gave up
    assert "Traceback" not in log


def test_flooding_peer_is_cut_off_while_honest_alerts_flow(mesh_factory: Any) -> None:
    mesh = mesh_factory(3)
    a, _b, c = mesh.nodes
    mesh.connect([(0, 1), (1, 2)])
    flooder = ScriptedPeer("Nodo Inundador")
    flooder.pair_with(a)
    valid = flooder.alert("Looks fine").raw
    statuses = []
    for i in range(30):
        junk = bytearray(valid)
        junk[40 + i] ^= 0xFF  # a different forgery each time
        try:
            flooder.push(a, [bytes(junk)] * 5)
            statuses.append(200)
        except TransportError as exc:
            statuses.append(exc.status)
    assert 429 in statuses, statuses  # refused at the door once cut off
    status = a.api.get("/api/v1/status")
    cut = [p for p in status["peers"] if p["name"] == flooder.name]
    assert cut and cut[0]["cut_off"], status["peers"]
    forged = sum(
        v for k, v in status["rejected"].items() if k in ("bad-signature", "malformed", "not-canonical")
    )
    assert forged >= 10, status["rejected"]
    # Meanwhile, honest alerts still cross the mesh in both directions.
    from_c = c.send(headline="Honest alert from the far end")
    mesh.wait_for(from_c, [a], timeout=20)
    from_a = a.send(headline="Honest alert from the flooded node")
    mesh.wait_for(from_a, [c], timeout=20)


def test_amparo_keys_compromised_is_honoured_everywhere(mesh_factory: Any) -> None:
    from node.config import KEY_FILE
    from protocol.keys import open_key_file

    mesh = mesh_factory(3)
    a, b, c = mesh.nodes
    mesh.connect([(0, 1), (1, 2)])
    earlier = a.send(headline="Before the seizure")
    mesh.wait_for(earlier, [c], timeout=20)
    a.amparo("keys", "compromised", "--yes", "--reason", "laptop seized")
    # A itself refuses to author anything new.
    refused = a.amparo(
        "alert", "send", "--region", "MX", "--severity", "minor", "--headline", "x", check=False
    )
    assert refused.returncode != 0 and "compromised" in refused.stderr
    # Whoever holds the stolen key cannot get new content accepted at C.
    stolen = open_key_file((a.home / KEY_FILE).read_bytes(), None)
    thief = ScriptedPeer()
    thief.pair_with(c)
    forged = thief.alert("Fake alert with the seized key", author=stolen)
    wait_until(lambda: _pushed_and_refused(thief, c, forged.raw), timeout=20, what="C to refuse A's key")
    assert forged.id.hex() not in c.alert_ids() | b.alert_ids()
    assert earlier in c.alert_ids()  # what A published before stays


def test_pushes_reuse_one_pinned_tls_connection(mesh_factory: Any) -> None:
    """Keep-alive works with certificate pinning: ten pushes, one TLS handshake."""
    mesh = mesh_factory(1)
    (node,) = mesh.nodes
    peer = ScriptedPeer()
    peer.pair_with(node)
    opened: list[str] = []

    async def on_create(session: Any, context: Any, params: Any) -> None:
        opened.append("tcp")

    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(on_create)

    async def go() -> list[dict[str, Any]]:
        client = MeshClient(peer.identity, now_ms, trace_configs=[trace])
        await client.start()
        try:
            return [await client.call(peer.address_of(node), "/mesh/v1/push", {"e": []}) for _ in range(10)]
        finally:
            await client.close()

    replies = asyncio.run(go())
    assert all(r["accepted"] == 0 for r in replies)
    assert opened == ["tcp"]
