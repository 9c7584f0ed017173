"""Peers, one-time invites and request nonces: the state of who may talk to us.

Everything here that guards against replay or double use is decided by the
database in a single statement (a conditional ``UPDATE`` or an insert that
conflicts on the primary key), never by read-then-write in Python, so two
concurrent requests cannot both win — on SQLite or on PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from sqlalchemy import Update, case, delete, or_, select, update

from node.store.database import Database, Insert
from node.store.models import InviteModel, NonceModel, PeerModel
from node.store.rows import PEER_STANDINGS, PEER_STATUSES, PeerRow, PeerStanding

MIN_KEY_PREFIX = 4  # hex digits; shorter prefixes match too easily by accident
PEER_MEMORY = 4096  # peer rows (and unknown keys) ``peer_for_request`` keeps at most


class PeerQueries(Database):
    # -- peers -----------------------------------------------------------------------------
    def upsert_peer(self, peer: PeerRow) -> None:
        """Insert or replace a peer's descriptor.

        The catch-up ``mark`` only moves forward here too: a caller holding a copy
        of the row read before a concurrent ``set_peer_mark`` must not push it
        back. Keeping it across removal and re-pairing is right as well: what was
        stored meanwhile has a higher ``seq`` and is still pushed."""
        if peer.status not in PEER_STATUSES:
            raise ValueError(f"peer status must be one of {PEER_STATUSES}")
        values = _peer_columns(peer)
        statement = self._insert(PeerModel).values(**values)
        new = statement.excluded
        changes = {k: getattr(new, k) for k in values if k not in ("key", "mark")}
        changes["mark"] = case((new.mark > PeerModel.mark, new.mark), else_=PeerModel.mark)
        statement = statement.on_conflict_do_update(index_elements=[PeerModel.key], set_=changes)
        self._forget_peer_rows()
        with self._write() as session:
            session.connection().execute(statement)

    def get_peer(self, key: bytes) -> PeerRow | None:
        with self._read() as session:
            row = session.get(PeerModel, key)
            return None if row is None else _peer(row)

    def peer_for_request(self, key: bytes) -> PeerRow | None:
        """``get_peer`` from memory, for the mesh's hot path: a push looks its
        sender up at the door, at the signature check and again to forward, and
        each read was a session and a query (the push handler's largest item in
        bench/hoptrace.py's profile). Status, addresses and keys are exact: every
        write of them here forgets the copies. ``mark`` and ``last_seen`` may lag
        (they move with every push); read them with ``get_peer``. Unknown keys
        are remembered too, so at most ``PEER_MEMORY`` keys, then it starts over."""
        rows = self._peer_rows()
        if key in rows:
            return rows[key]
        row = self.get_peer(key)
        if len(rows) >= PEER_MEMORY:
            rows.clear()
        rows[key] = row
        return row

    def _peer_rows(self) -> dict[bytes, PeerRow | None]:
        rows: dict[bytes, PeerRow | None] = self.__dict__.setdefault("_peer_row_memory", {})
        return rows

    def _forget_peer_rows(self) -> None:
        self._peer_rows().clear()
        self.__dict__.pop("_peer_name_memory", None)

    def peer_names(self) -> dict[bytes, str]:
        """Every peer's name by key, removed peers included, from memory: the
        stream, the desks and the allies' feeds label each alert with its
        organization's name, and listing the peers for it was a query per alert.
        Forgotten with the peer rows at every write of a peer."""
        names: dict[bytes, str] | None = self.__dict__.get("_peer_name_memory")
        if names is None:
            names = {p.key: p.name for p in self.list_peers(include_removed=True)}
            self.__dict__["_peer_name_memory"] = names
        return names

    def find_peer(self, name_or_hex_prefix: str, *, include_removed: bool = False) -> PeerRow | None:
        """The one peer with this exact name, else the one whose key starts with
        this hex prefix. None when nothing or more than one matches: names are
        self-chosen by peers, so an ambiguous name must never pick one at random
        (it could route a restricted alert to an impostor)."""
        text = name_or_hex_prefix.strip()
        peers = self.list_peers(include_removed=include_removed)
        named = [p for p in peers if p.name == text]
        if named:
            return named[0] if len(named) == 1 else None
        prefix = text.lower()
        if len(prefix) < MIN_KEY_PREFIX or any(c not in "0123456789abcdef" for c in prefix):
            return None
        keyed = [p for p in peers if p.key.hex().startswith(prefix)]
        return keyed[0] if len(keyed) == 1 else None

    def list_peers(self, include_removed: bool = False) -> list[PeerRow]:
        statement = select(PeerModel).order_by(PeerModel.name, PeerModel.key)
        if not include_removed:
            statement = statement.where(PeerModel.status == "active")
        with self._read() as session:
            return [_peer(row) for row in session.scalars(statement)]

    def remove_peer(self, key: bytes) -> bool:
        """Mark a peer removed (kept so its name still labels its old alerts)."""
        statement = update(PeerModel).where(PeerModel.key == key).values(status="removed")
        self._forget_peer_rows()
        with self._write() as session:
            return self._rowcount(session, statement) == 1

    def invite_state(self, secret_hash: bytes, now: int) -> str:
        """Why ``use_invite`` said no, in one word: ``used``, ``expired`` or
        ``unknown`` (never made here, or made before a wipe); ``open`` if it can be used."""
        with self._read() as session:
            row = session.get(InviteModel, secret_hash)
        if row is None:
            return "unknown"
        return "used" if row.used_at is not None else "expired" if row.expires <= now else "open"

    def set_peer_mark(self, key: bytes, seq: int) -> None:
        """Advance the catch-up mark; never moves it backwards (a late, stale
        acknowledgement must not make us resend or, worse, skip)."""
        self.set_peer_marks([(key, seq)])

    def set_peer_marks(self, marks: Iterable[tuple[bytes, int]]) -> None:
        """``set_peer_mark`` for several peers in one transaction."""
        with self._write() as session:
            for key, seq in marks:
                session.connection().execute(advance_mark(key, seq))

    def set_peer_standing(self, key: bytes, standing: PeerStanding) -> None:
        """Persist the mesh's judgement of a peer (written at each standing
        change, so a restart keeps a cut-off peer out until its deadline)."""
        if standing.standing not in PEER_STANDINGS:
            raise ValueError(f"peer standing must be one of {PEER_STANDINGS}")
        statement = (
            update(PeerModel)
            .where(PeerModel.key == key)
            .values(standing=standing.standing, score=standing.score, banned_until=standing.banned_until)
        )
        self._forget_peer_rows()
        with self._write() as session:
            session.connection().execute(statement)

    def touch_peer(self, key: bytes, now: int) -> None:
        statement = (
            update(PeerModel)
            .where(PeerModel.key == key, or_(PeerModel.last_seen.is_(None), PeerModel.last_seen < now))
            .values(last_seen=now)
        )
        with self._write() as session:
            session.connection().execute(statement)

    # -- invites ---------------------------------------------------------------------------
    def add_invite(self, secret_hash: bytes, created: int, expires: int) -> None:
        """Remember an invite by the hash of its secret (a copied database must
        not hand out working invites)."""
        statement = (
            self._insert(InviteModel)
            .values(secret_hash=secret_hash, created=created, expires=expires, used_at=None)
            .on_conflict_do_nothing(index_elements=[InviteModel.secret_hash])
        )
        with self._write() as session:
            session.connection().execute(statement)

    def use_invite(self, secret_hash: bytes, now: int) -> bool:
        """True exactly once per invite, and only before it expires."""
        statement = (
            update(InviteModel)
            .where(
                InviteModel.secret_hash == secret_hash,
                InviteModel.used_at.is_(None),
                InviteModel.expires > now,
            )
            .values(used_at=now)
        )
        with self._write() as session:
            return self._rowcount(session, statement) == 1

    # -- request nonces --------------------------------------------------------------------
    def remember_nonce(self, peer: bytes, nonce: bytes, expires: int) -> bool:
        """True the first time ``(peer, nonce)`` is seen; False for a replay."""
        with self._write() as session:
            fresh = self._rowcount(session, nonce_insert(self, peer, nonce, expires)) == 1
        nonces_written(self, [(peer, nonce, expires)])
        return fresh

    def nonce_used(self, peer: bytes, nonce: bytes) -> bool:
        """True if ``(peer, nonce)`` was remembered (the check half of ``remember_nonce``,
        for a caller that writes the nonce with the work the request carries).

        Answered from memory: every request a node takes is checked here, and a
        session and a query for it were the largest item of a relay's event loop
        after the signatures (docs/performance.md). The memory is the table, read
        once, plus every nonce this store wrote since (``nonces_written``, after
        each commit), minus what ``prune_nonces`` deleted: exact while this
        process is the one node writing the store, as it must be."""
        return (peer, nonce) in nonce_memory(self)

    def prune_nonces(self, now: int) -> int:
        """Forget nonces whose requests would now be refused for their age alone."""
        with self._write() as session:
            deleted = self._rowcount(session, delete(NonceModel).where(NonceModel.expires < now))
        memory = nonce_memory(self)
        for key in [key for key, expires in memory.items() if expires < now]:
            memory.pop(key, None)
        return deleted


def _peer_columns(peer: PeerRow) -> dict[str, object]:
    return {
        "key": peer.key,
        "name": peer.name,
        "enc_key": peer.enc_key,
        "addresses": list(peer.addresses),
        "tls_fp": peer.tls_fp,
        "node_record_id": peer.node_record_id,
        "added_at": peer.added_at,
        "last_seen": peer.last_seen,
        "mark": peer.mark,
        "status": peer.status,
        "verified": peer.verified,
    }


def _peer(row: PeerModel) -> PeerRow:
    return PeerRow(
        key=row.key,
        name=row.name,
        enc_key=row.enc_key,
        addresses=list(row.addresses),
        tls_fp=row.tls_fp,
        node_record_id=row.node_record_id,
        added_at=row.added_at,
        last_seen=row.last_seen,
        mark=row.mark,
        status=row.status,
        verified=row.verified,
        standing=None if row.score is None else PeerStanding(row.standing, row.score, row.banned_until),
    )


def advance_mark(peer: bytes, seq: int) -> Update:
    """The one statement that moves a catch-up mark, and only forwards."""
    return update(PeerModel).where(PeerModel.key == peer, PeerModel.mark < seq).values(mark=seq)


def nonce_insert(db: Database, peer: bytes, nonce: bytes, expires: int) -> Insert:
    """Remember a request nonce; a second insert of the same one changes nothing."""
    return (
        db._insert(NonceModel)
        .values(peer=peer, nonce=nonce, expires=expires)
        .on_conflict_do_nothing(index_elements=[NonceModel.peer, NonceModel.nonce])
    )


def nonces_written(db: Database, nonces: Iterable[tuple[bytes, bytes, int]]) -> None:
    """Called after a commit that wrote ``nonces`` (peer, nonce, expires): the
    store's memory of nonces (``PeerQueries.nonce_used``) follows the table."""
    memory = nonce_memory(db)
    for peer, nonce, expires in nonces:
        memory[(peer, nonce)] = expires


def nonce_memory(db: Database) -> dict[tuple[bytes, bytes], int]:
    """The nonce table in memory, read at first use. Loading and the writer's
    additions take one lock, so a nonce committed while the table is read is
    either in what was read or added after it."""
    memory: dict[tuple[bytes, bytes], int] | None = db.__dict__.get("_nonce_memory")
    if memory is not None:
        return memory
    with db.__dict__.setdefault("_nonce_lock", threading.Lock()):
        memory = db.__dict__.get("_nonce_memory")
        if memory is None:
            statement = select(NonceModel.peer, NonceModel.nonce, NonceModel.expires)
            with db._read() as session:
                memory = {(peer, nonce): expires for peer, nonce, expires in session.execute(statement)}
            db.__dict__["_nonce_memory"] = memory
        return memory
