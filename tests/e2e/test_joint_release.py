"""Joint release, k of n, between real ``amparo run`` processes (docs/joint.md).

One mesh of four organizations for every story (starting nodes is most of the
cost): A, B and C decide together, D is an ally of C that is not named.

- 2 of 3 endorsements release the alert, and D (not named) receives it as a
  public alert while it cannot read the proposal;
- 1 of 3 does not: once B and C have objected (A sees both objections, with
  their reasons), nothing is released anywhere;
- a release carrying a forged endorsement is refused by every node, and the
  peer that relayed it is not blamed for it;
- a proposal past its deadline can no longer be endorsed and never releases.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from node.config import KEY_FILE
from node.devmesh import LocalMesh, LocalNode
from protocol import Alert, Area, Release, codec
from protocol.keys import Identity, open_key_file
from protocol.signing import PURPOSE_ENVELOPE, sign
from protocol.threshold import Statement, alert_hash, release_wire
from tests.e2e.conftest import LogScan
from tests.e2e.harness import ScriptedPeer, now_ms
from tests.e2e.test_gossip import wait_until

pytestmark = pytest.mark.slow

ROUTED_S = 30.0


@pytest.fixture(scope="module")
def four(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    """A, B, C in a triangle, D a peer of C only (A and B are inside D's horizon through C)."""
    scan = LogScan()
    mesh = LocalMesh(tmp_path_factory.mktemp("joint"), 4)
    mesh.init_all()
    for node in mesh.nodes:
        scan.watch(node)
    try:
        mesh.start_all()
        mesh.connect([(0, 1), (1, 2), (0, 2), (2, 3)])
        yield mesh
    finally:
        mesh.stop_all()
    scan.check()


def identity_of(node: LocalNode) -> Identity:
    return open_key_file((node.home / KEY_FILE).read_bytes(), None)


def proposals(node: LocalNode) -> dict[str, dict[str, Any]]:
    return {p["id"]: p for p in node.api.get("/api/v1/proposals")["proposals"]}


def propose(node: LocalNode, headline: str, endorsers: list[LocalNode], *extra: str) -> str:
    out = node.amparo(
        "alert", "propose", "--region", "MX-OAX", "--severity", "severe", "--headline", headline,
        "--endorsers", ",".join(n.name for n in endorsers), "--threshold", "2", "--json", *extra,
    )  # fmt: skip
    return str(json.loads(out.stdout)["id"])


def wait_for_proposal(node: LocalNode, pid: str, what: str = "the proposal") -> dict[str, Any]:
    wait_until(lambda: pid in proposals(node), ROUTED_S, f"{what} at {node.name}")
    return proposals(node)[pid]


def headlines(node: LocalNode) -> set[str]:
    return {a["headline"] for a in node.api.get("/api/v1/alerts", limit=1000)["alerts"]}


def test_two_of_three_endorsements_release_the_alert_at_a_fourth_node(four: LocalMesh) -> None:
    a, b, c, d = four.nodes
    pid = propose(a, "Denuncia conjunta: desalojo violento", [b, c])
    mine = wait_for_proposal(a, pid)
    assert mine["endorsed"] == 1 and mine["state"] == "open" and not mine["waiting_for_me"]
    assert wait_for_proposal(b, pid)["waiting_for_me"]
    assert not proposals(d), "D is not named: it cannot read the proposal"
    b.amparo("alert", "endorse", pid[:12])
    wait_until(lambda: proposals(a)[pid]["state"] == "released", ROUTED_S, "the release at A")
    release_id = proposals(a)[pid]["releases"][0]
    four.wait_for(release_id, [b, c, d], timeout=ROUTED_S)
    shown = d.api.get(f"/api/v1/alerts/{release_id}")
    assert shown["headline"] == "Denuncia conjunta: desalojo violento" and shown["scope"] == "public"
    signed = [e["name"] for e in shown["joint"]["endorsers"] if e["signed"]]
    assert (
        signed == [a.name, b.name] and shown["joint"]["threshold"] == 2 and shown["joint"]["proposal"] == pid
    )
    assert f"endorsed by {a.name}, {b.name} (2 of 2 needed)" in d.amparo("alert", "show", release_id).stdout
    atom = d.api.get_text("/feeds/MX.atom")  # a public alert like any other: feeds, CAP, allies
    cap = d.api.get_text(f"/feeds/cap/{release_id}.xml")
    assert "Denuncia conjunta: desalojo violento" in atom and "Denuncia conjunta: desalojo violento" in cap
    wait_until(lambda: proposals(c).get(pid, {}).get("state") == "released", ROUTED_S, "C to see it released")
    late = c.amparo("alert", "endorse", pid, check=False)
    assert late.returncode != 0 and "released" in late.stderr


def test_one_of_three_does_not_release_and_objections_are_shown(four: LocalMesh) -> None:
    a, b, c, d = four.nodes
    pid = propose(a, "Denuncia que no sale", [b, c])
    wait_for_proposal(b, pid)
    wait_for_proposal(c, pid)
    b.amparo("alert", "object", pid, "--reason", "Faltan testimonios")
    c.amparo("alert", "object", pid)
    wait_until(lambda: proposals(a)[pid]["objected"] == 2, ROUTED_S, "both objections at A")
    shown = proposals(a)[pid]
    assert shown["state"] == "open" and shown["endorsed"] == 1 and not shown["releases"]
    votes = {e["name"]: (e["vote"], e.get("reason")) for e in shown["endorsers"]}
    assert votes[b.name] == ("objected", "Faltan testimonios") and votes[c.name][0] == "objected"
    listing = a.amparo("alert", "proposals").stdout
    assert "Faltan testimonios" in listing and "1/2 of 3" in listing
    # Every vote is in and cannot change; a later alert from A reaching D shows D is caught up.
    marker = a.send(headline="Marcador después de las objeciones")
    four.wait_for(marker, [d], timeout=ROUTED_S)
    for node in four.nodes:
        assert "Denuncia que no sale" not in headlines(node), node.name


def forged_release(author: Identity, endorsers: list[Identity], pid: bytes) -> bytes:
    """A release whose second endorsement is signed by the author in another's name."""
    alert = Alert(headline="Denuncia falsificada", areas=(Area("MX-OAX"),), scope="public", severity="severe")
    now, life = now_ms(), 6 * 3_600_000
    keys = tuple(i.sign_public for i in endorsers)
    statement = Statement(pid, alert_hash(alert.to_wire()), keys, 2, life, now + 3_600_000)
    sigs = (
        (keys[0], statement.sign(endorsers[0].signing_key)),
        (keys[1], statement.sign(author.signing_key)),
    )
    release = Release(pid, keys, 2, life, now + 3_600_000, sigs)
    doc = {"a": author.sign_public, "b": release_wire(alert, release), "c": now, "t": "alert", "v": 1,
           "x": now + life}  # fmt: skip
    return codec.encode(doc | {"s": sign(author.signing_key, PURPOSE_ENVELOPE, codec.encode(doc))})


def test_a_release_with_a_forged_endorsement_is_refused_everywhere(four: LocalMesh) -> None:
    a, b, c, _d = four.nodes
    raw = forged_release(identity_of(c), [identity_of(a), identity_of(b), identity_of(c)], bytes(32))
    relay = ScriptedPeer("Nodo Relevo de Prueba")
    for node in four.nodes:
        relay.pair_with(node)
        replies = [relay.push(node, [raw]) for _ in range(12)]  # more than it takes to cut off a blamed peer
        assert all(r["accepted"] == 0 and r["invalid"] == 1 for r in replies), replies
        status = node.api.get("/api/v1/status")
        assert status["rejected"].get("bad-endorsement", 0) >= 12, status["rejected"]
        relay_row = next(p for p in status["peers"] if p["name"] == relay.name)
        assert not relay_row["cut_off"], "a relay is not blamed for endorsements it cannot check"
        assert "Denuncia falsificada" not in headlines(node)


def test_an_expired_proposal_never_releases(four: LocalMesh) -> None:
    a, b, _c, d = four.nodes
    pid = propose(a, "Denuncia que llegó tarde", [b, _c], "--deadline", "6s")
    wait_for_proposal(b, pid)
    wait_until(lambda: proposals(b)[pid]["state"] == "expired", ROUTED_S, "the deadline to pass at B")
    late = b.amparo("alert", "endorse", pid, check=False)
    assert late.returncode != 0 and "expired" in late.stderr
    assert proposals(a)[pid]["state"] == "expired" and proposals(a)[pid]["endorsed"] == 1
    marker = a.send(headline="Marcador después del plazo")
    four.wait_for(marker, [d], timeout=ROUTED_S)
    assert "Denuncia que llegó tarde" not in headlines(d)


def test_the_proposal_stays_between_the_named_organizations(four: LocalMesh) -> None:
    """D is not named: it lists no proposal (none opens with its key), and it refused
    none of the new envelope types either."""
    d = four.nodes[3]
    assert d.api.get("/api/v1/proposals") == {"proposals": []}
    rejected = d.api.get("/api/v1/status")["rejected"]
    assert rejected.get("unknown-type", 0) == 0, rejected
