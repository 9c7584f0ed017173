"""Envelopes: the durable seen-set, local ``seq`` order, and the indexed queries
the node needs (reconciliation keys, catch-up, alert lists, timelines).

``seq`` comes from a row in ``counters`` that each inserting transaction locks
and advances, instead of ``max(seq) + 1`` or a database sequence:
- it is never reused, even after the newest envelopes expire and are deleted,
  so a peer's catch-up mark can never skip a later envelope;
- holding the row lock while inserting makes seq order equal commit order on
  PostgreSQL, so a reader never sees seq 7 committed while seq 6 is still
  invisible (and then advances a mark past 6 forever) — a hazard of sequences;
- the same lock serializes concurrent batches, so the "already stored?" check
  that follows it sees every earlier commit and duplicates never collide.

Deleting expired envelopes leaves a tombstone (id, created) in ``seen``: the id
stays refused until the protocol would refuse it anyway, and ``has`` answers
for both tables, so the seen-set is durable across restarts and deletions.
Revocations are never deleted (SPEC §8: "revocations never expire").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import fields
from operator import attrgetter
from typing import Any, Final, NamedTuple

from sqlalchemy import Connection, Table, delete, exists, func, select
from sqlalchemy.orm import Session

from node.store.database import MAX_IN, Database
from node.store.models import (
    ENVELOPE_SEQ,
    Base,
    CounterModel,
    EnvelopeModel,
    NonceModel,
    PeerModel,
    RegionModel,
    SeenModel,
)
from node.store.peers import nonces_written
from node.store.rows import StoredEnvelope
from protocol import MAX_LIFETIME_MS, MAX_SKEW_MS
from protocol import envelope_id as id_of
from protocol.fields import frozen_builder
from protocol.regions import ancestors

TOMBSTONE_MS: Final = MAX_LIFETIME_MS + MAX_SKEW_MS
PAGE: Final = 500


class EnvelopeQueries(Database):
    # -- writing ---------------------------------------------------------------------------
    def add_envelopes(
        self,
        items: Sequence[StoredEnvelope],
        marks: Sequence[tuple[bytes, int]] = (),
        nonces: Sequence[tuple[bytes, bytes, int]] = (),
    ) -> list[StoredEnvelope]:
        """Store a batch in one transaction; return only what was new, with its seq.

        Duplicates (already stored, tombstoned, or repeated within ``items``) are
        skipped, so replays and retries are harmless. Raises ``ValueError`` for an
        item whose id is not the hash of its raw bytes (it would corrupt the
        seen-set) or a sealed item carrying derived columns (plaintext leak).

        ``marks`` are peers' catch-up marks (``set_peer_mark``) and ``nonces``
        the (peer, nonce, expires) of the request that carried the batch
        (``remember_nonce``, checked unused by the caller): in the same
        transaction, a mark is never durable ahead of the items it covers, and a
        push costs one fsync, not three."""
        batch: dict[bytes, StoredEnvelope] = {}
        for item in items:
            _check(item)
            batch.setdefault(item.id, item)
        if not batch and not marks and not nonces:
            return []
        stored = self._add_envelopes(batch, marks, nonces)
        if nonces:
            nonces_written(self, nonces)  # committed: the store's memory of nonces follows
        return stored

    def _add_envelopes(
        self,
        batch: dict[bytes, StoredEnvelope],
        marks: Sequence[tuple[bytes, int]],
        nonces: Sequence[tuple[bytes, bytes, int]],
    ) -> list[StoredEnvelope]:
        """The group writer's transaction, once per commit. Every statement is
        the driver's own SQL on a plain connection (no ORM session, no Core
        statement built, coerced and cache-keyed per call): between real nodes
        most commits hold one pushed envelope, and building those statements
        cost several times what SQLite spends on them (docs/performance.md,
        "A push's cost in the node")."""
        with self._writer.begin() as connection:
            sql = _write_sql(connection)
            if marks:
                connection.exec_driver_sql(sql.advance_mark, [(seq, peer, seq) for peer, seq in marks])
            if nonces:
                connection.exec_driver_sql(sql.remember_nonce, list(nonces))
            if not batch:
                return []
            last = connection.exec_driver_sql(sql.lock_counter, (ENVELOPE_SEQ,)).scalar_one()
            known = _known_ids(connection, list(batch))
            fresh = [item for item in batch.values() if item.id not in known]
            if not fresh:
                return []
            stored = [_with_seq(item, last + i) for i, item in enumerate(fresh, start=1)]
            connection.exec_driver_sql(sql.set_counter, (last + len(fresh), ENVELOPE_SEQ))
            _insert_many(connection, EnvelopeModel, _ENVELOPE_COLUMNS, [_values(s) for s in stored])
            region_rows = [r for s in stored for r in _region_rows(s)]
            if region_rows:
                _insert_many(connection, RegionModel, _REGION_COLUMNS, region_rows)
            return stored

    def delete_expired(self, now: int, keep_ms: int = 0) -> int:
        """Delete envelopes expired more than ``keep_ms`` ago, except revocations,
        leaving tombstones; drop tombstones too old to matter. Returns the count."""
        if keep_ms < 0:
            raise ValueError("keep_ms must not be negative")
        doomed = (
            (EnvelopeModel.expires != 0)
            & (EnvelopeModel.expires <= now - keep_ms)
            & (EnvelopeModel.type != "revoke")
        )
        tombstones = (
            self._insert(SeenModel)
            .from_select(["id", "created"], select(EnvelopeModel.id, EnvelopeModel.created).where(doomed))
            .on_conflict_do_nothing(index_elements=[SeenModel.id])
        )
        with self._write() as session:
            _lock_counter(session)  # no insert may slip between tombstoning and deleting
            connection = session.connection()
            connection.execute(tombstones)
            deleted = connection.execute(delete(EnvelopeModel).where(doomed)).rowcount
            connection.execute(delete(SeenModel).where(SeenModel.created < now - TOMBSTONE_MS))
            return deleted

    # -- the seen-set ----------------------------------------------------------------------
    def has(self, envelope_id: bytes) -> bool:
        """True if this id was ever stored (and not yet too old to matter)."""
        with self._read() as session:
            return bool(_known_ids(session, [envelope_id]))

    def count(self) -> int:
        with self._read() as session:
            return session.scalar(select(func.count()).select_from(EnvelopeModel)) or 0

    # -- reading ---------------------------------------------------------------------------
    def get(self, envelope_id: bytes) -> StoredEnvelope | None:
        with self._read() as session:
            row = session.get(EnvelopeModel, envelope_id)
            return None if row is None else _stored(row)

    def get_many(self, ids: Iterable[bytes]) -> list[StoredEnvelope]:
        """The stored ones among ``ids``, in the order asked, each once."""
        wanted = list(dict.fromkeys(ids))
        found: dict[bytes, StoredEnvelope] = {}
        with self._read() as session:
            for chunk in _chunks(wanted):
                for row in session.scalars(select(EnvelopeModel).where(EnvelopeModel.id.in_(chunk))):
                    found[row.id] = _stored(row)
        return [found[i] for i in wanted if i in found]

    def find_by_prefix(self, hex_prefix: str) -> StoredEnvelope | None:
        """The one envelope whose hex id starts with ``hex_prefix``; None if none or
        several match (an ambiguous prefix must not pick an alert arbitrarily)."""
        prefix = hex_prefix.strip().lower()
        if not 1 <= len(prefix) <= 64 or any(c not in "0123456789abcdef" for c in prefix):
            return None
        low = bytes.fromhex((prefix + "0" * 64)[:64])
        high = bytes.fromhex((prefix + "f" * 64)[:64])
        statement = select(EnvelopeModel).where(EnvelopeModel.id.between(low, high)).limit(2)
        with self._read() as session:
            rows = list(session.scalars(statement))
            return _stored(rows[0]) if len(rows) == 1 else None

    def keys(self, since_created: int = 0) -> list[tuple[int, bytes]]:
        """(created, id) pairs sorted for range-based set reconciliation."""
        statement = (
            select(EnvelopeModel.created, EnvelopeModel.id)
            .where(EnvelopeModel.created >= since_created)
            .order_by(EnvelopeModel.created, EnvelopeModel.id)
        )
        with self._read() as session:
            return [(created, id_) for created, id_ in session.execute(statement)]

    def since_seq(
        self, seq: int, limit: int = PAGE, types: Sequence[str] | None = None
    ) -> list[StoredEnvelope]:
        """Envelopes stored after local ``seq``, oldest first: catch-up for a peer
        (every type), or for a stream that sends only some ``types``."""
        table = _table(EnvelopeModel)
        statement = select(*(table.c[name] for name in _ENVELOPE_COLUMNS)).where(table.c.seq > seq)
        if types is not None:
            statement = statement.where(table.c.type.in_(list(types)))
        statement = statement.order_by(table.c.seq).limit(limit)
        with self._read() as session:
            rows = session.execute(statement).all()
            regions = _own_regions(session, [row[0] for row in rows if row[2] == "alert" and not row[9]])
        return [_from_columns(row, regions.get(row[0], ())) for row in rows]

    def iter_all(self) -> Iterator[StoredEnvelope]:
        """Every envelope in seq order, read page by page (one short transaction
        each), so loading the mesh state at start never pins the database."""
        last = 0
        while page := self.since_seq(last, PAGE):
            yield from page
            last = page[-1].seq

    def list_alerts(
        self,
        *,
        since_created: int = 0,
        region: str | None = None,
        limit: int = 100,
        include_sealed: bool = True,
    ) -> list[StoredEnvelope]:
        """Alerts (including updates and cancels), newest first.

        ``region`` matches hierarchically like ``protocol.regions.matches``: ``MX``
        finds alerts for ``MX`` and ``MX-OAX``, ``*`` finds every plain alert.
        Sealed alerts have no stored regions, so a region filter never returns
        them; the node filters those after opening them in memory."""
        statement = select(EnvelopeModel).where(
            EnvelopeModel.type == "alert", EnvelopeModel.created >= since_created
        )
        if not include_sealed:
            statement = statement.where(EnvelopeModel.sealed.is_(False))
        if region is not None:
            statement = statement.where(
                exists().where(RegionModel.envelope_id == EnvelopeModel.id, RegionModel.region == region)
            )
        statement = statement.order_by(EnvelopeModel.created.desc(), EnvelopeModel.seq.desc()).limit(limit)
        with self._read() as session:
            return [_stored(row) for row in session.scalars(statement)]

    def related(self, alert_id: bytes) -> list[StoredEnvelope]:
        """Plain updates, cancels and acks pointing at ``alert_id``, oldest first."""
        statement = (
            select(EnvelopeModel)
            .where(EnvelopeModel.refs == alert_id)
            .order_by(EnvelopeModel.created, EnvelopeModel.seq)
        )
        with self._read() as session:
            return [_stored(row) for row in session.scalars(statement)]


def _check(item: StoredEnvelope) -> None:
    if id_of(item.raw) != item.id:
        raise ValueError("StoredEnvelope.id is not the BLAKE2b-256 of its raw bytes")
    derived = (item.refs, item.subject, item.status, item.severity, item.msg_type)
    if item.sealed and (any(v is not None for v in derived) or item.regions or item.compromised):
        raise ValueError("a sealed envelope must not carry columns derived from its plaintext")


_BUILD_STORED = frozen_builder(StoredEnvelope)
_ALL_BUT_SEQ = attrgetter(*(f.name for f in fields(StoredEnvelope) if f.name != "seq"))
assert fields(StoredEnvelope)[-1].name == "seq"


def _with_seq(item: StoredEnvelope, seq: int) -> StoredEnvelope:
    """``replace(item, seq=seq)`` at half its cost (it runs for every envelope
    stored): the values are the item's own, already checked."""
    return _BUILD_STORED(*_ALL_BUT_SEQ(item), seq)


def _lock_counter(session: Session) -> int:
    statement = select(CounterModel.value).where(CounterModel.name == ENVELOPE_SEQ).with_for_update()
    return session.execute(statement).scalar_one()


def _known_ids(on: Session | Connection, ids: list[bytes]) -> set[bytes]:
    """Ids of ``ids`` stored or tombstoned: one round trip per chunk, both tables.

    Sent as the driver's own SQL, like ``_insert_many``: with a batch's ids as
    an ``IN`` list, SQLAlchemy's rendering and per-id processing of the list cost
    more than the query (twice the batch size of bound values per push)."""
    connection = on.connection() if isinstance(on, Session) else on
    quote = connection.dialect.identifier_preparer.quote
    marker = _MARKERS[connection.dialect.paramstyle]
    envelopes, seen = _table(EnvelopeModel), _table(SeenModel)
    env_id, seen_id = quote(envelopes.c.id.name), quote(seen.c.id.name)
    known: set[bytes] = set()
    for chunk in _chunks(ids):
        marks = ", ".join([marker] * len(chunk))
        statement = (
            f"SELECT {env_id} FROM {quote(envelopes.name)} WHERE {env_id} IN ({marks}) "  # noqa: S608 - names from the model, values bound
            f"UNION ALL SELECT {seen_id} FROM {quote(seen.name)} WHERE {seen_id} IN ({marks})"
        )
        known.update(bytes(row[0]) for row in connection.exec_driver_sql(statement, tuple(chunk) * 2))
    return known


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _chunks(ids: list[bytes]) -> Iterator[list[bytes]]:
    for start in range(0, len(ids), MAX_IN):
        yield ids[start : start + MAX_IN]


_ENVELOPE_COLUMNS: Final = (
    "id", "seq", "type", "author", "created", "expires", "raw", "received_at", "from_peer", "sealed",
    "refs", "subject", "compromised", "status", "severity", "msg_type",
)  # fmt: skip
_REGION_COLUMNS: Final = ("envelope_id", "region", "position")


def _values(item: StoredEnvelope) -> tuple[Any, ...]:
    """One envelope row, in ``_ENVELOPE_COLUMNS`` order."""
    return (
        item.id, item.seq, item.type, item.author, item.created, item.expires, item.raw, item.received_at,
        item.from_peer, item.sealed, item.refs, item.subject, item.compromised, item.status, item.severity,
        item.msg_type,
    )  # fmt: skip


def _region_rows(item: StoredEnvelope) -> list[tuple[bytes, str, int | None]]:
    """The alert's own regions (with their position) plus every ancestor, in
    ``_REGION_COLUMNS`` order."""
    positions: dict[str, int | None] = {region: i for i, region in enumerate(item.regions)}
    for region in item.regions:
        for parent in ancestors(region):
            positions.setdefault(parent, None)
    return [(item.id, r, p) for r, p in positions.items()]


_MARKERS: Final = {"qmark": "?", "format": "%s", "pyformat": "%s"}  # sqlite3; psycopg


class _WriteSql(NamedTuple):
    """The group writer's fixed statements in one dialect's SQL (``_write_sql``)."""

    advance_mark: str  # (seq, peer, seq): a catch-up mark moves only forwards
    remember_nonce: str  # (peer, nonce, expires): a nonce seen twice changes nothing
    lock_counter: str  # (name,): the counter that hands out seq, locked on PostgreSQL
    set_counter: str  # (value, name)


_WRITE_SQL: dict[tuple[str, str], _WriteSql] = {}


def _write_sql(connection: Connection) -> _WriteSql:
    """The writer's statements for ``connection``'s dialect, rendered once per
    process from the models' own names (a renamed column fails loudly). The
    same rules as the Core statements they replace: ``peers.advance_mark`` and
    ``peers.nonce_insert`` (both databases spell ``ON CONFLICT`` the same), and
    ``SELECT ... FOR UPDATE`` where the database has it (SQLite's writer holds
    the write lock from ``BEGIN IMMEDIATE`` on)."""
    dialect = connection.dialect
    key = (dialect.name, dialect.paramstyle)
    sql = _WRITE_SQL.get(key)
    if sql is None:
        quote, m = dialect.identifier_preparer.quote, _MARKERS[dialect.paramstyle]
        peers, nonces, counters = _table(PeerModel), _table(NonceModel), _table(CounterModel)
        mark, peer_key = quote(peers.c.mark.name), quote(peers.c.key.name)
        n_peer, n_nonce, n_expires = (quote(nonces.c[c].name) for c in ("peer", "nonce", "expires"))
        value, name = quote(counters.c.value.name), quote(counters.c.name.name)
        lock = " FOR UPDATE" if dialect.name == "postgresql" else ""
        sql = _WRITE_SQL[key] = _WriteSql(
            advance_mark=f"UPDATE {quote(peers.name)} SET {mark} = {m} WHERE {peer_key} = {m} AND {mark} < {m}",  # noqa: S608 - names from the model, values bound
            remember_nonce=(
                f"INSERT INTO {quote(nonces.name)} ({n_peer}, {n_nonce}, {n_expires}) VALUES ({m}, {m}, {m}) "  # noqa: S608 - names from the model, values bound
                f"ON CONFLICT ({n_peer}, {n_nonce}) DO NOTHING"
            ),
            lock_counter=f"SELECT {value} FROM {quote(counters.name)} WHERE {name} = {m}{lock}",  # noqa: S608 - names from the model, values bound
            set_counter=f"UPDATE {quote(counters.name)} SET {value} = {m} WHERE {name} = {m}",  # noqa: S608 - names from the model, values bound
        )
    return sql


def _insert_many(connection: Connection, model: type[Base], columns: tuple[str, ...], rows: list[Any]) -> None:
    """``INSERT`` many rows with the driver's own ``executemany``, in the
    caller's transaction.

    The ingest hot path: Core's ``insert(model)`` with a list of dicts is the
    same single statement, but SQLAlchemy processes every value of every row in
    Python first (a bind processor per binary and boolean column), which cost
    more than the insert itself. The values here are already what both drivers
    take as they are (bytes, int, bool, str, None); the statement names the
    model's own table and columns, so a renamed column fails loudly."""
    table = _table(model)
    quote = connection.dialect.identifier_preparer.quote
    marker = _MARKERS[connection.dialect.paramstyle]
    names = ", ".join(quote(table.c[name].name) for name in columns)
    statement = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({', '.join([marker] * len(columns))})"  # noqa: S608 - names from the model, values bound
    connection.exec_driver_sql(statement, rows)


def _own_regions(session: Session, ids: list[bytes]) -> dict[bytes, tuple[str, ...]]:
    """The plain alerts' own regions (not the ancestors), in body order."""
    table = _table(RegionModel)
    found: dict[bytes, list[tuple[int, str]]] = {}
    for chunk in _chunks(ids):
        statement = select(table.c.envelope_id, table.c.position, table.c.region).where(
            table.c.envelope_id.in_(chunk), table.c.position.is_not(None)
        )
        for envelope, position, region in session.execute(statement):
            found.setdefault(envelope, []).append((position, region))
    return {envelope: tuple(region for _, region in sorted(own)) for envelope, own in found.items()}


def _from_columns(row: Any, regions: tuple[str, ...]) -> StoredEnvelope:
    """A row of ``_ENVELOPE_COLUMNS`` as read by Core (SQLAlchemy's ORM spent more
    building objects for a page of envelopes than a node's start spent on them:
    docs/performance.md)."""
    (id_, seq, type_, author, created, expires, raw, received_at, from_peer, sealed,
     refs, subject, compromised, status, severity, msg_type) = row  # fmt: skip
    return _BUILD_STORED(
        id_, type_, author, created, expires, raw, received_at, from_peer, sealed, refs, subject,
        bool(compromised), status, severity, msg_type, regions, seq,
    )  # fmt: skip


def _stored(row: EnvelopeModel) -> StoredEnvelope:
    own = sorted((r.position, r.region) for r in row.regions if r.position is not None)
    return StoredEnvelope(
        id=row.id,
        seq=row.seq,
        type=row.type,
        author=row.author,
        created=row.created,
        expires=row.expires,
        raw=row.raw,
        received_at=row.received_at,
        from_peer=row.from_peer,
        sealed=row.sealed,
        refs=row.refs,
        subject=row.subject,
        compromised=row.compromised,
        status=row.status,
        severity=row.severity,
        msg_type=row.msg_type,
        regions=tuple(region for _, region in own),
    )
