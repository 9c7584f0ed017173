"""An in-process grid (Tahoe-LAFS's no-network grid): several real nodes in one
process, joined without sockets, under one fake clock.

Each ``GridNode`` is a real ``NodeService`` with its own SQLite file, keys and
TLS certificate (for its fingerprint; no TLS is spoken), and its real mesh
listener app (``node.mesh_api``). Calls between nodes go through the real
``MeshClient`` (request signatures, signed replies, the retry after a key
rotation) on a ``GridWire``: the request bytes are handed to the peer's listener
app, door, budgets, nonces and all, and its answer comes back as bytes. Only
sockets and time are fake.

Time moves only when a test says so: ``advance`` moves the shared clock and
calls each node's ``tick`` (what its ticker does every 2 s), and ``settle``
runs the event loop until no node has background work left (pushes, fetches,
reconciliations, pages), so a negative ("nothing more arrives") is a fact
about a quiet grid, not a guess about how long to wait.

Links are directional (the calls ``a`` makes to ``b``) and can be ``cut`` (no
answer), ``hang`` (the call waits until ``release``), or ``corrupt`` (the
request's bytes are damaged on the way, or the sender signs a broken frame).

``Grid(root, https=True)`` runs the same nodes with their listeners on loopback
HTTPS (pinned TLS 1.3, ``HttpWire``), faults and clock unchanged: the gossip
tests run on both, so the in-memory wire is checked against the real one
(STYLE principle 8).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any
from unittest import mock

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.test_utils import make_mocked_request

from node import mesh_api, pairing, provision, tls
from node.config import Config
from node.devmesh import free_port
from node.service import TICK_SECONDS, NodeService
from node.store import Store
from node.transport import Answer, HttpWire, PeerAddress, TransportError, Wire
from protocol import request as signed_request
from protocol.keys import Identity

START_MS = 1_795_000_000_000  # 2026-11-17: a fixed instant, so runs repeat exactly
TICK_MS = int(TICK_SECONDS * 1000)
SETTLE_S = 10.0  # a safety net in real seconds: a grid that does not go quiet is a bug


class FakeClock:
    """Unix milliseconds that move only when ``advance`` is called."""

    def __init__(self, now: int = START_MS) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


@dataclass
class Link:
    """The state of the calls one node makes to another."""

    cut: bool = False
    held: asyncio.Event | None = None  # set while hung: calls wait for it
    corrupt: Callable[[bytes], bytes] | None = None  # damages request bodies on the way
    resign: bool = False  # the damaged body is signed by the sender (its fault, not the path's)
    calls: int = 0


@dataclass
class GridNode:
    """One node of the grid; ``store``, ``service`` and ``app`` are new after a restart."""

    name: str
    address: str
    home: Path
    config: Config
    identity: Identity
    store: Store = field(init=False, repr=False)
    service: NodeService = field(init=False, repr=False)
    app: web.Application = field(init=False, repr=False)
    runner: web.AppRunner | None = field(default=None, repr=False)  # the HTTPS listener (https grids)
    up: bool = False

    @property
    def key(self) -> bytes:
        return self.service.key


class GridWire:
    """The ``Wire`` of one grid node: the link's faults, then the request goes to
    the other node's listener app, in process or (``inner``) over real HTTPS."""

    def __init__(self, grid: Grid, source: str, inner: Wire | None = None) -> None:
        self.grid, self.source, self.inner = grid, source, inner

    async def start(self) -> None:
        if self.inner is not None:
            await self.inner.start()

    async def close(self) -> None:
        if self.inner is not None:
            await self.inner.close()

    async def post(
        self, peer: PeerAddress, address: str, path: str, body: bytes, headers: Mapping[str, str]
    ) -> Answer:
        target = self.grid.by_address.get(address)
        if target is None or not target.up:
            raise TransportError(f"ConnectionRefused: nothing listens on {address} (grid)")
        link = self.grid.link(self.source, target.name)
        link.calls += 1
        if link.held is not None:
            self.grid.parked += 1
            try:
                await link.held.wait()
            finally:
                self.grid.parked -= 1
        if link.cut:
            raise TransportError(f"ConnectionRefused: link {self.source} → {target.name} cut (grid)")
        headers = dict(headers)
        if link.corrupt is not None:
            body = link.corrupt(body)
            if link.resign:
                headers[signed_request.HEADER] = self._resigned(headers, peer, path, body)
        if self.inner is not None:
            return await self.inner.post(peer, address, path, body, headers)
        return await _dispatch(target, self.grid.remote_of(self.source), path, body, headers)

    def _resigned(self, headers: dict[str, str], peer: PeerAddress, path: str, body: bytes) -> str:
        auth, _sig = signed_request.parse_header(headers[signed_request.HEADER])
        sender = self.grid.nodes[self.source].service.identity
        return signed_request.sign_request(
            sender.signing_key,
            method="POST",
            path=path,
            body=body,
            receiver=peer.key,
            now=auth.timestamp,
            nonce=auth.nonce,
        )


async def _dispatch(target: GridNode, remote: str, path: str, body: bytes, headers: dict[str, str]) -> Answer:
    """The request through the target's real listener app (middlewares, handler)."""
    loop = asyncio.get_running_loop()
    payload = StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=loop)
    payload.feed_data(body)
    payload.feed_eof()
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (remote, 40000) if name == "peername" else default
    )
    headers["Content-Length"] = str(len(body))
    request = make_mocked_request(
        "POST",
        path,
        headers=headers,
        app=target.app,
        payload=payload,
        transport=transport,
    )
    response = await target.app._handle(request)  # aiohttp's own entry: routing, middlewares, handler
    assert isinstance(response, web.Response), "the mesh listener answers plain responses"
    data = response.body
    return Answer(response.status, dict(response.headers), data if isinstance(data, bytes) else b"")


async def _listen(node: GridNode) -> web.AppRunner:
    """The node's mesh listener on loopback HTTPS, with the runner options of ``amparo run``."""
    runner = web.AppRunner(node.app, access_log=None, shutdown_timeout=0.5, **mesh_api.RUNNER_OPTIONS)
    await runner.setup()
    host, port = node.address.rsplit(":", 1)
    await web.TCPSite(runner, host, int(port), ssl_context=tls.server_context(node.home)).start()
    return runner


class Grid:
    """Real nodes in one process; see the module docstring."""

    def __init__(self, root: Path, clock: FakeClock | None = None, *, https: bool = False) -> None:
        self.root = root
        self.clock = clock or FakeClock()
        self.https = https
        self.nodes: dict[str, GridNode] = {}
        self.by_address: dict[str, GridNode] = {}
        self.links: dict[tuple[str, str], Link] = {}
        self.parked = 0  # calls waiting on a hung link

    # -- building -----------------------------------------------------------------------
    async def add(self, name: str, **settings: Any) -> GridNode:
        """A new node, started without its ticker: the grid ticks it."""
        index = len(self.nodes) + 1
        address = f"127.0.0.1:{free_port()}" if self.https else f"10.77.0.{index}:7170"
        home = self.root / name
        home.mkdir(parents=True)
        provision.make_certificate(home, name)
        seed = hashlib.blake2b(name.encode(), digest_size=64).digest()
        # Delivery receipts are extra envelopes after every alert; the gossip tests count
        # envelopes and pushes exactly, so the grid sends none unless a test asks
        # (tests/grid/test_receipts.py: ``delivery_receipts=True``).
        settings = {"delivery_receipts": False} | settings
        config = Config(name=name, advertise=[address], **settings)
        node = GridNode(name, address, home, config, Identity.from_random(seed))
        self.nodes[name] = node
        self.by_address[address] = node
        await self.start(name)
        return node

    async def start(self, name: str) -> None:
        """Start (or start again) a node on its home: a new service on the same
        SQLite file, as ``amparo run`` after a restart."""
        node = self.nodes[name]
        database = node.home / "amparo.db"
        if not database.exists():
            _fresh_database(database)
        node.store = Store(f"sqlite:///{database}")
        index = list(self.nodes).index(name) + 1
        wire = GridWire(self, name, HttpWire() if self.https else None)
        node.service = NodeService(
            node.home, node.config, node.identity, node.store, self.clock, wire=wire, random=Random(index)
        )
        node.app = mesh_api.make_app(node.service)
        if self.https:
            node.runner = await _listen(node)
        else:
            node.app.freeze()
        await node.service.start(ticking=False)
        node.up = True

    async def stop(self, name: str) -> None:
        """Stop a node as SIGTERM does: its tasks cancelled, its store closed.
        Calls to it find nothing listening until ``start``."""
        node = self.nodes[name]
        if node.up:
            node.up = False
            if node.runner is not None:
                await node.runner.cleanup()
                node.runner = None
            await node.service.stop()
            node.store.close()

    async def pair(self, a: str, b: str) -> None:
        """``a`` invites, ``b`` accepts: the real pairing over the grid."""
        token, _ = pairing.create_invite(self.nodes[a].service)
        await pairing.accept_invite(self.nodes[b].service, token, verified=True)
        await self.settle()

    async def close(self) -> None:
        for name in self.nodes:
            await self.stop(name)

    def __getitem__(self, name: str) -> GridNode:
        return self.nodes[name]

    def remote_of(self, name: str) -> str:
        return self.nodes[name].address.rpartition(":")[0]

    # -- faults -------------------------------------------------------------------------
    def link(self, source: str, target: str) -> Link:
        return self.links.setdefault((source, target), Link())

    def _pairs(self, a: str, b: str, both: bool) -> list[Link]:
        return [self.link(a, b), self.link(b, a)] if both else [self.link(a, b)]

    def cut(self, a: str, b: str, *, both: bool = True) -> None:
        """Calls between ``a`` and ``b`` get no answer (a connection refused)."""
        for link in self._pairs(a, b, both):
            link.cut = True

    def heal(self, a: str, b: str, *, both: bool = True) -> None:
        """Undo ``cut``, ``hang`` and ``corrupt``; hung calls go on."""
        for link in self._pairs(a, b, both):
            link.cut, link.corrupt, link.resign = False, None, False
            if link.held is not None:
                link.held.set()
                link.held = None

    def hang(self, a: str, b: str, *, both: bool = True) -> None:
        """Calls between ``a`` and ``b`` wait, in flight, until ``release``."""
        for link in self._pairs(a, b, both):
            link.held = link.held or asyncio.Event()

    def release(self, a: str, b: str, *, both: bool = True) -> None:
        for link in self._pairs(a, b, both):
            if link.held is not None:
                link.held.set()
                link.held = None

    def corrupt(
        self, a: str, b: str, how: Callable[[bytes], bytes] | None = None, *, signed: bool = False
    ) -> None:
        """Damage the bodies of the calls ``a`` makes to ``b`` (one byte flipped
        in the middle, unless ``how`` says otherwise). ``signed``: ``a`` signs the
        damaged body, as a buggy or hostile peer would; otherwise the damage
        happens on the way and the request's signature no longer holds."""
        link = self.link(a, b)
        link.corrupt, link.resign = how or flip_middle_byte, signed

    # -- time ---------------------------------------------------------------------------
    async def settle(self) -> None:
        """Run the loop until no node has background work left, apart from calls
        parked on a hung link. Raises if the grid is still busy after
        ``SETTLE_S`` real seconds (a loop that never ends is a bug to see)."""
        deadline = time.monotonic() + SETTLE_S
        idle_rounds = 0
        while idle_rounds < 3:  # quiet three times in a row: nothing is about to start
            await asyncio.sleep(0)
            pending = sum(n.service.running() for n in self.nodes.values() if n.up)
            idle_rounds = idle_rounds + 1 if pending <= self.parked else 0
            if pending > self.parked and time.monotonic() > deadline:
                raise AssertionError(f"the grid did not settle: {pending} tasks still running")
            if pending > self.parked:
                await asyncio.sleep(0.001)  # a page in a worker thread (Apprise) needs real time

    async def advance(self, ms: int, *, step_ms: int = TICK_MS) -> None:
        """Move the clock ``ms`` forward in steps of one tick, ticking every node
        and settling after each step, as the nodes' tickers would."""
        target = self.clock.now + ms
        while self.clock.now < target:
            self.clock.advance(min(step_ms, target - self.clock.now))
            for node in self.nodes.values():
                if node.up:
                    node.service.tick()
            await self.settle()


_MIGRATED: bytes | None = None  # an empty database at the newest schema, made once per run


def _fresh_database(path: Path) -> None:
    """A new node's database: a copy of an empty one migrated once per test run
    (running every migration takes longer than all else a node does to start)."""
    global _MIGRATED
    if _MIGRATED is None:
        Store(f"sqlite:///{path}").close()
        if not Path(f"{path}-wal").exists():  # a closed database is one file: copy it
            _MIGRATED = path.read_bytes()
    else:
        path.write_bytes(_MIGRATED)


def flip_middle_byte(body: bytes) -> bytes:
    middle = len(body) // 2
    return body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1 :]
