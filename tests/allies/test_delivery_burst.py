"""The delivery desk running for real (its worker, a real store, real HTTP to
receivers on loopback): a burst reaches every webhook once each and in order,
with the answered deliveries written down; a receiver that hangs holds up only
its own queue; an Apprise message names the organization that sent the alert.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from node.allies import delivery as delivery_mod
from node.allies import messages
from node.allies.delivery import DeliveryDesk
from node.config import Config
from node.devmesh import free_port
from node.store import Store, StoredEnvelope
from tests.node.test_store import ALICE, make_alert, row
from tests.response.test_page_outcome import T0, FakeNode

LOOPBACK = Config(name="Brigada Ejemplo", allow_private_targets=["127.0.0.0/8"])


class LiveNode(FakeNode):
    """A FakeNode whose spawned work really runs (the desk starts its workers)."""

    def __init__(self, store: Store) -> None:
        super().__init__(store, [T0], LOOPBACK)
        self.tasks: set[asyncio.Task[None]] = set()
        self.names: dict[bytes, str] = {}

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def author_names(self) -> dict[bytes, str]:
        return super().author_names() | self.names


class Receivers:
    """Webhook receivers on one port: ``/live/<name>`` answer 204 and record
    (alert id, delivery id); ``/dead`` takes the request and never answers."""

    def __init__(self) -> None:
        self.got: dict[str, list[tuple[str, str]]] = {}
        self.dead_calls = 0
        self.port = free_port()
        self.secrets: dict[str, str] = {}  # ``/batch/<name>``: its subscription's secret, to check signatures
        self.requests: dict[str, list[list[str]]] = {}  # ``/batch/<name>``: the alert ids of each answered request
        self.refuse: dict[str, int] = {}  # ``/batch/<name>``: answer 500 to this many requests first
        self.answer_only: dict[str, int] = {}  # ``/batch/<name>``: answer this many requests, then hang

    async def batched(self, request: web.Request) -> web.Response:
        """A receiver of lists (``batch`` on): checks the signature over the whole
        body and records each item, unless told to refuse or hang."""
        name = request.match_info["name"]
        body = await request.read()
        assert messages.verify(self.secrets[name], request.headers[messages.SIGNATURE_HEADER], body, now=T0 // 1000)  # the node's clock
        assert request.headers[messages.EVENT_HEADER] == messages.BATCH_EVENT
        if self.refuse.get(name, 0) > 0:
            self.refuse[name] -= 1
            return web.Response(status=500)
        if len(self.requests.get(name, [])) >= self.answer_only.get(name, 1 << 30):
            await asyncio.sleep(3600)
        doc = json.loads(body)
        items = doc["deliveries"]
        assert request.headers[messages.DELIVERY_HEADER] == items[0]["delivery"]
        assert all(item["subscription"] == doc["subscription"] for item in items)
        self.requests.setdefault(name, []).append([item["alert"]["id"] for item in items])
        self.got.setdefault(name, []).extend((item["alert"]["id"], item["delivery"]) for item in items)
        return web.Response(status=204)

    async def live(self, request: web.Request) -> web.Response:
        doc = await request.json()
        self.got.setdefault(request.match_info["name"], []).append(
            (doc["alert"]["id"], request.headers[messages.DELIVERY_HEADER])
        )
        return web.Response(status=204)

    async def dead(self, request: web.Request) -> web.Response:
        self.dead_calls += 1
        await asyncio.sleep(3600)
        raise AssertionError("never answers")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'amparo.db'}")
    yield store
    store.close()


@pytest.fixture
async def receivers() -> AsyncIterator[Receivers]:
    rx = Receivers()
    app = web.Application()
    app.router.add_post("/live/{name}", rx.live)
    app.router.add_post("/dead", rx.dead)
    app.router.add_post("/batch/{name}", rx.batched)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", rx.port).start()
    yield rx
    await runner.cleanup()


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def webhook(desk: DeliveryDesk, url: str, regions: list[str]) -> str:
    return desk.subscribe({"regions": regions, "channel": {"kind": "webhook", "url": url}}).id


def batched(desk: DeliveryDesk, rx: Receivers, name: str) -> str:
    sub = desk.subscribe({"regions": ["MX"], "channel": {"kind": "webhook", "url": rx.url(f"/batch/{name}")}, "batch": True})
    rx.secrets[name] = sub.secret
    return sub.id


def burst(node: LiveNode, desk: DeliveryDesk, count: int, first: int = 0) -> list[StoredEnvelope]:
    """Stored and handed to the desk the way the node does: one batch, row by row."""
    envs = [make_alert(created=T0 + i, headline=f"alerta {i}", regions=("MX-OAX",)) for i in range(first, first + count)]
    stored = node.store.add_envelopes([row(e, received_at=T0) for e in envs])
    for r in stored:
        desk.on_stored(r)
    return stored


async def stop(node: LiveNode, runner: asyncio.Task[None]) -> None:
    for task in [runner, *node.tasks]:
        task.cancel()
    await asyncio.gather(runner, *node.tasks, return_exceptions=True)


async def test_a_burst_reaches_every_webhook_once_and_in_order(store: Store, receivers: Receivers) -> None:
    node = LiveNode(store)
    desk = DeliveryDesk(node)  # type: ignore[arg-type]
    subs = {name: webhook(desk, receivers.url(f"/live/{name}"), ["MX"]) for name in ("a", "b", "c")}
    runner = asyncio.create_task(desk.run())
    try:
        await until(lambda: desk._gate is not None, 5, "the worker to start")
        stored = burst(node, desk, 150)
        expected = [r.id.hex() for r in stored]
        await until(lambda: all(len(receivers.got.get(n, [])) >= 150 for n in subs), 60, "150 deliveries each")
        await until(lambda: desk.delivered == 450, 10, "the deliveries to be written down")
        for name, sub_id in subs.items():
            got = receivers.got[name]
            assert [alert for alert, _ in got] == expected  # each once, in the order stored
            assert [d for _, d in got] == [f"{sub_id}-{alert}" for alert in expected]
        counts = store.delivery_counts()
        assert all(counts[s] == {"pending": 0, "delivered": 150, "failed": 0} for s in subs.values())
        desk.save_mark()
        assert store.get_meta(delivery_mod.MARK_KEY) == str(stored[-1].seq)
    finally:
        await stop(node, runner)
    assert all(len(receivers.got[n]) == 150 for n in subs)  # nothing went twice, also not at the stop


async def test_a_hanging_receiver_holds_up_only_its_own_queue(
    store: Store, receivers: Receivers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery_mod, "SEND_TIMEOUT_S", 30.0)
    node = LiveNode(store)
    desk = DeliveryDesk(node)  # type: ignore[arg-type]
    dead = webhook(desk, receivers.url("/dead"), ["MX"])
    live = webhook(desk, receivers.url("/live/ok"), ["MX"])
    runner = asyncio.create_task(desk.run())
    try:
        await until(lambda: desk._gate is not None, 5, "the worker to start")
        stored = burst(node, desk, 100)
        await until(lambda: len(receivers.got.get("ok", [])) == 100, 20, "the live receiver's 100 deliveries")
        await until(lambda: desk.delivered == 100, 10, "the deliveries to be written down")
        assert receivers.dead_calls == 1  # its first alert still waits for an answer; the rest wait behind it
        counts = store.delivery_counts()
        assert counts[live]["delivered"] == 100 and counts[dead] == {"pending": 100, "delivered": 0, "failed": 0}
        assert [d.envelope_id for d in store.pending_for(dead, T0, 200)] == [r.id for r in stored]
    finally:
        await stop(node, runner)
    assert store.delivery_counts()[dead]["pending"] == 100  # the stop lost nothing: all still to go


async def test_an_apprise_message_names_the_sending_organization(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = LiveNode(store)
    node.names = {ALICE.sign_public: "Colectivo Ejemplo del Istmo"}
    desk = DeliveryDesk(node)  # type: ignore[arg-type]
    sub = desk.subscribe({"regions": ["MX"], "channel": {"kind": "apprise", "url": "jsons://ally.example/hook"}})
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(delivery_mod, "send_apprise", lambda urls, title, body, policy: sent.append((title, body)) or True)
    (stored,) = burst(node, desk, 1)
    (pending,) = store.pending_for(sub.id, T0, 10)
    assert pending.envelope_id == stored.id
    assert await desk._send(pending) is None
    ((title, body),) = sent
    assert "alerta 0" in title
    assert "From: Colectivo Ejemplo del Istmo" in body.splitlines()


@pytest.mark.parametrize("change", [None, {"kind": "cancel", "by": "Colectivo Ejemplo", "reason": "Retirado"}])
def test_the_webhook_body_is_the_sorted_json_of_the_whole_document(change: dict[str, Any] | None) -> None:
    """The alert's JSON is encoded once per alert and spliced in: the bytes (and
    so the signature) are those of encoding the whole document."""
    alert = {"id": "5f0c", "headline": "Defensora detenida en Juchitán", "status": "actual", "areas": ["MX-OAX"]}
    whole: dict[str, Any] = {
        "event": "alert", "delivery": "s-5f0c", "subscription": "s", "drill": False, "link": "https://n/ui", "alert": alert
    } | ({"change": change} if change else {})
    expected = json.dumps(whole, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
    fields = {"delivery": "s-5f0c", "subscription": "s", "link": "https://n/ui", "change": change}
    assert messages.webhook_body(alert, **fields) == expected  # type: ignore[arg-type]
    assert messages.webhook_body(alert, encoded=messages.encode(alert), **fields) == expected  # type: ignore[arg-type]


async def test_the_mark_never_passes_a_row_not_queued_yet(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the worker runs, rows wait for the loop's next turn to be written; if
    that write fails (or the node dies first), the saved mark stays behind them,
    so the next start's catch-up queues them: nothing is lost."""
    node = LiveNode(store)
    desk = DeliveryDesk(node)  # type: ignore[arg-type]
    sub_id = desk.subscribe({"regions": ["MX"], "channel": {"kind": "webhook", "url": "https://ally.example/h"}}).id
    desk._gate = asyncio.Semaphore(1)  # as while ``run`` runs
    monkeypatch.setattr(store, "enqueue_deliveries", lambda rows, now: 1 / 0)
    stored = burst(node, desk, 5)
    desk.save_mark()  # the node's tick: the write fails, the mark must not move past
    assert store.get_meta(delivery_mod.MARK_KEY) is None
    assert store.pending_for(sub_id, T0, 10) == []
    monkeypatch.undo()

    restarted = DeliveryDesk(node)  # type: ignore[arg-type]
    restarted.catch_up()
    assert [d.envelope_id for d in store.pending_for(sub_id, T0, 10)] == [r.id for r in stored]
    assert store.get_meta(delivery_mod.MARK_KEY) == str(stored[-1].seq)


async def test_a_batched_webhook_takes_a_backlog_in_a_few_requests_in_order(store: Store, receivers: Receivers) -> None:
    """``batch`` on: the burst queued at once goes as lists of at most
    ``WEBHOOK_BATCH``, in order, each alert once with its own delivery id; a
    subscription without it still gets one alert per request."""
    node = LiveNode(store)
    desk = DeliveryDesk(node)  # type: ignore[arg-type]
    lists = batched(desk, receivers, "lists")
    single = webhook(desk, receivers.url("/live/single"), ["MX"])
    runner = asyncio.create_task(desk.run())
    try:
        await until(lambda: desk._gate is not None, 5, "the worker to start")
        stored = burst(node, desk, 150)
        expected = [r.id.hex() for r in stored]
        await until(lambda: len(receivers.got.get("lists", [])) >= 150, 30, "the batched receiver's 150")
        await until(lambda: len(receivers.got.get("single", [])) >= 150, 60, "the single receiver's 150")
        await until(lambda: desk.delivered == 300, 10, "the deliveries to be written down")
        assert receivers.got["lists"] == [(alert, f"{lists}-{alert}") for alert in expected]
        assert [len(r) for r in receivers.requests["lists"]] == [64, 64, 22]  # queued in one go: full lists
        assert [a for a, _ in receivers.got["single"]] == expected
        counts = store.delivery_counts()
        assert counts[lists] == counts[single] == {"pending": 0, "delivered": 150, "failed": 0}
    finally:
        await stop(node, runner)
    assert len(receivers.got["lists"]) == 150  # nothing went twice, also not at the stop


async def test_a_refused_batch_is_retried_whole_and_in_order(store: Store, receivers: Receivers) -> None:
    node = LiveNode(store)
    desk = DeliveryDesk(node)  # type: ignore[arg-type]
    lists = batched(desk, receivers, "flaky")
    receivers.refuse["flaky"] = 1
    runner = asyncio.create_task(desk.run())
    try:
        await until(lambda: desk._gate is not None, 5, "the worker to start")
        stored = burst(node, desk, 20)
        await until(lambda: desk.failures == 1, 10, "the refused request")
        assert store.delivery_counts()[lists] == {"pending": 20, "delivered": 0, "failed": 0, "last_error": "HTTP 500"}
        node.now[0] += delivery_mod.FIRST_RETRY_MS  # its retry is due
        desk._wake.set()
        await until(lambda: desk.delivered == 20, 10, "the retry to be answered and written down")
        assert receivers.got["flaky"] == [(r.id.hex(), f"{lists}-{r.id.hex()}") for r in stored]
    finally:
        await stop(node, runner)


async def test_a_stop_mid_batch_loses_nothing_and_resends_only_the_unanswered(store: Store, receivers: Receivers) -> None:
    """The receiver answers the first list and never the second; the node stops.
    The first is written down as delivered, everything else still pending; the
    next start sends the rest in order and never the answered list again."""
    node = LiveNode(store)
    desk = DeliveryDesk(node)  # type: ignore[arg-type]
    lists = batched(desk, receivers, "stuck")
    receivers.answer_only["stuck"] = 1
    runner = asyncio.create_task(desk.run())
    try:
        await until(lambda: desk._gate is not None, 5, "the worker to start")
        stored = burst(node, desk, 100)
        await until(lambda: desk.delivered == 64, 10, "the first list to be answered and written down")
    finally:
        await stop(node, runner)
    assert store.delivery_counts()[lists] == {"pending": 36, "delivered": 64, "failed": 0}

    receivers.answer_only.clear()
    restarted = DeliveryDesk(node)  # type: ignore[arg-type]
    runner = asyncio.create_task(restarted.run())
    try:
        await until(lambda: restarted.delivered == 36, 10, "the rest after the restart")
    finally:
        await stop(node, runner)
    assert receivers.got["stuck"] == [(r.id.hex(), f"{lists}-{r.id.hex()}") for r in stored]
    assert store.delivery_counts()[lists] == {"pending": 0, "delivered": 100, "failed": 0}


async def test_a_worker_run_dry_neither_waits_for_the_disk_nor_sends_twice(
    store: Store, receivers: Receivers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the commit of what a receiver answered is held up (a slow disk, the
    ingest's commits ahead of it), the subscription's worker still ends when its
    queue runs dry, the next alerts go at once, and nothing answered goes again;
    a commit that fails makes those rows go again (at least once)."""
    node = LiveNode(store)
    desk = DeliveryDesk(node)  # type: ignore[arg-type]
    sub_id = webhook(desk, receivers.url("/live/ally"), ["MX"])
    disk = threading.Event()
    commits: list[list[bytes]] = []  # the envelope ids of each commit
    finish = store.finish_deliveries

    def slow_finish(done: list[Any], state: str, now: int, error: str | None = None) -> None:
        commits.append([d.envelope_id for d in done])
        if len(commits) == 1:
            assert disk.wait(30)  # the first commit waits for the test
            raise OSError("disk full")  # ... and fails: those rows are still pending
        finish(done, state, now, error)

    monkeypatch.setattr(store, "finish_deliveries", slow_finish)
    runner = asyncio.create_task(desk.run())
    try:
        await until(lambda: desk._gate is not None, 5, "the worker to start")
        first = burst(node, desk, 5)
        await until(lambda: len(receivers.got.get("ally", [])) == 5 and bool(commits), 10, "five answered, a commit begun")
        await until(lambda: sub_id not in desk._busy, 10, "the worker to end without waiting for the commit")
        second = burst(node, desk, 5, first=5)
        await until(lambda: len(receivers.got["ally"]) == 10, 10, "the next five, while the first commit hangs")
        assert [a for a, _ in receivers.got["ally"]] == [r.id.hex() for r in first + second]  # none twice
        disk.set()  # the first commit fails: its five go again, then everything is written down
        lost = [e.hex() for e in commits[0]]  # answered, but their commit failed
        await until(lambda: len(receivers.got["ally"]) >= 10 + len(lost), 10, "those whose commit failed, again")
        await until(lambda: store.delivery_counts()[sub_id]["delivered"] == 10, 10, "all ten written down")
        again = [a for a, _ in receivers.got["ally"][10:]]
        assert again[: len(lost)] == lost  # first, in order (answered rows not yet written down may follow: at least once)
        assert all(len(c) == len(set(c)) for c in commits) and len(commits[0]) <= 5
    finally:
        disk.set()
        await stop(node, runner)
