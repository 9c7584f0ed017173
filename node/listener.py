"""The mesh listener's connections: who may hold one, and for how long
(issue 11, "nothing unauthenticated can stall a node"; docs/protocol.md §12.3).

The door's budgets (``node.door``) see a request only once its head is
complete. Before that, a connection costs the node a file descriptor and
nothing else stops it: a sender that opens connections and never finishes a
request would otherwise hold them for as long as it liked, until the process ran
out of descriptors and neither listener could accept anything. So, at accept:

- each address (IPv6 by its /64, as the door counts) holds at most
  ``PER_ADDRESS`` connections at a time, and the mesh listener at most
  ``TOTAL``; one more is closed at once, before its TLS handshake (no
  handshake CPU spent on it);

and each admitted connection has deadlines:

- the TLS handshake within ``HANDSHAKE_S``;
- a request head complete within ``HEAD_S`` of the TLS handshake, or of
  its first byte on a kept-alive connection (checked here);
- the whole body within ``BODY_S`` (checked where the body is read,
  ``node.mesh_api``);
- an idle kept-alive connection is closed after ``KEEPALIVE_S`` (aiohttp).

This module does the I/O of a listener in front of aiohttp: a plain TCP server
whose protocol (``Gate``) counts the connection, starts TLS itself, then hands
the connection to aiohttp's ``RequestHandler`` and watches for its head.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Final

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from node.door import address_key

log = logging.getLogger("amparo.listener")

PER_ADDRESS: Final = 16
"""Connections one address holds at a time. An honest peer's client keeps at
most two to a node (``node.transport``: ``limit_per_host=2``); a few nodes
behind one NAT address fit with room to spare, and 16 is a small share of any
descriptor limit."""

TOTAL: Final = 512
"""Connections the mesh listener holds at a time: half of the 1024 descriptors a
process gets by default, so the local listener, the database, the outgoing
connections and the logs always have the rest (the node also raises its soft
limit at start, ``raise_descriptor_limit``). A mesh node has tens of peers."""


def total_for(descriptor_limit: int) -> int:
    """``TOTAL``, or half the process's open-file limit if that is lower, so the
    mesh listener never holds more than half the node's descriptors."""
    return max(PER_ADDRESS, min(TOTAL, descriptor_limit // 2))


HANDSHAKE_S: Final = 10.0
"""The TLS handshake: one round trip and an X25519/Ed25519 computation;
seconds even on a slow link."""

HEAD_S: Final = 10.0
"""The request head (a line and a few short headers, well under one TCP
window): an honest client sends it in one write, right after the handshake."""

BODY_S: Final = 30.0
"""The whole body, at most ``framing.MAX_FRAME_BYTES``: 30 s is a floor rate of
about 35 KB/s for the largest frame; an honest client writes it at once."""

KEEPALIVE_S: Final = 75.0
"""An idle kept-alive connection: longer than the 15 s the node's own client
keeps one (aiohttp's default), so the client always closes first and honest
reuse never races the server's close."""

TLS_SHUTDOWN_S: Final = 5.0
"""How long a closing connection waits for the client's TLS close_notify; the
descriptor is held until then (asyncio's default is 30 s)."""


class ConnectionCount:
    """Connections held, by address and in total; pure bookkeeping."""

    def __init__(self, per_address: int = PER_ADDRESS, total: int = TOTAL) -> None:
        self.per_address = per_address
        self.total = total
        self._held: dict[str, int] = {}
        self._count = 0

    def admit(self, key: str) -> str | None:
        """Count one more connection from ``key``; or, if it may not have one,
        say why (``"address"`` or ``"total"``) and count nothing."""
        if self._count >= self.total:
            return "total"
        if self._held.get(key, 0) >= self.per_address:
            return "address"
        self._held[key] = self._held.get(key, 0) + 1
        self._count += 1
        return None

    def release(self, key: str) -> None:
        held = self._held.get(key, 0) - 1
        if held > 0:
            self._held[key] = held
        else:
            self._held.pop(key, None)
        self._count = max(0, self._count - 1)

    def held(self, key: str | None = None) -> int:
        return self._count if key is None else self._held.get(key, 0)


class Gate(asyncio.Protocol):
    """One connection to the mesh listener, from accept to close.

    First the plain TCP connection: counted, or closed at once; then TLS
    (``loop.start_tls``), with this object as the TLS transport's protocol,
    forwarding to the aiohttp ``RequestHandler`` it then creates; the count is
    released when the socket is closed, whatever closed it."""

    def __init__(
        self,
        server: web.Server,
        ssl_context: ssl.SSLContext,
        count: ConnectionCount,
        refused: Callable[[str], None],
    ) -> None:
        self._server = server
        self._ssl_context = ssl_context
        self._count = count
        self._refused = refused
        self._key: str | None = None
        self._handler: RequestHandler | None = None
        self._tls: asyncio.Transport | None = None
        self._early: list[bytes] = []  # TLS data that arrived before the handler existed
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_count = 0  # the handler's requests when the head timer was set
        self._task: asyncio.Task[None] | None = None

    # -- the plain TCP connection ----------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        key = address_key(peer[0] if isinstance(peer, tuple) else None)
        why = self._count.admit(key)
        if why is not None:
            self._refused(f"connection-{why}-cap")
            transport.abort()  # type: ignore[attr-defined]
            return
        self._key = key
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()  # nothing is read until TLS takes over
        self._task = asyncio.get_running_loop().create_task(self._start_tls(transport))

    async def _start_tls(self, transport: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        if transport.is_closing():
            self._release()
            return
        try:
            tls = await loop.start_tls(
                transport,
                self,
                self._ssl_context,
                server_side=True,
                ssl_handshake_timeout=HANDSHAKE_S,
                ssl_shutdown_timeout=TLS_SHUTDOWN_S,
            )
        except asyncio.CancelledError:
            self._release()
            raise
        except Exception as exc:  # a failed or late handshake: whatever it raised, let go
            log.debug("TLS handshake failed: %s", exc)
            transport.abort()
            self._release()
            return
        if tls is None or tls.is_closing():
            transport.abort()
            self._release()
            return
        self._tls = tls
        handler = self._handler = self._server()
        handler.connection_made(tls)
        self._watch_head()
        early, self._early = self._early, []
        for data in early:
            self._received(data)

    # -- the TLS connection (this object is the TLS transport's protocol) --------------
    def data_received(self, data: bytes) -> None:
        if self._handler is None:
            self._early.append(data)
            return
        self._received(data)

    def _received(self, data: bytes) -> None:
        assert self._handler is not None
        if self._head_timer is None and self._waiting():
            self._watch_head()  # the first byte of a new head
        self._handler.data_received(data)

    def eof_received(self) -> bool | None:
        if self._handler is not None:
            return self._handler.eof_received()  # type: ignore[func-returns-value]
        return None

    def pause_writing(self) -> None:
        if self._handler is not None:
            self._handler.pause_writing()

    def resume_writing(self) -> None:
        if self._handler is not None:
            self._handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if self._handler is not None:
            self._handler.connection_lost(exc)
            self._handler = None
        self._tls = None
        self._release()

    def _release(self) -> None:
        if self._key is not None:
            self._count.release(self._key)
            self._key = None

    # -- the head deadline -----------------------------------------------------------------
    # aiohttp has no deadline for a request head: its keep-alive timer closes a
    # connection waiting for one only after KEEPALIVE_S. Two slots of aiohttp's
    # RequestHandler say where a connection is: its request count moves when a head
    # is complete, and its ``_waiter`` is pending while it waits for the next head
    # (between requests, not while a body is read or an answer written).
    # tests/e2e/test_slow_senders.py fails if an aiohttp upgrade changes them.
    def _requests(self) -> int:
        return int(getattr(self._handler, "_request_count", 0))

    def _waiting(self) -> bool:
        waiter = getattr(self._handler, "_waiter", None)
        return waiter is not None and not waiter.done()

    def _watch_head(self) -> None:
        self._head_count = self._requests()
        self._head_timer = asyncio.get_running_loop().call_later(HEAD_S, self._head_due)

    def _head_due(self) -> None:
        self._head_timer = None
        if self._handler is None or self._requests() > self._head_count:
            return  # the head arrived; the next one is watched from its first byte
        if not self._waiting():
            self._watch_head()  # not yet waiting for a head: look again later
            return
        self._refused("connection-head-timeout")
        if self._tls is not None:
            self._tls.abort()  # no TLS goodbye to wait for: the descriptor is free at once


class GatedSite(web.BaseSite):
    """An aiohttp site for the mesh listener: a plain TCP server whose
    connections go through a ``Gate`` before aiohttp sees them."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext,
        refused: Callable[[str], None],
        count: ConnectionCount | None = None,
        backlog: int = 128,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._host = host
        self._port = port
        self._tls = ssl_context
        self._refused = refused
        self.count = count or ConnectionCount()

    @property
    def name(self) -> str:
        return f"https://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Gate(server, self._tls, self.count, self._refused),
            self._host,
            self._port,
            backlog=self._backlog,
        )
