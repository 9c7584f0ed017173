"""One interface suite for ``node.store.Store``, run against SQLite and PostgreSQL.

Envelopes are built with the real protocol API and fixed seeds, so what is
stored is exactly what a node would store. Backend-specific promises (PRAGMAs,
the SQLite file itself) have their own tests at the end.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select, text

from node.store import PeerRow, PeerStanding, Store, StoredEnvelope, StoreError, head_revision
from node.store.envelopes import TOMBSTONE_MS
from node.store.models import Base, CounterModel, RegionModel
from protocol import (
    Ack,
    Alert,
    Area,
    Envelope,
    Identity,
    NodeRecord,
    Revoke,
    Vouch,
    decode,
    envelope_id,
    seal_envelope,
    sign_envelope,
)

ALICE = Identity.from_random(bytes(range(64)))
BOB = Identity.from_random(bytes(range(64, 128)))
CAROL = Identity.from_random(bytes(range(128, 192)))
NOW = 1_800_000_000_000
MINUTE = 60_000
HOUR = 60 * MINUTE
SECRET_HEADLINE = "Traslado urgente de la defensora a casa segura zx81"


# -- building envelopes ---------------------------------------------------------------------
def make_alert(
    author: Identity = ALICE,
    *,
    regions: tuple[str, ...] = ("MX-OAX",),
    created: int = NOW,
    ttl: int = HOUR,
    headline: str = "Detención arbitraria en Oaxaca",
    msg_type: str = "alert",
    references: tuple[bytes, ...] = (),
    severity: str = "severe",
) -> Envelope:
    body = Alert(
        headline=headline,
        areas=tuple(Area(r) for r in regions),
        severity=severity,
        msg_type=msg_type,
        references=references,
    )
    return sign_envelope(author, body, created=created, expires=created + ttl)


def make_sealed_alert(created: int = NOW, headline: str = SECRET_HEADLINE) -> Envelope:
    body = Alert(headline=headline, areas=(Area("MX-CHP"),), severity="extreme", scope="restricted")
    return seal_envelope(
        ALICE,
        body,
        created=created,
        expires=created + HOUR,
        recipients=[ALICE.enc_public, BOB.enc_public],
        random=os.urandom,
    )


def make_ack(
    alert_id: bytes, author: Identity = BOB, created: int = NOW + MINUTE, sealed: bool = False
) -> Envelope:
    body = Ack(alert=alert_id, state="responding", note="en camino")
    if sealed:
        return seal_envelope(
            author,
            body,
            created=created,
            expires=created + HOUR,
            recipients=[ALICE.enc_public],
            random=os.urandom,
        )
    return sign_envelope(author, body, created=created, expires=created + HOUR)


def row(env: Envelope, from_peer: bytes | None = None, received_at: int = NOW) -> StoredEnvelope:
    return StoredEnvelope.from_envelope(env, received_at=received_at, from_peer=from_peer)


def rows(*envs: Envelope) -> list[StoredEnvelope]:
    return [row(e) for e in envs]


def alerts_at(count: int, start: int = NOW) -> list[Envelope]:
    return [make_alert(created=start + i, headline=f"alerta {i}") for i in range(count)]


# -- migrations -----------------------------------------------------------------------------
def test_fresh_database_reaches_head_and_matches_models(store: Store) -> None:
    assert store.schema_revision() == head_revision()
    with store._engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == [], "models changed without a migration"


def test_opening_twice_is_a_no_op(open_store: Callable[[], Store]) -> None:
    first = open_store()
    first.add_envelopes(rows(*alerts_at(3)))
    first.close()
    second = open_store()
    assert second.schema_revision() == head_revision()
    assert second.count() == 3
    with second._read() as session:
        assert session.scalar(select(func.count()).select_from(CounterModel)) == 1
    assert [s.seq for s in second.add_envelopes(rows(make_alert(created=NOW + 99)))] == [4]


def test_database_from_a_newer_amparo_is_refused(open_store: Callable[[], Store]) -> None:
    store = open_store()
    with store._write() as session:
        session.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
    store.close()
    with pytest.raises(StoreError, match="newer Amparo"):
        open_store()


# -- the seen-set and seq -------------------------------------------------------------------
def test_insert_is_idempotent_and_seq_follows_insert_order(store: Store) -> None:
    a, b, c, d = alerts_at(4)
    first = store.add_envelopes(rows(c, a, b))  # insert order, not created order, decides seq
    assert [s.id for s in first] == [c.id, a.id, b.id]
    assert [s.seq for s in first] == [1, 2, 3]
    assert store.add_envelopes(rows(a, b, c)) == []
    again = store.add_envelopes(rows(b, d, a))
    assert [(s.id, s.seq) for s in again] == [(d.id, 4)]
    assert store.count() == 4
    assert [s.id for s in store.iter_all()] == [c.id, a.id, b.id, d.id]
    assert [s.seq for s in store.since_seq(2, limit=10)] == [3, 4]
    assert [s.seq for s in store.since_seq(0, limit=2)] == [1, 2]


def test_duplicates_within_one_batch_are_stored_once(store: Store) -> None:
    a, b = alerts_at(2)
    first_copy = row(a, from_peer=BOB.sign_public)
    inserted = store.add_envelopes([first_copy, row(b), row(a, from_peer=CAROL.sign_public), row(b)])
    assert [(s.id, s.seq) for s in inserted] == [(a.id, 1), (b.id, 2)]
    stored = store.get(a.id)
    assert stored is not None and stored.from_peer == BOB.sign_public  # the first copy wins
    assert store.count() == 2
    assert store.add_envelopes([]) == []


def test_seen_set_survives_close_and_reopen(open_store: Callable[[], Store]) -> None:
    envs = alerts_at(3)
    with open_store() as store:
        assert len(store.add_envelopes(rows(*envs))) == 3
    reopened = open_store()
    assert all(reopened.has(e.id) for e in envs)
    assert reopened.add_envelopes(rows(*envs)) == []
    assert [s.seq for s in reopened.iter_all()] == [1, 2, 3]


def test_iter_all_pages_through_everything_in_seq_order(store: Store) -> None:
    envs = alerts_at(1203)
    for start in range(0, len(envs), 400):
        store.add_envelopes(rows(*envs[start : start + 400]))
    seqs = [s.seq for s in store.iter_all()]
    assert seqs == list(range(1, 1204))


def test_seq_is_never_reused_after_deletion(store: Store) -> None:
    short = make_alert(created=NOW, ttl=MINUTE)
    store.add_envelopes(rows(make_alert(created=NOW - 5, ttl=HOUR), short))
    assert store.delete_expired(NOW + 2 * MINUTE) == 1
    newer = store.add_envelopes(rows(make_alert(created=NOW + 1)))
    assert [s.seq for s in newer] == [3]  # a peer with mark 2 must still get it


def test_concurrent_batches_store_each_envelope_once(store: Store) -> None:
    envs = alerts_at(60)
    batches = [envs[i : i + 30] for i in (0, 10, 20, 30)] * 2  # heavily overlapping
    barrier = threading.Barrier(len(batches))
    results: list[list[StoredEnvelope]] = []
    errors: list[BaseException] = []

    def worker(batch: list[Envelope]) -> None:
        try:
            barrier.wait()
            results.append(store.add_envelopes(rows(*batch)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    inserted = [s for r in results for s in r]
    assert sorted(s.id for s in inserted) == sorted(e.id for e in envs)
    assert sorted(s.seq for s in inserted) == list(range(1, 61))
    assert [s.id for s in store.iter_all()] == [s.id for s in sorted(inserted, key=lambda s: s.seq)]


# -- exact bytes and derived columns --------------------------------------------------------
def test_raw_bytes_are_kept_byte_for_byte(store: Store) -> None:
    env = make_alert(regions=("MX-OAX", "GT"), headline="Allanamiento — «urgente» ñandú")
    store.add_envelopes([row(env, from_peer=BOB.sign_public, received_at=NOW + 7)])
    stored = store.get(env.id)
    assert stored is not None
    assert stored.raw == env.raw and envelope_id(stored.raw) == env.id
    assert decode(stored.raw, now=NOW).body == env.body
    assert stored.from_peer == BOB.sign_public and stored.received_at == NOW + 7
    assert (stored.type, stored.author, stored.created, stored.expires) == (
        "alert",
        ALICE.sign_public,
        NOW,
        NOW + HOUR,
    )
    assert (stored.status, stored.severity, stored.msg_type, stored.sealed) == (
        "actual",
        "severe",
        "alert",
        False,
    )
    assert stored.regions == ("MX-OAX", "GT")
    assert stored == replace(row(env, from_peer=BOB.sign_public, received_at=NOW + 7), seq=1)


def test_derived_columns_for_every_body_type() -> None:
    alert = make_alert()
    update = make_alert(msg_type="update", references=(alert.id,), created=NOW + 1)
    assert row(alert).refs is None
    assert row(update).refs == alert.id and row(update).msg_type == "update"
    assert row(make_ack(alert.id)).refs == alert.id
    vouch = sign_envelope(
        ALICE, Vouch(subject=BOB.sign_public, enc=BOB.enc_public, name="Bob"), created=NOW, expires=0
    )
    assert row(vouch).subject == BOB.sign_public and not row(vouch).compromised
    burned = sign_envelope(BOB, Revoke(subject=BOB.sign_public, compromised=True), created=NOW, expires=0)
    assert row(burned).subject == BOB.sign_public and row(burned).compromised
    node = sign_envelope(
        ALICE, NodeRecord(name="alice", enc=ALICE.enc_public, tls=bytes(32)), created=NOW, expires=0
    )
    assert (row(node).refs, row(node).subject, row(node).regions) == (None, None, ())


def test_store_refuses_rows_that_would_corrupt_or_leak(store: Store) -> None:
    env = make_alert()
    with pytest.raises(ValueError, match="BLAKE2b"):
        store.add_envelopes([replace(row(env), id=bytes(32))])
    sealed = row(make_sealed_alert())
    with pytest.raises(ValueError, match="sealed"):
        store.add_envelopes([replace(sealed, regions=("MX-CHP",))])
    assert store.count() == 0


def test_sealed_envelopes_store_no_plaintext(store: Store) -> None:
    sealed = make_sealed_alert()
    sealed_ack = make_ack(sealed.id, sealed=True)
    store.add_envelopes(rows(sealed, sealed_ack))
    for env in (sealed, sealed_ack):
        stored = store.get(env.id)
        assert stored is not None and stored.sealed and stored.raw == env.raw
        assert (stored.refs, stored.subject, stored.status, stored.severity, stored.msg_type) == (None,) * 5
        assert stored.regions == ()
    assert store.related(sealed.id) == []  # the link exists only inside the ciphertext
    dump = _dump_all_tables(store)
    assert SECRET_HEADLINE.encode() not in dump
    assert b"MX-CHP" not in dump


def _dump_all_tables(store: Store) -> bytes:
    """Every value in every table, as bytes, for plaintext searches on any backend."""
    parts: list[bytes] = []
    with store._read() as session:
        for table in Base.metadata.sorted_tables:
            for record in session.execute(select(table)):
                for value in record:
                    parts.append(value if isinstance(value, bytes) else str(value).encode())
    return b"|".join(parts) + b"|"


# -- queries --------------------------------------------------------------------------------
def test_region_filter_follows_the_region_hierarchy(store: Store) -> None:
    oaxaca = make_alert(regions=("MX-OAX",), created=NOW + 1)
    mexico = make_alert(regions=("MX",), created=NOW + 2)
    paris = make_alert(regions=("FR-75C",), created=NOW + 3)
    both = make_alert(regions=("GT", "MX-CHP"), created=NOW + 4)
    everywhere = make_alert(regions=("*",), created=NOW + 5)
    sealed = make_sealed_alert(created=NOW + 6)
    ack = make_ack(oaxaca.id, created=NOW + 7)
    store.add_envelopes(rows(oaxaca, mexico, paris, both, everywhere, sealed, ack))

    def ids(**query: Any) -> list[bytes]:
        return [s.id for s in store.list_alerts(**query)]

    assert ids(region="MX") == [both.id, mexico.id, oaxaca.id]  # newest first
    assert ids(region="MX-OAX") == [oaxaca.id]
    assert ids(region="FR") == ids(region="FR-IDF") == ids(region="FR-75C") == [paris.id]
    assert ids(region="GT") == [both.id]
    assert ids(region="*") == [everywhere.id, both.id, paris.id, mexico.id, oaxaca.id]
    assert ids(region="AR") == []
    assert ids() == [sealed.id, everywhere.id, both.id, paris.id, mexico.id, oaxaca.id]  # no acks
    assert ids(include_sealed=False) == ids(region="*")
    assert ids(since_created=NOW + 4, limit=2) == [sealed.id, everywhere.id]
    stored_both = store.get(both.id)
    assert stored_both is not None and stored_both.regions == ("GT", "MX-CHP")


def test_region_rows_hold_ancestors_once(store: Store) -> None:
    env = make_alert(regions=("MX-OAX", "MX", "MX-OAX"))
    store.add_envelopes(rows(env))
    with store._read() as session:
        found = session.execute(
            select(RegionModel.region, RegionModel.position).where(RegionModel.envelope_id == env.id)
        ).all()
    assert sorted(found, key=str) == sorted([("MX-OAX", 0), ("MX", 1), ("*", None)], key=str)


def test_related_lists_updates_cancels_and_acks_oldest_first(store: Store) -> None:
    alert = make_alert()
    other = make_alert(created=NOW + 1, headline="otra")
    update = make_alert(msg_type="update", references=(alert.id,), created=NOW + 3 * MINUTE)
    ack = make_ack(alert.id, created=NOW + MINUTE)
    cancel = make_alert(msg_type="cancel", references=(alert.id,), created=NOW + 5 * MINUTE)
    unrelated = make_ack(other.id, created=NOW + 2 * MINUTE)
    store.add_envelopes(rows(cancel, unrelated, update, alert, other, ack))
    assert [s.id for s in store.related(alert.id)] == [ack.id, update.id, cancel.id]
    assert [s.id for s in store.related(other.id)] == [unrelated.id]
    assert store.related(bytes(32)) == []


def test_keys_are_sorted_by_created_then_id(store: Store) -> None:
    same_time = [make_alert(created=NOW, headline=f"misma hora {i}") for i in range(5)]
    later, earlier = make_alert(created=NOW + 10), make_alert(created=NOW - 10)
    store.add_envelopes(rows(later, *same_time, earlier))
    expected = sorted((e.created, e.id) for e in [later, *same_time, earlier])
    assert store.keys() == expected
    assert store.keys(since_created=NOW) == [k for k in expected if k[0] >= NOW]
    assert store.keys(since_created=NOW + 11) == []


def test_get_get_many_and_find_by_prefix(store: Store) -> None:
    envs = alerts_at(4)
    store.add_envelopes(rows(*envs))
    missing = bytes(32)
    assert store.get(missing) is None and not store.has(missing)
    wanted = [envs[2].id, missing, envs[0].id, envs[2].id]
    assert [s.id for s in store.get_many(wanted)] == [envs[2].id, envs[0].id]
    assert len(store.get_many(e.id for e in envs * 300)) == 4  # more ids than one IN clause
    full = envs[1].id.hex()
    found = store.find_by_prefix(full[:12].upper())
    assert found is not None and found.id == envs[1].id
    assert store.find_by_prefix(full) is not None
    assert store.find_by_prefix("") is None and store.find_by_prefix("xyz") is None
    assert store.find_by_prefix(full + "0") is None
    # a one-digit prefix shared by two ids is ambiguous
    first_digits = [e.id.hex()[0] for e in envs]
    shared = next((d for d in first_digits if first_digits.count(d) > 1), None)
    if shared is not None:
        assert store.find_by_prefix(shared) is None


def test_delete_expired_keeps_revocations_and_tombstones(store: Store) -> None:
    alert = make_alert(created=NOW, ttl=HOUR)
    lasting = make_alert(created=NOW, ttl=48 * HOUR, headline="dura más")
    revoke = sign_envelope(ALICE, Revoke(subject=BOB.sign_public), created=NOW, expires=NOW + HOUR)
    vouch = sign_envelope(
        ALICE, Vouch(subject=CAROL.sign_public, enc=CAROL.enc_public, name="C"), created=NOW, expires=0
    )
    store.add_envelopes(rows(alert, lasting, revoke, vouch))

    assert store.delete_expired(NOW + 2 * HOUR, keep_ms=2 * HOUR) == 0  # still within keep
    assert store.delete_expired(NOW + 3 * HOUR, keep_ms=2 * HOUR) == 1
    assert store.get(alert.id) is None
    assert store.get(revoke.id) is not None and store.get(vouch.id) is not None
    assert store.get(lasting.id) is not None
    with store._read() as session:
        orphans = session.scalar(select(func.count()).where(RegionModel.envelope_id == alert.id))
    assert orphans == 0  # ON DELETE CASCADE (needs foreign_keys=ON on SQLite)

    assert store.has(alert.id)  # the tombstone keeps the replay refused
    assert store.add_envelopes(rows(alert)) == []
    remaining = store.keys()
    assert [k for k in remaining if k[1] == alert.id] == []

    assert store.delete_expired(NOW + 50 * 24 * HOUR) == 1  # `lasting`; revocation still kept
    assert store.get(revoke.id) is not None
    assert store.has(alert.id)
    store.delete_expired(NOW + TOMBSTONE_MS + 1)
    assert not store.has(alert.id)  # now too old for any node to accept anyway
    with pytest.raises(ValueError):
        store.delete_expired(NOW, keep_ms=-1)


# -- peers ----------------------------------------------------------------------------------
def peer(identity: Identity, name: str, **changes: Any) -> PeerRow:
    values: dict[str, Any] = {
        "key": identity.sign_public,
        "name": name,
        "enc_key": identity.enc_public,
        "addresses": [f"{name}.example.org:7170"],
        "tls_fp": bytes(range(32)),
        "node_record_id": None,
        "added_at": NOW,
    }
    return PeerRow(**(values | changes))


def test_peers_crud(store: Store) -> None:
    bob = peer(BOB, "bob")
    store.upsert_peer(bob)
    store.upsert_peer(peer(CAROL, "carol", node_record_id=bytes(32)))
    assert store.get_peer(BOB.sign_public) == bob
    assert store.get_peer(ALICE.sign_public) is None

    moved = peer(BOB, "bob", addresses=["10.0.0.2:7170", "bobxyz.onion:7170"], node_record_id=b"\x01" * 32)
    store.upsert_peer(moved)
    assert store.get_peer(BOB.sign_public) == moved
    assert [p.name for p in store.list_peers()] == ["bob", "carol"]

    assert store.remove_peer(BOB.sign_public)
    assert not store.remove_peer(ALICE.sign_public)
    assert [p.name for p in store.list_peers()] == ["carol"]
    assert [p.status for p in store.list_peers(include_removed=True)] == ["removed", "active"]
    store.upsert_peer(peer(BOB, "bob"))  # pairing again reactivates
    assert [p.name for p in store.list_peers()] == ["bob", "carol"]


def test_a_peer_keeps_whether_its_fingerprint_was_verified(store: Store) -> None:
    store.upsert_peer(peer(BOB, "bob", verified=True))
    store.upsert_peer(peer(CAROL, "carol"))
    assert {p.name: p.verified for p in store.list_peers()} == {"bob": True, "carol": False}


def test_find_peer_by_name_or_key_prefix_never_guesses(store: Store) -> None:
    store.upsert_peer(peer(BOB, "bob"))
    store.upsert_peer(peer(CAROL, "carol"))
    bob_hex = BOB.sign_public.hex()
    assert (found := store.find_peer("bob")) is not None and found.key == BOB.sign_public
    assert (found := store.find_peer(bob_hex[:8].upper())) is not None and found.key == BOB.sign_public
    assert store.find_peer(bob_hex[:3]) is None  # too short to trust
    assert store.find_peer("nobody") is None
    impostor = Identity.from_random(bytes(range(192, 256)))
    store.upsert_peer(peer(impostor, "bob"))  # names are self-chosen: an ambiguous one picks nobody
    assert store.find_peer("bob") is None
    store.remove_peer(impostor.sign_public)
    assert (found := store.find_peer("bob")) is not None and found.key == BOB.sign_public
    assert store.find_peer(impostor.sign_public.hex()) is None
    assert store.find_peer(impostor.sign_public.hex(), include_removed=True) is not None


def test_peer_mark_never_moves_backwards(store: Store) -> None:
    store.upsert_peer(peer(BOB, "bob"))
    store.set_peer_mark(BOB.sign_public, 10)
    store.set_peer_mark(BOB.sign_public, 5)
    assert (p := store.get_peer(BOB.sign_public)) is not None and p.mark == 10
    store.upsert_peer(peer(BOB, "bob renamed", mark=0))  # a stale copy of the row
    assert (p := store.get_peer(BOB.sign_public)) is not None and (p.mark, p.name) == (10, "bob renamed")
    store.set_peer_mark(BOB.sign_public, 11)
    assert (p := store.get_peer(BOB.sign_public)) is not None and p.mark == 11
    store.set_peer_mark(CAROL.sign_public, 3)  # unknown peer: nothing happens
    assert store.get_peer(CAROL.sign_public) is None


def test_marks_commit_with_the_envelopes_they_cover(store: Store) -> None:
    """One mesh step's batch and the marks it moved are one transaction: a mark
    is never durable ahead of its items, and a failed batch moves no mark."""
    store.upsert_peer(peer(BOB, "bob"))
    inserted = store.add_envelopes(rows(*alerts_at(3)), [(BOB.sign_public, 3)])
    assert [s.seq for s in inserted] == [1, 2, 3]
    assert (p := store.get_peer(BOB.sign_public)) is not None and p.mark == 3
    assert store.add_envelopes([], [(BOB.sign_public, 2)]) == []  # marks alone; never backwards
    assert (p := store.get_peer(BOB.sign_public)) is not None and p.mark == 3
    forged = replace(row(make_alert(created=NOW + 50)), id=b"\x00" * 32)
    with pytest.raises(ValueError):
        store.add_envelopes([forged], [(BOB.sign_public, 9)])
    assert (p := store.get_peer(BOB.sign_public)) is not None and p.mark == 3


def test_touch_peer_records_last_seen_monotonically(store: Store) -> None:
    store.upsert_peer(peer(BOB, "bob"))
    store.touch_peer(BOB.sign_public, NOW + 5)
    store.touch_peer(BOB.sign_public, NOW + 2)
    assert (p := store.get_peer(BOB.sign_public)) is not None and p.last_seen == NOW + 5
    with pytest.raises(ValueError):
        store.upsert_peer(peer(CAROL, "carol", status="banned"))


def test_peer_standing_is_kept_and_only_set_peer_standing_changes_it(
    open_store: Callable[[], Store],
) -> None:
    """Issue 11 item 5: a ban outlives a restart (close and reopen), and neither
    a fresh node record (upsert) nor removal and re-pairing lifts it."""
    store = open_store()
    store.upsert_peer(peer(BOB, "bob"))
    assert (p := store.get_peer(BOB.sign_public)) is not None and p.standing is None  # never judged
    cut = PeerStanding("cut-off", -1.0, NOW + HOUR)
    store.set_peer_standing(BOB.sign_public, cut)
    store.close()
    store = open_store()
    assert (p := store.get_peer(BOB.sign_public)) is not None and p.standing == cut
    store.upsert_peer(peer(BOB, "bob renamed", addresses=["10.0.0.9:7170"]))
    store.remove_peer(BOB.sign_public)
    store.upsert_peer(peer(BOB, "bob"))
    assert [p.standing for p in store.list_peers()] == [cut]
    store.set_peer_standing(BOB.sign_public, PeerStanding("throttled", 25.0))
    assert (p := store.get_peer(BOB.sign_public)) is not None
    assert p.standing == PeerStanding("throttled", 25.0, 0)
    with pytest.raises(ValueError):
        store.set_peer_standing(BOB.sign_public, PeerStanding("banned", 0.0))


def test_peers_paired_before_revision_0004_start_unjudged(store_url: str) -> None:
    """The standing columns arrive by migration on a database that already has
    peers (both backends); existing peers read as never judged."""
    from alembic import command
    from sqlalchemy import JSON, column, insert, table

    from node.store.engine import alembic_config, open_engine, writer

    names = ("key", "name", "enc_key", "tls_fp", "node_record_id", "added_at", "last_seen", "mark", "status")
    old_peers = table(  # the peers table as revision 0003 has it
        "peers", *(column(n) for n in names), column("addresses", JSON)
    )

    engine = open_engine(store_url)
    config = alembic_config()
    with writer(engine).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
        connection.execute(
            insert(old_peers).values(
                key=BOB.sign_public, name="bob", enc_key=BOB.enc_public, addresses=[], tls_fp=bytes(32),
                node_record_id=None, added_at=NOW, last_seen=None, mark=4, status="active",
            )
        )  # fmt: skip
    engine.dispose()
    with Store(store_url) as store:
        assert (p := store.get_peer(BOB.sign_public)) is not None
        assert (p.mark, p.standing) == (4, None)
        assert p.verified is False  # revision 0007: never confirmed as far as this node knows
        store.set_peer_standing(BOB.sign_public, PeerStanding("cut-off", -1.0, NOW))
        assert (p := store.get_peer(BOB.sign_public)) is not None and p.standing is not None
        store.close()


# -- invites and nonces ---------------------------------------------------------------------
def test_invite_is_used_exactly_once_and_only_before_expiry(store: Store) -> None:
    store.add_invite(b"a" * 32, NOW, NOW + HOUR)
    store.add_invite(b"b" * 32, NOW, NOW + HOUR)
    assert store.use_invite(b"a" * 32, NOW + 1)
    assert not store.use_invite(b"a" * 32, NOW + 2)
    assert not store.use_invite(b"b" * 32, NOW + HOUR)  # expired at that instant
    assert not store.use_invite(b"c" * 32, NOW)  # unknown
    store.add_invite(b"a" * 32, NOW, NOW + 2 * HOUR)  # re-adding cannot revive a used invite
    assert not store.use_invite(b"a" * 32, NOW + 3)
    # why not, for the operator who accepted (node/pairing.py REFUSALS)
    assert store.invite_state(b"a" * 32, NOW + 3) == "used"
    assert store.invite_state(b"b" * 32, NOW + HOUR) == "expired"
    assert store.invite_state(b"c" * 32, NOW) == "unknown"
    store.add_invite(b"d" * 32, NOW, NOW + HOUR)
    assert store.invite_state(b"d" * 32, NOW) == "open"


def test_invite_race_has_one_winner(store: Store) -> None:
    store.add_invite(b"r" * 32, NOW, NOW + HOUR)
    racers = 8
    barrier = threading.Barrier(racers)
    outcomes: list[bool] = []
    lock = threading.Lock()

    def race() -> None:
        barrier.wait()
        won = store.use_invite(b"r" * 32, NOW + 1)
        with lock:
            outcomes.append(won)

    threads = [threading.Thread(target=race) for _ in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == [False] * (racers - 1) + [True]


def test_request_nonce_replay_is_refused(store: Store) -> None:
    nonce = bytes(range(16))
    assert store.remember_nonce(BOB.sign_public, nonce, NOW + MINUTE)
    assert not store.remember_nonce(BOB.sign_public, nonce, NOW + MINUTE)
    assert store.remember_nonce(CAROL.sign_public, nonce, NOW + MINUTE)  # per sender
    assert store.prune_nonces(NOW) == 0
    assert not store.remember_nonce(BOB.sign_public, nonce, NOW + 2 * MINUTE)
    assert store.prune_nonces(NOW + MINUTE + 1) == 2
    assert store.remember_nonce(BOB.sign_public, nonce, NOW + 3 * MINUTE)


def test_nonces_answered_from_memory_follow_the_table(open_store: Callable[[], Store]) -> None:
    """``nonce_used`` reads memory, not the table: what a batch's commit wrote,
    what a restart reads back and what pruning deleted must all show in it."""
    first = open_store()
    kept, batch = bytes(range(16)), bytes(range(1, 17))
    assert not first.nonce_used(BOB.sign_public, kept)  # memory loaded before the writes below
    assert first.remember_nonce(BOB.sign_public, kept, NOW + MINUTE)
    first.add_envelopes([], nonces=[(CAROL.sign_public, batch, NOW + 2 * MINUTE)])
    assert first.nonce_used(BOB.sign_public, kept) and first.nonce_used(CAROL.sign_public, batch)
    assert not first.nonce_used(CAROL.sign_public, kept)  # per sender
    again = open_store()  # a restart reads the table
    assert again.nonce_used(BOB.sign_public, kept) and again.nonce_used(CAROL.sign_public, batch)
    assert again.prune_nonces(NOW + MINUTE + 1) == 1
    assert not again.nonce_used(BOB.sign_public, kept) and again.nonce_used(CAROL.sign_public, batch)


def test_peer_names_follow_every_peer_write(store: Store) -> None:
    """Names come from memory for every alert shown; a rename or removal shows at once."""
    assert store.peer_names() == {}
    store.upsert_peer(peer(BOB, "colectivo-bob"))
    assert store.peer_names() == {BOB.sign_public: "colectivo-bob"}
    store.upsert_peer(peer(BOB, "colectivo-roberto"))
    store.remove_peer(BOB.sign_public)
    assert store.peer_names() == {BOB.sign_public: "colectivo-roberto"}  # removed peers still name their alerts


# -- meta -----------------------------------------------------------------------------------
def test_meta_values(store: Store) -> None:
    assert store.get_meta("node_record_id") is None
    store.set_meta("node_record_id", "ab" * 32)
    store.set_meta("node_record_id", "cd" * 32)
    assert store.get_meta("node_record_id") == "cd" * 32


# -- SQLite specifics -----------------------------------------------------------------------
@pytest.fixture
def sqlite_store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'amparo.db'}")


def test_sqlite_pragmas_are_set_on_every_connection(sqlite_store: Store) -> None:
    with sqlite_store:
        for _ in range(2):  # a second connection must get them too
            with sqlite_store._engine.connect() as connection:
                pragma = {
                    name: connection.execute(text(f"PRAGMA {name}")).scalar()
                    for name in (
                        "journal_mode",
                        "synchronous",
                        "foreign_keys",
                        "busy_timeout",
                        "secure_delete",
                    )
                }
                assert pragma == {
                    "journal_mode": "wal",
                    "synchronous": 2,  # FULL
                    "foreign_keys": 1,
                    "busy_timeout": 5000,
                    "secure_delete": 1,
                }


def test_sqlite_file_is_private_and_holds_no_restricted_plaintext(
    sqlite_store: Store, tmp_path: Path
) -> None:
    visible = "Aviso público de prueba qv42"
    with sqlite_store:
        sqlite_store.add_envelopes(rows(make_sealed_alert(), make_alert(headline=visible)))
        files = [p for p in tmp_path.iterdir() if p.name.startswith("amparo.db")]
        content = b"".join(p.read_bytes() for p in files)
        assert any(p.name.endswith("-wal") for p in files)
        assert visible.encode() in content  # the search works: plain content is found
        assert SECRET_HEADLINE.encode() not in content
    assert (tmp_path / "amparo.db").stat().st_mode & 0o777 == 0o600


def test_unsupported_url_is_refused() -> None:
    with pytest.raises(StoreError, match="unsupported"):
        Store("mysql://localhost/amparo")



def test_the_peer_row_kept_for_requests_follows_every_change_of_status_and_address(store: Store) -> None:
    """``peer_for_request`` answers from memory, but never with a status or an
    address this node has since changed: a removed or banned peer is refused at
    its very next request, a peer that moved is dialled at its new address."""
    assert store.peer_for_request(BOB.sign_public) is None  # unknown, remembered as such
    store.upsert_peer(peer(BOB, "bob"))
    assert store.peer_for_request(BOB.sign_public) == store.get_peer(BOB.sign_public)
    moved = peer(BOB, "bob", addresses=["10.0.0.9:7170"])
    store.upsert_peer(moved)
    row = store.peer_for_request(BOB.sign_public)
    assert row is not None and row.addresses == moved.addresses
    store.set_peer_standing(BOB.sign_public, PeerStanding("cut-off", -1.0, NOW + HOUR))
    row = store.peer_for_request(BOB.sign_public)
    assert row is not None and row.standing == PeerStanding("cut-off", -1.0, NOW + HOUR)
    store.remove_peer(BOB.sign_public)
    row = store.peer_for_request(BOB.sign_public)
    assert row is not None and row.status == "removed"
