"""The running node: carries out what the mesh state machine decides.

``mesh.MeshNode`` decides (events in, actions out); this class is the only
place that touches the store, the network and local listeners. Stores happen
before a push is answered, so an alert acknowledged to its sender is on disk.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from random import Random
from typing import Any, Literal, NamedTuple

from sqlalchemy.exc import SQLAlchemyError

import mesh
from mesh.interfaces import Item
from node import clock_text, records
from node.alerts import Readable, open_row
from node.allies.delivery import DeliveryDesk
from node.config import Config
from node.directory import Directory, Names
from node.response.desk import ResponseDesk
from node.response.drill_runner import DrillRunner
from node.store import PeerRow, PeerStanding, Store, StoredEnvelope
from node.transport import MeshClient, PeerAddress, TransportError, Wire
from node.treepush import PATH as TREE_PATH
from node.treepush import TreeCarrier
from protocol import (
    MAX_SKEW_MS,
    Ack,
    Envelope,
    NodeRecord,
    ProtocolError,
    Revoke,
    Sealed,
    Vouch,
    decode,
    envelope_id,
    fingerprint,
    framing,
    recipient_hint,
    unseal,
)
from protocol.errors import BadFrame
from protocol.keys import Identity

log = logging.getLogger("amparo.node")

TICK_SECONDS = 2.0
PRUNE_EVERY_MS = 10 * 60_000
# How long after its last contact a peer still counts as up. An idle live peer is
# heard from at least once per reconciliation (`mesh.Timing.reconcile_every_ms`,
# five minutes less up to 20 % jitter; pushes in between only when there is
# traffic), so one interval is the longest silence of a healthy link. Half an
# interval more covers the session's own calls and the tick, without letting a
# missed reconciliation pass for up. A call that fails shows at once ("failing",
# `peer_state`), so this window only decides when silence alone means down.
PEER_UP_MS = mesh.Timing().reconcile_every_ms * 3 // 2
# An author whose node record is missing is asked for from the peer that delivered
# its alert at most this often (node.directory; the record usually comes by gossip).
RECORD_ASK_EVERY_MS = 10 * 60_000
TOUCH_EVERY_MS = 15_000  # last contact is kept in memory; the database copy may lag this much
# The wall clock stepping back further than this between two ticks (an hour-ahead
# clock corrected by NTP or by hand) restarts every peer's timers: the mesh's
# retries and reconciliations are deadlines on that clock, and those set while it
# was ahead would otherwise lie in the future and hold every link still.
CLOCK_STEP_BACK_MS = 30_000
# Outbound batches sized to one frame: each batch in flight is then one request.
PUSH_PACING = mesh.Pacing(batch_items=framing.PUSH_BATCH_ITEMS, batch_bytes=framing.PUSH_BATCH_BYTES)
# With tree push, the mesh's own deadlines (an announcement batch due, an announced
# id late) are met by a wake-up between ticks, never sooner than this from now.
WAKE_FLOOR_MS = 50


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
    if isinstance(body, NodeRecord) and body.prev is not None:
        subject = body.prev  # a rotation: the mesh joins the old and new key
    compromised = isinstance(body, Revoke) and body.compromised
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
    reconciles: int = 0
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
        self.gauges: list[tuple[str, str, Callable[[], float]]] = []
        # In memory only (restricted plaintext never reaches the disk): which sealed
        # envelopes answer which alert, and the X25519 keys of nodes we have heard of.
        self.sealed_refs: dict[bytes, list[bytes]] = {}
        self.enc_keys: dict[bytes, bytes] = {identity.sign_public: identity.enc_public}
        # Names of authors, from the node records and vouches in the store (node.directory).
        self.directory = Directory()
        self._records_asked: dict[bytes, int] = {}  # author -> when its node record was last asked for
        self.mesh = self._build_mesh()
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
        self._ticked_at = self.started_at
        # Catch-up marks moved by push results, written with the next batch of
        # envelopes or on the next tick: a lost mark only means a harmless resend.
        self._unsaved_marks: dict[bytes, int] = {}
        # The push being ingested's request nonce, written in the same transaction
        # as its envelopes (see ``ingest``).
        self._nonces: list[tuple[bytes, bytes, int]] = []
        # While ``ingest_push`` runs: ids refused for a budget, named in the push reply.
        self._deferring: list[bytes] | None = None
        # The newest ``created`` this node signed since it started: a rotation
        # record older than that would retire the key under an envelope already made.
        self.last_authored = 0

    # -- start and stop -------------------------------------------------------------------
    def _build_mesh(self) -> mesh.MeshNode:
        stored = []
        received: dict[bytes, int] = {}
        for row in self.store.iter_all():
            env = self._decode_stored(row)
            self._index(row, env)
            stored.append((to_item(env), row.seq))
            received[env.id] = row.received_at
        peers = self.store.list_peers()
        marks = {p.key: p.mark for p in peers}
        return mesh.MeshNode(
            self.key,
            peers=list(marks),
            stored=stored,
            received=received,
            marks=marks,
            standings={p.key: _saved_standing(p.standing) for p in peers if p.standing is not None},
            trust_depth=self.config.trust_depth,
            pacing=PUSH_PACING,
            timing=mesh.Timing(tree_push=self.config.tree_push),
            random=self._random,
            now=self.clock(),
        )

    def _decode_stored(self, stored: StoredEnvelope) -> Envelope:
        return decode(stored.raw, now=self.clock(), check_time=False)

    async def start(self, *, ticking: bool = True) -> None:
        """Bring the node up. Without ``ticking`` nothing runs on its own: no
        ticker, no delivery worker; the test grid calls ``tick`` after moving its
        fake clock, and waits for the tasks the ticks start."""
        await self.client.start()
        self.publish_node_record()
        for peer in self.store.list_peers():
            self.handle(mesh.PeerUp(peer.key))
        self.allies.catch_up()
        if ticking:
            self._waking = True
            self._spawn(self._ticker())
            self._spawn(self.allies.run())

    async def stop(self) -> None:
        self._waking = False
        if self._wake is not None:
            self._wake.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.save_marks()
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
        items: list[Item] = []
        invalid = 0
        for raw in raws:
            self.counters.received += 1
            known = self._known_copy(raw, now)
            if known is not None:
                items.append(known)  # the mesh refuses it as a duplicate, and learns who sent it
                continue
            try:
                env = decode(raw, now=now)
            except ProtocolError as exc:
                invalid += 1
                self.counters.reject(exc.code)
                if from_peer is not None and exc.blames_sender:  # never for time or version (errors.py)
                    self.handle(mesh.PeerInvalid(from_peer, exc.code))
                continue
            self._pending[env.id] = StoredEnvelope.from_envelope(env, received_at=now, from_peer=from_peer)
            self._pending_env[env.id] = env
            items.append(to_item(env))
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
        for action in actions:
            if isinstance(action, mesh.SaveMark):
                self._unsaved_marks[action.peer] = max(action.seq, self._unsaved_marks.get(action.peer, 0))
        stored = self._store_or_forget(to_store) if to_store else {}
        for action in actions:
            if isinstance(action, mesh.Store | mesh.SaveMark):
                continue
            if isinstance(action, mesh.Deliver):
                self._deliver(stored.get(action.item.id) or self.store.get(action.item.id))
            elif isinstance(action, mesh.Push):
                self._spawn(self._push(action.peer, action.batch_id, [i.raw for i in action.items]))
            elif isinstance(action, mesh.StartReconcile):
                self._spawn(self._reconcile(action.peer))
            elif isinstance(action, mesh.Fetch):
                self._spawn(self._fetch(action.peer, list(action.ids)))
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
            elif isinstance(action, mesh.Announce | mesh.Graft | mesh.Prune):
                self._tree_action(action)
        self._wake_for_tree()

    # -- tree push (node.treepush) ----------------------------------------------------------
    def _tree_action(self, action: mesh.Announce | mesh.Graft | mesh.Prune) -> None:
        signal, events = self.tree.outgoing(action)
        if signal is not None:
            self._spawn(self._signal(action, signal))
        for event in events:
            self.handle(event)

    async def _signal(self, action: mesh.Announce | mesh.Graft | mesh.Prune, signal: framing.TreeSignal) -> None:
        """Fire and forget: a lost graft or prune costs time only (reconciliation
        repairs); an announcement with no answer goes back to the mesh as
        ``AnnounceFailed``, which announces it once more."""
        address = self.peer_address(action.peer)
        if address is None:
            return
        try:
            await self.client.call(address, TREE_PATH, framing.tree_frame(signal))
        except TransportError as exc:
            self._failed(action.peer, "tree signal to", exc)
            if isinstance(action, mesh.Announce):
                self.handle(mesh.AnnounceFailed(action.peer, action.ids))

    def tree_signal(self, peer: bytes, signal: framing.TreeSignal) -> None:
        """A tree signal from ``peer`` (the mesh listener checked and parsed it)."""
        for event in self.tree.incoming(peer, signal):
            self.handle(event)

    def tree_spoken(self, peer: bytes, speaks: bool) -> None:
        """A push or push reply from ``peer`` said whether it speaks the tree
        (``framing.speaks_tree``)."""
        for event in self.tree.heard(peer, speaks):
            self.handle(event)

    def _wake_for_tree(self) -> None:
        """Meet the mesh's next deadline (an announcement batch, a late announced id)
        when it falls before the next tick: announcements wait ``announce_delay_ms``,
        not a whole tick."""
        if not (self._waking and self.tree.enabled):
            return
        due = self.mesh.wakeup_at()
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
            log.exception("tree wake-up failed")

    def _store_or_forget(self, items: list[Item]) -> dict[bytes, StoredEnvelope]:
        """``_store``; when the write fails (a full disk, a failing database) the
        mesh forgets the items, so a later copy or a reconciliation brings them
        again, and the error goes on to the caller: the sender is acknowledged
        nothing that was not stored, and retries."""
        try:
            return self._store(items)
        except SQLAlchemyError as exc:
            log.error(
                "could not store %d envelope(s): %s; refusing them until the store works again",
                len(items), str(getattr(exc, "orig", exc)).splitlines()[0][:200],
            )
            self.handle(mesh.NotStored([item.id for item in items]))
            raise

    def _store(self, items: list[Item]) -> dict[bytes, StoredEnvelope]:
        """Write one batch, the marks waiting and the push's nonce in one
        transaction (one fsync); returns the rows newly stored, by id."""
        rows = [self._pending.get(i.id) or self._row_from_raw(i.raw) for i in items]
        marks, nonces = list(self._unsaved_marks.items()), list(self._nonces)
        inserted = self.store.add_envelopes(rows, marks, nonces)
        self._unsaved_marks.clear()
        self._nonces.clear()
        self.counters.stored += len(inserted)
        for row in inserted:
            self._on_stored(row)
        return {row.id: row for row in inserted}

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
        elif row.sealed:
            try:
                opened = unseal(env, self.identity)
            except ProtocolError:
                return
            target = opened.alert if isinstance(opened, Ack) else (opened.references or (None,))[0]
            if target is not None:
                self.sealed_refs.setdefault(target, []).append(row.id)

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
        peers = {p.key: p.name for p in self.store.list_peers(include_removed=True)}
        own = dict.fromkeys(self.own_keys(), self.config.name)
        return Names(self.directory, self.mesh.trust, own=own, peers=peers)

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
        """A peer handed over to a new key: the peering moves to it, no new pairing."""
        old = self.store.get_peer(body.prev) if body.prev else None
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
        if isinstance(rotated.body, NodeRecord) and rotated.body.prev is not None:
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
        for queue in list(self.subscribers):
            if queue.qsize() < 1000:
                queue.put_nowait(row)
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
        if row.from_peer is not None:
            self._ask_for_record(row.author, row.from_peer)

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
        self.ingest(raws, peer)

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
        peer = self.store.get_peer(key)
        if peer is None or peer.status != "active":
            return None
        family = frozenset(self.mesh.trust.family(peer.key))  # replies may be signed by any of them
        return PeerAddress(peer.key, tuple(peer.addresses), peer.tls_fp, family)

    async def _push(self, peer: bytes, batch_id: int, raws: list[bytes]) -> None:
        address = self.peer_address(peer)
        ok = False
        deferred: list[bytes] = []
        try:
            if address is not None:
                for frame in framing.batches(raws):
                    reply = await self.client.call(
                        address, "/mesh/v1/push", {"e": frame, **self.tree.push_fields()}
                    )
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
        mesh starts the next one soon to continue."""
        address = self.peer_address(peer)
        if address is None:
            return
        have: list[bytes] = []
        need: list[bytes] = []
        complete = False
        try:
            session = mesh.reconcile.Initiator(self.mesh.keys())
            message = session.initiate()
            for _ in range(mesh.reconcile.MAX_ROUNDS):
                reply = await self.client.call(address, "/mesh/v1/reconcile", {"m": message})
                next_message = session.reconcile(reply.get("m"))
                if next_message is None:
                    complete = True
                    break
                message = next_message
            have, need = list(session.have), list(session.need)
            self.counters.reconciles += 1
            self._seen(peer)
        except (TransportError, mesh.MeshError) as exc:
            self._failed(peer, "reconcile with", exc)
            return
        self.handle(mesh.ReconcileDone(peer, tuple(have), tuple(need), complete))

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
        returned are asked again, until a reply brings none of them."""
        wanted = list(ids)
        while wanted:
            asked = wanted[: framing.MAX_FETCH_IDS]
            try:
                reply = await self.client.call(address, "/mesh/v1/fetch", {"ids": asked})
                raws = framing.envelope_list(reply)
            except (TransportError, BadFrame) as exc:
                self._failed(peer, "fetch from", exc)
                return
            got = {envelope_id(raw) for raw in raws}
            rest = [i for i in asked if i not in got]
            if len(rest) == len(asked):
                return  # the peer no longer holds them
            wanted = rest + wanted[len(asked) :]
            self.ingest(raws, peer)

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

    def save_marks(self) -> None:
        """Write the catch-up marks that push results moved since the last batch."""
        if self._unsaved_marks:
            marks = list(self._unsaved_marks.items())
            self._unsaved_marks.clear()
            self.store.set_peer_marks(marks)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                self.tick()
            except Exception:
                log.exception("tick failed")

    def tick(self) -> None:
        """One round of the node's timers at ``clock()``: the mesh's deadlines
        (reconciliations, retries, fetch timeouts), spent nonces, the desks'
        deadlines (escalations, check-ins), the marks, retention. The ticker calls
        it every ``TICK_SECONDS``; the test grid after moving its fake clock."""
        self._restart_links_if_the_clock_stepped_back()
        self.handle(mesh.Tick())
        self.store.prune_nonces(self.clock())
        self.desk.tick()
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
        return sum(1 for task in self._tasks if not task.done())

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

    @staticmethod
    async def _guarded(coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background task failed")


def _saved_standing(row: PeerStanding) -> mesh.SavedStanding:
    return mesh.SavedStanding(mesh.Standing(row.standing), row.score, row.banned_until)


def _system_random() -> Random:
    return Random(os.urandom(16))  # noqa: S311 - jitter only, not for secrets
