"""Pages survive a crash at any moment, with a fake clock and a real store.

The desk records each page ``pending`` before the escalation step that
announces it, then ``sending`` (naming each person just before paging them),
then ``sent``. A node that stops after deciding to page but before trying
sends that page on its next start; one that stops in the middle of paging
finishes with the people not yet tried and never pages anyone twice. The
notifier is a stand-in for Apprise (real Apprise deliveries are in
tests/e2e/test_escalation.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from node.alerts import Readable, open_row
from node.config import Config
from node.host import Host
from node.response import desk as desk_mod
from node.response.desk import ResponseDesk
from node.store import Store, StoredEnvelope
from protocol import Alert, Area, Envelope, Identity, sign_envelope
from tests.node.test_store import row

ALLY = Identity.from_random(bytes(range(64)))
US = Identity.from_random(bytes(range(64, 128)))
T0 = 1_795_000_000_000
TIMEOUT = 60_000


class Crash(BaseException):
    """The process dies here (not an Exception: nothing may catch it)."""


class FakeNode:
    """What the desk needs of a node: a store, a clock it does not own, and a
    spawn that only collects work, so a test decides whether it ever runs."""

    made: ClassVar[list[FakeNode]] = []  # this test's nodes, for ``close_unrun``

    def __init__(self, store: Store, now: list[int], config: Config | None = None) -> None:
        self.store = store
        self.now = now
        self.identity = US
        self.key = US.sign_public
        self.config = config or Config(name="Brigada Ejemplo", watch_regions=["MX"], ack_timeout="60s")
        self.spawned: list[Coroutine[Any, Any, None]] = []
        self.family: set[bytes] = set()  # a rotation family, when a test sets one
        self.desk = ResponseDesk(self)
        FakeNode.made.append(self)

    @classmethod
    def close_unrun(cls) -> None:
        """Close the work a test left unrun, as a stopping node cancels it, so
        the garbage collector does not warn of coroutines never awaited in
        whatever test it happens to run during."""
        for node in cls.made:
            node.crash()
        cls.made.clear()

    def clock(self) -> int:
        return self.now[0]

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self.spawned.append(coro)

    def own_keys(self) -> list[bytes]:
        return [self.key]

    def same_author(self, first: bytes, second: bytes) -> bool:
        return first == second or {first, second} <= self.family

    def open(self, stored: StoredEnvelope) -> Readable:
        return open_row(stored, self.identity)

    def author(self, env: Envelope) -> StoredEnvelope | None:
        """What this node signs is stored, nothing more (no mesh to push to)."""
        row = StoredEnvelope.from_envelope(env, received_at=self.clock(), from_peer=None)
        self.store.add_envelopes([row], [], [])
        return self.store.get(env.id)

    def author_of(self, key: bytes) -> bytes:
        return key

    def author_names(self) -> dict[bytes, str]:
        return {self.key: self.config.name}

    def recipients_of(self, env: Envelope) -> list[bytes]:
        return []

    def related(self, alert_id: bytes) -> list[StoredEnvelope]:
        return self.store.related(alert_id)

    def run_spawned(self) -> None:
        async def drain() -> None:
            while self.spawned:
                await self.spawned.pop(0)

        asyncio.run(drain())

    def crash(self) -> None:
        for coro in self.spawned:
            coro.close()  # never ran: the process is gone
        self.spawned.clear()


@dataclass
class World:
    store: Store
    now: list[int]
    paged: list[str] = field(default_factory=list)
    crash_at: list[str] = field(default_factory=list)  # die when paging this person


@pytest.fixture
def world(store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """On both backends (the store fixtures of tests/node): the desk's storage
    calls must keep these promises on PostgreSQL as on SQLite."""
    w = World(Store(store_url), [T0])

    def notify(urls: list[str], title: str, body: str, policy: object) -> bool:
        person = urls[0].rsplit("/", 1)[-1]
        if person in w.crash_at:
            w.crash_at.remove(person)
            raise Crash
        w.paged.append(person)
        return True

    monkeypatch.setattr(desk_mod, "_notify", notify)
    monkeypatch.setattr(desk_mod, "_check_channel", lambda url, policy: None)
    yield w
    w.store.close()


def as_host(node: FakeNode) -> Host:
    """mypy checks the fake against the desks' interface (pyproject.toml [tool.mypy] files)."""
    return node


def setup_org(node: FakeNode) -> str:
    for name in ("Ana", "Bruno", "Carmen", "Diego"):
        node.desk.add_responder(name, "responder", [f"json://127.0.0.1:9/{name}"], None)
    node.desk.add_shift("Ana", T0, 24, "Bruno", False)
    alert = sign_envelope(
        ALLY, Alert(headline="Defensora amenazada", areas=(Area("MX-OAX"),)), created=T0, expires=T0 + 3_600_000
    )
    (stored,) = node.store.add_envelopes([row(alert)])
    node.desk.on_delivered(stored)
    return alert.id.hex()


def restart(node: FakeNode) -> FakeNode:
    node.crash()
    again = FakeNode(node.store, node.now, node.config)
    again.desk.tick()  # the first tick after a start resumes unfinished pages
    again.run_spawned()
    return again


def tick(node: FakeNode, at: int) -> None:
    node.now[0] = at
    node.desk.tick()
    node.run_spawned()


def states(node: FakeNode, alert: str) -> list[tuple[str, str]]:
    return [(d["targets"], d["state"]) for d in node.desk.pages(alert)]


def test_a_page_decided_but_never_tried_is_sent_after_a_restart(world: World) -> None:
    node = FakeNode(world.store, world.now)
    alert = setup_org(node)
    assert states(node, alert) == [("on-call", "pending")]
    node = restart(node)  # the node died before paging Ana
    assert world.paged == ["Ana"] and states(node, alert) == [("on-call", "sent")]
    tick(node, T0 + 1000)
    assert world.paged == ["Ana"]  # never twice

    world.now[0] = T0 + TIMEOUT  # silence: the backup's step is decided, then the node dies again
    node.desk.tick()
    assert states(node, alert) == [("on-call", "sent"), ("backup", "pending")]
    node = restart(node)
    assert world.paged == ["Ana", "Bruno"]
    tick(node, T0 + 2 * TIMEOUT - 1)
    assert world.paged == ["Ana", "Bruno"]  # the next step waits for its deadline
    tick(node, T0 + 2 * TIMEOUT)
    assert world.paged == ["Ana", "Bruno", "Ana", "Bruno", "Carmen", "Diego"]
    assert [s for _, s in states(node, alert)] == ["sent", "sent", "sent"]
    texts = [n["text"] for n in node.desk.timeline(alert)]
    assert texts.count("page (backup): Bruno") == 1 and texts.count("paged on-call") == 1


def test_a_crash_while_paging_finishes_the_rest_and_pages_nobody_twice(world: World) -> None:
    node = FakeNode(world.store, world.now)
    alert = setup_org(node)
    tick(node, T0)
    world.crash_at.append("Carmen")  # the node dies while paging Carmen in the last step
    world.now[0] = T0 + 2 * TIMEOUT  # the backup's and everyone's steps fall due together
    node.desk.tick()
    with pytest.raises(Crash):
        node.run_spawned()
    assert world.paged == ["Ana", "Bruno", "Ana", "Bruno"]
    assert states(node, alert)[-1] == ("all", "sending")
    node = restart(node)
    assert world.paged == ["Ana", "Bruno", "Ana", "Bruno", "Diego"]  # Carmen may have been reached: not again
    assert [s for _, s in states(node, alert)] == ["sent", "sent", "sent"]
    texts = [n["text"] for n in node.desk.timeline(alert)]
    assert any("stopped while paging Carmen" in t and "not paged again" in t for t in texts)
    tick(node, T0 + 10 * TIMEOUT)
    assert len(world.paged) == 5


# -- who may stop an escalation with a cancel -------------------------------------------------
# Only the alert's author: any key of its rotation family may, another author in the
# horizon may not (it would silence an organization's response to someone else's emergency).
ALLY_ROTATED = Identity(sign_seed=bytes(range(200, 232)), enc_secret=ALLY.enc_secret)
STRANGER = Identity.from_random(bytes(range(128, 192)))


def _cancel(node: FakeNode, author: Identity, alert_hex: str, at: int) -> None:
    body = Alert(
        headline="Falsa alarma", areas=(Area("MX-OAX"),), msg_type="cancel", references=(bytes.fromhex(alert_hex),)
    )
    (stored,) = node.store.add_envelopes([row(sign_envelope(author, body, created=at, expires=at + 3_600_000))])
    node.desk.on_delivered(stored)


def _state(node: FakeNode, alert_hex: str) -> str:
    doc = node.desk.escalation_json(alert_hex)
    assert doc is not None
    return str(doc["state"])


def test_a_cancel_by_another_author_does_not_stop_the_escalation(world: World) -> None:
    node = FakeNode(world.store, world.now)
    alert = setup_org(node)
    running = _state(node, alert)
    _cancel(node, STRANGER, alert, T0 + 1_000)
    assert _state(node, alert) == running
    _cancel(node, ALLY, alert, T0 + 2_000)
    assert _state(node, alert) != running
    node.crash()  # close the pages it queued, never run here


def test_the_authors_rotated_key_stops_it(world: World) -> None:
    node = FakeNode(world.store, world.now)
    node.family = {ALLY.sign_public, ALLY_ROTATED.sign_public}
    alert = setup_org(node)
    running = _state(node, alert)
    _cancel(node, ALLY_ROTATED, alert, T0 + 1_000)
    assert _state(node, alert) != running
    node.crash()


def test_an_acknowledged_escalation_is_never_due_again(world: World) -> None:
    """The tick asks the store only for due deadlines: once acknowledged, the
    escalation has none, so no later tick (or restart) pages anyone."""
    node = FakeNode(world.store, world.now)
    alert = setup_org(node)
    tick(node, T0)
    tick(node, T0 + TIMEOUT)
    assert world.paged == ["Ana", "Bruno"]
    node.desk.acknowledge(alert, by="Ana")
    assert world.store.due_escalations(T0 + 100 * TIMEOUT) == []
    tick(node, T0 + 3 * TIMEOUT)
    node = restart(node)
    tick(node, T0 + 10 * TIMEOUT)
    assert world.paged == ["Ana", "Bruno"] and _state(node, alert) == "acknowledged"
    assert world.store.open_escalations() == []
