"""The mesh client after a live key rotation: it signs with the new key, and a
peer that does not know the new key yet (it answers 403, as the mesh listener
does to a stranger) gets the same call once more, signed with the previous key.
Any other refusal is not retried, and without a rotation nothing is retried."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from node.transport import MeshClient, PeerAddress, TransportError
from protocol import framing
from protocol import reply as signed_reply
from protocol import request as signed_request
from protocol.keys import Identity
from tests.node.tls_listener import tls_listener

OLD = Identity.from_random(bytes(range(64)))
NEW = Identity(sign_seed=bytes(range(100, 132)), enc_secret=OLD.enc_secret)
PEER = Identity.from_random(bytes(range(64, 128)))


class Peer:
    """Knows the keys in ``known``; records which key signed each request."""

    def __init__(self) -> None:
        self.known: set[bytes] = {OLD.sign_public}
        self.senders: list[bytes] = []
        self.status_for_strangers = 403
        self.address: PeerAddress | None = None

    async def push(self, request: web.Request) -> web.Response:
        auth, _ = signed_request.parse_header(request.headers.get(signed_request.HEADER))
        self.senders.append(auth.sender)
        if auth.sender not in self.known:
            refusal = web.Response(
                status=self.status_for_strangers, text="request refused: not a peer of this node"
            )
            return _signed(request, refusal, auth)
        answer = web.Response(body=framing.pack({"accepted": 1}), content_type="application/x-msgpack")
        return _signed(request, answer, auth)


def _signed(request: web.Request, response: web.Response, auth: signed_request.RequestAuth) -> web.Response:
    """Sign the answer as a real mesh listener does (docs/protocol.md §12.5)."""
    assert isinstance(response.body, bytes)
    response.headers[signed_reply.HEADER] = signed_reply.sign_reply(
        PEER.signing_key,
        status=response.status,
        path=request.path,
        body=response.body,
        nonce=auth.nonce,
        requester=auth.sender,
    )
    return response


@pytest.fixture
async def peer(tmp_path: Path) -> AsyncIterator[Peer]:
    found = Peer()
    app = web.Application()
    app.router.add_post("/mesh/v1/push", found.push)
    async with tls_listener(app, tmp_path, "Nodo Ficticio") as (port, fingerprint):
        found.address = PeerAddress(PEER.sign_public, (f"127.0.0.1:{port}",), fingerprint)
        yield found


@pytest.fixture
async def client() -> AsyncIterator[MeshClient]:
    mesh_client = MeshClient(OLD, lambda: int(time.time() * 1000))
    await mesh_client.start()
    try:
        yield mesh_client
    finally:
        await mesh_client.close()


async def test_a_peer_that_has_not_followed_is_reached_with_the_previous_key(
    peer: Peer, client: MeshClient
) -> None:
    assert peer.address is not None
    client.use_identity(NEW)
    assert await client.call(peer.address, "/mesh/v1/push", {"e": []}) == {"accepted": 1}
    assert peer.senders == [NEW.sign_public, OLD.sign_public]
    peer.known = {NEW.sign_public}  # the peer received the rotation record and followed
    peer.senders.clear()
    assert await client.call(peer.address, "/mesh/v1/push", {"e": []}) == {"accepted": 1}
    assert peer.senders == [NEW.sign_public]


async def test_only_a_403_after_a_rotation_is_retried(peer: Peer, client: MeshClient) -> None:
    assert peer.address is not None
    peer.known = set()
    with pytest.raises(TransportError):
        await client.call(peer.address, "/mesh/v1/push", {"e": []})
    assert peer.senders == [OLD.sign_public]  # no rotation: no second try
    client.use_identity(NEW)
    peer.senders.clear()
    peer.status_for_strangers = 429
    with pytest.raises(TransportError, match="429"):
        await client.call(peer.address, "/mesh/v1/push", {"e": []})
    assert peer.senders == [NEW.sign_public]
