"""Names across the federation (node.directory): every author inside the trust
horizon has a name, from its own newest ``node`` record or else from the vouch
that brought it in, and is shown with how this node trusts it."""

from __future__ import annotations

import os

import pytest

from mesh import TrustGraph
from node.directory import Directory, Names, Trust
from node.service import to_item
from protocol import Envelope, NodeRecord, Revoke, Vouch, rotation_payload, sign_envelope
from protocol.keys import Identity
from protocol.signing import PURPOSE_ROTATE, sign

NOW = 1_795_000_000_000
TLS = b"\x07" * 32


def who() -> Identity:
    return Identity.from_random(os.urandom(64))


SELF, NORTE, SUR, LEJOS = who(), who(), who(), who()


class World:
    """This node's trust graph and directory, fed the same verified envelopes."""

    def __init__(self, depth: int = 2) -> None:
        self.graph = TrustGraph(SELF.sign_public, depth)
        self.directory = Directory()
        self.peers: dict[bytes, str] = {}
        self.clock = NOW

    def see(self, env: Envelope) -> Envelope:
        self.graph.observe(to_item(env), seen=self.clock)
        self.directory.observe(env)
        return env

    def sign(self, author: Identity, body: object) -> Envelope:
        self.clock += 1000
        return self.see(sign_envelope(author, body, created=self.clock, expires=0))  # type: ignore[arg-type]

    def vouch(self, voucher: Identity, subject: Identity, name: str) -> Envelope:
        return self.sign(voucher, Vouch(subject=subject.sign_public, enc=subject.enc_public, name=name))

    def record(self, author: Identity, name: str, *, prev: Identity | None = None) -> Envelope:
        """A node record; with ``prev``, a rotation from that key (with its hand-over)."""
        if prev is None:
            return self.sign(author, NodeRecord(name=name, enc=author.enc_public, tls=TLS))
        self.clock += 1000
        hand_over = sign(prev.signing_key, PURPOSE_ROTATE, rotation_payload(author.sign_public, self.clock))
        body = NodeRecord(
            name=name, enc=author.enc_public, tls=TLS, prev=prev.sign_public, prev_sig=hand_over
        )
        return self.see(sign_envelope(author, body, created=self.clock, expires=0))

    def names(self) -> Names:
        return Names(self.directory, self.graph, own={SELF.sign_public: "Casa de Acogida"}, peers=self.peers)


@pytest.fixture
def chain() -> World:
    """This node — Brigada Solidaria Norte (peer) — Colectivo Sur (two hops away)."""
    world = World()
    world.peers[NORTE.sign_public] = "Brigada Solidaria Norte"
    world.vouch(SELF, NORTE, "Brigada Solidaria Norte")
    world.vouch(NORTE, SUR, "Colectivo Sur (según Norte)")
    return world


def test_an_author_two_hops_away_is_named_by_its_vouch_until_its_record_comes(chain: World) -> None:
    names = chain.names()
    assert names[SUR.sign_public] == "Colectivo Sur (según Norte)"
    assert names.trust(SUR.sign_public) == Trust(2, ("Brigada Solidaria Norte",))
    assert names.trust(SUR.sign_public).words() == "vouched by Brigada Solidaria Norte"

    chain.record(SUR, "Colectivo Sur")
    assert chain.names()[SUR.sign_public] == "Colectivo Sur"  # the name it gave itself


def test_the_newest_record_names_the_author_whatever_order_records_arrive_in(chain: World) -> None:
    old = sign_envelope(
        SUR, NodeRecord(name="Colectivo del Sur", enc=SUR.enc_public, tls=TLS), created=NOW, expires=0
    )
    chain.record(SUR, "Colectivo Sur")
    chain.see(old)  # an older record arriving late renames nothing
    assert chain.names()[SUR.sign_public] == "Colectivo Sur"
    assert chain.directory.record_id(SUR.sign_public) != old.id


def test_every_key_of_a_rotation_family_has_the_newest_records_name(chain: World) -> None:
    chain.record(SUR, "Colectivo Sur")
    new = who()
    chain.record(new, "Colectivo Sur (nueva llave)", prev=SUR)
    names = chain.names()
    assert names[SUR.sign_public] == names[new.sign_public] == "Colectivo Sur (nueva llave)"
    assert names.trust(new.sign_public) == Trust(2, ("Brigada Solidaria Norte",))


def test_this_node_and_its_peers_say_so(chain: World) -> None:
    names = chain.names()
    assert names[SELF.sign_public] == "Casa de Acogida"
    assert names.trust(SELF.sign_public).words() == "this node"
    assert names[NORTE.sign_public] == "Brigada Solidaria Norte"
    assert names.trust(NORTE.sign_public).words() == "peer of this node"


def test_a_revoked_author_keeps_its_name_and_shows_it_is_no_longer_trusted(chain: World) -> None:
    chain.sign(NORTE, Revoke(subject=SUR.sign_public))
    names = chain.names()
    assert names[SUR.sign_public] == "Colectivo Sur (según Norte)"
    assert names.trust(SUR.sign_public) == Trust(None)
    assert names.trust(SUR.sign_public).words() == "outside the trust horizon"


def test_three_hops_names_only_the_voucher_one_hop_closer() -> None:
    world = World(depth=3)
    world.vouch(SELF, NORTE, "Brigada Solidaria Norte")
    world.vouch(NORTE, SUR, "Colectivo Sur")
    world.vouch(SUR, LEJOS, "Red de Defensoras del Valle")
    world.vouch(NORTE, who(), "Otra")  # unrelated edges change nothing
    names = world.names()
    assert names[LEJOS.sign_public] == "Red de Defensoras del Valle"
    assert names.trust(LEJOS.sign_public) == Trust(3, ("Colectivo Sur",))
    # A second voucher at the same distance is named too; one farther away is not.
    other = who()
    world.vouch(NORTE, other, "Comité Vecinal")
    world.vouch(other, LEJOS, "Red del Valle")
    assert world.names().trust(LEJOS.sign_public).vouched_by == ("Colectivo Sur", "Comité Vecinal")


def test_a_stranger_has_no_name_and_the_mapping_lists_only_named_keys(chain: World) -> None:
    names = chain.names()
    stranger = who().sign_public
    assert names.get(stranger) is None and stranger not in names
    with pytest.raises(KeyError):
        names[stranger]
    assert set(names) == {SELF.sign_public, NORTE.sign_public, SUR.sign_public}
    assert len(names) == 3


def test_trust_words_come_from_the_dashboards_catalog() -> None:
    assert Trust(2, ("Brigada Solidaria Norte",)).words("es") == "avalado por Brigada Solidaria Norte"
    assert Trust(1).words("es") == "aliado directo de este nodo"
    assert Trust(2, ("A", "B")).to_json() == {"depth": 2, "vouched_by": ["A", "B"], "text": "vouched by A, B"}
