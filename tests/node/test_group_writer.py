"""The one writer of envelopes (node.store.writer): submissions made while a
commit runs share the next one; each gets back only its own new rows; a failed
commit fails every submission of its group; ``write_now`` takes what is queued
along, in order. A real SQLite file."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from sqlalchemy.exc import OperationalError

from node.store import Store, StoredEnvelope
from node.store.writer import GroupWriter
from protocol import Alert, Area, Identity, sign_envelope

NOW = 1_795_000_000_000
AUTHOR = Identity.from_random(bytes(range(64)))


def _row(headline: str) -> StoredEnvelope:
    body = Alert(headline=headline, areas=(Area("MX-CHP"),), severity="severe")
    env = sign_envelope(AUTHOR, body, created=NOW, expires=NOW + 3_600_000)
    return StoredEnvelope.from_envelope(env, received_at=NOW, from_peer=None)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"sqlite:///{tmp_path / 'amparo.db'}")
    yield opened
    opened.close()


async def test_submissions_during_a_commit_share_the_next_one(store: Store) -> None:
    writer = GroupWriter(store)
    gate = threading.Event()
    real = store.add_envelopes

    def held(*args: object, **kwargs: object) -> list[StoredEnvelope]:
        gate.wait(10)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    rows = [_row(f"Desalojo {i}") for i in range(4)]
    with mock.patch.object(store, "add_envelopes", side_effect=held):
        first = writer.submit(rows[:1])
        await asyncio.sleep(0)  # the first commit is under way (and held)
        later = [writer.submit(rows[1:3]), writer.submit([rows[2], rows[3]])]  # rows[2] twice
        assert not first.done()
        gate.set()
        stored = await asyncio.gather(first, *later)
    assert writer.commits == 2  # the two later submissions went in one transaction
    assert [list(s) for s in stored] == [[rows[0].id], [rows[1].id, rows[2].id], [rows[3].id]]
    assert [r.seq for s in stored for r in s.values()] == [1, 2, 3, 4]
    assert store.count() == 4
    await writer.close()


async def test_a_failed_commit_fails_every_submission_of_its_group(store: Store) -> None:
    writer = GroupWriter(store)
    failure = OperationalError("INSERT", {}, Exception("database or disk is full"))
    with mock.patch.object(store, "add_envelopes", side_effect=failure):
        futures = [writer.submit([_row("Amenaza")]), writer.submit([_row("Vigilancia")])]
        results = await asyncio.gather(*futures, return_exceptions=True)
    assert all(isinstance(r, OperationalError) for r in results)
    assert store.count() == 0
    assert (await writer.submit([_row("Amenaza")])) and store.count() == 1  # works again afterwards
    await writer.close()


async def test_write_now_takes_what_is_queued_along_in_order(store: Store) -> None:
    writer = GroupWriter(store)
    queued_row, own_row = _row("Retén"), _row("Detención")
    queued = writer.submit([queued_row])
    stored = writer.write_now([own_row])  # before the queued one's commit had a turn
    assert list(stored) == [own_row.id] and stored[own_row.id].seq == 2
    assert (await queued)[queued_row.id].seq == 1
    assert writer.commits == 1
    await writer.close()
