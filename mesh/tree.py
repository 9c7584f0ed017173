"""Tree push: full items along a spanning tree, ids to everyone else (Plumtree).

After Leitão, Pereira and Rodrigues, "Epidemic Broadcast Trees" (SRDS 2007).
Flooding sends every item over every link, about `degree - 1` full copies per
node; almost all of them are duplicates. The tree keeps every link but gives
each one a *mode*, seen from this end:

* **eager** links carry the full item, pushed by the outbox as before;
* **lazy** links carry only its id, in an announcement batched per peer
  (flushed after `announce_delay_ms`, or at once when `announce_ids` are
  waiting).

Every link starts eager, so the first item floods. A node that receives a
pushed item it already holds (a *duplicate*) tells the sender `Prune`: both
ends turn that link lazy. What is left eager is the tree the first copies
travelled along, and later items cross each link of it once.

**A tree per author.** Modes are kept per link *and per author* (the tree's
*root*): the first item of an author floods, and its duplicates prune that
author's tree only. What is left is the tree of that author's first copies,
the fastest paths from it, so every author's items travel its own
shortest-path tree. One tree for every author (the original design here) was
shallow for the authors near its centre and deep for the rest: between 20
real nodes with 40 ms links its p99 was 5.7 × a broker's against flooding's
3 × (docs/performance.md, "A tree per author"). Grafts and prunes name the
roots they move (`Graft.roots`, `Prune.roots`); one that names none moves
every root of the link, as a node before per-author trees meant it. A link
remembers the modes of its last `ROOT_MEMORY` roots; a forgotten root falls
back to the link's default mode (eager unless the whole link was pruned), so
its next item floods that link once and is pruned again.

The tree must never cost reliability: when an announced id has not arrived
`graft_timeout_ms` after its first announcement (the tree link above us is
lossy, down, or a *quiet dropper* that accepts items but never forwards them),
it is fetched from the nearest announcer, and when it comes that link is
grafted into its author's tree (`Graft`) and the parent that did not deliver
it pruned; if the fetch brings nothing, the next announcer is tried every
`graft_retry_ms`. Revocations (and so compromise declarations) never go lazy:
they must overtake the alerts of the key they revoke, so they go to every peer
in full, and their duplicates prune nothing. Reconciliation stays the safety
net for whatever announcements cannot repair.

This module holds the per-link modes, the announcement queues, and the ids
announced to us that we still lack; `MeshNode` (`mesh.gossip`) wires it in when
`Timing.tree_push` is set. Link modes follow the table `TRANSITIONS` (data, so
docs/mesh.md can show it). The state is soft: it is not persisted, and a
restart begins with every link eager again.
"""

from __future__ import annotations

import enum
import random as _random
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence

from mesh.interfaces import Item, Transition

ANNOUNCED_MEMORY = 16_384  # per peer: ids announced instead of pushed (its outbox skips them)
HEARD_MEMORY = 4_096  # per peer: ids it announced to us (it holds them: no need to announce back)
MISSING_MEMORY = 16_384  # ids announced to us that we lack, waiting for the tree or a graft
ROOT_MEMORY = 1_024  # per peer: authors whose tree this link remembers a mode for
QUEUE_MEMORY = 4 * 4_096  # per peer: ids waiting to be announced (a peer long down loses the oldest)
MAX_HOPS = 255  # a hop count above this (from a peer) is ignored as nonsense
SIGNAL_ROOTS = 256  # authors one graft or prune names at most (protocol.framing.MAX_SIGNAL_ROOTS)
SIGNAL_RETRIES = 3  # a graft or prune that got no answer is sent again at most this often in a row
UNKNOWN_HOPS = MAX_HOPS + 1  # ranks an announcer that gave no hop count after every one that did


def always_eager(item: Item) -> bool:
    """Revocations, compromise declarations among them, go in full to every peer."""
    return item.kind == "revoke"


def announced(item: Item) -> bool:
    """Whether a lazy link hears of ``item`` at all. Delivery receipts do not:
    every node sends them, so announcing them multiplied the ids on every lazy
    link, and a late one started a repair timer and a graft like a late alert,
    which between real nodes with 40 ms links grew into a storm of grafts and
    swaps (docs/performance.md, "Propagation"). They travel the tree's eager
    links; one the tree loses comes by reconciliation."""
    return item.kind != "receipt"


class Mode(enum.Enum):
    EAGER = "eager"
    LAZY = "lazy"


class Cause(enum.Enum):
    DUPLICATE = "a pushed duplicate came on it (we send Prune)"
    PRUNED = "the peer pruned it (Pruned)"
    FIRST_COPY = "the peer pushed an item to us first"
    GRAFT_TIMEOUT = "an id it announced did not come in time, and came when fetched from it (we send Graft)"
    GRAFTED = "the peer grafted it (Grafted)"
    REPLACED = "a repair or a swap put another link in its place (we send Prune)"
    OVERTAKEN = "the tree's copy came after its announcement (we send Graft; the tree's link: REPLACED)"
    PEER_UP = "the peer is up again (PeerUp)"


#: How a link's mode moves; a cause not listed for a mode leaves it where it is.
TRANSITIONS: tuple[Transition[Mode, Cause], ...] = (
    Transition(Mode.EAGER, Cause.DUPLICATE, Mode.LAZY),
    Transition(Mode.EAGER, Cause.PRUNED, Mode.LAZY),
    Transition(Mode.EAGER, Cause.REPLACED, Mode.LAZY),
    Transition(Mode.LAZY, Cause.FIRST_COPY, Mode.EAGER),
    Transition(Mode.LAZY, Cause.GRAFT_TIMEOUT, Mode.EAGER),
    Transition(Mode.LAZY, Cause.GRAFTED, Mode.EAGER),
    Transition(Mode.LAZY, Cause.OVERTAKEN, Mode.EAGER),
    Transition(Mode.LAZY, Cause.PEER_UP, Mode.EAGER),
)
_NEXT = {(t.source, t.cause): t.target for t in TRANSITIONS}


def _move_all(branch: _Branch, cause: Cause) -> bool:
    """``cause`` in every tree of ``branch``: the default and each root's mode;
    roots left in the default mode are forgotten (they read it anyway)."""
    moved = False
    target = _NEXT.get((branch.mode, cause))
    if target is not None:
        branch.mode, moved = target, True
    for root, mode in list(branch.roots.items()):
        target = _NEXT.get((mode, cause), mode)
        moved = moved or target is not mode
        if target is branch.mode:
            del branch.roots[root]
        else:
            branch.roots[root] = target
    return moved


def _remember(memory: OrderedDict[bytes, None], item_id: bytes, limit: int) -> None:
    memory[item_id] = None
    memory.move_to_end(item_id)
    if len(memory) > limit:
        memory.popitem(last=False)


class _Branch:
    """One link as the tree sees it: its mode per root, and ``mode`` for roots
    it holds none for."""

    __slots__ = ("announced", "due", "heard", "mode", "queue", "repeated", "resent", "roots")

    def __init__(self) -> None:
        self.mode = Mode.EAGER
        self.roots: OrderedDict[bytes, Mode] = OrderedDict()  # author -> mode, least recently moved first
        self.queue: dict[bytes, None] = {}  # ids to announce, in order
        self.due = 0  # when the queue is flushed (set by its first id)
        self.announced: OrderedDict[bytes, None] = OrderedDict()
        self.heard: OrderedDict[bytes, None] = OrderedDict()
        self.repeated: OrderedDict[bytes, None] = OrderedDict()  # announced twice already
        self.resent = 0  # the last graft or prune to it, sent again after no answer this often

    def mode_for(self, root: bytes) -> Mode:
        """The link's mode in ``root``'s tree (its default when it remembers none)."""
        return self.roots.get(root, self.mode)


class _Wanted:
    """An id announced to us that we lack: who announced it, at how many hops, and when to act."""

    __slots__ = ("announcers", "deadline", "heard_at", "hops", "tried")

    def __init__(self, heard_at: int, deadline: int) -> None:
        self.announcers: list[bytes] = []
        self.hops: dict[bytes, int] = {}  # announcer -> its hop count for the id, where it said
        self.tried: list[bytes] = []  # announcers fetched from (and grafted), in order
        self.heard_at = heard_at
        self.deadline = deadline

    def next_announcer(self, usable: Callable[[bytes], bool]) -> bytes | None:
        """The untried usable announcer nearest the author (fewest hops; unknown
        counts as far), the first to announce among equals."""
        best: tuple[int, int] | None = None
        chosen = None
        for order, peer in enumerate(self.announcers):
            if peer in self.tried or not usable(peer):
                continue
            rank = (self.hops.get(peer, UNKNOWN_HOPS), order)
            if best is None or rank < best:
                best, chosen = rank, peer
        return chosen


class PushTree:
    """Link modes, outgoing announcements and missing ids of one node."""

    def __init__(
        self,
        *,
        announce_delay_ms: int,
        announce_ids: int,
        graft_timeout_ms: int,
        graft_retry_ms: int,
        graft_jitter_ms: int = 0,
        random: _random.Random | None = None,
    ) -> None:
        self.announce_delay_ms = announce_delay_ms
        self.announce_ids = announce_ids
        self.graft_timeout_ms = graft_timeout_ms
        self.graft_retry_ms = graft_retry_ms
        self.graft_jitter_ms = graft_jitter_ms
        self.random = random or _random.Random(0)  # noqa: S311 - spreads timers, not secrets
        self._branches: dict[bytes, _Branch] = {}
        self._missing: OrderedDict[bytes, _Wanted] = OrderedDict()

    def _branch(self, peer: bytes) -> _Branch:
        branch = self._branches.get(peer)
        if branch is None:
            branch = self._branches[peer] = _Branch()
        return branch

    # -- link modes -----------------------------------------------------------------------
    def mode(self, peer: bytes, root: bytes | None = None) -> Mode:
        """The link's mode for ``root``'s tree (None: the link's default, for roots
        it remembers nothing of)."""
        branch = self._branch(peer)
        return branch.mode if root is None else branch.mode_for(root)

    def move(self, peer: bytes, cause: Cause, roots: Sequence[bytes] = ()) -> bool:
        """Apply ``cause`` to the link with ``peer`` (see `TRANSITIONS`) in the
        trees of ``roots``, or in every tree when ``roots`` is empty; True when
        any moved."""
        branch = self._branch(peer)
        if not roots:
            return _move_all(branch, cause)
        moved = False
        for root in roots:
            target = _NEXT.get((branch.mode_for(root), cause))
            if target is None:
                continue
            branch.roots[root] = target
            branch.roots.move_to_end(root)
            if len(branch.roots) > ROOT_MEMORY:
                branch.roots.popitem(last=False)
            moved = True
        return moved

    def signalled(self, peer: bytes) -> None:
        """A graft or prune goes to ``peer`` for a new reason: its retries start over."""
        self._branch(peer).resent = 0

    def resend(self, peer: bytes, graft: bool, roots: Sequence[bytes] = ()) -> tuple[bytes, ...] | None:
        """A graft (``graft``) or prune to ``peer`` for ``roots`` got no answer:
        the roots to send it again for (empty: the whole link), or None. Only the
        trees where our end is still in the mode it asked for (a later signal may
        have reversed it), and at most `SIGNAL_RETRIES` times in a row (a peer
        that is down answers nothing; `PeerUp` makes the link eager anyway)."""
        branch = self._branch(peer)
        wanted = Mode.EAGER if graft else Mode.LAZY
        still = tuple(root for root in roots if branch.mode_for(root) is wanted)
        asked_still = bool(still) if roots else branch.mode is wanted
        if branch.resent >= SIGNAL_RETRIES or not asked_still:
            return None
        branch.resent += 1
        return still

    # -- outgoing -------------------------------------------------------------------------
    def route(self, item: Item, peers: Iterable[bytes], now: int) -> None:
        """A new item: queue its id for every lazy peer in ``peers``; eager ones get it pushed."""
        if always_eager(item):
            return
        for peer in peers:
            branch = self._branch(peer)
            if branch.mode_for(item.author) is Mode.EAGER:
                continue
            _remember(branch.announced, item.id, ANNOUNCED_MEMORY)
            if item.id in branch.heard or not announced(item):
                continue  # it announced the id to us (it holds the item), or bookkeeping
            if not branch.queue:
                branch.due = now + self.announce_delay_ms
            branch.queue[item.id] = None
            if len(branch.queue) > QUEUE_MEMORY:
                del branch.queue[next(iter(branch.queue))]

    def heard_from(self, peer: bytes, item_id: bytes) -> bool:
        """``peer`` announced the item to us: it holds it, pushing it there is waste."""
        branch = self._branches.get(peer)
        return branch is not None and item_id in branch.heard

    def announced_to(self, peer: bytes, item_id: bytes) -> bool:
        """The item went to ``peer`` as an announcement: its outbox must not push it."""
        branch = self._branches.get(peer)
        return branch is not None and item_id in branch.announced

    def announcements(self, peer: bytes, now: int) -> tuple[bytes, ...]:
        """Ids to announce to ``peer`` now (at most `announce_ids`): the queue is due or full."""
        branch = self._branches.get(peer)
        if branch is None or not branch.queue:
            return ()
        if now < branch.due and len(branch.queue) < self.announce_ids:
            return ()
        ids: list[bytes] = []
        for item_id in list(branch.queue):
            del branch.queue[item_id]
            if item_id not in branch.heard:
                ids.append(item_id)
                if len(ids) == self.announce_ids:
                    break
        branch.due = now
        return tuple(ids)

    # -- incoming -------------------------------------------------------------------------
    def heard(
        self,
        peer: bytes,
        ids: Sequence[bytes],
        lacking: Callable[[bytes], bool],
        now: int,
        hops: Sequence[int | None] = (),
    ) -> None:
        """``peer`` announced ``ids`` (at ``hops`` from their authors, where given):
        it holds them; wait for the ones we lack."""
        branch = self._branch(peer)
        for index, item_id in enumerate(ids[: self.announce_ids]):
            _remember(branch.heard, item_id, HEARD_MEMORY)
            branch.queue.pop(item_id, None)
            if not lacking(item_id):
                continue
            wanted = self._missing.get(item_id)
            if wanted is None:
                wanted = self._missing[item_id] = _Wanted(now, now + self._graft_wait())
                if len(self._missing) > MISSING_MEMORY:
                    self._missing.popitem(last=False)
            if peer not in wanted.announcers:
                wanted.announcers.append(peer)
            hop = hops[index] if index < len(hops) else None
            if hop is not None:
                wanted.hops[peer] = hop

    def _graft_wait(self) -> int:
        """How long a newly announced id may take to come along the tree.

        Jittered: a lost push orphans a whole subtree, whose nodes all hear the
        id announced at about the same time. With equal timers every one of them
        fetches it; spread over `graft_jitter_ms`, the first to fetch pushes it
        down its own subtree before most of those below time out."""
        if not self.graft_jitter_ms:
            return self.graft_timeout_ms
        return self.graft_timeout_ms + self.random.randrange(self.graft_jitter_ms)

    def demote(self, peer: bytes, items: Iterable[Item], now: int) -> None:
        """A push of ``items`` to ``peer`` failed: announce them instead of pushing
        them again. Most got there (the reply was lost) or came to the peer by
        another path meanwhile; one it still lacks it fetches from the announcement."""
        branch = self._branch(peer)
        for item in items:
            if always_eager(item):
                continue
            _remember(branch.announced, item.id, ANNOUNCED_MEMORY)
            if item.id in branch.heard or not announced(item):
                continue
            if not branch.queue:
                branch.due = now + self.announce_delay_ms
            branch.queue[item.id] = None

    def unanswered(self, peer: bytes, ids: Sequence[bytes], now: int) -> None:
        """An announcement to ``peer`` got no answer: queue its ids once more (once)."""
        branch = self._branch(peer)
        for item_id in ids:
            if item_id in branch.heard or item_id in branch.repeated:
                continue
            _remember(branch.repeated, item_id, ANNOUNCED_MEMORY)
            if not branch.queue:
                branch.due = now + self.announce_delay_ms
            branch.queue[item_id] = None

    def fetched_from(self, item_id: bytes, peer: bytes) -> bool:
        """Whether a still missing id was fetched from ``peer`` after its
        announcement (a repair: when it comes, that link joins the item's tree)."""
        wanted = self._missing.get(item_id)
        return wanted is not None and peer in wanted.tried

    def arrived(self, item_id: bytes) -> None:
        """The item is here (by any path): stop waiting for it."""
        self._missing.pop(item_id, None)

    def announced_hops(self, item_id: bytes, peer: bytes) -> int | None:
        """The hop count ``peer`` announced for a still missing id (None: not known)."""
        wanted = self._missing.get(item_id)
        return None if wanted is None else wanted.hops.get(peer)

    def nearest_announcer(self, item_id: bytes) -> tuple[bytes, int] | None:
        """Of the peers that announced a still missing id with a hop count, the one
        with the fewest hops (the first among equals), and its count."""
        wanted = self._missing.get(item_id)
        if wanted is None or not wanted.hops:
            return None
        peer = wanted.next_announcer(lambda p: p in wanted.hops)
        return None if peer is None else (peer, wanted.hops[peer])

    def announced_first(self, item_id: bytes) -> tuple[bytes, int] | None:
        """Who announced a still missing id to us first, and when (None: nobody yet)."""
        wanted = self._missing.get(item_id)
        if wanted is None or not wanted.announcers:
            return None
        return wanted.announcers[0], wanted.heard_at

    def due_grafts(
        self,
        now: int,
        usable: Callable[[bytes], bool],
        settled: Callable[[bytes], bool],
        fetching: Callable[[bytes], bool],
    ) -> dict[bytes, list[bytes]]:
        """Missing ids whose time is up, by the announcer to fetch them from. The
        link is grafted when the fetched item comes (its author names the tree:
        an announcement carries ids only), so an announcer that does not deliver
        was never grafted and needs no prune.

        ``settled``: held or refused meanwhile (forget it); ``fetching``: already
        on its way from somewhere (wait a retry period). An id whose announcers
        are all tried, or unusable, is left to reconciliation. Of the announcers, the
        one nearest the author in hops is tried first (the repaired link becomes a
        tree link: a far one would deepen the tree below it), the earliest among
        equals or when no hop counts came."""
        plan: dict[bytes, list[bytes]] = {}
        for item_id, wanted in list(self._missing.items()):
            if wanted.deadline > now:
                continue
            if settled(item_id):
                del self._missing[item_id]
                continue
            wanted.deadline = now + self.graft_retry_ms
            if not wanted.tried and fetching(item_id):
                continue  # a reconciliation asked for it already; once we asked, go on
            peer = wanted.next_announcer(usable)
            if peer is None:
                del self._missing[item_id]
                continue
            plan.setdefault(peer, []).append(item_id)
            wanted.tried.append(peer)
        return plan

    def wakeup_at(self, up: Callable[[bytes], bool]) -> int | None:
        """When the next announcement is due or the next missing id times out."""
        times = [b.due for peer, b in self._branches.items() if b.queue and up(peer)]
        if self._missing:
            times.append(min(w.deadline for w in self._missing.values()))
        return min(times) if times else None

    def missing(self) -> list[bytes]:
        """Ids announced to us that we still wait for (tests, status)."""
        return list(self._missing)
