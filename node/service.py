"""The running node: carries out what the mesh state machine decides.

``mesh.MeshNode`` decides (events in, actions out); this class is the only
place that touches the store, the network and local listeners. Stores happen
before a push is answered, so an alert acknowledged to its sender is on disk.
Pushed and fetched batches take the relay pipeline (``relay``): signatures
checked in worker processes (``node.verifier``), forwarded as soon as the mesh
admits them, written by one thread in group commits (``node.store.writer``),
answered after their commit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from random import Random
from typing import Any, Literal, NamedTuple

from sqlalchemy.exc import SQLAlchemyError

import mesh
from mesh.interfaces import Item
from node import admission, clock_text, prerotation, records
from node.alerts import Readable, open_row
from node.allies.delivery import DeliveryDesk
from node.config import Config
from node.directory import Directory, Names
from node.joint import JointDesk, is_release
from node.outage import StoreOutage
from node.receipt_desk import ReceiptDesk
from node.receipts import ReceiptBook
from node.response.desk import ResponseDesk
from node.response.drill_runner import DrillRunner
from node.store import PeerRow, PeerStanding, Store, StoredEnvelope
from node.store.writer import GroupWriter
from node.transport import MeshClient, PeerAddress, TransportError, Wire
from node.treepush import PATH as TREE_PATH
from node.treepush import TreeCarrier
from node.verifier import Refusal, Verdict, Verifier, default_workers, verify_here
from protocol import (
    MAX_SKEW_MS,
    Ack,
    Alert,
    Endorsement,
    Envelope,
    NodeRecord,
    Objection,
    Proposal,
    ProtocolError,
    Receipt,
    Revoke,
    Sealed,
    Vouch,
    decode,
    envelope_id,
    fingerprint,
    framing,
    recipient_hint,
    reread,
    unseal,
)
from protocol.errors import BadFrame
from protocol.keys import Identity
from protocol.signing import next_key_commitment

log = logging.getLogger("amparo.node")

TICK_SECONDS = 2.0
PRUNE_EVERY_MS = 10 * 60_000
# Spent request nonces are deleted this often, not at every tick: a write on the
# event loop waits for the group writer's commit; a nonce kept longer than its
# request's age window is refused by the age check anyway.
PRUNE_NONCES_EVERY_MS = 60_000
# How long after its last contact a peer still counts as up. An idle live peer is
# heard from at least once per reconciliation (`mesh.Timing.reconcile_every_ms`,
# five minutes less up to 20 % jitter; pushes in between only when there is
# traffic), so one interval is the longest silence of a healthy link. Half an
# interval more covers the session's own calls and the tick, without letting a
# missed reconciliation pass for up. A call that fails shows at once ("failing",
# `peer_state`), so this window only decides when silence alone means down.
PEER_UP_MS = mesh.Timing().reconcile_every_ms * 3 // 2
# Tree push: Plumtree's swap by time (a lazy peer's announcement well ahead of
# the tree's copy moves the tree link to it) only for a lead of half a second.
# The simulator's links have no queues and swap at any lead; between real nodes
# a copy queued behind a batch in flight or a busy core is often late by a few
# hundred ms, and at any lead the tree flapped: 20 nodes, 40 ms links, 73
# grafts and prunes an alert (docs/performance.md, "Propagation").
TREE_SWAP_AFTER_MS = 500
# The node swaps by hops too (`Timing.optimize_hops`, the simulator's 1) now that
# every author has its own tree (mesh.tree). With one tree for every author, a
# link nearer one author was farther from the next, and swapping on each alert's
# distance moved the tree at every alert (20 nodes, 40 ms links: 4.5-5.5 grafts
# an alert, p99 2.5-4.4 s). Per author, 20 nodes with 40 ms links: p50 304 ->
# 240 ms, p99 508 -> 333 ms, 0.64 grafts an alert (docs/performance.md).
# An author whose node record is missing is asked for from the peer that delivered
# its alert at most this often (node.directory; the record usually comes by gossip).
RECORD_ASK_EVERY_MS = 10 * 60_000
TOUCH_EVERY_MS = 15_000  # last contact is kept in memory; the database copy may lag this much
# The wall clock stepping back further than this between two ticks (an hour-ahead
# clock corrected by NTP or by hand) restarts every peer's timers: the mesh's
# retries and reconciliations are deadlines on that clock, and those set while it
# was ahead would otherwise lie in the future and hold every link still.
CLOCK_STEP_BACK_MS = 30_000
RECOVER_PATH = "/mesh/v1/recover"  # where a recovered node brings its recovery record (mesh_api)
RECOVERY_RETRY_S = 5.0  # a peer that is down gets the recovery when it is back
# Refusals for a live budget or a peer's standing: the peer is being throttled.
THROTTLES = frozenset({"peer-rate-limited", "author-rate-limited", "voucher-rate-limited", "peer-throttled"})
THROTTLE_NOTE_S = 60.0  # one log line per throttled peer at most this often
# Outbound batches sized to one frame: each batch in flight is then one request.
# A push of receipts only waits this long for company (mesh.outbox.Pacing.linger_ms): on
# 20 nodes it cut the CPU an alert costs the mesh by 5-26 % and the alerts' p99 by half or
# more (docs/performance.md, "Receipts wait for company"). A receipt is bookkeeping for its
# author; half a second a hop is nothing next to its one-second batching at the source.
RECEIPT_LINGER_MS = 500
PUSH_PACING = mesh.Pacing(
    batch_items=framing.PUSH_BATCH_ITEMS, batch_bytes=framing.PUSH_BATCH_BYTES, linger_ms=RECEIPT_LINGER_MS
)
# With tree push, the mesh's own deadlines (an announcement batch due, an announced
# id late) are met by a wake-up between ticks, never sooner than this from now.
WAKE_FLOOR_MS = 50

# The commits of what a local request published (``NodeService.publish``): its
# answer waits for them (``node.local_api``'s ``_durable``). None outside a request.
OWN_WRITES: ContextVar[list[asyncio.Future[Any]] | None] = ContextVar("amparo_own_writes", default=None)


PeerState = Literal["up", "failing", "down"]


def peer_state(now: int, last_contact: int | None, failed_at: int | None) -> PeerState:
    """``failing`` from a failed call until the next success, so a peer that refuses
    or is gone shows at once rather than after the window; else ``up`` if heard from
    within ``PEER_UP_MS``; else ``down`` (silent, or never heard since start)."""
    if failed_at is not None and (last_contact is None or failed_at >= last_contact):
        return "failing"
    if last_contact is not None and now - last_contact < PEER_UP_MS:
        return "up"
    return "down"


def wall_ms() -> int:
    return int(time.time() * 1000)


def to_item(env: Envelope) -> Item:
    body = env.body
    subject = body.subject if isinstance(body, Vouch | Revoke) else None
    compromised = isinstance(body, Revoke) and body.compromised
    if not isinstance(body, NodeRecord):
        return Item(
            id=env.id,
            created=env.created,
            expires=env.expires,
            author=env.author,
            kind=env.type,
            raw=env.raw,
            subject=subject,
            compromised=compromised,
        )
    return Item(  # a rotation or recovery: the mesh joins the old and new key (pre-rotation: §6.5)
        id=env.id,
        created=env.created,
        expires=env.expires,
        author=env.author,
        kind=env.type,
        raw=env.raw,
        subject=body.prev or body.recovers,
        compromised=body.old_compromised,
        commits=body.next_key,
        author_commitment=next_key_commitment(env.author),
        recovery=body.recovers is not None,
    )


class PushOutcome(NamedTuple):
    """What a push reply reports: stored, invalid, and deferred ids (sent again later)."""

    accepted: int
    invalid: int
    deferred: tuple[bytes, ...]


@dataclass
class Counters:
    """Figures for ``amparo status`` and metrics."""

    received: int = 0
    stored: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    pushed: int = 0
    push_failures: int = 0
    push_deferred: int = 0  # items a peer deferred for a budget (resent later, not delivered)
    push_requests: int = 0  # push requests answered by peers (a push of many frames counts each)
    reconciles: int = 0
    # Catch-up's cost on the wire (bench/catchup.py): reconciliation messages sent
    # (each one round trip) and their bytes both ways; fetch requests (round trips)
    # and the bytes of the ids they asked for; envelopes fetched and their bytes.
    reconcile_messages: int = 0
    reconcile_bytes: int = 0
    fetch_requests: int = 0
    fetch_request_bytes: int = 0
    range_fetch_requests: int = 0  # of fetch_requests: by range (their bytes: the request and its `next`)
    fetched: int = 0
    fetched_bytes: int = 0
    acks_for_ours: int = 0  # acknowledgements of alerts this node authored …
    ack_seconds: float = 0.0  # … and their summed time-to-acknowledge

    def reject(self, code: str) -> None:
        self.rejected[code] = self.rejected.get(code, 0) + 1


class NodeService:
    def __init__(
        self,
        home: Path,
        config: Config,
        identity: Identity,
        store: Store,
        clock: Callable[[], int] = wall_ms,
        *,
        wire: Wire | None = None,
        random: Random | None = None,
    ) -> None:
        """``wire`` and ``random`` are for the in-process test grid (tests/grid/):
        peers reached without sockets, jitter from a seed."""
        self.home, self.config, self.identity, self.store, self.clock = home, config, identity, store, clock
        self.key = identity.sign_public
        # A SQLite file in the node's home is read back without checking signatures
        # again (``_decode_stored``); a PostgreSQL server, which others may run, is not.
        self._own_disk = store.dialect == "sqlite"
        self.client = MeshClient(identity, clock, config.socks_proxy, wire=wire)
        self._random = random or _system_random()
        self.counters = Counters()
        self.tree = TreeCarrier(config.tree_push)  # tree push on the wire (node.treepush)
        self._wake: asyncio.TimerHandle | None = None
        self._waking = False  # between ticks too (tree push deadlines); off in the test grid
        self.subscribers: set[asyncio.Queue[StoredEnvelope]] = set()
        self._touched: dict[bytes, int] = {}  # when each peer's last contact was last written to the store
        self._failures: dict[bytes, tuple[int, str]] = {}  # the last failed call per peer, since start
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending: dict[bytes, StoredEnvelope] = {}
        self._pending_env: dict[bytes, Envelope] = {}  # decoded once, reused when stored
        # The relay pipeline (``relay``): verification on every core, one writer for
        # every envelope stored, the group commit each admitted id waits for, the
        # batches' turns to be admitted (node.admission.Turns: per peer, trust records in order)
        # and the nonces of pushes under way (checked unused, not written yet).
        workers = config.verify_workers if config.verify_workers >= 0 else default_workers()
        self.verifier = Verifier(workers)
        self.writer = GroupWriter(store)
        self._committing: dict[bytes, asyncio.Future[dict[bytes, StoredEnvelope]]] = {}
        self.turns = admission.Turns()
        self._nonces_held: set[tuple[bytes, bytes]] = set()
        self._relaying = 0  # batches between arrival and answer
        self.gauges: list[tuple[str, str, Callable[[], float]]] = []
        # In memory only (restricted plaintext never reaches the disk): which sealed
        # envelopes answer which alert, and the X25519 keys of nodes we have heard of.
        self.sealed_refs: dict[bytes, list[bytes]] = {}
        self.enc_keys: dict[bytes, bytes] = {identity.sign_public: identity.enc_public}
        # Names of authors, from the node records and vouches in the store (node.directory).
        self.directory = Directory()
        self._records_asked: dict[bytes, int] = {}  # author -> when its node record was last asked for
        # Peers whose reconciliation replies said they answer range fetches but whose
        # fetch replies did not: asked by id until this node restarts.
        self._no_range_fetch: set[bytes] = set()
        # Delivery receipts owed and received (node.receipts), rebuilt from the store like the names.
        self.receipts = ReceiptBook(self._random)
        self.receipt_desk = ReceiptDesk(self, self.receipts)  # sends them; nothing runs before start
        # Joint releases (k of n): rebuilt from the stored envelopes by ``_index``.
        self.joint = JointDesk(self)
        self.mesh, alert_authors = self._build_mesh()
        own_keys = set(self.own_keys())  # only now: the keys this node rotated from
        self.receipts.keep_only({alert for alert, author in alert_authors.items() if author in own_keys})
        self.desk = ResponseDesk(self)
        self.drills = DrillRunner(self)
        self.allies = DeliveryDesk(self)
        self.gauges.append(
            ("amparo_delivery_backlog", "Ally deliveries waiting in the outbox", lambda: self.allies.backlog())
        )
        if config.tree_push:
            self.gauges.extend(self.tree.gauges())
        self.started_at = clock()
        self._pruned_at = 0
        self._nonces_pruned_at = 0
        self._ticked_at = self.started_at
        # Catch-up marks moved by push results, written with the next batch of
        # envelopes or on the next tick: a lost mark only means a harmless resend.
        self._unsaved_marks: dict[bytes, int] = {}
        # The push being ingested's request nonce, written in the same transaction
        # as its envelopes (see ``ingest``).
        self._nonces: list[tuple[bytes, bytes, int]] = []
        # While ``ingest_push`` runs: ids refused for a budget, named in the push reply.
        self._deferring: list[bytes] | None = None
        self.outage = StoreOutage()  # a full disk: logged once when it starts and when it ends
        self._throttle_noted: dict[bytes, float] = {}  # peer -> when it was last logged (monotonic)
        # The newest ``created`` this node signed since it started: a rotation
        # record older than that would retire the key under an envelope already made.
        self.last_authored = 0

    # -- start and stop -------------------------------------------------------------------
    def _build_mesh(self) -> tuple[mesh.MeshNode, dict[bytes, bytes]]:
        """The mesh's state from the store, and every stored alert's author."""
        stored = []
        received: dict[bytes, int] = {}
        alert_authors: dict[bytes, bytes] = {}
        for row in self.store.iter_all():
            env = self._decode_stored(row)
            self._index(row, env)
            stored.append((to_item(env), row.seq))
            received[env.id] = row.received_at
            if row.type == "alert":
                alert_authors[env.id] = env.author
        peers = self.store.list_peers()
        marks = {p.key: p.mark for p in peers}
        node = mesh.MeshNode(
            self.key,
            peers=list(marks),
            stored=stored,
            received=received,
            marks=marks,
            standings={p.key: _saved_standing(p.standing) for p in peers if p.standing is not None},
            trust_depth=self.config.trust_depth,
            pacing=PUSH_PACING,
            timing=mesh.Timing(tree_push=self.config.tree_push, swap_after_ms=TREE_SWAP_AFTER_MS),
            random=self._random,
            now=self.clock(),
        )
        return node, alert_authors

    def _decode_stored(self, stored: StoredEnvelope) -> Envelope:
        """An envelope this node verified and stored, read back. From a SQLite file
        in the node's home without its signature checked again (whoever can write
        that file can write the node's keys and code beside it; its id still
        catches a damaged disk): a start reads the whole store, and re-verifying
        60,000 envelopes made it last 11 s (docs/reliability.md, finding 11).
        From PostgreSQL, a server others may administer, verified as it came."""
        if self._own_disk:
            return reread(stored.raw, stored_id=stored.id)
        return decode(stored.raw, now=self.clock(), check_time=False)

    async def start(self, *, ticking: bool = True) -> None:
        """Bring the node up. Without ``ticking`` nothing runs on its own: no
        ticker, no delivery worker; the test grid calls ``tick`` after moving its
        fake clock, and waits for the tasks the ticks start."""
        await self.client.start()
        self.publish_node_record()
        for peer in self.store.list_peers():
            self.handle(mesh.PeerUp(peer.key))
        if ticking:
            self.recover_peers()
        self.allies.catch_up()
        if ticking:
            self._waking = True
            self.receipt_desk.start()  # what was stored and not answered before a stop first
            self._spawn(self._ticker())
            self._spawn(self.allies.run())

    async def stop(self) -> None:
        self._waking = False
        if self._wake is not None:
            self._wake.cancel()
        self.receipt_desk.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.writer.close()  # what was admitted is written before the node stops
        await asyncio.to_thread(self.verifier.close)
        self.save_marks(at_once=True)  # the writer has stopped
        await self.client.close()

    def publish_node_record(self) -> None:
        """Issue a fresh signed ``node`` record when addresses or TLS changed."""
        record = records.node_record(self.home, self.config, self.identity, self.clock())
        current = self.store.get_meta("node_record_body")
        body_hex = framing.pack(record.body.to_wire()).hex()  # type: ignore[union-attr]
        if current == body_hex:
            return
        self.author(record)
        self.store.set_meta("node_record_body", body_hex)
        self.store.set_meta("node_record_id", record.id.hex())

    def own_record(self) -> Envelope:
        rid = self.store.get_meta("node_record_id")
        stored = self.store.get(bytes.fromhex(rid)) if rid else None
        if stored is None:
            self.publish_node_record()
            rid = self.store.get_meta("node_record_id")
            stored = self.store.get(bytes.fromhex(rid or ""))
        assert stored is not None
        return self._decode_stored(stored)

    def take_recovery(self, sender: bytes, raw: bytes) -> str | None:
        """A recovery record brought by the key it makes a peer's successor (the
        ``/mesh/v1/recover`` door); None when held (stored now or before), else why not."""
        try:
            env = decode(raw, now=self.clock())
        except ProtocolError as exc:
            return exc.message
        body = env.body
        if not isinstance(body, NodeRecord) or body.recovers is None or env.author != sender:
            return "not a recovery record signed by the requesting key"
        peer = self.store.get_peer(body.recovers)
        if (peer is None or peer.status != "active") and self.store.get_peer(sender) is None:
            return "the key it recovers is not a peer of this node"
        if self.store.get(env.id) is None:
            self.ingest([raw], None)
        if self.store.get(env.id) is None:
            return "the recovering key is not the one the old key committed to"
        return None

    def recover_peers(self) -> None:
        """After ``amparo keys recover``: vouch for every peer with the recovered key
        (the seized key's vouches no longer count), once, and bring the recovery
        record to each peer until it has it (``_announce_recovery``)."""
        if prerotation.recovering(self.home) is None:
            return
        done = self.store.get_meta("recovery_vouched")
        if done != self.key.hex():
            now = self.clock()
            for peer in self.store.list_peers():
                self.author(
                    records.vouch(
                        self.identity, peer.key, peer.enc_key, peer.name, now, verified=peer.verified
                    )
                )
            self.store.set_meta("recovery_vouched", self.key.hex())
        self._spawn(self._announce_recovery())

    async def _announce_recovery(self) -> None:
        record = self.own_record().raw
        waiting = {peer.key for peer in self.store.list_peers()}
        while waiting:
            for key in sorted(waiting):
                address = self.peer_address(key)
                if address is None:
                    waiting.discard(key)
                    continue
                try:
                    await self.client.call(address, RECOVER_PATH, {"e": [record]})
                except TransportError as exc:
                    self._failed(key, "bring the recovery to", exc)
                    continue
                waiting.discard(key)
                log.info("peer %s has this node's recovery", address.key.hex()[:16])
            if waiting:
                await asyncio.sleep(RECOVERY_RETRY_S)

    def remove_peer(self, key: bytes) -> None:
        """Stop peering and revoke this node's vouch, so the revocation gossips."""
        self.store.remove_peer(key)
        self.handle(mesh.PeerDown(key))
        self.author(records.revoke_vouch(self.identity, key, self.clock(), "peering ended"))

    # -- inputs ---------------------------------------------------------------------------
    def author(self, env: Envelope) -> StoredEnvelope | None:
        """A new envelope made here: store, deliver locally, push to every peer."""
        self.last_authored = max(self.last_authored, env.created)
        self._pending[env.id] = StoredEnvelope.from_envelope(env, received_at=self.clock(), from_peer=None)
        self._pending_env[env.id] = env
        self.handle(mesh.Authored(to_item(env)))
        stored = self.store.get(env.id)
        self._pending.pop(env.id, None)
        self._pending_env.pop(env.id, None)
        return stored

    def publish(self, env: Envelope) -> bool:
        """``author`` without holding the event loop for the disk: the mesh admits
        the envelope now, the group writer stores it with whatever relayed
        envelopes are queued, and only once it is on disk do its pushes start and
        local delivery follow, as with ``author`` (an author told
        ``store-unavailable`` must be able to trust that nothing went out). A
        local request that publishes is answered once its envelopes are on disk
        (``OWN_WRITES``); outside a request a failed write is the outage watch's
        to log. False when the node refused the envelope.

        Why: ``author`` blocks the loop until the writer thread has committed
        everything queued before it, then its own row: two fsyncs during which
        no push is read and no forward starts. A receipt sent every second and
        each alert sent from the dashboard stalled every relay this way
        (bench/ingest.py's profile: the receipt desk was 16 % of the loop)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): the classic path
            return self.author(env) is not None
        if self.mesh.get(env.id) is not None:
            return True  # already held (the same bytes published twice)
        self.last_authored = max(self.last_authored, env.created)
        self._pending[env.id] = StoredEnvelope.from_envelope(env, received_at=self.clock(), from_peer=None)
        self._pending_env[env.id] = env
        actions = self.mesh.handle(mesh.Authored(to_item(env)), self.clock())
        items = [a.item for a in actions if isinstance(a, mesh.Store)]
        if env.id not in {item.id for item in items}:  # refused: nothing of it is written
            self._pending.pop(env.id, None)
            self._pending_env.pop(env.id, None)
            self.execute(actions)
            return False
        self._note_marks(actions)
        rows = [self._pending.get(i.id) or self._row_from_raw(i.raw) for i in items]
        marks = list(self._unsaved_marks.items())
        self._unsaved_marks.clear()
        commit = self.writer.submit(rows, marks, [])
        for item in items:
            self._committing[item.id] = commit
        commit.add_done_callback(partial(self._published, items, actions))
        if (writes := OWN_WRITES.get()) is not None:
            writes.append(commit)
        return True

    def _published(
        self, items: list[Item], actions: list[Any], commit: asyncio.Future[dict[bytes, StoredEnvelope]]
    ) -> None:
        """``publish``'s commit is done: on disk, its pushes start and it is
        delivered here; not written, the mesh forgets it and takes back the
        batches it was never sent in (as ``execute`` does)."""
        delivers: list[Item] = []
        if commit.cancelled():  # the node is stopping: as if not written
            self._not_stored(items, asyncio.CancelledError())
            return
        failed = commit.exception() is not None
        if not failed:
            self._carry_out(actions, delivers.append)
        self._committed(items, delivers, commit)
        if failed:
            for action in actions:
                if isinstance(action, mesh.Push):
                    self.handle(mesh.PushUnsent(action.peer, action.batch_id))

    def ingest(
        self, raws: Iterable[bytes], from_peer: bytes | None, nonce: tuple[bytes, int] | None = None
    ) -> tuple[int, int]:
        """Verify envelopes from a peer and hand the valid ones to the mesh.

        ``nonce`` is the pushing request's (nonce, expiry), already checked unused
        by the listener: it is stored in the same transaction as the envelopes, so
        a push costs one fsync. There is no ``await`` between check and write."""
        now = self.clock()
        if nonce is not None and from_peer is not None:
            self._nonces.append((from_peer, *nonce))
        try:
            return self._ingest(raws, from_peer, now)
        finally:
            for peer, value, expires in self._nonces:  # nothing stored: the nonce on its own
                self.store.remember_nonce(peer, value, expires)
            self._nonces.clear()

    def ingest_push(
        self, raws: Iterable[bytes], from_peer: bytes, nonce: tuple[bytes, int] | None = None
    ) -> PushOutcome:
        """``ingest`` for a push: also which items were deferred (refused for a budget
        or the sender's standing, ``mesh.RETRYABLE``), so the reply can tell the
        sender to keep them and send them again later instead of counting them delivered."""
        self._deferring = []
        try:
            accepted, invalid = self.ingest(raws, from_peer, nonce)
            return PushOutcome(accepted, invalid, tuple(self._deferring))
        finally:
            self._deferring = None

    def _ingest(self, raws: Iterable[bytes], from_peer: bytes | None, now: int) -> tuple[int, int]:
        raws = list(raws)
        known = [self._known_copy(raw, now) for raw in raws]
        verdicts = verify_here([raw for raw, item in zip(raws, known, strict=True) if item is None], now)
        items, invalid = self._verified_items(known, verdicts, from_peer, now)
        before = self.counters.stored
        if items and from_peer is not None:
            self.handle(mesh.Received(from_peer, items))
        elif items:
            for item in items:
                self.handle(mesh.Authored(item))
        for item in items:
            self._pending.pop(item.id, None)
            self._pending_env.pop(item.id, None)
        return self.counters.stored - before, invalid

    def _verified_items(
        self, known: list[Item | None], verdicts: list[Verdict], from_peer: bytes | None, now: int
    ) -> tuple[list[Item], int]:
        """The mesh's items for a batch, in order: the known copies as they are,
        the rest from their verdicts (one per ``None`` in ``known``). A refusal is
        counted, and scored against ``from_peer`` only when it proves that peer's
        fault (never for time or version: ``protocol.errors``)."""
        items: list[Item] = []
        invalid = 0
        verdict_of = iter(verdicts)
        for item in known:
            self.counters.received += 1
            if item is not None:
                items.append(item)  # the mesh refuses it as a duplicate, and learns who sent it
                continue
            verdict = next(verdict_of)
            if isinstance(verdict, Refusal):
                invalid += 1
                self.counters.reject(verdict.code)
                if from_peer is not None and verdict.blames_sender:
                    self.handle(mesh.PeerInvalid(from_peer, verdict.code))
                continue
            self._pending[verdict.id] = StoredEnvelope.from_envelope(
                verdict, received_at=now, from_peer=from_peer
            )
            self._pending_env[verdict.id] = verdict
            items.append(to_item(verdict))
        return items, invalid

    # -- the relay pipeline ---------------------------------------------------------------
    async def relay(
        self,
        raws: Sequence[bytes],
        from_peer: bytes,
        nonce: tuple[bytes, int] | None = None,
        hops: Sequence[int | None] = (),
    ) -> PushOutcome:
        """Ingest a batch from a peer on the relay pipeline; returns when it may be
        acknowledged.

        1. Cheap checks first: a copy of what the mesh holds (by id, then the
           bytes) goes to the mesh without a signature check.
        2. The rest is verified on every core (``node.verifier``).
        3. Batches are admitted by the mesh as soon as they are verified, after
           any earlier batch with trust records (``admission.Turns``); what it
           admits is forwarded at once (its pushes start now) and handed to the
           one writer (``node.store.writer``), with the request's ``nonce``.
        4. The answer waits for the group commit holding the batch, and for the
           commits of ids it repeats that another batch is still writing: nothing
           is acknowledged before it is on disk. Local delivery (stream, desks,
           allies) follows each commit.
        A failed write raises ``SQLAlchemyError`` (the sender is answered 503 and
        sends again); so does ``VerifierUnavailable`` when the workers keep dying.
        ``hops``: the sender's hop count per envelope (tree push), if it sent them."""
        self._relaying += 1
        try:
            hop_of = dict(zip(map(envelope_id, raws), hops, strict=True)) if hops else {}
            return await self._relay(raws, from_peer, nonce, hop_of)
        finally:
            self._relaying -= 1

    async def _relay(
        self,
        raws: Sequence[bytes],
        from_peer: bytes,
        nonce: tuple[bytes, int] | None,
        hop_of: dict[bytes, int | None],
    ) -> PushOutcome:
        before: asyncio.Future[None] | None = None
        turn: asyncio.Future[None] | None = None
        submitted = False
        try:
            now = self.clock()
            known = [self._known_copy(raw, now) for raw in raws]
            claims = admission.claims(raws, known)
            before, turn = self.turns.take(admission.orders_all(known, claims))
            raws, known, screened = self._screen(raws, known, from_peer, claims)
            unknown = [raw for raw, item in zip(raws, known, strict=True) if item is None]
            verdicts = await self.verifier.verify(unknown, now, alone=self._relaying == 1)
            if before is not None and not before.done():
                await asyncio.shield(before)
            waits, commit, invalid, deferred = self._admit_relayed(known, verdicts, from_peer, nonce, now, hop_of)
            submitted = True
        finally:
            if turn is not None:
                _next_turn(before, turn)
            if not submitted and nonce is not None:
                self.store.remember_nonce(from_peer, *nonce)
        await asyncio.gather(*(asyncio.shield(w) for w in waits))
        return PushOutcome(len(commit.result()), invalid, screened + deferred)

    def _screen(
        self, raws: Sequence[bytes], known: list[Item | None], from_peer: bytes, claims: list[mesh.Claim]
    ) -> tuple[Sequence[bytes], list[Item | None], tuple[bytes, ...]]:
        """Before verification, the mesh refuses what it would refuse anyway for a
        spent budget or the peer's standing (``node.admission``): those are
        deferred without a signature check. Returns what is left, and their ids."""
        if not claims:
            return raws, known, ()
        self._deferring = []
        try:
            self.handle(mesh.Screen(from_peer, claims))
            screened = tuple(self._deferring)
        finally:
            self._deferring = None
        if not screened:
            return raws, known, ()
        kept, known = admission.without(raws, known, frozenset(screened))
        return kept, known, screened

    def _admit_relayed(
        self,
        known: list[Item | None],
        verdicts: list[Verdict],
        from_peer: bytes,
        nonce: tuple[bytes, int] | None,
        now: int,
        hop_of: dict[bytes, int | None],
    ) -> tuple[
        list[asyncio.Future[Any]], asyncio.Future[dict[bytes, StoredEnvelope]], int, tuple[bytes, ...]
    ]:
        """Step 3 of ``relay``, with no ``await``: the mesh's verdicts, the forwards
        started, the commit submitted. Returns the commits to wait for, this
        batch's own, the invalid count and the ids deferred for a budget."""
        items, invalid = self._verified_items(known, verdicts, from_peer, now)
        self._deferring = []
        try:
            hops = [hop_of.get(item.id) for item in items] if hop_of else []
            actions = self.mesh.handle(mesh.Received(from_peer, items, hops), self.clock()) if items else []
            nonces = [] if nonce is None else [(from_peer, *nonce)]
            commit = self._execute_relayed(actions, nonces)
            deferred = tuple(self._deferring)
        finally:
            self._deferring = None
        waits: list[asyncio.Future[Any]] = [commit]
        for item in items:
            pending = self._committing.get(item.id)
            if pending is None:  # refused by the mesh: nothing will be written
                self._pending.pop(item.id, None)
                self._pending_env.pop(item.id, None)
            elif pending is not commit:
                waits.append(pending)  # a copy of an id another batch is still writing
        return waits, commit, invalid, deferred

    def _execute_relayed(
        self, actions: list[Any], nonces: list[tuple[bytes, bytes, int]]
    ) -> asyncio.Future[dict[bytes, StoredEnvelope]]:
        """``execute`` without waiting for the store: what to store goes to the
        group commit, everything else is carried out now (pushes to peers start
        before the commit), local delivery waits for the commit."""
        items = [a.item for a in actions if isinstance(a, mesh.Store)]
        self._note_marks(actions)
        rows = [self._pending.get(i.id) or self._row_from_raw(i.raw) for i in items]
        marks = list(self._unsaved_marks.items())
        self._unsaved_marks.clear()
        commit = self.writer.submit(rows, marks, nonces)
        for item in items:
            self._committing[item.id] = commit
        delivers: list[Item] = []
        commit.add_done_callback(partial(self._committed, items, delivers))
        self._carry_out(actions, delivers.append)
        return commit

    def _committed(
        self, items: list[Item], delivers: list[Item], commit: asyncio.Future[dict[bytes, StoredEnvelope]]
    ) -> None:
        """After a group commit: derived state and local delivery of what is now on
        disk; or, when the write failed, the mesh forgets the items (a later copy
        or a reconciliation brings them again)."""
        for item in items:
            if self._committing.get(item.id) is commit:
                del self._committing[item.id]
        try:
            exc = commit.exception()
            if exc is not None:
                self._not_stored(items, exc)
                return
            stored = commit.result()
            if self.outage.worked():
                self._later(self._store_back)
            self.counters.stored += len(stored)
            for row in stored.values():
                self._on_stored(row)
            for item in delivers:
                self._deliver(stored.get(item.id) or self.store.get(item.id))
        except Exception:
            log.exception("after storing %d envelope(s)", len(items))
        finally:
            for item in items:
                self._pending.pop(item.id, None)
                self._pending_env.pop(item.id, None)

    def hold_nonce(self, peer: bytes, nonce: bytes) -> bool:
        """Claim a push's nonce, checked unused in the store, until ``relay`` has
        written it: False if a push with the same nonce is under way (a replay)."""
        if (peer, nonce) in self._nonces_held:
            return False
        self._nonces_held.add((peer, nonce))
        return True

    def release_nonce(self, peer: bytes, nonce: bytes) -> None:
        self._nonces_held.discard((peer, nonce))

    def remember_nonce(self, peer: bytes, nonce: bytes, expires: int) -> bool:
        """Claim the nonce of a request that carries no envelopes (a reconciliation,
        a fetch, a tree signal): False if it was used (a replay). It is held in
        memory at once and written by the group writer, not on the event loop:
        a tree signal comes with every few alerts, and a write of its own there
        waited for the writer's commit (SQLite has one write lock) while no push
        was read. These requests only read or are idempotent, so the window a
        crash leaves before the nonce is on disk costs nothing a replay could use."""
        if (peer, nonce) in self._nonces_held or self.store.nonce_used(peer, nonce):
            return False
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self.store.remember_nonce(peer, nonce, expires)
        self._nonces_held.add((peer, nonce))
        commit = self.writer.submit([], [], [(peer, nonce, expires)])
        commit.add_done_callback(partial(self._nonce_written, (peer, nonce)))
        return True

    def _nonce_written(self, held: tuple[bytes, bytes], commit: asyncio.Future[Any]) -> None:
        """Written: the store answers for it now. Not written: kept in memory (a
        full disk; the outage watch says so), so it stays refused until a restart."""
        if commit.cancelled():
            return
        if (exc := commit.exception()) is not None:
            self.outage.failed("remembering a request's nonce", exc)
            return
        self._nonces_held.discard(held)

    def _known_copy(self, raw: bytes, now: int) -> Item | None:
        """The mesh's item for ``raw`` when these exact bytes were verified and
        stored before, so a duplicate (most of what a flooding mesh delivers)
        costs a hash, not a signature check. The id is the BLAKE2b-256 of the
        bytes, so an equal id means equal bytes; they are compared anyway. The
        time checks ``decode`` would make still decide: a copy that has expired
        since, or a clock that went back, takes the full path and its refusal."""
        if not isinstance(raw, bytes):
            return None
        item = self.mesh.get(envelope_id(raw))
        if item is None or item.raw != raw or item.expired(now) or item.created > now + MAX_SKEW_MS:
            return None
        return item

    def handle(self, event: Any) -> None:
        self.execute(self.mesh.handle(event, self.clock()))

    # -- actions --------------------------------------------------------------------------
    def execute(self, actions: list[Any]) -> None:
        to_store = [a.item for a in actions if isinstance(a, mesh.Store)]
        self._note_marks(actions)
        try:
            stored = self._store_or_forget(to_store) if to_store else {}
        except SQLAlchemyError:
            # None of this turn's actions is carried out: its pushes were never sent.
            for action in actions:
                if isinstance(action, mesh.Push):
                    self.handle(mesh.PushUnsent(action.peer, action.batch_id))
            raise
        self._carry_out(actions, lambda item: self._deliver(stored.get(item.id) or self.store.get(item.id)))

    def _note_marks(self, actions: list[Any]) -> None:
        """Catch-up marks wait for the next batch stored (or the next tick)."""
        for action in actions:
            if isinstance(action, mesh.SaveMark):
                self._unsaved_marks[action.peer] = max(action.seq, self._unsaved_marks.get(action.peer, 0))

    def _carry_out(self, actions: list[Any], deliver: Callable[[Item], None]) -> None:
        """Every action but storing: ``deliver`` is how an item stored reaches local users."""
        for action in actions:
            if isinstance(action, mesh.Store | mesh.SaveMark):
                continue
            if isinstance(action, mesh.Deliver):
                deliver(action.item)
            elif isinstance(action, mesh.Push):
                self._spawn(self._push(action.peer, action.batch_id, [i.raw for i in action.items], action.hops))
            elif isinstance(action, mesh.StartReconcile):
                self._spawn(self._reconcile(action.peer))
            elif isinstance(action, mesh.Fetch):
                self._spawn(self._fetch(action.peer, list(action.ids)))
            elif isinstance(action, mesh.FetchRange):
                self._spawn(self._fetch_range(action.peer, action.ranges, action.limit))
            elif isinstance(action, mesh.Disconnect):
                log.warning("cutting off peer %s: %s", action.peer.hex()[:16], action.reason)
            elif isinstance(action, mesh.SaveStanding):
                saved = action.saved
                standing = PeerStanding(saved.standing.value, saved.score, saved.banned_until)
                self.store.set_peer_standing(action.peer, standing)  # at transitions only, so rare
            elif isinstance(action, mesh.Rejected):
                self.counters.reject(str(action.reason))
                if self._deferring is not None and action.reason in mesh.RETRYABLE:
                    self._deferring.append(action.item_id)
                if action.peer is not None and action.reason in THROTTLES:
                    self._note_throttled(action.peer, action.reason)
            elif isinstance(action, mesh.Announce | mesh.Graft | mesh.Prune):
                self._tree_action(action)
        self._wake_for_mesh()

    def _note_throttled(self, peer: bytes, reason: str) -> None:
        """One warning when a peer's pushes start being deferred for a budget (a
        flooding peer, or a relay for a flooding author), then at most one a
        minute: an operator, and the nemesis, see when the throttle took hold
        without a line per refused item."""
        now = time.monotonic()
        if now - self._throttle_noted.get(peer, -THROTTLE_NOTE_S) < THROTTLE_NOTE_S:
            return
        self._throttle_noted[peer] = now
        row = self.store.get_peer(peer)
        name = row.name if row is not None else "unknown"
        log.warning("throttling peer %s (%s): its items are deferred (%s)", peer.hex()[:16], name, reason)

    # -- tree push (node.treepush) ----------------------------------------------------------
    def _tree_action(self, action: mesh.Announce | mesh.Graft | mesh.Prune) -> None:
        signal, events = self.tree.outgoing(action)
        if signal is not None:
            self._spawn(self._signal(action, signal))
        for event in events:
            self.handle(event)

    async def _signal(self, action: mesh.Announce | mesh.Graft | mesh.Prune, signal: framing.TreeSignal) -> None:
        """A signal with no answer goes back to the mesh: an announcement as
        ``AnnounceFailed`` (announced once more), a graft or a prune as
        ``SignalFailed`` (sent again while the link is still in the mode it asked
        for: a lost prune kept a second parent pushing every item)."""
        address = self.peer_address(action.peer)
        if address is None:
            return
        try:
            await self.client.call(address, TREE_PATH, framing.tree_frame(signal))
        except TransportError as exc:
            self._failed(action.peer, "tree signal to", exc)
            if isinstance(action, mesh.Announce):
                self.handle(mesh.AnnounceFailed(action.peer, action.ids))
            else:
                self.handle(mesh.SignalFailed(action.peer, isinstance(action, mesh.Graft), action.roots))

    def tree_signal(self, peer: bytes, signal: framing.TreeSignal) -> None:
        """A tree signal from ``peer`` (the mesh listener checked and parsed it)."""
        for event in self.tree.incoming(peer, signal):
            self.handle(event)

    def tree_spoken(self, peer: bytes, speaks: bool) -> None:
        """A push or push reply from ``peer`` said whether it speaks the tree
        (``framing.speaks_tree``)."""
        for event in self.tree.heard(peer, speaks):
            self.handle(event)

    def _wake_for_mesh(self) -> None:
        """Meet the mesh's next deadline when it falls before the next tick: with
        tree push every deadline (an announcement batch, a late announced id), so
        announcements wait ``announce_delay_ms``, not a whole tick; with flooding
        the next reconciliation, so a catch-up paced by the peer's budget goes on
        when the budget allows (up to 2 s sooner: at 10,000 alerts, a fifth of
        the catch-up), and the end of a wait of receipts for company."""
        if not self._waking:
            return
        if self.tree.enabled:
            due = self.mesh.wakeup_at()
        else:
            due = min(
                (t for t in (self.mesh.reconcile_at(), self.mesh.linger_at()) if t is not None), default=None
            )
        if due is None:
            return
        now = self.clock()
        delay_ms = max(due - now, WAKE_FLOOR_MS)
        if delay_ms >= TICK_SECONDS * 1000:
            return
        loop = asyncio.get_running_loop()
        at = loop.time() + delay_ms / 1000
        if self._wake is not None and not self._wake.cancelled() and self._wake.when() <= at:
            return
        if self._wake is not None:
            self._wake.cancel()
        self._wake = loop.call_at(at, self._woken)

    def _woken(self) -> None:
        self._wake = None
        try:
            self.handle(mesh.Tick())
        except Exception:
            log.exception("mesh wake-up failed")

    def _store_or_forget(self, items: list[Item]) -> dict[bytes, StoredEnvelope]:
        """``_store``; when the write fails (a full disk, a failing database) the
        mesh forgets the items, so a later copy or a reconciliation brings them
        again, and the error goes on to the caller: the sender is acknowledged
        nothing that was not stored, and retries."""
        try:
            stored = self._store(items)
        except SQLAlchemyError as exc:
            self._not_stored(items, exc)
            raise
        if self.outage.worked():
            self._later(self._store_back)
        return stored

    def _later(self, call: Callable[[], None]) -> None:
        """``call`` on the loop's next turn (after the actions under way), or now without a loop."""
        try:
            asyncio.get_running_loop().call_soon(call)
        except RuntimeError:
            call()

    def _store_back(self) -> None:
        """The store can be written again: reconcile with every peer now (what this
        node refused meanwhile, its peers hold, backed off after its 503s: the
        nemesis's disk fault, seed 27, waited 160 s for their retries)."""
        for peer in self.store.list_peers():
            if peer.status == "active":
                self.handle(mesh.PeerUp(peer.key))

    def _not_stored(self, items: list[Item], exc: BaseException) -> None:
        """Logged by the outage watch (one line, no traceback: a full disk is the
        operator's to fix), and the mesh forgets the items."""
        self.outage.failed(f"storing {len(items)} envelope(s)", exc)
        if items:
            self.handle(mesh.NotStored([item.id for item in items]))

    def _store(self, items: list[Item]) -> dict[bytes, StoredEnvelope]:
        """Write one batch, the marks waiting and the push's nonce in one
        transaction (one fsync); returns the rows newly stored, by id."""
        rows = [self._pending.get(i.id) or self._row_from_raw(i.raw) for i in items]
        marks, nonces = list(self._unsaved_marks.items()), list(self._nonces)
        inserted = self.writer.write_now(rows, marks, nonces)
        self._unsaved_marks.clear()
        self._nonces.clear()
        self.counters.stored += len(inserted)
        for row in inserted.values():
            self._on_stored(row)
        return inserted

    def _row_from_raw(self, raw: bytes) -> StoredEnvelope:
        env = decode(raw, now=self.clock(), check_time=False)
        return StoredEnvelope.from_envelope(env, received_at=self.clock(), from_peer=None)

    def _index(self, row: StoredEnvelope, env: Envelope) -> None:
        """Derived in-memory state: sealed answers by alert, encryption keys and
        names by node."""
        body = env.body
        self.directory.observe(env)
        if isinstance(body, NodeRecord):
            self.enc_keys[env.author] = body.enc
        elif isinstance(body, Vouch):
            self.enc_keys.setdefault(body.subject, body.enc)
        elif isinstance(body, Alert):
            if is_release(body, row.raw):
                self.joint.observe_alert(env)
            self._owe_receipt(row)
        elif row.sealed:
            try:
                opened = unseal(env, self.identity)
            except ProtocolError:
                return
            if isinstance(opened, Receipt):
                self._took_receipt(row.id, env.author, opened)
                return
            if isinstance(opened, Alert):
                self._owe_receipt(row)  # a restricted alert: only its recipients answer it
            if isinstance(opened, Proposal | Endorsement | Objection):
                self.joint.observe(env, opened)
                return
            target = opened.alert if isinstance(opened, Ack) else (opened.references or (None,))[0]
            if target is not None:
                self.sealed_refs.setdefault(target, []).append(row.id)

    # -- delivery receipts (node.receipts; docs/protocol.md §6.7) ---------------------------
    def _owe_receipt(self, row: StoredEnvelope) -> None:
        """Stored → owe a receipt: the one place an alert this node stored (and can
        read) becomes a receipt owed to its author. Called for every stored alert,
        live and at start (where a receipt of this node read back cancels it)."""
        if self._mine(row.author):
            self.receipts.authored(row.id)
            return
        if not self.config.delivery_receipts:
            return
        self.receipts.owe(row.author, row.id, row.received_at, now=self.clock(), restricted=row.sealed)
        self.receipt_desk.schedule()

    def _took_receipt(self, receipt_id: bytes, holder: bytes, receipt: Receipt) -> None:
        """A receipt this node can open: its own, read back (answered), or another
        node's for this node's alerts."""
        if self._mine(holder):
            self.receipts.answered(alert for alert, _ in receipt.held)
        else:
            self.receipts.record(receipt_id, holder, receipt, starting=getattr(self, "mesh", None) is None)

    def receipts_of(self, row: StoredEnvelope) -> dict[str, Any] | None:
        """Whom an alert of this node reached (``ReceiptDesk.reached``); None otherwise."""
        return self.receipt_desk.reached(row)

    def _mine(self, key: bytes) -> bool:
        """This node's key or one it rotated from (the trust graph is not built yet
        while the store is read at start: then this key only)."""
        mesh_node = getattr(self, "mesh", None)
        return key == self.key or (mesh_node is not None and key in mesh_node.trust.family(self.key))

    def related(self, alert_id: bytes) -> list[StoredEnvelope]:
        """Updates, cancels and acks answering ``alert_id``, plain and sealed, by time."""
        rows = self.store.related(alert_id) + self.store.get_many(self.sealed_refs.get(alert_id, []))
        return sorted({r.id: r for r in rows}.values(), key=lambda r: (r.created, r.id))

    def recipients_of(self, env: Envelope) -> list[bytes]:
        """X25519 keys of a sealed envelope's recipients that this node can name."""
        if not isinstance(env.body, Sealed):
            return []
        hints = set(env.body.hints)
        return [key for key in self.enc_keys.values() if recipient_hint(key) in hints]

    def _on_stored(self, row: StoredEnvelope) -> None:
        """Hook for derived local state (peer directory from node records)."""
        self._index(row, self._pending_env.get(row.id) or self._decode_stored(row))
        if row.type == "node":
            self._update_peer_from_record(row)
        elif row.type == "receipt" and self.receipts.named_by(row.id):
            self._tell_subscribers(row)  # the live "reached n of m" (node.stream)

    def open(self, row: StoredEnvelope) -> Readable:
        """``open_row`` without verifying again what this batch just verified."""
        return open_row(row, self.identity, self._pending_env.get(row.id))

    @property
    def trust(self) -> mesh.TrustGraph:
        """Who vouched for whom, which keys rotated and which are compromised."""
        return self.mesh.trust

    def own_keys(self) -> list[bytes]:
        """This node's key first, then the keys it rotated from: one author for
        updates, cancels and display (what an earlier key signed is still ours)."""
        return [self.key, *sorted(self.mesh.trust.family(self.key) - {self.key})]

    def author_of(self, key: bytes) -> bytes:
        """The key an author is shown under: the newest of its rotation family."""
        return self.mesh.trust.newest(key)

    def same_author(self, first: bytes, second: bytes) -> bool:
        """Whether two keys are one author: equal, or one rotation family."""
        return first == second or second in self.mesh.trust.family(first)

    def author_names(self) -> Names:
        """Organization names by key, for every author this node accepts (node
        records and vouches travel with the horizon; ``node.directory``), with how
        each is trusted (``Names.trust``). Every key of a rotation family gets its
        organization's name: one author."""
        own = dict.fromkeys(self.own_keys(), self.config.name)
        return Names(self.directory, self.mesh.trust, own=own, peers=self.store.peer_names())

    def switch_identity(self, identity: Identity) -> None:
        """Sign with the key this node just rotated to, without a restart.

        Called once the rotation record (new key, the old key's hand-over) is
        stored: from then on the old key is retired and anything it signed would
        be refused, by this node first. Everything that signs reads
        ``self.identity`` when it signs; the mesh client keeps the old key for
        peers that have not yet heard of the rotation."""
        if identity.enc_secret != self.identity.enc_secret:
            raise ValueError("a rotation keeps the encryption key")
        self.identity, self.key = identity, identity.sign_public
        self.mesh.key = self.key  # own content is exempt from the author rate limit
        self.enc_keys[self.key] = identity.enc_public
        self.client.use_identity(identity)

    def _follow_rotation(self, row: StoredEnvelope, body: NodeRecord) -> None:
        """A peer handed over to a new key (or its committed key recovered it): the
        peering moves to it, no new pairing."""
        previous = body.prev or body.recovers
        if previous is None or not self.same_author(previous, row.author):
            return  # the mesh did not join them (an uncommitted key): nothing to follow
        old = self.store.get_peer(previous)
        if old is None or old.status != "active" or self.store.get_peer(row.author) is not None:
            return
        self.store.upsert_peer(replace(old, key=row.author, enc_key=body.enc, node_record_id=row.id))
        self.store.remove_peer(old.key)
        self.enc_keys[row.author] = body.enc
        self.handle(mesh.PeerDown(old.key))
        self.handle(mesh.PeerAdded(row.author))
        self.handle(mesh.PeerUp(row.author))
        log.info("peer %s rotated its key; now %s", old.name, row.author.hex()[:16])

    def _update_peer_from_record(self, row: StoredEnvelope) -> None:
        rotated = self._pending_env.get(row.id) or self._decode_stored(row)
        if isinstance(rotated.body, NodeRecord) and (rotated.body.prev or rotated.body.recovers) is not None:
            self._follow_rotation(row, rotated.body)
        peer = self.store.get_peer(row.author)
        if peer is None or peer.status != "active":
            return
        env = self._decode_stored(row)
        if not isinstance(env.body, NodeRecord):
            return
        if (
            peer.node_record_id
            and (current := self.store.get(peer.node_record_id))
            and current.created > row.created
        ):
            return
        self.store.upsert_peer(
            PeerRow.from_record(
                env,
                added_at=peer.added_at,
                last_seen=peer.last_seen,
                mark=peer.mark,
                status=peer.status,
                verified=peer.verified,
            )
        )

    def _deliver(self, row: StoredEnvelope | None) -> None:
        if row is None:
            return
        self._tell_subscribers(row)
        try:
            self.desk.on_delivered(row)
        except Exception:
            log.exception("could not start escalation for %s", row.id.hex()[:12])
        try:
            self.allies.on_stored(row)
        except Exception:
            log.exception("could not queue %s for allies", row.id.hex()[:12])
        if row.type == "ack":
            self._time_to_ack(row)
        if row.type in ("proposal", "endorsement"):
            self.joint.consider()  # this node may now hold k endorsements
        if row.from_peer is not None:
            self._ask_for_record(row.author, row.from_peer)

    def _tell_subscribers(self, row: StoredEnvelope) -> None:
        for queue in list(self.subscribers):
            if queue.qsize() < 1000:
                queue.put_nowait(row)

    def _ask_for_record(self, author: bytes, peer: bytes) -> None:
        """An author's ``node`` record may lag its alert (refused while its vouch was
        on the way, and not reconciled yet): ask the peer that delivered the alert
        for it, at most every ``RECORD_ASK_EVERY_MS`` per author. Until it comes,
        the author is named by its vouch."""
        if self.directory.has_record(self.mesh.trust.family(author)):
            return
        now = self.clock()
        asked = self._records_asked.get(author)
        if asked is not None and now - asked < RECORD_ASK_EVERY_MS:
            return
        self._records_asked[author] = now
        self._spawn(self._fetch_records(peer, [author]))

    async def _fetch_records(self, peer: bytes, authors: list[bytes]) -> None:
        """A fetch that names ``authors`` instead of ids: the peer answers the newest
        ``node`` records it holds of their rotation families (docs/protocol.md §12)."""
        address = self.peer_address(peer)
        if address is None:
            return
        try:
            reply = await self.client.call(address, "/mesh/v1/fetch", {"ids": [], "authors": authors})
            raws = framing.envelope_list(reply)
        except (TransportError, BadFrame) as exc:
            self._failed(peer, "fetch records from", exc)
            return
        await self.relay(raws, peer)

    def record_ids(self, authors: Iterable[bytes]) -> list[bytes]:
        """Ids of the newest ``node`` record of each key of each author's rotation
        family that this node holds: the answer to a fetch that names authors."""
        ids: dict[bytes, None] = {}
        for author in authors:
            for key in sorted(self.mesh.trust.family(author)):
                if (record := self.directory.record_id(key)) is not None:
                    ids[record] = None
        return list(ids)

    def _time_to_ack(self, row: StoredEnvelope) -> None:
        """Metrics: how fast allies acknowledge this organization's alerts."""
        ack = self.open(row).body
        alert = self.store.get(ack.alert) if isinstance(ack, Ack) else None
        own = self.own_keys()
        if alert is not None and alert.author in own and row.author not in own:
            self.counters.acks_for_ours += 1
            self.counters.ack_seconds += max(0, row.created - alert.created) / 1000

    def heard_from(self, peer: bytes) -> None:
        """A valid signed request from ``peer``: if our pushes to it were failing,
        retry them now rather than when the backoff runs out (``mesh.PeerHeard``)."""
        self.handle(mesh.PeerHeard(peer))

    def peer_is_up(self, peer: bytes) -> bool:
        """Up: heard from within ``PEER_UP_MS`` and no call failed since (the mesh
        keeps the contact: ``MeshNode.last_contact``)."""
        return self.peer_state(peer) == "up"

    def peer_state(self, peer: bytes) -> PeerState:
        """``up``, ``failing`` or ``down`` (see `peer_state`)."""
        failure = self._failures.get(peer)
        return peer_state(self.clock(), self.mesh.last_contact(peer), None if failure is None else failure[0])

    def extra_metrics(self) -> list[tuple[str, str, float]]:
        """Gauges from parts wired in later (delivery outbox backlog, …)."""
        return [(name, text, fn()) for name, text, fn in self.gauges]

    def cut_off(self, peer: bytes) -> str | None:
        """Why ``peer`` is refused right now, or None once its ban has run out.
        The mesh's standing is the one source (restored at start from the store)."""
        saved = self.mesh.saved_standing(peer)
        if saved is None or saved.standing is not mesh.Standing.CUT_OFF or saved.banned_until <= self.clock():
            return None
        until = clock_text.when(saved.banned_until, clock_text.zone(self.config.timezone))
        return f"peer score fell to {saved.score:.0f}; refused until {until}"

    def peer_json(self, peer: PeerRow) -> dict[str, Any]:
        """A peer as ``amparo peer list``, ``amparo status`` and the dashboard show it."""
        return {
            "name": peer.name,
            "key": peer.key.hex(),
            "fingerprint": fingerprint(peer.key),
            "addresses": list(peer.addresses),
            "tls_fingerprint": peer.tls_fp.hex(),
            "last_seen": self.last_contact(peer.key, peer.last_seen),
            "up": (state := self.peer_state(peer.key)) == "up",
            "state": state,
            "verified": peer.verified,
            "cut_off": self.cut_off(peer.key),
            "mark": peer.mark,
            "status": peer.status,
            "last_failure": self._failure_json(peer.key),
        }

    def _failure_json(self, peer: bytes) -> dict[str, Any] | None:
        """The last failed call to ``peer`` (its text says which side failed), so an
        operator sees from ``amparo status`` whether to look here or ask the ally."""
        failure = self.last_failure(peer)
        return None if failure is None else {"at": failure[0], "text": failure[1]}

    # -- network tasks --------------------------------------------------------------------
    def peer_address(self, key: bytes) -> PeerAddress | None:
        peer = self.store.peer_for_request(key)
        if peer is None or peer.status != "active":
            return None
        family = frozenset(self.mesh.trust.family(peer.key))  # replies may be signed by any of them
        return PeerAddress(peer.key, tuple(peer.addresses), peer.tls_fp, family)

    async def _push(
        self, peer: bytes, batch_id: int, raws: list[bytes], hops: Sequence[int | None] = ()
    ) -> None:
        """Push ``raws`` in frames; with tree push, each with this node's hop
        count per envelope (``h``: the peer's tree prefers shorter paths)."""
        address = self.peer_address(peer)
        ok = False
        deferred: list[bytes] = []
        try:
            if address is not None:
                start = 0
                for frame in framing.batches(raws):
                    body: dict[str, Any] = {"e": frame, **self.tree.push_fields()}
                    if len(hops) == len(raws):
                        body["h"] = list(hops[start : start + len(frame)])
                    start += len(frame)
                    reply = await self.client.call(address, "/mesh/v1/push", body)
                    self.counters.push_requests += 1
                    deferred += framing.deferred_ids(reply, len(frame))
                    self.tree_spoken(peer, framing.speaks_tree(reply))
                ok = True
                self._seen(peer)
        except (TransportError, BadFrame) as exc:
            self.counters.push_failures += 1
            self._failed(peer, "push to", exc)
        finally:  # always answer the outbox, or the peer's queue waits for the push timeout
            if ok:  # deferred items are not delivered: the outbox keeps them and sends them again
                self.counters.pushed += len(raws) - len(deferred)
                self.counters.push_deferred += len(deferred)
            self.handle(mesh.PushResult(peer, batch_id, ok, tuple(deferred)))

    async def _reconcile(self, peer: bytes) -> None:
        """One session in at most ``MAX_ROUNDS`` messages of at most 48 KiB each. A
        session cut short still reports what it found (``complete=False``), and the
        mesh starts the next one soon to continue. Ranges we hold nothing in are
        reported as ranges to fetch whole (``mesh.FetchRange``) when the peer's
        first reply says it answers range fetches; with an older peer, ids only."""
        address = self.peer_address(peer)
        if address is None:
            return
        try:
            session = mesh.reconcile.Initiator(
                self.mesh.keys(), ranges=peer not in self._no_range_fetch, refused=self.mesh.refused_keys()
            )
            message = session.initiate()
            complete = False
            for _ in range(mesh.reconcile.MAX_ROUNDS):
                reply = await self.client.call(address, "/mesh/v1/reconcile", {"m": message})
                self._count_reconcile(message, reply.get("m"))
                if session.rounds == 0 and not framing.answers_ranges(reply):
                    session.without_ranges()
                next_message = session.reconcile(reply.get("m"))
                if next_message is None:
                    complete = True
                    break
                message = next_message
            self.counters.reconciles += 1
            self._seen(peer)
        except (TransportError, BadFrame, mesh.MeshError) as exc:
            self._failed(peer, "reconcile with", exc)
            return
        log.debug(
            "reconciled with %s in %d rounds: %d ids and %d ranges to fetch, %d to send%s",
            peer.hex()[:16],
            session.rounds,
            len(session.need),
            len(session.need_ranges),
            len(session.have),
            "" if complete else " (cut short)",
        )
        self.handle(mesh.ReconcileDone(peer, session.have, session.need, complete, session.need_ranges))

    async def _fetch(self, peer: bytes, ids: list[bytes]) -> None:
        """Ask for ``ids`` a page at a time; whatever did not come (a failed call, a
        reply capped in bytes) is released with ``FetchDone`` for the next session."""
        try:
            address = self.peer_address(peer)
            if address is not None:
                await self._fetch_pages(address, peer, ids)
        finally:
            self.handle(mesh.FetchDone(peer, tuple(ids)))

    async def _fetch_pages(self, address: PeerAddress, peer: bytes, ids: list[bytes]) -> None:
        """A reply holds at most one frame of what was asked, so the ids not
        returned are asked again, until a reply brings none of them. The page
        follows what a reply held (a little more, doubling while all of it comes):
        asking 256 ids for a frame that holds 50 would send most ids four or five
        times over a long catch-up."""
        wanted = list(ids)
        page = framing.MAX_FETCH_IDS
        while wanted:
            asked = wanted[:page]
            try:
                reply = await self.client.call(address, "/mesh/v1/fetch", {"ids": asked})
                raws = framing.envelope_list(reply)
                self._count_fetch(asked, raws)
            except (TransportError, BadFrame) as exc:
                self._failed(peer, "fetch from", exc)
                return
            got = {envelope_id(raw) for raw in raws}
            rest = [i for i in asked if i not in got]
            if len(rest) == len(asked):
                return  # the peer no longer holds them
            page = min(framing.MAX_FETCH_IDS, 2 * page if not rest else len(got) + len(got) // 8 + 1)
            wanted = rest + wanted[len(asked) :]
            await self.relay(raws, peer)

    async def _fetch_range(self, peer: bytes, ranges: tuple[mesh.reconcile.Range, ...], limit: int) -> None:
        """Fetch the peer's items in ``ranges`` (``mesh.FetchRange``); whatever
        happens, ``FetchRangeDone`` says how many came, whether every range was
        fetched to its end, and where a fetch that reached its limit would go on."""
        got, complete, resume = 0, False, None
        began = time.monotonic()
        try:
            address = self.peer_address(peer)
            if address is not None:
                got, complete, resume = await self._range_pages(address, peer, ranges, limit)
        finally:
            log.debug(
                "range fetch from %s: %d of at most %d in %.2f s (%s)",
                peer.hex()[:16],
                got,
                limit,
                time.monotonic() - began,
                "complete" if complete else "at its limit" if resume is not None else "cut short",
            )
            self.handle(mesh.FetchRangeDone(peer, ranges, got, complete, resume))

    async def _range_pages(
        self, address: PeerAddress, peer: bytes, ranges: tuple[mesh.reconcile.Range, ...], limit: int
    ) -> tuple[int, bool, mesh.reconcile.Bound | None]:
        """Each range a page (one frame) at a time, from its lower bound to the
        ``next`` each reply names; the next page is asked while this one is verified
        and stored. At most ``limit`` envelopes in all: at the limit, returns the
        bound it would go on from (the mesh goes on as the budget refills). A reply
        must move forward (a ``next`` above the page's bound, with envelopes) or the
        fetch stops, so a peer cannot keep us asking; a ``next`` at or past the
        range's end ends it. Stops early, incomplete, when a budget deferred part of
        a page (the rest comes by a later session) or the peer does not answer range
        fetches. Returns (envelopes that came, complete, where to go on)."""
        got = 0
        pending: asyncio.Future[tuple[list[bytes], mesh.reconcile.Bound | None]] | None = None
        try:
            for lower, upper in ranges:
                if got >= limit:
                    return got, False, lower
                cursor = lower
                pending = asyncio.ensure_future(self._range_call(address, cursor, upper, limit - got))
                while pending is not None:
                    try:
                        raws, after = await pending
                    except _NoRangeFetch:
                        log.info("peer %s does not answer range fetches: asked by id", peer.hex()[:16])
                        self._no_range_fetch.add(peer)
                        return got, False, None
                    except (TransportError, BadFrame) as exc:
                        self._failed(peer, "fetch a range from", exc)
                        return got, False, None
                    pending = None
                    got += len(raws)
                    if after is not None and after >= upper:
                        after = None
                    if after is not None and (after <= cursor or not raws):
                        log.info("range fetch from %s stopped: a reply did not move forward", peer.hex()[:16])
                        return got, False, None
                    if after is not None and got < limit:
                        cursor = after
                        pending = asyncio.ensure_future(self._range_call(address, cursor, upper, limit - got))
                    if raws and (await self.relay(raws, peer)).deferred:
                        return got, False, None  # a catch-up budget is spent: the rest comes later
                    if after is not None and pending is None:
                        return got, False, after  # the limit is reached: the mesh goes on from here
            return got, True, None
        finally:
            if pending is not None:
                pending.cancel()
                pending.add_done_callback(_retrieved)

    async def _range_call(
        self, address: PeerAddress, lower: mesh.reconcile.Bound, upper: mesh.reconcile.Bound, limit: int
    ) -> tuple[list[bytes], mesh.reconcile.Bound | None]:
        """One range fetch request: the envelopes and the bound to go on from. A
        reply without ``next`` is an older node's, which ignored the range."""
        frame = framing.range_frame(lower, upper, min(limit, framing.MAX_FETCH_IDS))
        reply = await self.client.call(address, "/mesh/v1/fetch", frame)
        if "next" not in reply:
            raise _NoRangeFetch
        raws, after = framing.envelope_list(reply), framing.range_next(reply)
        c = self.counters
        c.fetch_requests += 1
        c.range_fetch_requests += 1
        c.fetch_request_bytes += len(framing.pack(frame)) + len(framing.pack({"next": reply["next"]}))
        c.fetched += len(raws)
        c.fetched_bytes += sum(len(raw) for raw in raws)
        return raws, after

    def _count_reconcile(self, sent: object, answer: object) -> None:
        c = self.counters
        c.reconcile_messages += 1
        # both were msgpack on the wire (one packed by the client, one unpacked from the reply)
        c.reconcile_bytes += len(framing.pack({"m": sent})) + len(framing.pack({"m": answer}))

    def _count_fetch(self, asked: list[bytes], raws: list[bytes]) -> None:
        c = self.counters
        c.fetch_requests += 1
        c.fetch_request_bytes += sum(len(i) for i in asked)
        c.fetched += len(raws)
        c.fetched_bytes += sum(len(raw) for raw in raws)

    def _failed(self, peer: bytes, call: str, exc: TransportError | BadFrame | mesh.MeshError) -> None:
        """Log a failed call to ``peer`` and keep it for ``last_failure``, saying which
        side failed: a reconciliation message that does not parse is the peer's. A
        local failure is a warning: only this node's operator can fix it."""
        side = "remote" if isinstance(exc, mesh.MeshError) else exc.side
        level = logging.WARNING if side == "local" else logging.INFO
        log.log(level, "%s %s failed: %s (%s side)", call, peer.hex()[:16], exc, side)
        self._failures[peer] = (self.clock(), f"{call} peer failed ({side} side): {exc}")

    def last_failure(self, peer: bytes) -> tuple[int, str] | None:
        """When the last call to ``peer`` failed and why, saying which side failed
        (for ``amparo status``); None if none failed since this node started."""
        return self._failures.get(peer)

    def _seen(self, peer: bytes) -> None:
        """Last contact on disk, at most every ``TOUCH_EVERY_MS`` (one write per push
        would be one more fsync per push); the mesh records it at once from the
        push result or the finished reconciliation."""
        now = self.clock()
        if now - self._touched.get(peer, 0) >= TOUCH_EVERY_MS:
            self._touched[peer] = now
            self.store.touch_peer(peer, now)

    def last_contact(self, peer: bytes, stored: int | None) -> int | None:
        """The newer of the mesh's and the stored last contact with ``peer``."""
        return max(self.mesh.last_contact(peer) or 0, stored or 0) or None

    def save_marks(self, *, at_once: bool = False) -> None:
        """Write the catch-up marks that push results moved since the last batch:
        by the group writer when the loop runs (a mark that is lost is only a
        resend after a restart), else, or ``at_once``, here."""
        if not self._unsaved_marks:
            return
        marks = list(self._unsaved_marks.items())
        self._unsaved_marks.clear()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            at_once = True
        if at_once:
            self.store.set_peer_marks(marks)
            return
        self.writer.submit([], marks).add_done_callback(self._marks_written)

    def _marks_written(self, commit: asyncio.Future[Any]) -> None:
        if not commit.cancelled() and (exc := commit.exception()) is not None:
            self.outage.failed("saving the peers' catch-up marks", exc)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                self.tick()
            except SQLAlchemyError as exc:
                self.outage.failed("the tick's writes (marks, nonces, deadlines)", exc)
            except Exception:
                log.exception("tick failed")

    def tick(self) -> None:
        """One round of the node's timers at ``clock()``: the mesh's deadlines
        (reconciliations, retries, fetch timeouts), spent nonces, the desks'
        deadlines (escalations, check-ins), the marks, retention. The ticker calls
        it every ``TICK_SECONDS``; the test grid after moving its fake clock."""
        self._restart_links_if_the_clock_stepped_back()
        self.handle(mesh.Tick())
        if self.clock() - self._nonces_pruned_at >= PRUNE_NONCES_EVERY_MS:  # a write on the loop
            self.store.prune_nonces(self.clock())
            self._nonces_pruned_at = self.clock()
        self.desk.tick()
        self.receipt_desk.tick()
        self.joint.consider()  # an endorser waiting its turn to release (node.joint)
        self.allies.save_mark()
        self.save_marks()
        self.prune()

    def _restart_links_if_the_clock_stepped_back(self) -> None:
        now = self.clock()
        back = self._ticked_at - now
        self._ticked_at = now
        if back <= CLOCK_STEP_BACK_MS:
            return
        log.warning("the clock went back %d s since the last tick: restarting every peer's retries", back // 1000)
        for peer in self.store.list_peers():
            self.handle(mesh.PeerDown(peer.key))  # the batch in flight will be sent again
            self.handle(mesh.PeerUp(peer.key))  # retry now, and reconcile

    def running(self) -> int:
        """How many background tasks are under way (pushes, fetches, pages): the
        test grid runs the loop until none is left."""
        return sum(1 for task in self._tasks if not task.done()) + self.writer.busy()

    def prune(self, force: bool = False) -> int:
        """Delete envelopes expired longer than ``retention_days`` ago (tombstones
        keep replays out), and response records finished that long ago (ended
        escalations, sent pages, stopped check-in plans, past shifts, old notes),
        at most every ten minutes: a small office box must not fill its disk
        with years of them. Returns the envelopes deleted."""
        now = self.clock()
        days = self.config.retention_days
        if not days or (not force and now - self._pruned_at < PRUNE_EVERY_MS):
            return 0
        self._pruned_at = now
        keep_ms = days * 86_400_000
        deleted = self.store.delete_expired(now, keep_ms=keep_ms)
        if deleted:
            log.info("deleted %d envelopes expired more than %d days ago", deleted, days)
        if finished := self.store.prune_response(now - keep_ms):
            log.info("deleted %d response records finished more than %d days ago", finished, days)
        return deleted

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in the background; failures are logged, never fatal."""
        self._spawn(coro)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(self._guarded(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        # A task cancelled before it ran (the node stopping) never awaited ``coro``:
        # close it, so it is not reported as a coroutine never awaited.
        task.add_done_callback(lambda done: coro.close() if done.cancelled() else None)

    async def _guarded(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except SQLAlchemyError as exc:  # a full disk: one line, not a traceback per task
            self.outage.failed(f"a background task ({getattr(coro, '__qualname__', '?')})", exc)
        except Exception:
            log.exception("background task failed")


class _NoRangeFetch(Exception):
    """A fetch reply without ``next``: the peer ignored the range (docs/protocol.md §12)."""


def _retrieved(task: asyncio.Future[Any]) -> None:
    """A background call dropped unawaited: take its outcome, so a failure it ended
    with is not reported as never retrieved."""
    if not task.cancelled():
        task.exception()


def _next_turn(before: asyncio.Future[None] | None, turn: asyncio.Future[None]) -> None:
    """The next batch may be admitted once this one and the one before are."""
    if before is None or before.done():
        if not turn.done():
            turn.set_result(None)
    else:  # cancelled while waiting: keep the order for those after
        before.add_done_callback(lambda _: None if turn.done() else turn.set_result(None))


def _saved_standing(row: PeerStanding) -> mesh.SavedStanding:
    return mesh.SavedStanding(mesh.Standing(row.standing), row.score, row.banned_until)


def _system_random() -> Random:
    return Random(os.urandom(16))  # noqa: S311 - jitter only, not for secrets
