"""What the node publishes without waiting (``NodeService.publish``: its
delivery receipts) is written by the group writer without holding the event
loop: while its commit is under way the node keeps answering, and nothing is
delivered or pushed before it is on disk. One whose write fails is forgotten
by the mesh."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.exc
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from node.config import TOKEN_FILE, Config
from node.local_api import make_app
from node.service import NodeService
from node.store import Store
from protocol import Alert, Area, Identity, sign_envelope

T0 = 1_795_000_000_000
TOKEN = "prueba-de-escritura"
Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[tuple[NodeService, Client]]:
    (tmp_path / TOKEN_FILE).write_text(TOKEN, "ascii")
    store = Store(f"sqlite:///{tmp_path / 'amparo.db'}")
    service = NodeService(
        tmp_path,
        Config(name="Colectivo Ejemplo"),
        Identity.from_random(bytes(range(64))),
        store,
        clock=lambda: T0,
    )
    async with TestClient(TestServer(make_app(service))) as client:
        yield service, client


async def test_the_node_keeps_answering_while_a_published_receipt_is_written_and_delivers_it_after(
    node: tuple[NodeService, Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    service, client = node
    real = service.store.add_envelopes
    writing, release = threading.Event(), threading.Event()

    def slow_disk(*args: Any, **kwargs: Any) -> Any:
        writing.set()
        assert release.wait(30), "the test never released the write"
        return real(*args, **kwargs)

    monkeypatch.setattr(service.store, "add_envelopes", slow_disk)
    delivered: list[bytes] = []
    monkeypatch.setattr(service, "_deliver", lambda row: delivered.append(row.id) if row else None)
    body = Alert(headline="Retén en la carretera", areas=(Area("MX-OAX"),), severity="severe")
    env = sign_envelope(service.identity, body, created=T0, expires=T0 + 3_600_000)
    assert service.publish(env)  # returns at once: the writer thread has it
    assert await asyncio.to_thread(writing.wait, 30), "the envelope never reached the writer"

    health = await client.get("/healthz")  # the loop is free while the writer thread commits
    assert health.status == 200
    assert delivered == [], "delivered before it was on disk"

    release.set()
    while service.writer.busy():
        await asyncio.sleep(0.01)
    await asyncio.sleep(0)  # the commit's callbacks
    assert service.store.get(env.id) is not None
    assert delivered == [env.id]


async def test_a_published_envelope_whose_write_fails_is_forgotten_and_not_delivered(
    node: tuple[NodeService, Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    service, _client = node

    def full_disk(*args: object, **kwargs: object) -> object:
        raise sqlalchemy.exc.OperationalError("INSERT", {}, Exception("database or disk is full"))

    monkeypatch.setattr(service.store, "add_envelopes", full_disk)
    delivered: list[object] = []
    monkeypatch.setattr(service, "_deliver", delivered.append)
    body = Alert(headline="Retén en la carretera", areas=(Area("MX-OAX"),), severity="severe")
    env = sign_envelope(service.identity, body, created=T0, expires=T0 + 3_600_000)
    assert service.publish(env)  # admitted: the writer has it
    assert service.mesh.get(env.id) is not None
    while service.writer.busy():
        await asyncio.sleep(0)
    await asyncio.sleep(0)  # the commit's callbacks
    assert service.mesh.get(env.id) is None, "the mesh still holds what was never written"
    assert service.store.get(env.id) is None
    assert delivered == []
    assert service.outage.failing
