"""The node's prune also removes response records finished more than
``retention_days`` ago, and keeps open work however old (a real NodeService on
an SQLite store, its clock moved by hand; the store's rules for each table are
in tests/node/test_store_response.py)."""

from __future__ import annotations

from pathlib import Path

from node.config import Config
from node.service import NodeService
from node.store import EscalationRow, PageRow, Store
from protocol import Identity

T0 = 1_795_000_000_000
DAY = 86_400_000
US = Identity.from_random(bytes(range(64)))
ENDED, PAGING = "aa" * 32, "bb" * 32


def node(tmp_path: Path, now: list[int], retention_days: int) -> NodeService:
    store = Store(f"sqlite:///{tmp_path / 'amparo.db'}")
    config = Config(name="Brigada Ejemplo", retention_days=retention_days)
    return NodeService(tmp_path, config, US, store, clock=lambda: now[0])


def fill(store: Store) -> None:
    store.put_escalation(EscalationRow(ENDED, T0, 2, 0, "acknowledged", "Ana"), T0)
    store.add_page(PageRow(ENDED, 0, "on-call", "sent", ["Ana"], ["Ana"], T0), T0)
    store.put_escalation(EscalationRow(PAGING, T0, 0, T0 + 60_000), T0)


def test_finished_escalations_and_pages_go_after_retention_days(tmp_path: Path) -> None:
    now = [T0 + 2 * DAY - 1]
    service = node(tmp_path, now, retention_days=2)
    fill(service.store)
    service.prune(force=True)
    assert service.store.get_escalation(ENDED) is not None  # not yet two days
    now[0] = T0 + 2 * DAY + 1
    service.prune(force=True)
    assert service.store.get_escalation(ENDED) is None and service.store.pages_of(ENDED) == []
    assert service.store.open_escalations() == [PAGING]  # still paging: open work stays
    service.store.close()


def test_retention_zero_keeps_everything(tmp_path: Path) -> None:
    now = [T0 + 1000 * DAY]
    service = node(tmp_path, now, retention_days=0)
    fill(service.store)
    service.prune(force=True)
    assert service.store.get_escalation(ENDED) is not None and len(service.store.pages_of(ENDED)) == 1
    service.store.close()
