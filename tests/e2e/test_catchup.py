"""Catch-up after an outage, against real node processes: a node that was down
while its peer authored a large backlog ends up holding all of it, and the peer
never counts an item as delivered before the returning node holds it."""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from node.config import DB_FILE
from node.devmesh import LocalNode
from protocol import framing
from protocol.envelope import envelope_id
from protocol.keys import Identity
from protocol.request import HEADER
from tests.e2e.harness import ScriptedPeer, sign_answer
from tests.e2e.test_gossip import wait_until
from tests.e2e.test_hostile import HostileListener

pytestmark = pytest.mark.slow

#: Large enough to overrun every live bucket many times over (peer burst 2,000,
#: author burst 300) and the peer's catch-up burst (5,000, so the range fetch stops
#: at its limit and goes on as the budget refills), small enough for a test. The
#: issue's 10,000 is measured with the same code path by ``bench/catchup.py``
#: (docs/mesh.md, "Budgets"; docs/performance.md, "Catch-up after an outage").
BACKLOG = 6_000


def author_backlog(node: LocalNode, count: int, workers: int = 8) -> list[str]:
    """Author ``count`` alerts through the node's local API, a few requests at a time."""

    def send(i: int) -> str:
        return node.send(headline=f"Backlog alert {i}", severity="minor")

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(send, range(count)))


def held_ids(node: LocalNode) -> set[bytes]:
    """Every envelope id in the node's database (read-only; the node keeps running)."""
    db = sqlite3.connect(f"file:{node.home / DB_FILE}?mode=ro", uri=True, timeout=30)
    try:
        return {row[0] for row in db.execute("SELECT id FROM envelopes")}
    finally:
        db.close()


def counters(node: LocalNode) -> dict[str, float]:
    """The node's ``amparo_*`` counters from its Prometheus text, without the prefix."""
    out: dict[str, float] = {}
    for line in node.api.get_text("/metrics").splitlines():
        name, _, value = line.partition(" ")
        if name.startswith("amparo_") and value:
            out[name.removeprefix("amparo_").removesuffix("_total")] = float(value)
    return out


def payload(node: LocalNode) -> int:
    """Bytes of every envelope the node holds."""
    db = sqlite3.connect(f"file:{node.home / DB_FILE}?mode=ro", uri=True, timeout=30)
    try:
        return int(db.execute("SELECT COALESCE(SUM(LENGTH(raw)), 0) FROM envelopes").fetchone()[0])
    finally:
        db.close()


def stored(node: LocalNode) -> int:
    count: int = node.api.get("/api/v1/status")["envelopes_stored"]
    return count


def mark_for(node: LocalNode, peer: LocalNode | str) -> int:
    """``node``'s catch-up mark for ``peer`` (a node or a peer's name), as stored."""
    name = peer if isinstance(peer, str) else peer.name
    peers = node.api.get("/api/v1/peers")["peers"]
    (row,) = [p for p in peers if p["name"] == name]
    mark: int = row["mark"]
    return mark


def test_a_node_back_from_an_outage_holds_the_whole_backlog(mesh_factory: Any) -> None:
    mesh = mesh_factory(2)
    a, c = mesh.nodes
    mesh.connect([(0, 1)])
    c.stop()
    started = time.monotonic()
    sent = author_backlog(a, BACKLOG)
    authored_s = time.monotonic() - started
    assert len(set(sent)) == BACKLOG
    c.start()
    back = time.monotonic()
    honest_marks: list[tuple[int, int]] = []

    def caught_up() -> bool:
        # Read A's mark for C first, then what C holds: C only ever gains, so every
        # item A counts as delivered (seq <= mark; seqs are dense) must be there.
        mark = mark_for(a, c)
        held = stored(c)
        honest_marks.append((mark, held))
        assert held >= mark, f"A counts {mark} items delivered to C, which holds {held}"
        return held >= stored(a)

    wait_until(caught_up, timeout=240, what=f"C to hold A's backlog of {BACKLOG}")
    caught_up_s = time.monotonic() - back
    missing = held_ids(a) - held_ids(c)
    assert not missing, f"C lacks {len(missing)} of A's envelopes"
    assert {bytes.fromhex(i) for i in sent} <= held_ids(c)
    status = c.api.get("/api/v1/status")
    wire = counters(c)
    sync = wire["reconcile_bytes"] + wire["fetch_request_bytes"]
    print(
        f"\nauthored {BACKLOG} in {authored_s:.1f} s; C caught up in {caught_up_s:.1f} s; "
        f"C refused {status['rejected']}; sync bytes {sync:,.0f} ({sync / payload(c):.2%}), "
        f"{wire['reconcile_messages']:.0f} reconciliation messages, {wire['fetch_range_requests']:.0f} "
        f"of {wire['fetch_requests']:.0f} fetch requests by range"
    )
    # By range (docs/mesh.md, "Ranges instead of ids"): a few fingerprints and bounds,
    # no id per alert (by id it is ~7 % of the payload) ...
    assert wire["fetch_range_requests"] > 0 and sync < 0.02 * payload(c)
    # ... and the backlog it fetched drew on the catch-up budget, not on the author's
    # live one: before the screen let range-fetched claims pass, all but the first
    # 300 were deferred as author-rate-limited, again and again.
    deferred = sum(n for reason, n in status["rejected"].items() if reason.endswith("-limited"))
    assert deferred < BACKLOG // 20, f"C deferred {deferred} of a backlog it asked for: {status['rejected']}"
    # And the mark does reach the end once C holds everything (nothing is stuck).
    wait_until(lambda: mark_for(a, c) >= stored(a), timeout=120, what="A's mark for C to catch up")




class DeferringPeer(HostileListener):
    """A peer's listener that answers its first ``refusals`` pushes with every item
    deferred (as a receiver whose budgets are spent does), then takes everything.
    It signs its answers with ``signer``, the peer's key, as a real listener does
    (docs/protocol.md §12.5): an unsigned answer counts as none."""

    def __init__(self, home: Path, refusals: int) -> None:
        super().__init__(home)
        self.pushes: list[list[bytes]] = []  # the ids of each push, in order
        self.refusals = refusals
        self.identity: Identity | None = None  # the peer's key, which signs its answers

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        if request.path != "/mesh/v1/push":
            return web.Response(status=503, text="only pushes here")
        raws = framing.envelope_list(framing.unpack(await request.read()))
        ids = [envelope_id(raw) for raw in raws]
        self.pushes.append(ids)
        deferred = ids if len(self.pushes) <= self.refusals else []
        reply = {"accepted": len(ids) - len(deferred), "invalid": 0, "deferred": deferred}
        body = framing.pack(reply)
        assert self.identity is not None
        signature = sign_answer(self.identity, request.path, request.headers.get(HEADER), 200, body)
        return web.Response(body=body, content_type="application/x-msgpack", headers=signature)

    def times_pushed(self, item_id: bytes) -> int:
        return sum(ids.count(item_id) for ids in self.pushes)


def test_a_sender_resends_what_its_peer_deferred_and_never_counts_it_delivered(
    mesh_factory: Any, tmp_path: Path
) -> None:
    mesh = mesh_factory(1)
    (a,) = mesh.nodes
    refusals = 3
    with DeferringPeer(tmp_path / "aplazador", refusals) as listener:
        peer = ScriptedPeer(
            "Nodo Aplazador", addresses=(f"127.0.0.1:{listener.port}",), tls_fp=listener.fingerprint
        )
        listener.identity = peer.identity
        peer.pair_with(a)
        alert_id = bytes.fromhex(a.send(headline="Deferred three times, then delivered"))
        seq = stored(a)  # seqs are dense: the alert is A's newest envelope

        def resent_enough() -> bool:
            # While the peer defers it, A must not count the alert as delivered.
            assert mark_for(a, peer.name) < seq, "A counts a deferred alert as delivered"
            return listener.times_pushed(alert_id) > refusals

        wait_until(resent_enough, timeout=90, what=f"A to push the deferred alert {refusals + 1} times")
        wait_until(lambda: mark_for(a, peer.name) >= seq, timeout=30, what="A's mark once it was taken")
        assert listener.times_pushed(alert_id) == refusals + 1  # taken once, then never sent again


def test_a_returning_node_catches_up_on_a_newly_vouched_authors_backlog(mesh_factory: Any) -> None:
    """Audit finding, KNOWN FAILING, not fixed: items 4 and 14 pull against each other.

    C is paired with A only; B paired with A today, so at C, B is a *fresh* key
    (depth 2, vouched for by A less than ``fresh_vouch_ms`` ago) and its items draw
    on A's *live* author budget (300, then 1 a second), even when C fetches them
    in catch-up (``MeshNode._budget``: "fresh keys draw on their voucher's live
    budget even when fetched"). Measured with 800 alerts from A and 800 from B
    while C was down (A also restarted with SIGKILL meanwhile): 400 s after C
    returned it still lacked 220 envelopes and had refused B's backlog 2,192 times
    as ``voucher-rate-limited``; A's mark for C was stuck at 987 of 1,657. With
    C also paired with B, the same backlog was complete in 4 s. Nothing was
    counted delivered that C did not hold (checked by id every 2 s, 199 samples).
    Item 14 says the backlog a peer legitimately holds is not refused as a flood,
    and a returning node holds everything within the catch-up figure (21-24 s
    for 10,000); a new member organization's first busy day breaks both, and its
    backlog also spends its voucher's own live budget at every node beyond."""
    mesh = mesh_factory(3)
    a, b, c = mesh.nodes
    mesh.connect([(0, 1), (0, 2)])
    c.stop()
    sent = {bytes.fromhex(i) for i in author_backlog(b, 600)}
    wait_until(lambda: sent <= held_ids(a), timeout=120, what="A to hold B's backlog")
    c.start()
    back = time.monotonic()
    wait_until(lambda: sent <= held_ids(c), timeout=90, what="C to hold B's backlog, which A holds")
    print(f"\nC caught up on a newly vouched author's 600 alerts in {time.monotonic() - back:.1f} s")
