"""The dashboard in process: a real node service (SQLite store, fake clock, no
network; pages are caught, not sent) behind the real local listener's app,
driven through aiohttp's test client with a signed-in session. Pages are read
as HTML; the browser tests (tests/browser) do what needs a browser."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from node.config import TOKEN_FILE, Config
from node.local_api import make_app
from node.response import desk as desk_mod
from node.service import NodeService
from node.store import Store
from protocol import Identity

T0 = 1_795_000_000_000
US = Identity.from_random(bytes(range(64)))
PASSWORD = "contraseña-de-prueba-larga"
Client = TestClient[web.Request, web.Application]


@dataclass
class Dashboard:
    client: Client
    node: NodeService
    clock: list[int]
    paged: list[str] = field(default_factory=list)

    async def page(self, path: str, lang: str = "en", status: int = 200) -> str:
        response = await self.client.get(path, params={"lang": lang})
        text = await response.text()
        assert response.status == status, text
        return text

    async def post(self, path: str, form: dict[str, str], lang: str = "en") -> tuple[int, str]:
        page = await self.client.get("/ui/alerts")
        token = re.search(r'name="csrf" value="([^"]+)"', await page.text())
        assert token is not None
        response = await self.client.post(path, params={"lang": lang}, data=form | {"csrf": token[1]})
        return response.status, await response.text()


async def until(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Let the node's background tasks (pages) run until ``condition`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.fixture
async def dashboard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Dashboard]:
    paged: list[str] = []
    monkeypatch.setattr(desk_mod, "_notify", lambda urls, title, body, policy: paged.append(urls[0]) or True)
    monkeypatch.setattr(desk_mod, "_check_channel", lambda url, policy: None)
    (tmp_path / TOKEN_FILE).write_text("dashboard-test-token", "ascii")
    clock = [T0]
    store = Store(f"sqlite:///{tmp_path / 'amparo.db'}")
    node = NodeService(
        tmp_path, Config(name="Brigada Ejemplo", ack_timeout="60s"), US, store, clock=lambda: clock[0]
    )
    node.desk.add_responder("Ana", "admin", ["json://127.0.0.1:9/Ana"], PASSWORD)
    async with TestClient(TestServer(make_app(node))) as client:
        form = await client.get("/ui/login")
        token = re.search(r'name="csrf" value="([^"]+)"', await form.text())
        assert token is not None
        signed = await client.post(
            "/ui/login", data={"csrf": token[1], "name": "Ana", "password": PASSWORD}, allow_redirects=False
        )
        assert signed.status == 303, await signed.text()
        yield Dashboard(client, node, clock, paged)
    store.close()


def text_of(html: str) -> str:
    """The page's words, tags dropped, spaces folded: what a reader reads."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


__all__ = ["PASSWORD", "T0", "US", "Any", "Dashboard", "dashboard", "text_of", "until"]
