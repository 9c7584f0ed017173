"""The mesh in one process: thousands of `MeshNode`s, a virtual clock, hostile links.

The simulator plays the node layer's part for every node: it carries out
`Push`, `StartReconcile` and `Fetch` over simulated links with per-link latency
and message loss, answers with `PushResult`, `ReconcileDone` and `Received`,
carries tree push's `Announce`, `Graft` and `Prune` as requests with empty
answers (`Announced`, `Grafted`, `Pruned` at the other end; with no answer,
`AnnounceFailed` or `SignalFailed` after the request timeout; requests and
answers lost like any other message), and keeps what `Store`, `SaveMark`
and `SaveStanding` persist so a node that goes down can
restart from its "disk" exactly like a real one. Partitions and churn are
scheduled like any other event. The same `mesh/` code runs here and in
`node/`: what converges here converges there, given the same events.

Trust: every simulated node vouches for the alert authors (nodes
`0..authors-1`), so authors are inside everyone's horizon and nothing else
needs to travel; a node's own vouch shows up in reconciliation, is refused by
peers as outside their horizon, and is remembered so it is not fetched again.

Quiet droppers (`go_quiet`) accept and acknowledge everything and send
nothing on: no pushes, no announcements, no prunes or grafts, empty answers to
fetches. They still fetch and reconcile for themselves. A node quiet from the
start never becomes a tree link (the first item floods, and the tree is where
the first copies went), so scenarios silence nodes after the tree has formed:
then the tree must route around them (`mesh.tree`).

Items are synthetic (ids are BLAKE2b of counters, no signatures): the node
layer verifies signatures before the mesh ever sees an item.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from mesh.events import (
    Action,
    Announce,
    Announced,
    AnnounceFailed,
    Authored,
    Deliver,
    Disconnect,
    Event,
    Fetch,
    FetchDone,
    Graft,
    Grafted,
    PeerUp,
    Prune,
    Pruned,
    Push,
    PushResult,
    Received,
    ReconcileDone,
    Rejected,
    SaveMark,
    SaveStanding,
    SignalFailed,
    StartReconcile,
    Store,
    Tick,
)
from mesh.gossip import RETRYABLE, MeshNode, Timing
from mesh.interfaces import Item
from mesh.outbox import Pacing
from mesh.peers import SavedStanding
from mesh.reconcile import exchange

DAY_MS = 86_400_000
# Shorter than a real node's defaults so scenarios settle in minutes of virtual time.
SIM_PACING = Pacing(backoff_base_ms=1_000, backoff_cap_ms=30_000, push_timeout_ms=10_000)
SIM_TIMING = Timing(reconcile_every_ms=60_000, fetch_timeout_ms=10_000)
#: The same with tree push on (`mesh.tree`): the simulator's default stays flooding, like the node's.
TREE_TIMING = replace(SIM_TIMING, tree_push=True)


def synthetic_key(label: str, number: int) -> bytes:
    return hashlib.blake2b(f"{label}:{number}".encode(), digest_size=32).digest()


@dataclass(frozen=True, slots=True)
class SimConfig:
    nodes: int = 100
    degree: int = 8
    latency_ms: tuple[int, int] = (10, 100)
    loss: float = 0.0
    seed: int = 1
    authors: int = 1
    trust_depth: int = 2
    request_timeout_ms: int = 3_000
    alert_bytes: int = 1_024
    pacing: Pacing = field(default_factory=lambda: SIM_PACING)
    timing: Timing = field(default_factory=lambda: SIM_TIMING)


def random_graph(nodes: int, degree: int, rng: random.Random) -> list[list[int]]:
    """A ring (so it is connected) plus `degree/2 - 1` random chords from every node.

    Every node ends with at least `degree/2 + 1` links and about `degree` on
    average, like organizations that each pair with a few allies of their choice.
    """
    edges: set[tuple[int, int]] = set()
    if nodes > 2:
        edges.update((min(a, (a + 1) % nodes), max(a, (a + 1) % nodes)) for a in range(nodes))
    elif nodes == 2:
        edges.add((0, 1))
    chords = max(0, degree // 2 - 1)
    for a in range(nodes):
        added = attempts = 0
        while added < chords and attempts < 20 * chords and nodes > 3:
            attempts += 1
            b = rng.randrange(nodes)
            pair = (min(a, b), max(a, b))
            if a != b and pair not in edges:
                edges.add(pair)
                added += 1
    neighbours: list[list[int]] = [[] for _ in range(nodes)]
    for a, b in sorted(edges):
        neighbours[a].append(b)
        neighbours[b].append(a)
    return neighbours


@dataclass(slots=True)
class SimNode:
    index: int
    key: bytes
    peers: list[int]
    mesh: MeshNode
    up: bool = True
    epoch: int = 0
    disk: list[tuple[Item, int]] = field(default_factory=list)
    marks: dict[bytes, int] = field(default_factory=dict)
    standings: dict[bytes, SavedStanding] = field(default_factory=dict)
    tick_at: int | None = None


@dataclass(slots=True)
class Spread:
    """How one alert travelled: first arrival time, hop count and sender per node."""

    item: Item
    sent_at: int
    arrived: dict[int, int] = field(default_factory=dict)
    hops: dict[int, int] = field(default_factory=dict)
    came_from: dict[int, int] = field(default_factory=dict)
    messages_at_send: int = 0
    pushes_at_send: int = 0
    full: int = 0  # full copies sent (pushed or in a fetch answer), lost ones included
    announced: int = 0  # times its id was announced
    #: The full copies by what became of them: pushed and new to the receiver, pushed
    #: to a holder (duplicate), pushed into a quiet dropper, lost, fetched.
    copies: Counter[str] = field(default_factory=Counter)

    def _nth(self, values: Iterable[int], fraction: float, population: int) -> int | None:
        ordered = sorted(values)
        needed = max(1, -(-int(fraction * population * 1000) // 1000))
        return ordered[needed - 1] if len(ordered) >= needed else None

    def time_to(self, fraction: float, population: int) -> int | None:
        """Virtual ms after sending until `fraction` of `population` nodes had it."""
        at = self._nth(self.arrived.values(), fraction, population)
        return None if at is None else at - self.sent_at

    def hops_to(self, fraction: float, population: int) -> int | None:
        return self._nth(self.hops.values(), fraction, population)


class Simulation:
    """N nodes, one heap of timed events. Deterministic for a given config."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)  # noqa: S311 - a simulation, not secrets
        self.now = 0
        self._heap: list[tuple[int, int, Callable[..., object], tuple[Any, ...]]] = []
        self._counter = 0
        self.graph = random_graph(config.nodes, config.degree, self.rng)
        self.keys = [synthetic_key("node", i) for i in range(config.nodes)]
        self.index_of = {key: i for i, key in enumerate(self.keys)}
        self._latency: dict[tuple[int, int], int] = {}
        self.group: list[int] = [0] * config.nodes
        self.messages: Counter[str] = Counter()
        self.rejections: Counter[str] = Counter()
        self.disconnects: list[tuple[int, int, str]] = []
        self.spreads: dict[bytes, Spread] = {}
        self._alerts_sent = 0
        self.quiet: set[int] = set()  # quiet droppers (`go_quiet`)
        author_keys = [self.keys[a] for a in range(min(config.authors, config.nodes))]
        self.nodes: list[SimNode] = []
        for i in range(config.nodes):
            disk = [
                (self._vouch(i, subject), seq)
                for seq, subject in enumerate(author_keys, 1)
                if subject != self.keys[i]
            ]
            node = SimNode(i, self.keys[i], self.graph[i], self._boot(i, disk, {}), disk=disk)
            self.nodes.append(node)
        for node in self.nodes:
            for peer in node.peers:
                self._at(self.rng.randrange(50), self._feed, node.index, node.epoch, PeerUp(self.keys[peer]))

    # -- construction ---------------------------------------------------------------------
    def _vouch(self, voucher: int, subject: bytes) -> Item:
        item_id = hashlib.blake2b(b"vouch" + self.keys[voucher] + subject, digest_size=32).digest()
        return Item(item_id, 1, 0, self.keys[voucher], "vouch", b"v" + item_id, subject=subject)

    def _boot(
        self,
        i: int,
        disk: list[tuple[Item, int]],
        marks: dict[bytes, int],
        standings: dict[bytes, SavedStanding] | None = None,
    ) -> MeshNode:
        return MeshNode(
            self.keys[i],
            random=random.Random(self.config.seed * 1_000_003 + i),  # noqa: S311
            now=self.now,
            peers=[self.keys[p] for p in self.graph[i]],
            stored=disk,
            marks=marks,
            standings=standings,
            trust_depth=self.config.trust_depth,
            pacing=self.config.pacing,
            timing=self.config.timing,
        )

    def latency(self, a: int, b: int) -> int:
        pair = (min(a, b), max(a, b))
        value = self._latency.get(pair)
        if value is None:
            low, high = self.config.latency_ms
            value = self._latency[pair] = self.rng.randint(low, high)
        return value

    # -- the clock ------------------------------------------------------------------------
    def _at(self, when: int, fn: Callable[..., object], *args: Any) -> None:
        self._counter += 1
        heapq.heappush(self._heap, (max(when, self.now), self._counter, fn, args))

    def run_until(self, when: int, stop: Callable[[], bool] | None = None) -> None:
        heap = self._heap
        while heap and heap[0][0] <= when:
            at, _, fn, args = heapq.heappop(heap)
            self.now = at
            fn(*args)
            if stop is not None and stop():
                return
        self.now = max(self.now, when)

    # -- feeding nodes --------------------------------------------------------------------
    def _feed(self, i: int, epoch: int, event: Event) -> list[Action] | None:
        """Hand `event` to node `i` if it is still the same run; its actions, or None."""
        node = self.nodes[i]
        if not node.up or node.epoch != epoch:
            return None
        actions = node.mesh.handle(event, self.now)
        sender = self.index_of.get(event.peer) if isinstance(event, Received) else None
        self._carry_out(node, actions, sender)
        self._schedule_tick(node)
        return actions

    def _tick(self, i: int, epoch: int, when: int) -> None:
        node = self.nodes[i]
        if node.tick_at != when:
            return
        node.tick_at = None
        self._feed(i, epoch, Tick())

    def _schedule_tick(self, node: SimNode) -> None:
        wake = node.mesh.wakeup_at()
        if wake is None:
            return
        wake = max(wake, self.now + 10)
        if node.tick_at is None or wake < node.tick_at:
            node.tick_at = wake
            self._at(wake, self._tick, node.index, node.epoch, wake)

    # -- the transport --------------------------------------------------------------------
    def reachable(self, a: int, b: int) -> bool:
        return self.nodes[a].up and self.nodes[b].up and self.group[a] == self.group[b]

    def _lost(self) -> bool:
        return self.config.loss > 0 and self.rng.random() < self.config.loss

    def _carry_out(self, node: SimNode, actions: list[Action], sender: int | None) -> None:
        quiet = node.index in self.quiet
        for action in actions:
            if isinstance(action, Store):
                node.disk.append((action.item, action.seq))
            elif isinstance(action, Deliver):
                self._delivered(node.index, action.item, sender)
            elif quiet and isinstance(action, Push | Announce | Graft | Prune):
                if isinstance(action, Push):  # "sent": its outbox moves on, nothing leaves
                    done = PushResult(action.peer, action.batch_id, True)
                    self._at(self.now + 1, self._feed, node.index, node.epoch, done)
            elif isinstance(action, Push):
                self._push(node, action)
            elif isinstance(action, Announce):
                self._announce(node, action)
            elif isinstance(action, Graft):
                self._signal(node, action.peer, "graft", Grafted(node.key, action.roots), action.roots)
            elif isinstance(action, Prune):
                self._signal(node, action.peer, "prune", Pruned(node.key, action.roots), action.roots, graft=False)
            elif isinstance(action, StartReconcile):
                self._reconcile(node, self.index_of[action.peer])
            elif isinstance(action, Fetch):
                self._fetch(node, self.index_of[action.peer], action.ids)
            elif isinstance(action, SaveMark):
                node.marks[action.peer] = action.seq
            elif isinstance(action, SaveStanding):
                node.standings[action.peer] = action.saved
            elif isinstance(action, Disconnect):
                self.disconnects.append((node.index, self.index_of.get(action.peer, -1), action.reason))
            elif isinstance(action, Rejected):
                self.rejections[action.reason] += 1

    def _delivered(self, i: int, item: Item, sender: int | None) -> None:
        spread = self.spreads.get(item.id)
        if spread is None or i in spread.arrived:
            return
        spread.arrived[i] = self.now
        spread.hops[i] = 0 if sender is None else spread.hops.get(sender, 0) + 1
        if sender is not None:
            spread.came_from[i] = sender

    def _count(self, ids: Iterable[bytes], figure: str) -> None:
        for item_id in ids:
            spread = self.spreads.get(item_id)
            if spread is not None:
                setattr(spread, figure, getattr(spread, figure) + 1)

    def _signal(
        self, node: SimNode, peer: bytes, kind: str, event: Event, roots: tuple[bytes, ...], *, graft: bool = True
    ) -> None:
        """A graft or prune and its empty answer; with no answer, `SignalFailed`."""
        j = self.index_of[peer]
        self.messages[kind] += 1
        if self.reachable(node.index, j) and not self._lost():
            self._at(self.now + self.latency(node.index, j), self._feed, j, self.nodes[j].epoch, event)
            self.messages[f"{kind}-reply"] += 1
            if not self._lost():
                return
        failed = SignalFailed(peer, graft, roots)
        self._at(self.now + self.config.request_timeout_ms, self._feed, node.index, node.epoch, failed)

    def _announce(self, node: SimNode, action: Announce) -> None:
        """An announcement and its empty answer; with no answer, `AnnounceFailed`."""
        j = self.index_of[action.peer]
        self.messages["announce"] += 1
        self._count(action.ids, "announced")
        if self.reachable(node.index, j) and not self._lost():
            lat = self.latency(node.index, j)
            self._at(self.now + lat, self._feed, j, self.nodes[j].epoch, Announced(node.key, action.ids, action.hops))
            self.messages["announce-reply"] += 1
            if not self._lost():
                return
        failed = AnnounceFailed(action.peer, action.ids)
        self._at(self.now + self.config.request_timeout_ms, self._feed, node.index, node.epoch, failed)

    def _push(self, node: SimNode, action: Push) -> None:
        j = self.index_of[action.peer]
        self.messages["push"] += 1
        if self.reachable(node.index, j):
            self._count((item.id for item in action.items), "full")
            if self._lost():
                self._copies(action.items, "push lost")
            else:
                arrive = self.now + self.latency(node.index, j)
                self._at(arrive, self._arrive, node.index, node.epoch, j, self.nodes[j].epoch, action)
                return
        failed = PushResult(action.peer, action.batch_id, False)
        self._at(self.now + self.config.request_timeout_ms, self._feed, node.index, node.epoch, failed)

    def _copies(self, items: Iterable[Item], fate: str) -> None:
        for item in items:
            spread = self.spreads.get(item.id)
            if spread is not None:
                spread.copies[fate] += 1

    def _arrive(self, i: int, epoch: int, j: int, epoch_j: int, action: Push) -> None:
        """A push reaches node `j`; the reply names what `j` deferred, as the real one does."""
        receiver = self.nodes[j]
        for item in action.items:
            fate = "push duplicate" if item.id in receiver.mesh else "push new"
            if not receiver.up or receiver.epoch != epoch_j:
                fate = "push lost"
            self._copies((item,), "push into quiet" if j in self.quiet else fate)
        actions = self._feed(j, epoch_j, Received(self.keys[i], action.items, action.hops))
        ok = actions is not None
        if ok:
            self.messages["push-reply"] += 1
            ok = not self._lost()
        if not ok:
            failed = PushResult(action.peer, action.batch_id, False)
            self._at(self.now + self.config.request_timeout_ms, self._feed, i, epoch, failed)
            return
        deferred = tuple(a.item_id for a in actions or () if isinstance(a, Rejected) and a.reason in RETRYABLE)
        result = PushResult(action.peer, action.batch_id, True, deferred)
        self._at(self.now + self.latency(i, j), self._feed, i, epoch, result)

    def _reconcile(self, node: SimNode, j: int) -> None:
        if not self.reachable(node.index, j):
            self.messages["reconcile"] += 1
            return
        session, count = exchange(node.mesh.keys(), self.nodes[j].mesh.keys())
        for _ in range(count):
            self.messages["reconcile"] += 1
            if self._lost():
                return
        lat = self.latency(node.index, j)
        done = ReconcileDone(self.keys[j], session.have, session.need)
        self._at(self.now + count * lat, self._feed, node.index, node.epoch, done)

    def _fetch(self, node: SimNode, j: int, ids: tuple[bytes, ...]) -> None:
        """Ask `j`; what comes back is `Received`, and `FetchDone` closes the exchange."""
        self.messages["fetch"] += 1
        done = FetchDone(self.keys[j], ids)
        if not self.reachable(node.index, j) or self._lost():
            self._at(self.now + self.config.request_timeout_ms, self._feed, node.index, node.epoch, done)
            return
        self.messages["fetch-reply"] += 1
        if self._lost():
            self._at(self.now + self.config.request_timeout_ms, self._feed, node.index, node.epoch, done)
            return
        items = () if j in self.quiet else tuple(self.nodes[j].mesh.items_for(ids))
        self._count((item.id for item in items), "full")
        self._copies(items, "fetched")
        answer_at = self.now + 2 * self.latency(node.index, j)
        if items:
            self._at(answer_at, self._feed, node.index, node.epoch, Received(self.keys[j], items))
        self._at(answer_at, self._feed, node.index, node.epoch, done)

    # -- scenario controls ----------------------------------------------------------------
    def send_alert(self, author: int, at: int | None = None, expires_in_ms: int = DAY_MS) -> Item:
        """Schedule a new alert authored by node `author`; returns it."""
        when = self.now if at is None else at
        self._alerts_sent += 1
        item_id = synthetic_key(f"alert:{author}", self._alerts_sent)
        raw = (item_id * (self.config.alert_bytes // 32 + 1))[: self.config.alert_bytes]
        item = Item(item_id, when, when + expires_in_ms, self.keys[author], "alert", raw)
        self._at(when, self._send, author, item)
        return item

    def _send(self, author: int, item: Item) -> None:
        self.spreads[item.id] = Spread(
            item, self.now, messages_at_send=self.total_messages(), pushes_at_send=self.messages["push"]
        )
        self._feed(author, self.nodes[author].epoch, Authored(item))

    def take_down(self, nodes: Iterable[int], at: int | None = None) -> None:
        for i in nodes:
            self._at(self.now if at is None else at, self._down, i)

    def bring_up(self, nodes: Iterable[int], at: int | None = None) -> None:
        for i in nodes:
            self._at(self.now if at is None else at, self._up, i)

    def _down(self, i: int) -> None:
        node = self.nodes[i]
        node.up = False
        node.epoch += 1
        node.tick_at = None

    def _up(self, i: int) -> None:
        """A restart: the node comes back with only what it had on disk."""
        node = self.nodes[i]
        if node.up:
            return
        node.up = True
        node.epoch += 1
        node.mesh = self._boot(i, node.disk, dict(node.marks), dict(node.standings))
        for peer in node.peers:
            self._feed(i, node.epoch, PeerUp(self.keys[peer]))

    def go_quiet(self, nodes: Iterable[int], at: int | None = None) -> None:
        """From ``at`` on, these nodes accept everything and forward nothing."""
        self._at(self.now if at is None else at, self.quiet.update, list(nodes))

    def partition(self, groups: Iterable[Iterable[int]], at: int | None = None) -> None:
        """Nodes in different groups cannot talk; nodes in no group form group 0."""
        assignment = [0] * self.config.nodes
        for number, members in enumerate(groups, 1):
            for i in members:
                assignment[i] = number
        self._at(self.now if at is None else at, self._set_groups, assignment)

    def heal(self, at: int | None = None) -> None:
        self._at(self.now if at is None else at, self._set_groups, [0] * self.config.nodes)

    def _set_groups(self, assignment: list[int]) -> None:
        self.group = assignment

    # -- figures --------------------------------------------------------------------------
    def total_messages(self) -> int:
        return sum(self.messages.values())

    def live(self) -> list[int]:
        return [node.index for node in self.nodes if node.up]

    def holders(self, item: Item) -> list[int]:
        return [node.index for node in self.nodes if node.up and item.id in node.mesh]

    def run_until_spread(self, item: Item, fraction: float, deadline: int) -> Spread:
        """Run until `fraction` of live nodes delivered `item`, or until `deadline`."""

        def covered() -> bool:
            spread = self.spreads.get(item.id)
            return spread is not None and len(spread.arrived) >= fraction * len(self.live())

        self.run_until(deadline, covered)
        return self.spreads[item.id]

    def hop_depths(self, source: int, among: Collection[int] | None = None) -> dict[int, int]:
        """Per reachable node, its fewest hops from ``source`` (breadth-first search),
        through the nodes ``among`` only when given (the live ones, say)."""
        depth = {source: 0}
        frontier = [source]
        while frontier:
            following = []
            for a in frontier:
                for b in self.graph[a]:
                    if b not in depth and (among is None or b in among):
                        depth[b] = depth[a] + 1
                        following.append(b)
            frontier = following
        return depth

    def eccentricity(self, source: int) -> int:
        """Hops from `source` to the farthest node: the rounds an ideal flood needs."""
        return max(self.hop_depths(source).values())

    def ideal_arrivals(self, source: int, among: Collection[int] | None = None) -> dict[int, tuple[int, int]]:
        """Per node, the earliest possible arrival (ms) and its hops: Dijkstra over link
        latency, through the nodes ``among`` only when given."""
        best: dict[int, tuple[int, int]] = {source: (0, 0)}
        heap = [(0, 0, source)]
        while heap:
            at, hops, a = heapq.heappop(heap)
            if (at, hops) > best[a]:
                continue
            for b in self.graph[a]:
                if among is not None and b not in among:
                    continue
                candidate = (at + self.latency(a, b), hops + 1)
                if b not in best or candidate < best[b]:
                    best[b] = candidate
                    heapq.heappush(heap, (*candidate, b))
        return best

    def edges(self) -> int:
        return sum(len(peers) for peers in self.graph) // 2
