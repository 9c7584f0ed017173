"""The relay pipeline on the in-process grid (issue 14): a relay forwards an
envelope as soon as it is verified and admitted, before its own commit, and
acknowledges it to the sender only after that commit. A — B — C, with B's
writer held: C holds the alert while B has not written it and A has no answer
yet; once B's commit goes through, A is answered and B holds it too."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from unittest import mock

from node.incidents import send_alert
from node.store import StoredEnvelope
from protocol import Alert, Area, Identity, sign_envelope
from protocol.envelope import envelope_id
from tests.grid.grid import Grid

DEADLINE_S = 10.0


async def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {DEADLINE_S} s: {what}")
        await asyncio.sleep(0.005)


async def test_a_relay_forwards_before_its_commit_and_acknowledges_after_it(grid: Grid) -> None:
    for name in ("a", "b", "c"):
        await grid.add(name)
    await grid.pair("a", "b")
    await grid.pair("b", "c")
    b = grid["b"]
    gate = threading.Event()
    real = b.store.add_envelopes

    def held(*args: object, **kwargs: object) -> list[StoredEnvelope]:
        gate.wait(DEADLINE_S)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    pushed_before = grid["a"].service.counters.pushed
    with mock.patch.object(b.store, "add_envelopes", side_effect=held):
        made = send_alert(grid["a"].service, {"headline": "Desaparición en la sierra", "regions": ["MX-GRO"]})
        alert = bytes.fromhex(made["id"])
        await _until(lambda: grid["c"].store.get(alert) is not None, "C holds the alert")
        assert b.store.get(alert) is None  # B forwarded it before writing it
        assert grid["a"].service.counters.pushed == pushed_before  # and has not answered A
        gate.set()
        await _until(lambda: grid["a"].service.counters.pushed > pushed_before, "A's push answered")
    assert b.store.get(alert) is not None
    await grid.settle()
    assert [name for name, node in grid.nodes.items() if node.store.get(alert)] == ["a", "b", "c"]
    for node in grid.nodes.values():  # nothing admitted is left waiting in memory
        assert not node.service._committing and not node.service._pending


async def test_what_the_mesh_refuses_after_verification_is_not_kept(grid: Grid) -> None:
    """An alert by a stranger is verified, then refused by the mesh (outside the
    horizon): nothing of it is written, acknowledged as stored, or kept in memory."""
    await grid.add("a")
    await grid.add("b")
    await grid.pair("a", "b")
    stranger = Identity.from_random(bytes(64))
    body = Alert(headline="Desconocida", areas=(Area("MX-OAX"),), severity="severe")
    now = grid.clock()
    raw = sign_envelope(stranger, body, created=now, expires=now + 3_600_000).raw
    outcome = await grid["b"].service.relay([raw], grid["a"].key)
    assert (outcome.accepted, outcome.invalid) == (0, 0)
    assert grid["b"].service.counters.rejected.get("outside-horizon") == 1
    assert not grid["b"].service._pending and not grid["b"].service._pending_env
    assert grid["b"].store.get(envelope_id(raw)) is None
