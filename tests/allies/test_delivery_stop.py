"""A clean stop in the middle of a batch keeps what receivers already answered:
those deliveries are written down as delivered and never go again; only the
request in flight at the stop stays pending (at least once, docs/allies.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from node.allies import delivery as delivery_mod
from node.allies.delivery import DeliveryDesk
from node.config import Config
from node.store import Store
from tests.node.test_store import ALICE, NOW, alerts_at, row

SUB = "5ub5cr1pt10n"


async def test_a_clean_stop_mid_batch_keeps_the_answered_deliveries(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'amparo.db'}")
    try:
        stored = store.add_envelopes([row(e) for e in alerts_at(10)])
        store.put_subscription(
            SUB,
            {
                "id": SUB,
                "regions": ["MX"],
                "channel": {"kind": "webhook", "url": "https://ally.example/hook"},
                "secret": "00" * 32,
                "created": NOW,
            },
            NOW,
        )
        store.enqueue_deliveries([(SUB, r.id, r.seq) for r in stored], NOW)
        service = SimpleNamespace(store=store, clock=lambda: NOW, identity=ALICE, config=Config(name="N"))
        desk = DeliveryDesk(service)  # type: ignore[arg-type]
        answered: list[bytes] = []
        in_flight = asyncio.Event()

        async def send(d: Any) -> str | None:
            if len(answered) == 4:
                in_flight.set()
                await asyncio.sleep(3600)  # the fifth receiver call is under way when the node stops
            answered.append(d.envelope_id)
            return None

        desk._send = send  # type: ignore[method-assign]
        task = asyncio.create_task(desk._drain(SUB, asyncio.Semaphore(delivery_mod.PARALLEL)))
        await asyncio.wait_for(in_flight.wait(), timeout=10)
        task.cancel()  # what NodeService.stop does to its tasks
        await asyncio.gather(task, return_exceptions=True)

        counts = store.delivery_counts()[SUB]
        assert counts["delivered"] == 4 and counts["pending"] == 6
        assert [d.envelope_id for d in store.pending_for(SUB, NOW, 100)] == [r.id for r in stored[4:]]
    finally:
        store.close()
