"""The node's mesh client against a hostile fake peer: a local HTTPS server with
its own self-signed certificate (pinned, as a real peer's would be) that answers
with too many bytes, hangs, or trickles. Every case ends in ``TransportError``
within bounded time; ``.onion`` addresses are never dialled without a proxy."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from node import transport
from node.transport import MAX_RESPONSE_BYTES, MeshClient, PeerAddress, TransportError
from protocol import framing
from protocol.keys import Identity
from protocol.reply import HEADER as REPLY_HEADER
from protocol.reply import sign_reply
from protocol.request import HEADER, parse_header
from tests.node.tls_listener import tls_listener

PEER = Identity.from_random(bytes(range(100, 164)))  # the fake peer's identity
ROTATED = Identity.from_random(bytes(range(164, 228)))  # a key it rotated to
STRANGER = Identity.from_random(bytes(range(1, 65)))
OVER_CAP = MAX_RESPONSE_BYTES + 1
FAST = aiohttp.ClientTimeout(total=1.5, connect=1, sock_read=0.5)


class FakePeer:
    """What the hostile server saw, and how to reach it."""

    def __init__(self, port: int, fingerprint: bytes) -> None:
        self.port = port
        self.fingerprint = fingerprint
        self.requests: list[str] = []

    def address(
        self, fingerprint: bytes | None = None, family: frozenset[bytes] = frozenset()
    ) -> PeerAddress:
        return PeerAddress(
            PEER.sign_public, (f"127.0.0.1:{self.port}",), fingerprint or self.fingerprint, family
        )


def _signed(request: web.Request, body: bytes, *, signer: Identity = PEER, **over: Any) -> web.Response:
    """An answer signed as a real node signs it; ``over`` alters what is signed."""
    auth, _ = parse_header(request.headers.get(HEADER))
    fields: dict[str, Any] = {
        "status": 200,
        "path": request.path,
        "body": body,
        "nonce": auth.nonce,
        "requester": auth.sender,
    } | over
    header = sign_reply(signer.signing_key, **fields)
    return web.Response(body=body, content_type="application/x-msgpack", headers={REPLY_HEADER: header})


def _routes(peer_log: list[str]) -> web.Application:
    async def ok(request: web.Request) -> web.Response:
        peer_log.append(request.path)
        return _signed(request, framing.pack({"accepted": 0}))

    async def unsigned(request: web.Request) -> web.Response:
        peer_log.append(request.path)
        return web.Response(body=framing.pack({"accepted": 0}), content_type="application/x-msgpack")

    async def other_key(request: web.Request) -> web.Response:
        peer_log.append(request.path)
        return _signed(request, framing.pack({"accepted": 0}), signer=STRANGER)

    async def rotated(request: web.Request) -> web.Response:
        peer_log.append(request.path)
        return _signed(request, framing.pack({"accepted": 0}), signer=ROTATED)

    async def other_nonce(request: web.Request) -> web.Response:
        peer_log.append(request.path)
        return _signed(request, framing.pack({"accepted": 0}), nonce=bytes(16))

    async def other_body(request: web.Request) -> web.Response:
        peer_log.append(request.path)
        response = _signed(request, framing.pack({"accepted": 0}))
        response.body = framing.pack({"accepted": 1})
        return response

    async def refusal(request: web.Request) -> web.Response:
        peer_log.append(request.path)
        text = b"request refused: request budget spent"
        response = _signed(request, text, status=429)
        response.set_status(429)
        return response

    async def not_a_frame(request: web.Request) -> web.Response:
        peer_log.append(request.path)
        return _signed(request, framing.pack([1, 2, 3]))  # signed, but a list, not a frame

    async def big(request: web.Request) -> web.Response:
        peer_log.append(request.path)
        return web.Response(body=b"\x00" * OVER_CAP)  # honest Content-Length, over the cap

    async def big_chunked(request: web.Request) -> web.StreamResponse:
        peer_log.append(request.path)
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()  # no Content-Length: only counting the bytes read catches it
        await resp.prepare(request)
        chunk = b"\x00" * (1024 * 1024)
        for _ in range(OVER_CAP // len(chunk) + 2):
            await resp.write(chunk)
        await resp.write_eof()
        return resp

    async def hang(request: web.Request) -> web.Response:
        peer_log.append(request.path)
        await asyncio.sleep(60)  # never answers
        return web.Response()

    async def slow(request: web.Request) -> web.Response:
        peer_log.append(request.path)
        await asyncio.sleep(0.3)  # within FAST's timeouts (read 0.5 s), for one call at a time
        return _signed(request, framing.pack({"accepted": 0}))

    async def drip(request: web.Request) -> web.StreamResponse:
        peer_log.append(request.path)
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for _ in range(600):  # a byte every 0.1 s: the read timeout never fires, the total one must
            await resp.write(b"\x00")
            await asyncio.sleep(0.1)
        return resp

    app = web.Application()
    for path, handler in {
        "/mesh/v1/push": ok,
        "/unsigned": unsigned,
        "/other-key": other_key,
        "/rotated": rotated,
        "/other-nonce": other_nonce,
        "/other-body": other_body,
        "/refusal": refusal,
        "/not-a-frame": not_a_frame,
        "/big": big,
        "/big-chunked": big_chunked,
        "/hang": hang,
        "/drip": drip,
        "/slow": slow,
    }.items():
        app.router.add_post(path, handler)
    return app


@pytest.fixture
async def fake_peer(tmp_path: Path) -> AsyncIterator[FakePeer]:
    requests: list[str] = []
    async with tls_listener(_routes(requests), tmp_path, "Nodo Hostil Ficticio") as (port, fingerprint):
        peer = FakePeer(port, fingerprint)
        peer.requests = requests
        yield peer


@pytest.fixture
async def client(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[MeshClient]:
    monkeypatch.setattr(transport, "TIMEOUT", FAST)  # read at start(): seconds, not the production 20 s
    mesh_client = MeshClient(Identity.from_random(bytes(range(64))), lambda: int(time.time() * 1000))
    await mesh_client.start()
    try:
        yield mesh_client
    finally:
        await mesh_client.close()


async def test_the_fake_peer_answers_an_honest_call(fake_peer: FakePeer, client: MeshClient) -> None:
    """The control: the failures below are the peer's doing, not the fixture's."""
    assert await client.call(fake_peer.address(), "/mesh/v1/push", {"e": []}) == {"accepted": 0}


async def test_calls_queued_behind_slow_answers_wait_their_turn_without_timing_out(
    fake_peer: FakePeer, client: MeshClient
) -> None:
    """Twelve calls at once to a peer that takes 0.3 s per answer, over its two
    connections: the last ones wait ~1.5 s for a turn, longer than the connect
    timeout (1 s here). aiohttp counts a wait for a pooled connection against that
    timeout, so they failed as "Connection timeout" (and the link backed off); the
    wait for a turn is the client's own, and every call is answered."""
    calls = [client.call(fake_peer.address(), "/slow", {}) for _ in range(12)]
    assert await asyncio.gather(*calls) == [{"accepted": 0}] * 12
    assert fake_peer.requests.count("/slow") == 12


async def test_a_wrong_pinned_certificate_is_refused_before_sending(
    fake_peer: FakePeer, client: MeshClient
) -> None:
    with pytest.raises(TransportError, match="pinned fingerprint"):
        await client.call(fake_peer.address(b"\x01" * 32), "/mesh/v1/push", {"e": []})
    assert fake_peer.requests == []


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
async def test_a_response_over_the_cap_is_refused(fake_peer: FakePeer, client: MeshClient, path: str) -> None:
    start = time.monotonic()
    with pytest.raises(TransportError, match="larger than the cap") as raised:
        await client.call(fake_peer.address(), path, {"e": []})
    assert raised.value.status == 502
    assert time.monotonic() - start < 5
    assert fake_peer.requests == [path]


@pytest.mark.parametrize("path", ["/hang", "/drip"])
async def test_a_peer_that_hangs_or_trickles_times_out(
    fake_peer: FakePeer, client: MeshClient, path: str
) -> None:
    start = time.monotonic()
    with pytest.raises(TransportError, match="Timeout") as raised:
        await client.call(fake_peer.address(), path, {"e": []})
    elapsed = time.monotonic() - start
    assert raised.value.status == 0  # no answer: the next address would be tried
    assert elapsed < FAST.total + 2, elapsed  # type: ignore[operator]
    # The client is still usable afterwards.
    assert await client.call(fake_peer.address(), "/mesh/v1/push", {"e": []}) == {"accepted": 0}


async def test_onion_addresses_are_not_dialled_without_a_proxy(
    fake_peer: FakePeer, client: MeshClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_up: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def recording_getaddrinfo(host: Any, *args: Any, **kw: Any) -> Any:
        looked_up.append(str(host))
        return real_getaddrinfo(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", recording_getaddrinfo)
    onion = "amparoficticioxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.onion:7170"
    only_onion = PeerAddress(PEER.sign_public, (onion,), fake_peer.fingerprint)
    with pytest.raises(TransportError, match=r"\.onion address needs socks_proxy") as raised:
        await client.call(only_onion, "/mesh/v1/push", {"e": []})
    assert raised.value.status == 0
    # Skipped, not fatal: the next address in the record is used.
    both = PeerAddress(
        PEER.sign_public, ("Other.ONION.:7170", onion, f"127.0.0.1:{fake_peer.port}"), fake_peer.fingerprint
    )
    assert await client.call(both, "/mesh/v1/push", {"e": []}) == {"accepted": 0}
    assert not [h for h in looked_up if "onion" in h.lower()], looked_up


@pytest.mark.parametrize(
    ("address", "onion"),
    [
        ("abc.onion:7170", True),
        ("ABC.Onion.:80", True),
        ("[abc.onion]:80", True),
        ("abc.onion", True),
        ("127.0.0.1:7170", False),
        ("onion.example.org:7170", False),
        ("[::1]:7170", False),
    ],
)
def test_is_onion(address: str, onion: bool) -> None:
    assert transport.is_onion(address) is onion


@pytest.mark.parametrize("path", ["/unsigned", "/other-key", "/other-nonce", "/other-body"])
async def test_a_reply_not_signed_by_the_peer_for_this_request_is_no_answer(
    fake_peer: FakePeer, client: MeshClient, path: str
) -> None:
    """What a listener holding only a copy of the TLS key can send: a 200 with no
    signature, or one by another key, for another request, or over other bytes."""
    with pytest.raises(TransportError, match="reply signature") as raised:
        await client.call(fake_peer.address(), path, {"e": []})
    assert raised.value.status == 0  # as if unreachable: the next address is tried, nothing delivered


async def test_a_key_of_the_peers_rotation_family_may_sign(fake_peer: FakePeer, client: MeshClient) -> None:
    with pytest.raises(TransportError, match="not the peer's"):
        await client.call(fake_peer.address(), "/rotated", {"e": []})
    family = frozenset({ROTATED.sign_public})
    assert await client.call(fake_peer.address(family=family), "/rotated", {"e": []}) == {"accepted": 0}


async def test_a_signed_refusal_keeps_its_status(fake_peer: FakePeer, client: MeshClient) -> None:
    with pytest.raises(TransportError, match="budget spent") as raised:
        await client.call(fake_peer.address(), "/refusal", {"e": []})
    assert raised.value.status == 429


@pytest.mark.parametrize(
    ("path", "status"),
    [("/refusal", 429), ("/unsigned", 0), ("/other-key", 0), ("/not-a-frame", 502), ("/big", 502)],
)
async def test_what_the_peer_got_wrong_is_the_remote_sides_failure(
    fake_peer: FakePeer, client: MeshClient, path: str, status: int
) -> None:
    with pytest.raises(TransportError) as raised:
        await client.call(fake_peer.address(), path, {"e": []})
    assert (raised.value.side, raised.value.status) == ("remote", status)


async def test_a_wrong_pin_or_no_answer_is_the_remote_sides_failure(
    fake_peer: FakePeer, client: MeshClient
) -> None:
    with pytest.raises(TransportError, match="pinned fingerprint") as raised:
        await client.call(fake_peer.address(b"\x01" * 32), "/mesh/v1/push", {"e": []})
    assert raised.value.side == "remote"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    nobody = PeerAddress(PEER.sign_public, (f"127.0.0.1:{closed}",), fake_peer.fingerprint)
    with pytest.raises(TransportError) as raised:
        await client.call(nobody, "/mesh/v1/push", {"e": []})
    assert raised.value.side == "remote"


async def test_what_this_node_cannot_do_is_the_local_sides_failure(
    fake_peer: FakePeer, client: MeshClient
) -> None:
    cases = [
        (PeerAddress(PEER.sign_public, (), fake_peer.fingerprint), {"e": []}, "no address"),
        (PeerAddress(PEER.sign_public, ("abc.onion:7170",), fake_peer.fingerprint), {"e": []}, "socks_proxy"),
        (fake_peer.address(), {"e": [object()]}, "request not sent"),  # an encoding bug here
    ]
    for address, frame, words in cases:
        with pytest.raises(TransportError, match=words) as raised:
            await client.call(address, "/mesh/v1/push", frame)
        assert (raised.value.side, raised.value.status) == ("local", 0)
    assert fake_peer.requests == []  # nothing reached the peer


async def test_a_proxy_that_does_not_answer_is_the_local_sides_failure(fake_peer: FakePeer) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    proxied = MeshClient(
        Identity.from_random(bytes(range(64))),
        lambda: int(time.time() * 1000),
        f"socks5://127.0.0.1:{closed}",
    )
    await proxied.start()
    try:
        with pytest.raises(TransportError) as raised:
            await proxied.call(fake_peer.address(), "/mesh/v1/push", {"e": []})
    finally:
        await proxied.close()
    assert raised.value.side == "local", raised.value
