"""A full disk under a running node (found by the nemesis, seed 15015 with the
disk fault): a new alert was answered 500 "internal error" with a traceback in
the log per request, and background tasks and ticks logged a traceback each.
Now the local API answers 503 ``store-unavailable`` (nothing was sent), the
log says once that the store cannot be written and once that it can again, and
each refused request is one short line."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy.exc
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from node.config import TOKEN_FILE, Config
from node.local_api import make_app
from node.service import NodeService
from node.store import Store
from protocol import Identity

T0 = 1_795_000_000_000
TOKEN = "prueba-de-disco-lleno"
ALERT = {"regions": ["MX-OAX"], "severity": "severe", "headline": "Retén en la carretera", "expires": "6h"}
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


async def _send(client: Client) -> tuple[int, dict[str, object]]:
    response = await client.post("/api/v1/alerts", json=ALERT, headers={"Authorization": f"Bearer {TOKEN}"})
    return response.status, await response.json()


async def test_a_full_disk_refuses_new_alerts_with_one_clear_line_and_resumes(
    node: tuple[NodeService, Client], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, client = node
    real = service.store.add_envelopes

    def full_disk(*args: object, **kwargs: object) -> object:
        raise sqlalchemy.exc.OperationalError("INSERT", {}, Exception("database or disk is full"))

    monkeypatch.setattr(service.store, "add_envelopes", full_disk)
    held = service.store.count()
    with caplog.at_level(logging.INFO):
        answers = [await _send(client) for _ in range(3)]
    assert [status for status, _ in answers] == [503] * 3
    error = answers[0][1]["error"]
    assert isinstance(error, dict) and error["code"] == "store-unavailable", answers[0]
    assert "nothing was saved or sent" in str(error["message"])
    assert service.store.count() == held  # nothing acknowledged, nothing stored
    outage = [r for r in caplog.records if "the store cannot be written" in r.getMessage()]
    assert len(outage) == 1 and "database or disk is full" in outage[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info], "no traceback for a full disk"
    assert service.outage.failing

    monkeypatch.setattr(service.store, "add_envelopes", real)  # space freed: no operator action
    caplog.clear()
    with caplog.at_level(logging.INFO):
        status, doc = await _send(client)
    assert status == 201, doc
    assert service.store.get(bytes.fromhex(str(doc["id"]))) is not None
    assert any("can be written again" in r.getMessage() for r in caplog.records)
    assert not service.outage.failing
