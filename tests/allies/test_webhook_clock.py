"""A webhook's signature is stamped with the node's clock, not the machine's:
the ``t=`` a receiver checks for replays is the injected clock's second, so a
node driven by a fake clock (or the in-process grid) signs what it says."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from node.allies import messages
from node.allies.delivery import DeliveryDesk
from node.allies.subscriptions import Channel, Subscription
from node.config import Config
from node.store import Store
from tests.node.test_store import ALICE

THEN = 1_700_000_123_456  # years before the machine's own clock: only the injected one can give it


class Answer:
    status = 204

    async def __aenter__(self) -> Answer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


class Receiver:
    """Stands in for the aiohttp session: keeps what would have been posted."""

    def __init__(self) -> None:
        self.posted: list[tuple[bytes, dict[str, str]]] = []

    def post(self, url: str, *, data: bytes, headers: dict[str, str], allow_redirects: bool) -> Answer:
        self.posted.append((data, headers))
        return Answer()


async def test_the_signature_carries_the_injected_clock(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'amparo.db'}")
    try:
        host = SimpleNamespace(store=store, clock=lambda: THEN, identity=ALICE, config=Config(name="N"))
        desk = DeliveryDesk(host)  # type: ignore[arg-type]
        receiver = Receiver()
        desk._http = receiver  # type: ignore[assignment]
        secret = "ab" * 32
        sub = Subscription("5ub", "ally", ("MX",), Channel("webhook", "https://ally.example/hook"), secret=secret)
        doc: dict[str, Any] = {"id": "00" * 32, "headline": "Bloqueo en la carretera"}
        delivery = f"5ub-{'00' * 32}"
        sent = messages.webhook_body(doc, delivery=delivery, subscription="5ub", link="https://n/ui")
        answer = await desk._post(sub, sent, delivery, "alert")
        assert answer is None
        body, headers = receiver.posted[0]
        header = headers[messages.SIGNATURE_HEADER]
        assert header.startswith(f"t={THEN // 1000},")
        assert messages.verify(bytes.fromhex(secret), header, body, now=THEN // 1000)
        assert not messages.verify(bytes.fromhex(secret), header, body, now=THEN // 1000 + 3600)
    finally:
        store.close()
