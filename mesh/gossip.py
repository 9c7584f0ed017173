"""`MeshNode`: the one place where gossip, anti-entropy, trust and protection meet.

Events in, actions out (see `mesh.events`); the node layer and the simulator
carry the actions out. Nothing here reads a clock or a socket: `now` (Unix ms)
comes with every event and randomness from the injected `random.Random`, so a
run is a pure function of its inputs.

Admission of an item, in order (first failing rule is the reason):

    duplicate         already stored (the seen-set is the store, durable via `stored`)
    expired           expires != 0 and expires < now
    compromised-author  the author declared its key compromised
    retired-key       signed by a key after it handed over to a new one (rotation)
    commitment-changed  a node record re-committing its key to another next key
    uncommitted-key   a rotation to a key its old key did not commit to (pre-rotation)
    outside-horizon   author beyond `trust_depth` vouch hops (a key's own
                      compromise declaration, and a rotation record whose old
                      key is inside the horizon, are exempt)
    peer-throttled / peer-cut-off   the sending peer's standing
    budgets           pushed items: peer-rate-limited, then author-rate-limited
                      (voucher-rate-limited when a fresh key draws on its
                      voucher's budget, pushed or fetched); fetched items of
                      established authors: peer-catch-up-limited,
                      author-catch-up-limited; new vouches: vouch-rate-limited
                      (and items outside the horizon in a batch whose vouch or
                      rotation record was deferred: vouch-deferred)

Budgets are backpressure, never loss (`RETRYABLE`, and the rule in
`mesh.peers`): an item refused for a budget or for the sender's standing is
not remembered, the node layer names it as deferred in the push reply, and the
sender's outbox keeps it and resends it after a backoff. What this node asked
for draws on catch-up budgets, not on the live ones, so a returning node drains
its peers' backlog at a bounded but fast rate; when a reconciliation leaves
part of the difference unfetched (the catch-up allowance, `MAX_FETCHING`, or a
session cut short), the next one runs after `Timing.catch_up_again_ms`, not
after the periodic timer. Floods stay bounded by the same budgets.

An admitted item is stored (`Store` with the next seq), delivered locally
(`Deliver`, alerts and acks), fed to the trust graph (vouch/revoke) and pushed
eagerly to every peer but the one it came from (flooding); with
`Timing.tree_push` it is pushed along the tree's eager links only and announced
by id on the lazy ones, and pushed duplicates prune links (`mesh.tree`). Within one batch, items
refused for the horizon are retried when the batch itself widened the horizon,
so a vouch and the alert it enables may arrive together in any order.
Ids refused for reasons that cannot change until trust does are remembered, so
reconciliation does not fetch them again and again.
"""

from __future__ import annotations

import random as _random
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from mesh.events import (
    Action,
    Announce,
    Announced,
    AnnounceFailed,
    Authored,
    Claim,
    Deliver,
    Disconnect,
    Event,
    Fetch,
    FetchDone,
    FetchRange,
    FetchRangeDone,
    Graft,
    Grafted,
    NotStored,
    PeerAdded,
    PeerDown,
    PeerHeard,
    PeerInvalid,
    PeerUp,
    Prune,
    Pruned,
    Push,
    PushResult,
    PushUnsent,
    Received,
    ReconcileDone,
    Rejected,
    SaveMark,
    SaveStanding,
    Screen,
    SignalFailed,
    StartReconcile,
    Store,
    Tick,
)
from mesh.interfaces import Item
from mesh.outbox import Pacing, PeerOutbox, SeqLog
from mesh.peers import Limits, PeerScore, RateLimits, SavedStanding, Standing, StandingTransition, TokenBucket
from mesh.reconcile import KeyIndex, Range, ranges_from
from mesh.tree import MAX_HOPS, ROOT_MEMORY, SIGNAL_ROOTS, Cause, Mode, PushTree, always_eager
from mesh.trust import TrustGraph
from protocol.framing import MAX_FETCH_IDS

DELIVERED_KINDS = frozenset({"alert", "ack", "proposal", "endorsement", "objection"})
# Ids per Fetch action: four fetch requests (``protocol.framing.MAX_FETCH_IDS`` each,
# the wire's limit), which the node asks one after another in one task. A full
# catch-up (``MAX_FETCHING``) is then about twenty tasks per peer, not eighty.
FETCH_ACTION_IDS = 4 * MAX_FETCH_IDS
MAX_FETCHING = 20_000  # ids requested and not yet arrived, per peer
REFUSED_MEMORY = 65_536
OFFERED_MEMORY = 16_384  # per peer: ids already pushed because a reconciliation said so
REPAIRED_MEMORY = 16_384  # ids whose first copy was fetched, not pushed (tree push)
#: A range fetch that stopped at its limit goes on at once when the peer's catch-up
#: allowance holds at least this many items (a few pages of ~50 envelopes); with
#: less, the next session comes when the budget has refilled this much (a quarter
#: of a second at the default 1,000/s).
RANGE_CONTINUE_MIN = 256
#: Fetches in a row from one peer that brought nothing before we stop asking it again
#: soon: one empty fetch is a lost request or reply (10 % loss: 1 in 5), three in a row
#: (1 in 140 then) is a peer that names ids it withholds.
WITHHELD_FETCHES = 3
# Reasons that stay true until the trust graph changes (or forever).
_STICKY = frozenset(
    {
        "expired",
        "compromised-author",
        "retired-key",
        "outside-horizon",
        "commitment-changed",
        "uncommitted-key",
    }
)
#: Kinds a push's claims are screened for before verification (`Screen`): ordinary
#: content, whose admission hangs on budgets only. Trust records (vouches,
#: revocations, node records) always take the full path.
SCREENED_KINDS = frozenset({"alert", "ack", "receipt", "proposal", "endorsement", "objection"})
#: Prefixed to a voucher's key: the budget its fresh vouchees share (``_budget``).
VOUCHED_POOL = b"vouched-by:"
#: Prefixed to a fresh key (in the screen's count only): its part of that pool.
VOUCHED_SHARE = b"share-of:"

#: Refusals for a budget or for the sender's standing: deferrals the sender retries.
RETRYABLE = frozenset(
    {
        "peer-cut-off",
        "peer-throttled",
        "peer-rate-limited",
        "author-rate-limited",
        "voucher-rate-limited",
        "peer-catch-up-limited",
        "author-catch-up-limited",
        "voucher-catch-up-limited",
        "vouch-rate-limited",
        "vouch-deferred",
    }
)


@dataclass(frozen=True, slots=True)
class Timing:
    """The mesh's clocks, and how items spread: flooding, or the tree (`mesh.tree`).

    `tree_push` is off by default until the node layer carries `Announce`,
    `Graft` and `Prune`; the simulator runs both. `announce_ids` matches the
    wire's id-list limit (`protocol.framing.MAX_FETCH_IDS`)."""

    reconcile_every_ms: int = 5 * 60_000
    fetch_timeout_ms: int = 2 * 60_000
    catch_up_again_ms: int = 3_000  # next session while a difference is left unfetched
    tree_push: bool = False  # False: every item to every peer (flooding)
    announce_delay_ms: int = 100  # an announcement waits this long for more ids to batch
    announce_ids: int = MAX_FETCH_IDS  # ids in one announcement; a full batch goes at once
    # Repair (`mesh.tree`): an announced id not here by `graft_timeout_ms` plus up to
    # `graft_jitter_ms` (at random, per id) is fetched from its announcer and grafted;
    # then the next announcer every `graft_retry_ms`. Tuned in bench/simulate.py.
    graft_timeout_ms: int = 500
    graft_retry_ms: int = 250
    graft_jitter_ms: int = 1_500
    #: Plumtree's optimisation, by time: a pushed first copy whose id was announced to
    #: us at least this much earlier swaps its link for the announcer's (None: never).
    swap_after_ms: int | None = 0
    #: Plumtree's optimisation, by hops: an announcement from a lazy peer at least this
    #: many hops nearer the author than the tree's copy (carried in pushes and
    #: announcements, `Received.hops`) swaps the tree link for that peer (None: never).
    optimize_hops: int | None = 1


class _Link:
    """Everything the node keeps about one peer."""

    __slots__ = (
        "empty_fetches",
        "fetching",
        "last_contact",
        "next_reconcile",
        "offered",
        "outbox",
        "range_fetches",
        "score",
        "starved_until",
    )

    def __init__(
        self, peer: bytes, mark: int, pacing: Pacing, limits: Limits, now: int, saved: SavedStanding | None
    ) -> None:
        self.outbox = PeerOutbox(peer, mark, pacing)
        self.score = PeerScore(limits, now) if saved is None else PeerScore.restore(limits, now, saved)
        self.next_reconcile = 0
        self.fetching: dict[bytes, int] = {}  # id -> deadline
        # `FetchRange`s under way: ranges -> [deadline, items it may still bring
        # solicited]. An item in one of its ranges draws on catch-up budgets, up to
        # the count asked for (what is left is held back from the allowance).
        self.range_fetches: dict[tuple[Range, ...], list[int]] = {}
        self.offered: OrderedDict[bytes, None] = OrderedDict()
        # Until then, no early reconciliation: what we fetched was refused for an
        # author's catch-up budget, or the peer keeps naming ids it never hands
        # over, so fetching again soon would only waste bytes.
        self.starved_until = 0
        self.empty_fetches = 0  # fetches in a row that brought nothing (`WITHHELD_FETCHES`)
        self.last_contact = 0  # the last push it answered or reconciliation it finished (0: none yet)

    def ranged(self, key: tuple[int, bytes]) -> bool:
        """Whether ``key`` lies in a range being fetched that may still bring it
        solicited; if so it is counted against that fetch."""
        state = self._range_state(key)
        if state is None:
            return False
        state[1] -= 1
        return True

    def in_range(self, key: tuple[int, bytes]) -> bool:
        """`ranged` without counting: for looking (`Screen`, tree shaping)."""
        return self._range_state(key) is not None

    def _range_state(self, key: tuple[int, bytes]) -> list[int] | None:
        for ranges, state in self.range_fetches.items():
            if state[1] > 0 and any(lower <= key < upper for lower, upper in ranges):
                return state
        return None

    def reserved(self) -> int:
        """Items the range fetches under way may still bring (held back from the allowance)."""
        return sum(state[1] for state in self.range_fetches.values())


class MeshNode:
    """The mesh state machine of one node: `handle(event, now) -> list[Action]`."""

    def __init__(
        self,
        self_key: bytes,
        *,
        random: _random.Random,
        now: int,
        peers: Iterable[bytes] = (),
        stored: Iterable[tuple[Item, int]] = (),
        received: Mapping[bytes, int] | None = None,
        marks: Mapping[bytes, int] | None = None,
        standings: Mapping[bytes, SavedStanding] | None = None,
        trust_depth: int = 2,
        limits: Limits | None = None,
        pacing: Pacing | None = None,
        timing: Timing | None = None,
    ) -> None:
        self.key = self_key
        self.random = random
        self.limits = limits or Limits()
        self.pacing = pacing or Pacing()
        self.timing = timing or Timing()
        self.trust = TrustGraph(self_key, trust_depth)
        self.rates = RateLimits(self.limits)
        timing = self.timing
        self.tree = PushTree(
            announce_delay_ms=timing.announce_delay_ms,
            announce_ids=timing.announce_ids,
            graft_timeout_ms=timing.graft_timeout_ms,
            graft_retry_ms=timing.graft_retry_ms,
            graft_jitter_ms=timing.graft_jitter_ms,
            random=random,
        )
        self._items: dict[bytes, Item] = {}
        self._seqs: dict[bytes, int] = {}
        self._origin: dict[bytes, bytes] = {}
        self._quiet: dict[bytes, TokenBucket] = {}  # per author: is it quiet enough to jump the queues?
        self._repaired: OrderedDict[bytes, None] = OrderedDict()
        # Per author (tree push: a tree per author), the peer its last pushed first copy came from.
        self._parents: OrderedDict[bytes, bytes] = OrderedDict()
        # Tree push: per item held, its hops from its author along the path it came
        # (0: authored here); not kept for items restored from disk or reconciled.
        self._hops: dict[bytes, int] = {}
        # Repaired items (fetched, not pushed): the tree parent that should have pushed
        # them. It most likely holds them (its push was lost): not pushed back to it.
        self._bypassed: OrderedDict[bytes, bytes] = OrderedDict()
        self._index = KeyIndex()
        self._log = SeqLog()
        self._next_seq = 1
        self._refused: OrderedDict[bytes, tuple[str, int]] = OrderedDict()  # id -> reason, created
        # Their keys: ranges where the peer holds only what we refused are not fetched again.
        self._refused_keys = KeyIndex()
        self._links: dict[bytes, _Link] = {}
        # Standings saved before a restart (`SaveStanding`); a peer without a link
        # yet gets its saved standing when its link is made.
        self._saved: dict[bytes, SavedStanding] = dict(standings or {})
        self._now = now
        self._swept_minute = -1
        for item, seq in sorted(stored, key=lambda pair: pair[1]):
            self._next_seq = max(self._next_seq, seq + 1)
            if not item.expired(now) and item.id not in self._items:
                self._remember(item, seq)
                # When this node first received it (``received``: id -> ms), not the
                # author's ``created``, which a voucher may backdate to skip the fresh
                # period after the next restart; ``created`` only for stores without it.
                first_seen = (received or {}).get(item.id, item.created)
                self.trust.observe(item, seen=min(first_seen, now))
        marks = marks or {}
        # In the order given, not a set's: iteration over a set of bytes follows
        # PYTHONHASHSEED, and the order of links is the order of actions.
        for peer in dict.fromkeys([*peers, *marks]):
            self._links[peer] = _Link(
                peer, marks.get(peer, 0), self.pacing, self.limits, now, self._saved.pop(peer, None)
            )

    # -- read side for the node layer -----------------------------------------------------
    def keys(self) -> KeyIndex:
        """The sorted (created, id) view to answer `reconcile.respond` and start `Initiator`."""
        return self._index

    def refused_keys(self) -> KeyIndex:
        """Keys of items refused for a reason that holds until trust changes (expired,
        outside the horizon, …): `Initiator(refused=…)` does not fetch a range that
        holds only these."""
        return self._refused_keys

    def get(self, item_id: bytes) -> Item | None:
        return self._items.get(item_id)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def __len__(self) -> int:
        return len(self._items)

    def seq_of(self, item_id: bytes) -> int | None:
        return self._seqs.get(item_id)

    def mark(self, peer: bytes) -> int | None:
        link = self._links.get(peer)
        return None if link is None else link.outbox.mark

    def standing(self, peer: bytes) -> Standing | None:
        link = self._links.get(peer)
        return None if link is None else link.score.standing

    def score(self, peer: bytes) -> float | None:
        link = self._links.get(peer)
        return None if link is None else link.score.score

    def saved_standing(self, peer: bytes) -> SavedStanding | None:
        """Score, standing and ban deadline of ``peer``, as `SaveStanding` carries them."""
        link = self._links.get(peer)
        return None if link is None else link.score.saved()

    def last_contact(self, peer: bytes) -> int | None:
        """When ``peer`` last answered a push or finished a reconciliation with us
        (None: not since this node started). The one record of contact: the node
        shows a peer as up from it."""
        link = self._links.get(peer)
        return link.last_contact or None if link is not None else None

    def peers(self) -> list[bytes]:
        return list(self._links)

    def wakeup_at(self) -> int | None:
        """When the next `Tick` has work to do (None: nothing scheduled); lets runners sleep."""
        times: list[int] = []
        for link in self._links.values():
            if link.score.standing is Standing.CUT_OFF:
                times.append(link.score.banned_until)
                continue
            at = link.outbox.wakeup_at(self._log)
            if at is not None:
                times.append(at)
            if link.outbox.up:
                times.append(link.next_reconcile)
        links = self._links
        tree = self.tree.wakeup_at(lambda peer: peer in links and links[peer].outbox.up)
        if tree is not None:
            times.append(tree)
        return min(times) if times else None

    def reconcile_at(self) -> int | None:
        """When the next reconciliation falls due on a link that is up (None: none).
        A node that ticks every few seconds meets it between ticks, so a catch-up
        paced by its budget (`_go_on`, `catch_up_again_ms`) goes on when the budget
        allows, not at the next tick."""
        times = [
            link.next_reconcile
            for link in self._links.values()
            if link.outbox.up and link.score.standing is not Standing.CUT_OFF
        ]
        return min(times, default=None)

    def linger_at(self) -> int | None:
        """When receipts held back for company (`Pacing.linger_ms`) go anyway on some
        link that is up (None: none is waiting)."""
        times = [
            link.outbox.linger_until
            for link in self._links.values()
            if link.outbox.linger_until
            and link.outbox.ready(self._now)  # else the answer in flight, or the backoff, comes first
            and link.outbox.pending(self._log)
            and link.score.standing is not Standing.CUT_OFF
        ]
        return min(times, default=None)

    # -- events ---------------------------------------------------------------------------
    def handle(self, event: Event, now: int) -> list[Action]:
        self._now = now
        actions: list[Action] = []
        if isinstance(event, Authored):
            self._admit_batch([event.item], None, actions)
        elif isinstance(event, Received):
            self._received(event, actions)
        elif isinstance(event, Screen):
            self._screen(event, actions)
        elif isinstance(event, NotStored):
            for item_id in event.ids:
                if item_id in self._items:
                    self._forget(item_id)
            for link in self._links.values():
                link.outbox.drop(self._items.__contains__)
        elif isinstance(event, PushUnsent):
            self._link(event.peer).outbox.unsent(event.batch_id, self._items.__contains__)
        elif isinstance(event, PeerInvalid):
            link = self._link(event.peer)
            self._scored(event.peer, link.score.penalize(self.limits.invalid_penalty, now), actions)
        elif isinstance(event, PeerAdded):
            self._added(event.peer, actions)
        elif isinstance(event, PeerUp):
            self._up(event.peer, actions)
        elif isinstance(event, PeerDown):
            link = self._link(event.peer)
            link.outbox.link_down()
            # Its fetches are lost with it; their deadlines may lie on a clock that
            # has since stepped back (an hour ahead): asked again after PeerUp.
            link.fetching.clear()
            link.range_fetches.clear()
        elif isinstance(event, PeerHeard):
            self._heard(event.peer)
        elif isinstance(event, PushResult):
            link = self._link(event.peer)
            if event.ok:
                link.last_contact = now
            else:
                self._push_failed(event.peer, link, event.batch_id)
            mark = link.outbox.result(event.batch_id, event.ok, now, self.random, frozenset(event.deferred))
            if mark is not None:
                actions.append(SaveMark(event.peer, mark))
        elif isinstance(event, ReconcileDone):
            self._reconciled(event, actions)
        elif isinstance(event, FetchDone):
            self._fetched(event)
        elif isinstance(event, FetchRangeDone):
            self._fetched_range(event, actions)
        elif isinstance(event, Tick):
            self._tick(actions)
        elif isinstance(event, Announced):
            self._announced(event, actions)
        elif isinstance(event, AnnounceFailed):
            self.tree.unanswered(event.peer, event.ids, now)
        elif isinstance(event, SignalFailed):
            self._signal_failed(event, actions)
        elif isinstance(event, Grafted | Pruned) and event.peer in self._links:
            cause = Cause.GRAFTED if isinstance(event, Grafted) else Cause.PRUNED
            self.tree.move(event.peer, cause, event.roots)
        self._pump(actions)
        return actions

    def _link(self, peer: bytes) -> _Link:
        link = self._links.get(peer)
        if link is None:
            saved = self._saved.pop(peer, None)
            link = _Link(peer, self._log.last_seq, self.pacing, self.limits, self._now, saved)
            self._links[peer] = link
        return link

    def _added(self, peer: bytes, actions: list[Action]) -> None:
        if peer not in self._links:
            self._link(peer)
            actions.append(SaveMark(peer, self._log.last_seq))

    def _up(self, peer: bytes, actions: list[Action]) -> None:
        link = self._link(peer)
        if link.score.standing is Standing.CUT_OFF:
            return
        link.outbox.link_up(self._now)
        self.tree.move(peer, Cause.PEER_UP)
        self._start_reconcile(peer, link, actions)

    def _heard(self, peer: bytes) -> None:
        """The peer reached us, so we can likely reach it: retry its queue now. Found
        by the nemesis (20 nodes, seed 20261207): after a partition both sides back
        off, and a node heard from again waited out its own doubling backoff (up to
        200 s) before sending what the other side was missing."""
        link = self._links.get(peer)
        if link is not None and link.score.standing is not Standing.CUT_OFF:
            link.outbox.heard(self._now)

    def _start_reconcile(self, peer: bytes, link: _Link, actions: list[Action]) -> None:
        jitter = int(self.timing.reconcile_every_ms * 0.2 * self.random.random())
        link.next_reconcile = self._now + self.timing.reconcile_every_ms - jitter
        actions.append(StartReconcile(peer))

    def _scored(self, peer: bytes, transition: StandingTransition | None, actions: list[Action]) -> None:
        if transition is None:
            return
        link = self._links[peer]
        actions.append(SaveStanding(peer, link.score.saved()))
        if transition.target is Standing.CUT_OFF:
            link.outbox.link_down()
            link.fetching.clear()
            link.range_fetches.clear()
            actions.append(
                Disconnect(peer, f"peer score fell to {link.score.score:.0f}", link.score.banned_until)
            )
        elif transition.source is Standing.CUT_OFF:
            link.outbox.link_up(self._now)
            self._start_reconcile(peer, link, actions)

    # -- admission ------------------------------------------------------------------------
    def _received(self, event: Received, actions: list[Action]) -> None:
        link = self._link(event.peer)
        self._scored(event.peer, link.score.refresh(self._now), actions)
        standing = link.score.standing
        if standing is not Standing.GOOD:
            reason = "peer-cut-off" if standing is Standing.CUT_OFF else "peer-throttled"
            actions.extend(Rejected(event.peer, item.id, reason) for item in event.items)
            if standing is Standing.THROTTLED:
                # Dropped either way; but a throttled peer that keeps flooding sinks to a cut-off.
                admitted = [self.rates.admit_peer(event.peer, self._now) for _ in event.items]
                if not all(admitted):
                    self._scored(
                        event.peer, link.score.penalize(self.limits.rate_penalty, self._now), actions
                    )
            return
        self._admit_batch(list(event.items), event.peer, actions, event.hops)

    def _screen(self, event: Screen, actions: list[Action]) -> None:
        """Before verification (`Screen`): refuse the claims that `_received` would
        refuse for a cut-off peer or a live budget already spent. A throttled
        peer's claims all go on to verification (its invalid data must still
        count against it). Only
        ordinary content is screened (`SCREENED_KINDS`); trust records, fetched
        ids, duplicates and this node's own items go on to the full path, and so do
        claims whose key lies in a range being fetched from this peer, up to what
        the range fetches may still bring (they draw on catch-up budgets once
        verified, as fetched ids do: screened against the live budget, a returning
        node's backlog fetched by range was deferred past the author's first 300).
        A claim passes while the bucket of its author's budget holder has a token
        for it (counted within the batch, looked at, not taken); refused claims
        cost the peer's own bucket, as pushed items always do, and overrunning it
        costs the peer's score as in `_admit_batch`."""
        link = self._link(event.peer)
        self._scored(event.peer, link.score.refresh(self._now), actions)
        standing = link.score.standing
        if standing is Standing.CUT_OFF:
            actions.extend(Rejected(event.peer, claim.id, "peer-cut-off") for claim in event.claims)
            return
        if standing is Standing.THROTTLED:
            # Everything it sends is refused after verification anyway; but it is
            # verified, so a throttled peer that goes on sending invalid data sinks
            # to a cut-off (the nemesis's forger stayed throttled when it was not).
            return
        now = self._now
        peer_room = self.rates.peer_room(event.peer, now)
        room: dict[bytes, float] = {}
        passed = refused = 0
        overran = False
        by_range = link.reserved()  # claims a range fetch under way may still bring solicited
        for claim in event.claims:
            if not self._screened(claim, link):
                passed += 1
                continue
            if by_range > 0 and claim.created is not None and link.in_range((claim.created, claim.id)):
                by_range -= 1
                passed += 1
                continue
            holder = self.trust.budget_holder(claim.author, now, self.limits.fresh_vouch_ms)
            bucket = holder if holder == claim.author else VOUCHED_POOL + holder
            if bucket not in room:
                room[bucket] = self.rates.author_room(bucket, now)
            share = bucket if holder == claim.author else VOUCHED_SHARE + claim.author  # a fresh key's part
            if share not in room:
                room[share] = self.rates.share_room(claim.author, now)
            if peer_room - passed - refused < 1.0:
                reason = "peer-rate-limited"
                overran = True
            elif room[bucket] >= 1.0 and room[share] >= 1.0:
                room[bucket] -= 1.0
                if share != bucket:
                    room[share] -= 1.0
                passed += 1
                continue
            else:
                reason = "author-rate-limited" if holder == claim.author else "voucher-rate-limited"
                refused += 1
                self.rates.admit_peer(event.peer, now)  # what a pushed item costs its peer
            actions.append(Rejected(event.peer, claim.id, reason))
        if refused or overran:
            self._catch_up_soon(link)
        if overran:
            self._scored(event.peer, link.score.penalize(self.limits.rate_penalty, now), actions)

    def _screened(self, claim: Claim, link: _Link) -> bool:
        """Whether a claim is looked at before verification (`_screen`)."""
        return (
            claim.kind in SCREENED_KINDS
            and claim.author != self.key
            and claim.id not in self._items
            and claim.id not in link.fetching
            and self.trust.in_horizon(claim.author)
        )

    @staticmethod
    def _solicited(item: Item, link: _Link) -> bool:
        """Asked for from this peer: by id, or in a range being fetched (looked at, not counted)."""
        return item.id in link.fetching or link.in_range(item.key)

    def _admit_batch(
        self, items: list[Item], peer: bytes | None, actions: list[Action], hops: Sequence[int | None] = ()
    ) -> None:
        overran = False
        deferred: list[Item] = []
        accepted = 0
        # Tree push, by author (root): pushed to us unasked and new here (the link is
        # a useful link of that author's tree), pushed duplicates (it is not needed
        # there), repairs fetched from this peer (it joins that tree), and an
        # announcer whose path is faster than this link.
        first_roots: dict[bytes, None] = {}
        redundant_roots: dict[bytes, None] = {}
        repaired: list[Item] = []
        swaps: dict[bytes, bytes] = {}
        waiting: list[Item] = []
        tree_hops = self.timing.tree_push
        for index, item in enumerate(items):
            pushed = peer is not None and not self._solicited(item, self._links[peer])
            repair = peer is not None and not pushed and self.tree.fetched_from(item.id, peer)
            first = self.tree.announced_first(item.id) if pushed else None
            first_hops = None if first is None else self.tree.announced_hops(item.id, first[0])
            nearest = self.tree.nearest_announcer(item.id) if pushed else None
            hop = self._came_hops(item.id, peer, hops[index] if index < len(hops) else None) if tree_hops else None
            reason = self._admit(item, peer, actions)
            if reason == "outside-horizon":
                waiting.append(item)
            elif reason is not None:
                overran = overran or reason == "peer-rate-limited"
                if reason in RETRYABLE:
                    deferred.append(item)
                if reason == "duplicate" and peer is not None and self._redundant(item, peer):
                    redundant_roots[item.author] = None
                self._reject(item, peer, reason, actions)
            else:
                accepted += 1
                if pushed and not always_eager(item):
                    first_roots[item.author] = None
                if repair and not always_eager(item):
                    repaired.append(item)
                if tree_hops and hop is not None:
                    self._hops[item.id] = hop
                limit = self.timing.swap_after_ms
                if self._shorter(hop, nearest):
                    if nearest:
                        swaps[item.author] = nearest[0]
                elif (
                    first is not None
                    and limit is not None
                    and self._now - first[1] >= limit
                    and (hop is None or first_hops is None or first_hops + 1 <= hop)
                ):
                    swaps[item.author] = first[0]  # faster in time, and not known to be farther in hops
                if not pushed:
                    self._repaired[item.id] = None
                    if len(self._repaired) > REPAIRED_MEMORY:
                        self._repaired.popitem(last=False)
                    # fetched (not own content: the author's parent never had it)
                    parent = self._parents.get(item.author)
                    if peer is not None and parent is not None and parent != peer:
                        self._bypassed[item.id] = parent
                        if len(self._bypassed) > REPAIRED_MEMORY:
                            self._bypassed.popitem(last=False)
        while waiting and accepted:
            # This batch may have widened the horizon (a vouch next to the alert it enables).
            retry, waiting, accepted = waiting, [], 0
            for item in retry:
                reason = self._admit(item, peer, actions)
                if reason == "outside-horizon":
                    waiting.append(item)
                elif reason is not None:
                    if reason in RETRYABLE:
                        deferred.append(item)
                    self._reject(item, peer, reason, actions)
                else:
                    accepted += 1
        # A deferred trust record (vouch or rotation) may be what these items wait
        # for: then they are deferred with it, not refused for good.
        outside = (
            "vouch-deferred" if any(i.kind in ("vouch", "node") for i in deferred) else "outside-horizon"
        )
        for item in waiting:
            self._reject(item, peer, outside, actions)
        if peer is not None:
            link = self._links[peer]
            if deferred:
                self._catch_up_soon(link)  # fetch what it holds for us under the catch-up budget
            if overran:
                self._scored(peer, link.score.penalize(self.limits.rate_penalty, self._now), actions)
            elif accepted:
                self._scored(
                    peer, link.score.reward(self.limits.good_item_reward * accepted, self._now), actions
                )
            self._graft_repaired(peer, repaired, actions)  # a flooding node too: the peer's tree
            if self.timing.tree_push:
                self._shape_tree(peer, list(first_roots), [r for r in redundant_roots if r not in first_roots], actions)
                for root, fast in swaps.items():
                    if fast != peer and fast in self._links:
                        self._swap(peer, fast, root, actions)

    def _shorter(self, own: int | None, announced: tuple[bytes, int] | None) -> bool:
        """Whether a peer that announced an item at ``announced`` hops is at least
        `Timing.optimize_hops` hops nearer its author than our copy (``own`` hops)."""
        threshold = self.timing.optimize_hops
        if threshold is None or own is None or announced is None:
            return False
        return own - (announced[1] + 1) >= max(1, threshold)

    def _came_hops(self, item_id: bytes, peer: bytes | None, sender_hops: int | None) -> int | None:
        """The hops from its author of an item that comes from ``peer`` now: 0 when
        authored here, the sender's count plus one, or for a fetch the count
        ``peer`` announced plus one; None when unknown or nonsense."""
        if peer is None:
            return 0
        if sender_hops is None:
            sender_hops = self.tree.announced_hops(item_id, peer)
        if not isinstance(sender_hops, int) or isinstance(sender_hops, bool):
            return None
        return sender_hops + 1 if 0 <= sender_hops < MAX_HOPS else None

    def _redundant(self, item: Item, peer: bytes) -> bool:
        """A duplicate that shows the link from ``peer`` is not needed in the tree:
        pushed unasked (not fetched), not a revocation (those go to everyone), not a
        resend by the peer we first got it from (its reply to us was lost), and not
        a late push of an item we had to fetch: then the push was lost or slow this
        once, and the next item, pushed along both links, shows which one to prune."""
        link = self._links[peer]
        if link.fetching.pop(item.id, None) is not None or link.in_range(item.key):
            return False
        if always_eager(item) or item.id in self._repaired:
            return False
        return self._origin.get(item.id) != peer

    def _shape_tree(
        self, peer: bytes, first: Sequence[bytes], redundant: Sequence[bytes], actions: list[Action]
    ) -> None:
        """Plumtree's rule per batch and author: a link that brought an author's
        item first stays in (or comes back into) that author's tree; one that
        brought only duplicates of it is pruned from it."""
        if first:
            for root in first:
                self._set_parent(root, peer)
            self.tree.move(peer, Cause.FIRST_COPY, first)
        if redundant:
            self.tree.move(peer, Cause.DUPLICATE, redundant)
            self._signal(Prune(peer, tuple(redundant)), actions)  # also when already lazy here: the peer still pushes

    def _graft_repaired(self, peer: bytes, items: Sequence[Item], actions: list[Action]) -> None:
        """Items fetched from ``peer`` after the tree did not bring them came:
        ``peer``'s link joins their authors' trees (graft), and the parent that
        did not deliver them leaves (prune; else both push the next item, and
        its duplicate prunes one of them). The parent most likely holds them
        (its push was lost): they are announced to it, not pushed."""
        if not items:
            return
        roots = list(dict.fromkeys(item.author for item in items))
        self.tree.move(peer, Cause.GRAFT_TIMEOUT, roots)
        self._signal(Graft(peer, tuple(roots)), actions)
        replaced: dict[bytes, list[bytes]] = {}
        for root in roots:
            parent = self._parents.get(root)
            if parent is not None and parent != peer and parent in self._links:
                replaced.setdefault(parent, []).append(root)
            self._set_parent(root, peer)
        for parent, lost in replaced.items():
            if self.tree.move(parent, Cause.REPLACED, lost):
                self._signal(Prune(parent, tuple(lost)), actions)
            self.tree.demote(parent, (item for item in items if item.author in lost), self._now)

    def _set_parent(self, root: bytes, peer: bytes) -> None:
        self._parents[root] = peer
        self._parents.move_to_end(root)
        if len(self._parents) > ROOT_MEMORY:
            self._parents.popitem(last=False)

    def _signal(self, signal: Graft | Prune, actions: list[Action]) -> None:
        """Send a graft or prune for a new reason (an unanswered one is sent again:
        `SignalFailed`), at most `SIGNAL_ROOTS` authors a signal."""
        self.tree.signalled(signal.peer)
        roots = signal.roots
        for start in range(0, max(1, len(roots)), SIGNAL_ROOTS):
            actions.append(replace(signal, roots=roots[start : start + SIGNAL_ROOTS]))

    def _signal_failed(self, event: SignalFailed, actions: list[Action]) -> None:
        """A graft or prune got no answer: send it again while our end still wants
        it. A lost prune leaves the old parent pushing beside the new one (every
        item a duplicate until one of them prunes again); a lost graft leaves the
        link lazy at the far end, so the next item is repaired again."""
        link = self._links.get(event.peer)
        if not self.timing.tree_push or link is None or not link.outbox.up:
            return  # a peer that is down: `PeerUp` makes the link eager again anyway
        if link.score.standing is Standing.CUT_OFF:
            return
        roots = self.tree.resend(event.peer, event.graft, event.roots)
        if roots is not None:
            actions.append(Graft(event.peer, roots) if event.graft else Prune(event.peer, roots))

    def _swap(self, slow: bytes, fast: bytes, root: bytes, actions: list[Action]) -> None:
        """Plumtree's optimisation: ``root``'s tree brought an item well after
        ``fast`` announced it, so ``fast`` becomes our link in that tree and
        ``slow`` goes lazy in it."""
        if self.tree.move(fast, Cause.OVERTAKEN, (root,)):
            self._signal(Graft(fast, (root,)), actions)
        if self.tree.move(slow, Cause.REPLACED, (root,)):
            self._signal(Prune(slow, (root,)), actions)
        self._set_parent(root, fast)

    def _verdict(self, item: Item) -> str | None:
        """Rules that depend on the item alone, not on who sent it."""
        if item.id in self._items:
            return "duplicate"
        if item.expired(self._now):
            return "expired"
        if item.declares_compromise:
            return None
        if self.trust.is_compromised(item.author):
            return "compromised-author"
        retired = self.trust.retired_at(item.author)
        if retired is not None and item.created > retired:
            return "retired-key"
        if item.kind == "node" and self.trust.changes_commitment(item):
            return "commitment-changed"
        if item.rotates and not self.trust.rotation_allowed(item):
            return "uncommitted-key"
        if (
            item.rotates
            and item.subject is not None
            and (item.recovery or self.trust.in_horizon(item.subject))
        ):
            return None  # the old key, inside the horizon, hands over to the new one (or its committed key recovers)
        if not self.trust.in_horizon(item.author):
            return "outside-horizon"
        return None

    def _admit(self, item: Item, peer: bytes | None, actions: list[Action]) -> str | None:
        reason = self._verdict(item) or self._budget(item, peer)
        if reason is not None:
            return reason
        self._accept(item, peer, actions)
        return None

    def _budget(self, item: Item, peer: bytes | None) -> str | None:
        """Rate budgets (`mesh.peers`): catch-up ones for what we fetched, live ones
        for what was pushed; fresh keys draw on their voucher's budget."""
        now = self._now
        if peer is None:
            solicited = False
        else:
            link = self._links[peer]
            solicited = link.fetching.pop(item.id, None) is not None or link.ranged(item.key)
        if peer is not None and not solicited and not self.rates.admit_peer(peer, now):
            return "peer-rate-limited"
        if item.author == self.key or item.declares_compromise:
            return None
        new_vouch = self._introduces_key(item)
        if new_vouch and not self.rates.may_vouch(item.author, now):
            return "vouch-rate-limited"
        holder = self.trust.budget_holder(item.author, now, self.limits.fresh_vouch_ms)
        # A fresh key draws on a pool its voucher holds for every key it vouched for,
        # apart from the voucher's own budget: forty fresh keys still share one budget,
        # and a flooding vouchee no longer starves its voucher's own alerts (the
        # nemesis's flooder, seed 15015: a paired peer's flood deferred its node's
        # honest alerts on every other node, p99 0.6 s → 4.4 s).
        bucket = holder if holder == item.author else VOUCHED_POOL + holder
        refused: str | None = None
        if solicited:
            # Fetched backlog draws on the holder's catch-up budget: a fresh key's
            # backlog shares its voucher's one catch-up burst, so vouching for many
            # keys buys no more than the voucher's own backlog would.
            assert peer is not None
            refused = self.rates.admit_catch_up(peer, bucket, now)
            if refused == "author-catch-up-limited" and holder != item.author:
                refused = "voucher-catch-up-limited"
        elif holder == item.author:
            refused = None if self.rates.admit_author(bucket, now) else "author-rate-limited"
        elif not self.rates.admit_fresh(item.author, bucket, now):
            refused = "voucher-rate-limited"
        if refused is not None and solicited and refused != "peer-catch-up-limited":
            assert peer is not None
            self._links[peer].starved_until = now + self.timing.reconcile_every_ms
        if refused is not None:
            return refused
        if new_vouch:
            self.rates.admit_vouch(item.author, now)
        return None

    def _introduces_key(self, item: Item) -> bool:
        """A vouch that would bring a key into the horizon, whatever its signed
        ``created`` says: the cap on new vouches counts keys new to this node, so a
        backdated vouch meets it too (history a returning node catches up on is
        paced by it as well, deferred, never lost)."""
        return item.kind == "vouch" and item.subject is not None and not self.trust.in_horizon(item.subject)

    def _reject(self, item: Item, peer: bytes | None, reason: str, actions: list[Action]) -> None:
        if reason in _STICKY:
            if item.id not in self._refused:
                self._refused_keys.add(item.key)
            self._refused[item.id] = (reason, item.created)
            self._refused.move_to_end(item.id)
            if len(self._refused) > REFUSED_MEMORY:
                self._unrefuse(next(iter(self._refused)))
        actions.append(Rejected(peer, item.id, reason))

    def _accept(self, item: Item, peer: bytes | None, actions: list[Action]) -> None:
        seq = self._next_seq
        self._next_seq += 1
        self._remember(item, seq)
        self._unrefuse(item.id)
        if peer is not None:
            self._origin[item.id] = peer
        actions.append(Store(item, seq))
        self.tree.arrived(item.id)
        if self.timing.tree_push:
            self.tree.route(item, (other for other in self._links if other != peer), self._now)
        if item.kind in DELIVERED_KINDS:
            actions.append(Deliver(item))
        if self.trust.observe(item, seen=self._now):
            self._trust_changed()
        if item.kind == "revoke" or item.recovers_compromised or self._quiet_author(item):
            for other, link in self._links.items():
                if other != peer:
                    link.outbox.offer(item, seq)

    def _quiet_author(self, item: Item) -> bool:
        """Whether ``item``'s author is quiet (`Pacing.quiet_author_*`): then it jumps
        every peer's queue, ahead of a flooding author's backlog (issue 15: the
        nemesis's flooder, 300 admitted alerts, held honest alerts 3–6 s behind it
        at every hop; seed 15015). Not with tree push, which routes each item, and
        never a receipt: bookkeeping that must not overtake anybody's alert."""
        if self.timing.tree_push or item.kind == "receipt":
            return False
        bucket = self._quiet.get(item.author)
        if bucket is None:
            pacing = self.pacing
            bucket = TokenBucket(pacing.quiet_author_rate_per_s, pacing.quiet_author_burst, self._now)
            self._quiet[item.author] = bucket
        return bucket.take(self._now)

    def _remember(self, item: Item, seq: int) -> None:
        self._items[item.id] = item
        self._seqs[item.id] = seq
        self._index.add(item.key)
        self._log.append(seq, item)

    def _forget(self, item_id: bytes) -> None:
        item = self._items.pop(item_id)
        self._index.discard(item.key)
        self._log.remove(self._seqs.pop(item_id))
        self._origin.pop(item_id, None)
        self._hops.pop(item_id, None)

    def _trust_changed(self) -> None:
        """Ids refused as outside the horizon may be welcome now: let reconciliation
        fetch them, soon. A returning node fetches by range and by id at once, so
        a new author's first alerts can come before the vouch that lets them in
        (a real-process catch-up missed two of 600 until the regular session,
        5 minutes on); by id the same happened when the vouch came in a later batch."""
        stale = [item_id for item_id, (reason, _) in self._refused.items() if reason == "outside-horizon"]
        for item_id in stale:
            self._unrefuse(item_id)
        if stale:
            for link in self._links.values():
                if link.outbox.up:
                    self._catch_up_soon(link)

    def _unrefuse(self, item_id: bytes) -> None:
        refused = self._refused.pop(item_id, None)
        if refused is not None:
            self._refused_keys.discard((refused[1], item_id))

    # -- anti-entropy ---------------------------------------------------------------------
    def _reconciled(self, event: ReconcileDone, actions: list[Action]) -> None:
        link = self._link(event.peer)
        link.last_contact = self._now
        if link.score.standing is not Standing.GOOD:
            return
        for item_id in event.have:
            item = self._items.get(item_id)
            if item is None or item_id in link.offered:
                continue
            if link.outbox.offer(item, self._seqs[item_id]):
                link.offered[item_id] = None
                if len(link.offered) > OFFERED_MEMORY:
                    link.offered.popitem(last=False)
        deadline = self._now + self.timing.fetch_timeout_ms
        # Ask for no more than the peer's catch-up budget can take now (items in
        # flight will draw on it too); the rest waits for the next session, soon.
        in_flight = len(link.fetching) + link.reserved()
        room = min(MAX_FETCHING, self.rates.catch_up_allowance(event.peer, self._now)) - in_flight
        wanted: list[bytes] = []
        left_over = not event.complete
        for item_id in event.need:
            if item_id in self._items or item_id in self._refused or item_id in link.fetching:
                continue
            if len(wanted) >= room:
                left_over = True
                break
            link.fetching[item_id] = deadline
            wanted.append(item_id)
        for start in range(0, len(wanted), FETCH_ACTION_IDS):
            actions.append(Fetch(event.peer, tuple(wanted[start : start + FETCH_ACTION_IDS])))
        room -= len(wanted)
        if event.ranges:
            # The ranges we hold nothing in, by range (their ids never listed), with
            # the rest of the allowance; one range fetch at a time per peer: what a
            # fetch under way leaves is found by the next session.
            if link.range_fetches or room <= 0:
                left_over = True
            else:
                ranges = tuple(event.ranges)
                link.range_fetches[ranges] = [deadline, room]
                actions.append(FetchRange(event.peer, ranges, room))
        if left_over:
            self._catch_up_soon(link)

    def _fetched(self, event: FetchDone) -> None:
        """Ids that did not come are asked for again soon. But a peer whose fetches
        bring nothing `WITHHELD_FETCHES` times in a row withholds what it names (a
        quiet dropper does): it waits for the regular session, or every neighbour
        would reconcile with it every `catch_up_again_ms`. Fewer empty fetches in
        a row are loss, and are asked again soon as before."""
        link = self._link(event.peer)
        missing = [item_id for item_id in event.ids if link.fetching.pop(item_id, None) is not None]
        if not missing or len(missing) < len(event.ids):
            link.empty_fetches = 0  # it handed over something: not withholding
        else:
            link.empty_fetches += 1
            if link.empty_fetches >= WITHHELD_FETCHES:
                link.starved_until = self._now + self.timing.reconcile_every_ms
                return
        if missing:
            self._catch_up_soon(link)

    def _fetched_range(self, event: FetchRangeDone, actions: list[Action]) -> None:
        """A range fetch is over. One that stopped at its limit (it brought all it
        was allowed: the catch-up budget, not the peer, stopped it; some may have
        been copies of what the peer pushed meanwhile) goes on from where it
        stopped as the budget refills (`_go_on`), without a new session: the rest
        of ranges found empty here, only ever narrower. What any other stop left
        is found by the next session, soon. One that brought nothing counts as an
        empty fetch (`_fetched`)."""
        link = self._link(event.peer)
        if link.range_fetches.pop(tuple(event.ranges), None) is None:
            return  # timed out or the link went down meanwhile
        if event.got:
            link.empty_fetches = 0
        else:
            link.empty_fetches += 1
            if link.empty_fetches >= WITHHELD_FETCHES:
                link.starved_until = self._now + self.timing.reconcile_every_ms
                return
        if not event.complete and event.resume is not None:
            rest = ranges_from(event.ranges, event.resume)
            if rest:
                self._go_on(event.peer, link, rest, actions)
                return
        if not event.complete or not event.got:
            self._catch_up_soon(link)

    def _go_on(self, peer: bytes, link: _Link, rest: tuple[Range, ...], actions: list[Action]) -> None:
        """Fetch the rest of a range fetch that stopped at its limit: at once with
        the allowance refilled while it ran, when that is at least
        `RANGE_CONTINUE_MIN`; otherwise the next session comes as soon as the
        budget holds that much (not after the fixed `Timing.catch_up_again_ms`:
        at 10,000 alerts that pause was a third of the catch-up). The budget paces
        the fetch exactly as before; only the idle wait and the session are gone."""
        now = self._now
        in_flight = len(link.fetching) + link.reserved()
        room = min(MAX_FETCHING, self.rates.catch_up_allowance(peer, now)) - in_flight
        if room >= RANGE_CONTINUE_MIN and not link.range_fetches:
            link.range_fetches[rest] = [now + self.timing.fetch_timeout_ms, room]
            actions.append(FetchRange(peer, rest, room))
            return
        if now >= link.starved_until:
            wait = self.rates.catch_up_refill_ms(peer, RANGE_CONTINUE_MIN + in_flight, now)
            link.next_reconcile = min(link.next_reconcile, now + min(wait, self.timing.catch_up_again_ms))

    def _catch_up_soon(self, link: _Link) -> None:
        """Reconcile again shortly: the peer holds items for us that are not on their way."""
        if self._now >= link.starved_until:
            link.next_reconcile = min(link.next_reconcile, self._now + self.timing.catch_up_again_ms)

    # -- time -----------------------------------------------------------------------------
    def _tick(self, actions: list[Action]) -> None:
        now = self._now
        for peer, link in self._links.items():
            self._scored(peer, link.score.refresh(now), actions)
            if link.score.standing is Standing.CUT_OFF:
                continue
            batch = link.outbox.in_flight
            if batch is not None and now >= batch.sent_at + self.pacing.push_timeout_ms:
                self._push_failed(peer, link, batch.id)
            link.outbox.expire(now, self.random)
            if link.fetching:
                late = [item_id for item_id, deadline in link.fetching.items() if deadline <= now]
                for item_id in late:
                    del link.fetching[item_id]
            if link.range_fetches:
                for ranges in [r for r, state in link.range_fetches.items() if state[0] <= now]:
                    del link.range_fetches[ranges]
            if link.outbox.up and now >= link.next_reconcile:
                self._start_reconcile(peer, link, actions)
        self._graft_due(actions)
        self._expire()

    # -- tree repair ----------------------------------------------------------------------
    def _push_failed(self, peer: bytes, link: _Link, batch_id: int) -> None:
        """Tree push: the items of a push that failed on a link that worked until now
        (a lost request or reply, not a peer that is down) are announced to the peer
        rather than pushed again in full; the outbox skips them. Most got there, or
        reached the peer by a repair meanwhile; one it lacks it fetches. Once a push
        has failed, later ones wait in the outbox for the peer to come back."""
        batch = link.outbox.in_flight
        if not self.timing.tree_push or batch is None or batch.id != batch_id or link.outbox.failures:
            return
        ahead = {item.id for _, item in (*batch.early, *batch.retried)}
        self.tree.demote(peer, (item for item in batch.items if item.id not in ahead), self._now)

    def _announced(self, event: Announced, actions: list[Action]) -> None:
        link = self._links.get(event.peer)
        if link is None or link.score.standing is not Standing.GOOD:
            return  # what it holds could not be admitted from it anyway
        items, refused = self._items, self._refused
        self.tree.heard(
            event.peer, event.ids, lambda i: i not in items and i not in refused, self._now, event.hops
        )
        if self.timing.tree_push and self.timing.optimize_hops is not None:
            self._optimize(event, actions)

    def _optimize(self, event: Announced, actions: list[Action]) -> None:
        """Plumtree's optimisation: ``event.peer`` announces an item we hold at
        ``optimize_hops`` or more hops fewer than the copy our parent in its
        author's tree pushed us, so it becomes our link in that tree (graft) and
        the parent's goes lazy in it (prune). The first copy's path was the
        fastest once, but a repair may have grafted a far announcer, and the
        subtree below inherits every extra hop. At most one swap per author an
        announcement."""
        peer = event.peer
        if peer not in self._links:
            return
        swapped: set[bytes] = set()
        for item_id, hop in zip(event.ids, event.hops, strict=False):
            if not isinstance(hop, int) or isinstance(hop, bool) or not 0 <= hop < MAX_HOPS:
                continue
            item = self._items.get(item_id)
            if item is None or item.author in swapped:
                continue
            parent = self._parents.get(item.author)
            if parent is None or parent == peer or self.tree.mode(peer, item.author) is Mode.EAGER:
                continue
            if self._origin.get(item_id) == parent and self._shorter(self._hops.get(item_id), (peer, hop)):
                self._swap(parent, peer, item.author, actions)
                swapped.add(item.author)

    def _graft_due(self, actions: list[Action]) -> None:
        """Announced ids the tree did not bring in time: fetch each from an announcer
        and graft that link, so the next items come along it (around a quiet dropper)."""
        links = self._links

        def usable(peer: bytes) -> bool:
            link = links.get(peer)
            return link is not None and link.outbox.up and link.score.standing is Standing.GOOD

        def fetching(item_id: bytes) -> bool:
            return any(item_id in link.fetching for link in links.values())

        plan = self.tree.due_grafts(self._now, usable, lambda i: i in self._items or i in self._refused, fetching)
        deadline = self._now + self.timing.fetch_timeout_ms
        for peer, ids in plan.items():
            link = links[peer]
            ids = ids[: max(0, MAX_FETCHING - len(link.fetching))]
            for item_id in ids:
                link.fetching[item_id] = deadline
            for start in range(0, len(ids), FETCH_ACTION_IDS):
                actions.append(Fetch(peer, tuple(ids[start : start + FETCH_ACTION_IDS])))

    def _expire(self) -> None:
        """Drop expired items: they leave the reconciled set; replays are refused as expired."""
        # A full scan at most once a minute is fine at the retention sizes we
        # target (~10**5 items) and simpler than an expiry heap.
        minute = self._now // 60_000
        if not self._items or minute == self._swept_minute:
            return
        self._swept_minute = minute
        for item_id in [i for i, item in self._items.items() if item.expired(self._now)]:
            self._forget(item_id)

    # -- outbound -------------------------------------------------------------------------
    def _pump(self, actions: list[Action]) -> None:
        now = self._now
        for peer, link in self._links.items():
            outbox = link.outbox
            if outbox.up and link.score.standing is not Standing.CUT_OFF:
                while ids := self.tree.announcements(peer, now):
                    actions.append(Announce(peer, ids, self._hops_of(ids)))
                # Queue-jumpers beside a batch in flight (flooding: tree push routes each
                # item, and its hop bounds were tuned with one batch in flight a link).
                beside = None if self.timing.tree_push else outbox.next_beside(now)
                if beside is not None:
                    actions.append(Push(peer, beside.id, beside.items))
            if not outbox.ready(now) or link.score.standing is Standing.CUT_OFF:
                continue
            if not outbox.pending(self._log):
                continue
            batch = outbox.next_batch(self._log, now, self._skip(peer))
            if batch is not None:
                hops = self._hops_of([i.id for i in batch.items]) if self.timing.tree_push else ()
                actions.append(Push(peer, batch.id, batch.items, hops))
            else:
                mark = outbox.settle()
                if mark is not None:
                    actions.append(SaveMark(peer, mark))

    def hops_from_author(self, item_id: bytes) -> int | None:
        """How many hops from its author ``item_id`` came here (tree push; None
        when unknown: flooding, or a peer that sends no hop counts)."""
        return self._hops.get(item_id)

    def _hops_of(self, ids: Sequence[bytes]) -> tuple[int | None, ...]:
        """Our hop counts for ``ids`` (None where unknown), or () when none is known."""
        hops = tuple(self._hops.get(i) for i in ids)
        return hops if any(h is not None for h in hops) else ()

    def _skip(self, peer: bytes) -> Callable[[Item], bool]:
        """Items the outbox does not push to ``peer``: no echo to the peer an item
        came from, and none of those announced to it instead (a lazy tree link)."""
        origin = self._origin
        if not self.timing.tree_push:
            return lambda item: origin.get(item.id) == peer
        tree, bypassed = self.tree, self._bypassed
        return lambda item: (
            origin.get(item.id) == peer
            or tree.announced_to(peer, item.id)
            or tree.heard_from(peer, item.id)
            or bypassed.get(item.id) == peer
        )

    def items_for(self, ids: Sequence[bytes]) -> list[Item]:
        """Items to answer a peer's fetch with (unknown ids are skipped)."""
        return [item for item_id in ids if (item := self._items.get(item_id)) is not None]
