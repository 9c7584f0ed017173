"""A scripted 'peer' for hostile-traffic tests: it holds a real identity, pairs with a
real node through the invite flow, then sends whatever bytes a test wants."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import aiohttp

from node.devmesh import LocalNode
from node.pairing import read_invite
from node.transport import MeshClient, PeerAddress
from protocol import Alert, Area, Envelope, Identity, NodeRecord, Revoke, Vouch, framing, sign_envelope
from protocol import reply as signed_reply
from protocol.request import HEADER, parse_header, sign_request

# Test receivers listen on 127.0.0.1: nodes that deliver to them opt in, as an
# operator would, instead of the outbound policy being weakened for tests.
LOOPBACK_TARGETS: dict[str, Any] = {"allow_private_targets": ["127.0.0.0/8"]}


def now_ms() -> int:
    return int(time.time() * 1000)


class ScriptedPeer:
    def __init__(
        self,
        name: str = "Nodo Hostil de Prueba",
        addresses: tuple[str, ...] = ("127.0.0.1:9",),
        tls_fp: bytes = b"\x00" * 32,
    ) -> None:
        """``addresses`` and ``tls_fp`` go into the node record the real node
        dials back: point them at a fake server to play a hostile listener."""
        self.identity = Identity.from_random(os.urandom(64))
        self.name = name
        self.addresses = addresses
        self.tls_fp = tls_fp

    @property
    def key(self) -> bytes:
        return self.identity.sign_public

    def record(self) -> Envelope:
        body = NodeRecord(
            name=self.name, enc=self.identity.enc_public, tls=self.tls_fp, addresses=self.addresses
        )
        return sign_envelope(self.identity, body, created=now_ms(), expires=0)

    def alert(self, headline: str, author: Identity | None = None, **kw: Any) -> Envelope:
        body = Alert(headline=headline, areas=(Area("MX-OAX"),), severity="severe", **kw)
        now = now_ms()
        return sign_envelope(author or self.identity, body, created=now, expires=now + 3600_000)

    def vouch_for(self, other: Identity, name: str = "Autora de Prueba") -> Envelope:
        """Bring ``other`` inside the horizon of this peer's peers (depth 2)."""
        body = Vouch(subject=other.sign_public, enc=other.enc_public, name=name)
        return sign_envelope(self.identity, body, created=now_ms(), expires=0)

    def compromise(self) -> Envelope:
        return sign_envelope(
            self.identity, Revoke(subject=self.key, compromised=True), created=now_ms(), expires=0
        )

    def address_of(self, node: LocalNode) -> PeerAddress:
        info = node.api.get("/api/v1/id")
        return PeerAddress(
            bytes.fromhex(info["key"]),
            (f"127.0.0.1:{node.mesh_port}",),
            bytes.fromhex(info["tls_fingerprint"]),
        )

    def pair_with(self, node: LocalNode) -> None:
        token = node.api.post("/api/v1/peers/invite", {})["token"]
        record, secret, _ = read_invite(token, now_ms())
        body = record.body
        assert isinstance(body, NodeRecord)
        vouch = sign_envelope(
            self.identity,
            Vouch(subject=record.author, enc=body.enc, name=body.name),
            created=now_ms(),
            expires=0,
        )
        self.call(node, "/mesh/v1/pair", {"s": secret, "r": self.record().raw, "v": vouch.raw})

    def call(self, node: LocalNode, path: str, frame: dict[str, Any]) -> dict[str, Any]:
        async def go() -> dict[str, Any]:
            client = MeshClient(self.identity, now_ms)
            await client.start()
            try:
                return await client.call(self.address_of(node), path, frame)
            finally:
                await client.close()

        return asyncio.run(go())

    def push(self, node: LocalNode, raws: list[bytes]) -> dict[str, Any]:
        return self.call(node, "/mesh/v1/push", {"e": raws})

    def raw_post(
        self,
        node: LocalNode,
        path: str,
        body: bytes,
        *,
        signed: bool = True,
        header: str | None = None,
        fingerprint: bytes | None = None,
    ) -> tuple[int, str, str]:
        """POST arbitrary bytes; returns (status, text, the auth header used)."""
        address = self.address_of(node)
        if signed and header is None:
            header = sign_request(
                self.identity.signing_key,
                method="POST",
                path=path,
                body=body,
                receiver=address.key,
                now=now_ms(),
                nonce=os.urandom(16),
            )

        async def go() -> tuple[int, str]:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
                headers = {HEADER: header} if header else {}
                async with session.post(
                    f"https://127.0.0.1:{node.mesh_port}{path}",
                    data=body,
                    headers=headers,
                    ssl=aiohttp.Fingerprint(fingerprint or address.tls_fp),
                ) as resp:
                    return resp.status, (await resp.read())[:300].decode("utf-8", "replace")

        status, text = asyncio.run(go())
        return status, text, header or ""


def frame(raws: list[bytes]) -> bytes:
    return framing.pack({"e": raws})


def sign_answer(
    identity: Identity, path: str, request_header: str | None, status: int, body: bytes
) -> dict[str, str]:
    """The ``Amparo-Reply`` header a real mesh listener with ``identity`` puts on
    its answer (docs/protocol.md §12.5): fake peers need it, or the node treats
    their answers as none."""
    auth, _ = parse_header(request_header)
    value = signed_reply.sign_reply(
        identity.signing_key, status=status, path=path, body=body, nonce=auth.nonce, requester=auth.sender
    )
    return {signed_reply.HEADER: value}
