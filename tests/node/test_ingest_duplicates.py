"""A copy of an envelope the node already holds is refused as a duplicate
without checking its signature again (issue 14: "duplicate detection by id
before any signature is verified"): most of what a flooding mesh delivers is
copies. The time rules still decide for a copy that has expired since.
A real node service on a SQLite file (no network)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from node import verifier as verifier_module
from node.config import Config
from node.service import NodeService
from node.store import Store
from protocol import Alert, Area, Identity, decode, sign_envelope

NOW = 1_795_000_000_000
HOUR = 3_600_000
US = Identity.from_random(bytes(range(64)))


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def node(tmp_path: Path, clock: Clock) -> Iterator[NodeService]:
    store = Store(f"sqlite:///{tmp_path / 'amparo.db'}")
    yield NodeService(tmp_path, Config(name="Brigada Ejemplo"), US, store, clock=clock)
    store.close()


def _alert(headline: str) -> bytes:
    body = Alert(headline=headline, areas=(Area("MX-OAX"),), severity="severe")
    return sign_envelope(US, body, created=NOW, expires=NOW + HOUR).raw


def _decodes(node: NodeService, raws: list[bytes]) -> tuple[tuple[int, int], int]:
    """Ingest ``raws``; the (stored, invalid) counts and how many were decoded."""
    with mock.patch.object(verifier_module, "decode", wraps=decode) as spy:
        outcome = node.ingest(raws, None)
    return outcome, spy.call_count


def test_a_copy_of_a_stored_envelope_is_not_verified_again(node: NodeService) -> None:
    first, second = _alert("Redada en la sede"), _alert("Detención en la marcha")
    assert _decodes(node, [first]) == ((1, 0), 1)
    assert _decodes(node, [first, second, first]) == ((1, 0), 1)  # only the new one is decoded
    assert node.counters.rejected.get("duplicate") == 2
    assert node.store.count() == 2


def test_a_copy_that_has_expired_since_is_refused_as_expired(node: NodeService, clock: Clock) -> None:
    raw = _alert("Amenaza a la defensora")
    assert _decodes(node, [raw]) == ((1, 0), 1)
    clock.now = NOW + 2 * HOUR
    assert _decodes(node, [raw]) == ((0, 1), 1)  # the full path, and its refusal
    assert node.counters.rejected.get("expired") == 1


def test_damaged_bytes_are_still_verified_and_refused(node: NodeService) -> None:
    raw = _alert("Vigilancia frente a la oficina")
    assert _decodes(node, [raw]) == ((1, 0), 1)
    damaged = raw[:-1] + bytes([raw[-1] ^ 1])
    (stored, invalid), decoded = _decodes(node, [damaged])
    assert (stored, invalid, decoded) == (0, 1, 1)
