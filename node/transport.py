"""The mesh client: signed requests over pinned TLS 1.3 to a peer's listener.

Every call has explicit timeouts and a cap on the response bytes read, because a
peer can be slow or hostile. Addresses are tried in the order the peer's node
record lists them; ``.onion`` addresses need the SOCKS5 proxy (Tor). Without
one they are skipped, never dialled: a direct connection would first ask the
local DNS resolver for the onion name, telling whoever watches it which hidden
service this node talks to.

The bytes travel on a ``Wire``: HTTPS in production, another node's listener
in the same process in the test grid (tests/grid/), with everything above it
(signatures, replies, retries) the same code.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, Protocol

import aiohttp

from node import tls
from node.printable import printable
from protocol import framing
from protocol.errors import BadFrame, CannotEncode, ProtocolError, Side
from protocol.keys import Identity
from protocol.reply import HEADER as REPLY_HEADER
from protocol.reply import verify_reply
from protocol.request import HEADER, NONCE_BYTES, sign_request

MAX_RESPONSE_BYTES: Final = 8 * 1024 * 1024
TIMEOUT: Final = aiohttp.ClientTimeout(total=20, connect=5, sock_read=10)
# Connections per peer address. Calls beyond them wait in ``HttpWire``'s own queue:
# aiohttp counts a wait for a free pooled connection against the *connect* timeout,
# so ten fetches queued behind two slow answers failed as "Connection timeout"
# after 5 s, and the link backed off for minutes (bench/catchup.py, a loaded host).
# Three: the log's push, queue-jumpers pushed beside it (mesh.outbox, finding 7),
# and a reconciliation or fetch.
PER_ADDRESS: Final = 3


class TransportError(Exception):
    """A call to a peer failed; ``status`` is the HTTP status or 0 for no answer.

    ``side`` says where (h11's local and remote protocol errors): ``local`` when
    this node could not make the call (no usable address, no proxy for an onion
    address or a proxy that does not answer, a frame it cannot encode), which no
    peer caused and only this node's operator can fix; ``remote`` when the peer
    or the path to it failed (no answer, a refusal, a reply that is not the
    peer's or not a frame)."""

    def __init__(self, message: str, status: int = 0, *, side: Side = "remote") -> None:
        super().__init__(message)
        self.status = status
        self.side: Side = side


@dataclass(frozen=True)
class PeerAddress:
    """How to reach a peer. ``family``: the other keys of its rotation family,
    which may sign its replies while a key rotation is under way."""

    key: bytes
    addresses: tuple[str, ...]
    tls_fp: bytes
    family: frozenset[bytes] = frozenset()

    def reply_keys(self) -> frozenset[bytes]:
        return self.family | {self.key}


class Answer(NamedTuple):
    """A listener's answer as it came off the wire, not yet checked."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class Wire(Protocol):
    """How a request reaches a peer's listener and its answer comes back.

    Everything above the wire (signing requests, checking signed replies, the
    address order, the retry with the previous key) is ``MeshClient``'s, the
    same for every wire. ``HttpWire`` is the real one (pinned TLS 1.3); the
    in-process test grid (tests/grid/) hands the bytes to another node's mesh
    listener without a socket. A failure to reach the peer raises
    ``TransportError`` with status 0."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def post(
        self, peer: PeerAddress, address: str, path: str, body: bytes, headers: Mapping[str, str]
    ) -> Answer: ...


class HttpWire:
    """HTTPS to ``address``, the TLS certificate pinned to the peer's fingerprint,
    with explicit timeouts and at most ``MAX_RESPONSE_BYTES`` read."""

    def __init__(
        self,
        socks_proxy: str = "",
        trace_configs: list[aiohttp.TraceConfig] | None = None,
        timeout: aiohttp.ClientTimeout | None = None,  # None: ``TIMEOUT``, read at start
    ) -> None:
        self._socks_proxy = socks_proxy
        self._traces = trace_configs
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._slots: dict[str, asyncio.Semaphore] = {}  # per address: calls on the wire

    async def start(self) -> None:
        connector: aiohttp.BaseConnector
        if self._socks_proxy:
            from aiohttp_socks import ProxyConnector  # SOCKS5, e.g. Tor

            connector = ProxyConnector.from_url(self._socks_proxy, rdns=True)
        else:
            connector = aiohttp.TCPConnector(limit_per_host=PER_ADDRESS)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout or TIMEOUT, trace_configs=self._traces
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(
        self, peer: PeerAddress, address: str, path: str, body: bytes, headers: Mapping[str, str]
    ) -> Answer:
        assert self._session is not None, "MeshClient.start() first"
        slots = self._slots.get(address)
        if slots is None:
            slots = self._slots[address] = asyncio.Semaphore(PER_ADDRESS)
        async with slots:  # the wait for a turn is not the connection's timeout
            return await self._post(peer, address, path, body, headers)

    async def _post(
        self, peer: PeerAddress, address: str, path: str, body: bytes, headers: Mapping[str, str]
    ) -> Answer:
        assert self._session is not None
        try:
            async with self._session.post(
                f"https://{address}{path}", data=body, headers=dict(headers), ssl=tls.pinned(peer.tls_fp)
            ) as resp:
                return Answer(resp.status, resp.headers, await _read_capped(resp))
        except aiohttp.ServerFingerprintMismatch:
            raise TransportError("TLS certificate does not match the pinned fingerprint") from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}", side=_network_side(exc)) from None
        except Exception as exc:  # aiohttp_socks.ProxyError is none of the above
            if type(exc).__module__.split(".")[0] not in ("aiohttp_socks", "python_socks"):
                raise
            raise TransportError(f"proxy: {exc}", side=_network_side(exc)) from None


class MeshClient:
    def __init__(
        self,
        identity: Identity,
        clock: Callable[[], int],
        socks_proxy: str = "",
        trace_configs: list[aiohttp.TraceConfig] | None = None,
        wire: Wire | None = None,
    ) -> None:
        self._identity = identity
        self._previous: Identity | None = None  # the key before a live rotation (``use_identity``)
        self._clock = clock
        self._socks_proxy = socks_proxy
        self._wire: Wire = wire or HttpWire(socks_proxy, trace_configs)

    async def start(self) -> None:
        await self._wire.start()

    async def close(self) -> None:
        await self._wire.close()

    def use_identity(self, identity: Identity) -> None:
        """Sign requests with ``identity`` from now on (a key rotation, live).

        A peer that has not yet received the rotation record does not know the
        new key and answers 403; such a call is repeated once signed with the
        previous key, which that peer still knows. The first push it accepts
        carries the rotation record, and from then on it knows the new key."""
        self._previous, self._identity = self._identity, identity

    async def call(self, peer: PeerAddress, path: str, frame: dict[str, Any]) -> dict[str, Any]:
        """POST ``frame`` to ``path`` on the first reachable address of ``peer``."""
        try:
            body = framing.pack(frame)
        except CannotEncode as exc:
            raise TransportError(f"request not sent: {exc.message}", side=exc.side) from None
        try:
            return await self._call(peer, path, body, self._identity)
        except TransportError as exc:
            if exc.status != 403 or self._previous is None:
                raise
        return await self._call(peer, path, body, self._previous)

    async def _call(self, peer: PeerAddress, path: str, body: bytes, identity: Identity) -> dict[str, Any]:
        errors: list[TransportError] = []
        texts: list[str] = []
        for address in _ordered(peer.addresses):
            try:
                return await self._post(peer, address, path, body, identity)
            except TransportError as exc:
                if exc.status:  # the peer answered: do not try other addresses
                    raise
                errors.append(exc)
                texts.append(f"{address}: {exc}")
        if not errors:
            raise TransportError("peer has no address", side="local")
        # Remote if any address was tried and failed there; local if none could be.
        side: Side = "remote" if any(e.side == "remote" for e in errors) else "local"
        raise TransportError("; ".join(texts), side=side)

    async def _post(
        self, peer: PeerAddress, address: str, path: str, body: bytes, identity: Identity
    ) -> dict[str, Any]:
        if is_onion(address) and not self._socks_proxy:
            raise TransportError(
                "a .onion address needs socks_proxy (Tor); not dialled, so the name never reaches DNS",
                side="local",
            )
        nonce = os.urandom(NONCE_BYTES)
        header = sign_request(
            identity.signing_key,
            method="POST",
            path=path,
            body=body,
            receiver=peer.key,
            now=self._clock(),
            nonce=nonce,
        )
        headers = {HEADER: header, "Content-Type": "application/x-msgpack"}
        answer = await self._wire.post(peer, address, path, body, headers)
        signed = _signed_by_peer(answer, peer, path, nonce, identity.sign_public)
        if answer.status != 200:
            reason = printable(answer.body[:200].decode("utf-8", "replace"))  # the peer's words: one line
            if signed is not None:  # not from the peer: as if there was no answer
                raise TransportError(f"HTTP {answer.status} ({signed}): {reason}")
            raise TransportError(f"HTTP {answer.status}: {reason}", answer.status)
        if signed is not None:
            raise TransportError(f"reply refused: {signed}")
        try:
            return framing.unpack(answer.body, MAX_RESPONSE_BYTES)
        except BadFrame as exc:
            raise TransportError(f"bad response frame: {exc.message}", 502) from None


def _signed_by_peer(answer: Answer, peer: PeerAddress, path: str, nonce: bytes, requester: bytes) -> str | None:
    """None if the reply is signed by the peer's identity key (or one of its
    rotation family) for this very request, sent by ``requester`` (the key that
    signed it: after a rotation, a retry goes out under the previous key); else
    why not. A listener that only holds a copy of the peer's TLS key cannot
    sign: whatever it answers is treated as no answer, so nothing it
    acknowledges counts as delivered."""
    try:
        verify_reply(
            answer.headers.get(REPLY_HEADER),
            status=answer.status,
            path=path,
            body=answer.body,
            nonce=nonce,
            requester=requester,
            keys=peer.reply_keys(),
        )
    except ProtocolError as exc:
        return f"reply signature: {exc.message}"
    return None


def _network_side(exc: BaseException) -> Side:
    """A network failure is the remote side's (the peer or the path to it), except
    when this node's own SOCKS proxy (Tor) does not answer: only its operator can
    fix that. (aiohttp_socks and python_socks each have a ``ProxyConnectionError``,
    one of them an ``OSError``.)"""
    return "local" if type(exc).__name__ == "ProxyConnectionError" else "remote"


async def _read_capped(resp: aiohttp.ClientResponse) -> bytes:
    if resp.content_length is not None and resp.content_length > MAX_RESPONSE_BYTES:
        raise TransportError("response larger than the cap", 502)
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(65536):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise TransportError("response larger than the cap", 502)
        chunks.append(chunk)
    return b"".join(chunks)


def is_onion(address: str) -> bool:
    """``HOST:PORT`` whose host is a Tor onion service (any case, trailing dot)."""
    host = address.rpartition(":")[0] or address
    return host.strip("[]").rstrip(".").lower().endswith(".onion")


def _ordered(addresses: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(addresses))
