"""The joint-release desk (node/joint.py) in a real node service (SQLite store, fake
clock, no network): votes that arrive before their proposal count once it
arrives, an endorsement whose signature does not verify is never counted, the
proposer's node releases at the k-th endorsement and never twice, the desk is
rebuilt from the store after a restart, and what a person types wrong is
refused with a message that names it."""

from __future__ import annotations

from pathlib import Path

import pytest

from node import records
from node.config import Config
from node.errors import Refused
from node.service import NodeService
from node.store import Store
from protocol import Alert, Area, Endorsement, Envelope, Identity, Proposal, seal_envelope
from tests.strategies import deterministic_random

T0 = 1_795_000_000_000
HOUR = 3_600_000
US = Identity.from_random(bytes(range(64)))
ALLY = Identity.from_random(bytes(range(64, 128)))
THIRD = Identity.from_random(bytes(range(128, 192)))
EVERYONE = (US, ALLY, THIRD)


def service(home: Path, clock: list[int]) -> NodeService:
    store = Store(f"sqlite:///{home / 'amparo.db'}")
    return NodeService(home, Config(name="Brigada Ejemplo"), US, store, clock=lambda: clock[0])


@pytest.fixture
def node(tmp_path: Path) -> NodeService:
    s = service(tmp_path, [T0])
    for i, other in enumerate((ALLY, THIRD)):
        s.author(records.vouch(US, other.sign_public, other.enc_public, f"Aliada {i}", T0, verified=True))
    return s


def sealed(
    author: Identity, body: Proposal | Endorsement, created: int, expires: int, seed: bytes
) -> Envelope:
    to = [i.enc_public for i in EVERYONE]
    return seal_envelope(author, body, created=created, expires=expires, recipients=to,
                         random=deterministic_random(seed))  # fmt: skip


def our_proposal(node: NodeService) -> str:
    return str(
        node.joint.propose(
            {"headline": "Denuncia conjunta", "regions": ["MX-OAX"], "severity": "severe",
             "endorsers": ["Aliada 0", "Aliada 1"], "threshold": 2}
        )["id"]
    )  # fmt: skip


def endorsement_by(node: NodeService, who: Identity, pid: str, *, forged: bool = False) -> Envelope:
    joint = node.joint.find(pid)
    sig = joint.statement.sign((US if forged else who).signing_key)
    return sealed(
        who, Endorsement(joint.id, joint.statement.alert, sig), T0 + 5, joint.deadline, b"e" + who.sign_public
    )


async def test_the_proposer_releases_at_the_kth_endorsement_and_never_twice(node: NodeService) -> None:
    pid = our_proposal(node)
    assert node.joint.listing()[0]["endorsed"] == 1 and not node.joint.listing()[0]["releases"]
    node.ingest([endorsement_by(node, ALLY, pid).raw], from_peer=None)
    releases = node.joint.listing()[0]["releases"]
    assert len(releases) == 1, "released at once: this node proposed (rank 0)"
    node.ingest([endorsement_by(node, THIRD, pid).raw], from_peer=None)
    node.joint.consider()
    assert node.joint.listing()[0]["releases"] == releases and node.joint.listing()[0]["state"] == "released"


async def test_a_forged_endorsement_is_not_counted(node: NodeService) -> None:
    pid = our_proposal(node)
    node.ingest(
        [endorsement_by(node, ALLY, pid, forged=True).raw], from_peer=None
    )  # outer envelope is ALLY's
    listed = node.joint.listing()[0]
    assert listed["endorsed"] == 1 and not listed["releases"]


async def test_votes_before_their_proposal_count_when_it_arrives_and_survive_a_restart(
    tmp_path: Path,
) -> None:
    clock = [T0]
    first = service(tmp_path, clock)
    for i, other in enumerate((ALLY, THIRD)):
        first.author(records.vouch(US, other.sign_public, other.enc_public, f"Aliada {i}", T0, verified=True))
    alert = Alert(headline="Denuncia de Aliada 0", areas=(Area("MX-OAX"),), scope="public", severity="severe")
    proposal = Proposal(alert, tuple(i.sign_public for i in EVERYONE), 3, 6 * HOUR)
    proposed = sealed(ALLY, proposal, T0, T0 + HOUR, b"p")
    statement = proposal.statement(proposed.id, proposed.expires)
    vote = sealed(THIRD, Endorsement(proposed.id, statement.alert, statement.sign(THIRD.signing_key)), T0 + 1,
                  proposed.expires, b"t")  # fmt: skip
    first.ingest([vote.raw], from_peer=None)
    assert first.joint.listing() == []
    first.ingest([proposed.raw], from_peer=None)
    assert first.joint.listing()[0]["endorsed"] == 1 and first.joint.listing()[0]["waiting_for_me"]
    again = service(tmp_path, clock)  # the desk is rebuilt from the stored envelopes
    assert again.joint.listing() == first.joint.listing()


async def test_what_a_person_types_wrong_is_refused_by_name(node: NodeService) -> None:
    base = {"headline": "Denuncia", "regions": ["MX-OAX"], "severity": "severe", "threshold": 2}
    for doc, words in (
        (base | {"endorsers": ["Nadie Conocida"]}, "no organization called 'Nadie Conocida'"),
        (base | {"endorsers": ["Aliada 0"], "threshold": 3}, "threshold: a number from 1 to 2"),
        (base | {"endorsers": []}, "name at least one other organization"),
        (base | {"endorsers": ["Aliada 0"], "scope": "restricted"}, "never restricted"),
        (base | {"endorsers": ["Aliada 0"], "deadline": "1s"}, "deadline: between 5 seconds and 7 days"),
    ):
        with pytest.raises(Refused, match=words):
            node.joint.propose(doc)
    pid = our_proposal(node)
    with pytest.raises(Refused, match="already endorsed"):
        node.joint.vote(pid, endorse=False)
    with pytest.raises(Refused, match="no proposal"):
        node.joint.vote("ffffffffffff", endorse=True)
