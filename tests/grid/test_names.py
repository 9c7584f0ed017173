"""An author whose ``node`` record has not arrived is named by the vouch that
brought it in, and its record is fetched from the peer that delivered its
alert (a fetch that names authors, docs/protocol.md §12), on real nodes under
the grid's fake clock."""

from __future__ import annotations

import hashlib
from dataclasses import replace

from node import records
from node.directory import Trust
from node.service import RECORD_ASK_EVERY_MS
from protocol import Alert, Area, Envelope, NodeRecord, framing, sign_envelope
from protocol.keys import Identity
from tests.grid.grid import Grid

SUR = Identity.from_random(hashlib.blake2b(b"colectivo sur", digest_size=64).digest())


def alert_by_sur(now: int, n: int) -> Envelope:
    body = Alert(headline=f"Amenaza en Juchitán {n}", areas=(Area("MX-OAX"),), severity="severe")
    return sign_envelope(SUR, body, created=now, expires=now + 3_600_000)


async def test_a_missing_record_is_fetched_from_the_peer_that_delivered_the_alert(grid: Grid) -> None:
    for name in ("b", "c"):
        await grid.add(name)
    await grid.pair("b", "c")
    b, c = grid["b"].service, grid["c"].service
    now = grid.clock()
    vouch = records.vouch(
        b.identity, SUR.sign_public, SUR.enc_public, "Colectivo Sur (según b)", now, verified=True
    )
    record = sign_envelope(
        SUR, NodeRecord(name="Colectivo Sur", enc=SUR.enc_public, tls=b"\x05" * 32), created=now, expires=0
    )
    grid.cut("b", "c", both=False)  # B's pushes to C fail: the record cannot reach C by gossip
    b.author(vouch)
    b.ingest([record.raw], None)
    assert b.store.get(record.id) is not None

    c.ingest([vouch.raw, alert_by_sur(now, 1).raw], b.key)  # as if B had pushed them
    assert c.author_names()[SUR.sign_public] == "Colectivo Sur (según b)"  # its vouch names it at once
    assert c.author_names().trust(SUR.sign_public).words() == "vouched by b"
    calls = grid.link("c", "b").calls
    await grid.settle()
    assert grid.link("c", "b").calls == calls + 1
    assert c.store.get(record.id) is not None
    assert c.author_names()[SUR.sign_public] == "Colectivo Sur"  # the name it gave itself

    c.ingest([alert_by_sur(now, 2).raw], b.key)  # the record is here now: nothing more is asked
    await grid.settle()
    assert grid.link("c", "b").calls == calls + 1


async def test_a_peer_without_the_record_is_asked_again_only_after_a_while(grid: Grid) -> None:
    for name in ("b", "c"):
        await grid.add(name)
    await grid.pair("b", "c")
    b, c = grid["b"].service, grid["c"].service
    now = grid.clock()
    vouch = records.vouch(b.identity, SUR.sign_public, SUR.enc_public, "Colectivo Sur", now, verified=True)
    b.author(vouch)
    await grid.settle()
    calls = grid.link("c", "b").calls
    c.ingest([alert_by_sur(now, 1).raw], b.key)
    await grid.settle()
    c.ingest([alert_by_sur(now, 2).raw], b.key)
    await grid.settle()
    assert grid.link("c", "b").calls == calls + 1  # asked once; B had nothing
    assert c.author_names()[SUR.sign_public] == "Colectivo Sur"

    grid.clock.advance(RECORD_ASK_EVERY_MS)
    c.ingest([alert_by_sur(grid.clock(), 3).raw], b.key)
    await grid.settle()
    assert grid.link("c", "b").calls == calls + 2


async def test_a_fetch_naming_authors_answers_their_newest_records(grid: Grid) -> None:
    for name in ("b", "c"):
        await grid.add(name)
    await grid.pair("b", "c")
    b, c = grid["b"].service, grid["c"].service
    address = c.peer_address(b.key)
    assert address is not None
    reply = await c.client.call(address, "/mesh/v1/fetch", {"ids": [], "authors": [b.key, SUR.sign_public]})
    assert framing.envelope_list(reply) == [b.own_record().raw]  # B's newest record; nothing for a stranger
    reply = await c.client.call(address, "/mesh/v1/fetch", {"ids": []})  # a fetch as before: ids only
    assert framing.envelope_list(reply) == []


async def test_node_records_travel_with_the_horizon_and_a_new_name_reaches_an_ally_of_an_ally(
    grid: Grid,
) -> None:
    for name in ("a", "b", "c"):
        await grid.add(name)
    await grid.pair("a", "b")
    await grid.pair("b", "c")  # A — B — C: C accepts A through B's vouch
    a, c = grid["a"].service, grid["c"].service
    assert c.store.get(a.own_record().id) is not None  # A's record reached C, two hops away
    assert c.author_names()[a.key] == "a"
    assert c.author_names().trust(a.key) == Trust(2, ("b",))

    grid.clock.advance(1_000)  # a later record: one of the same millisecond is ordered by id, not by age
    a.config = replace(a.config, name="Colectivo Ejemplo")  # A renames itself: a new signed record
    a.publish_node_record()
    await grid.settle()
    assert c.author_names()[a.key] == "Colectivo Ejemplo"  # B's vouch still says "a"; A's own record wins
    await grid.stop("c")
    await grid.start("c")
    assert grid["c"].service.author_names()[a.key] == "Colectivo Ejemplo"  # rebuilt from the store
