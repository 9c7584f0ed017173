"""The stream's ``receipt`` events (node.stream): sent only to a client that asks
with ``receipts=1``, naming the alerts a delivery receipt answered, without an
event id, so the client's place in the alert stream does not move and clients
that read every ``data:`` line as an alert (``amparo watch``) never see one.
Real Store, real aiohttp server, real HTTP client."""

from __future__ import annotations

import asyncio
import os

import aiohttp
import pytest

from node import stream
from node.receipts import ReceiptBook
from node.store import Store
from protocol import Receipt, seal_envelope, unseal
from tests.node.test_store import ALICE, BOB, NOW, make_alert, row
from tests.node.test_stream_replay import serve


async def lines(url: str, query: str, count: int) -> list[str]:
    """The first ``count`` non-empty, non-comment lines of the stream."""
    out: list[str] = []
    async with aiohttp.ClientSession() as http, http.get(url + query) as resp:
        async for raw in resp.content:
            line = raw.decode().rstrip("\n")
            if line and not line.startswith((":", "retry:")):
                out.append(line)
                if len(out) == count:
                    break
    return out


async def test_receipt_events_go_only_to_clients_that_ask(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # A handler notices a client gone at its next write: keep-alives every 0.2 s let
    # the server stop at once when the test is done, instead of after 15 s.
    monkeypatch.setattr(stream, "KEEPALIVE_S", 0.2)
    runner, url, service = await serve(store)
    service.receipts = ReceiptBook()
    try:
        alert = make_alert(created=NOW, headline="Detención en la caseta")
        receipt = seal_envelope(
            BOB, Receipt.of({alert.id: NOW + 5}), created=NOW + 10, expires=NOW + 3_600_000,
            recipients=[ALICE.enc_public, BOB.enc_public], random=os.urandom,
        )  # fmt: skip
        opened = unseal(receipt, ALICE)
        assert isinstance(opened, Receipt)
        service.receipts.authored(alert.id)
        service.receipts.record(receipt.id, BOB.sign_public, opened)
        asking = asyncio.create_task(lines(url, "?receipts=1", 2))
        plain = asyncio.create_task(lines(url, "", 3))
        async with asyncio.timeout(10):
            while len(service.subscribers) < 2:
                await asyncio.sleep(0.01)
        stored_receipt, stored_alert = store.add_envelopes([row(receipt), row(make_alert(created=NOW + 20))])
        for queue in list(service.subscribers):
            queue.put_nowait(stored_receipt)
            queue.put_nowait(stored_alert)
        got: list[str] = await asyncio.wait_for(asking, timeout=10)
        assert got == ["event: receipt", f'data: {{"alerts": ["{alert.id.hex()}"]}}']
        seen: list[str] = await asyncio.wait_for(plain, timeout=10)
        assert seen[0] == f"id: {stored_alert.seq}" and seen[1] == "event: alert"  # the receipt is skipped
        assert "receipt" not in "".join(seen)
    finally:
        await runner.cleanup()
