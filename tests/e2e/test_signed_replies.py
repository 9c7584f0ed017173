"""Seized TLS key plus the network path (issue 11, item 6): whoever holds a copy of
a node's TLS key and certificate passes the pin, but not its identity key, so
its answers carry no valid reply signature and nothing it acknowledges counts
as delivered. The real node gets the alert once it is back."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from node.devmesh import LocalNode
from node.provision import TLS_CERT, TLS_KEY
from protocol import framing
from tests.e2e.listeners import ThreadedListener
from tests.e2e.test_gossip import wait_until

pytestmark = pytest.mark.slow


class Impersonator(ThreadedListener):
    """An HTTPS listener on the real node's port, with the real node's TLS key and
    certificate (so the pin matches) and no identity key. It answers every push
    with 200 and "all accepted", as the real node would."""

    def __init__(self, seized: Path, port: int) -> None:
        self.pushed: list[bytes] = []  # every envelope it was sent
        super().__init__(seized, port)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=framing.MAX_FRAME_BYTES)
        app.router.add_post("/mesh/v1/push", self._push)
        app.router.add_post("/mesh/v1/{other}", self._other)
        return app

    async def _push(self, request: web.Request) -> web.Response:
        raws = framing.envelope_list(framing.unpack(await request.read()))
        self.pushed += raws
        return _msgpack({"accepted": len(raws), "invalid": 0})

    async def _other(self, request: web.Request) -> web.Response:
        await request.read()
        return _msgpack({"e": [], "m": None})

    def times_pushed(self, raw: bytes) -> int:
        return self.pushed.count(raw)


def _msgpack(doc: dict[str, Any]) -> web.Response:
    return web.Response(body=framing.pack(doc), content_type="application/x-msgpack")


def _mark(node: LocalNode, peer_name: str) -> int:
    peers = {p["name"]: p for p in node.api.get("/api/v1/peers")["peers"]}
    return int(peers[peer_name]["mark"])


def _raw(node: LocalNode, alert_id: str) -> bytes:
    from node.config import database_url, load
    from node.store import Store

    store = Store(database_url(node.home, load(node.home)))
    try:
        row = store.get(bytes.fromhex(alert_id))
        assert row is not None
        return row.raw
    finally:
        store.close()


def test_an_impersonator_with_the_tls_key_cannot_take_delivery(mesh_factory: Any, tmp_path: Path) -> None:
    mesh = mesh_factory(2)
    a, b = mesh.nodes
    mesh.connect([(0, 1)])
    first = a.send(headline="Before the seizure")
    mesh.wait_for(first, [b], timeout=20)

    seized = tmp_path / "seized"
    seized.mkdir()
    for name in (TLS_KEY, TLS_CERT):
        shutil.copy2(b.home / name, seized / name)
    b.stop()
    with Impersonator(seized, b.mesh_port) as impostor:
        members = a.send(headline="Members only: meeting point", scope="members")
        raw = _raw(a, members)
        # The impostor answers 200 to every push; A retries all the same, because
        # none of its answers is signed by B's identity key.
        wait_until(lambda: impostor.times_pushed(raw) >= 2, timeout=30, what="A to push the alert again")
        mark = _mark(a, b.name)  # whatever it is, it does not count the alert as delivered:
        status = a.api.get("/api/v1/status")
        assert status["push_failures"] >= 2, status
        log = (a.home / "node.log").read_text()
        assert "reply" in log and "signature" in log
    b.start()
    mesh.wait_for(members, [b], timeout=60)  # the real B gets it when it is back
    wait_until(lambda: _mark(a, b.name) > mark, timeout=30, what="the mark to move past it for the real B")
