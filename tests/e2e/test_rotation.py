"""Key rotation on real node processes (A–B–C in a line): B rotates while
running, peers follow the hand-over without pairing again, B restarts with the
new key and its alerts (and C's, relayed by B) still reach everyone; an alert
signed later with B's old key is refused."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from typing import Any

import nacl.public
import pytest

from node import prerotation, records
from node.cli.client import ApiError
from node.config import KEY_FILE, load
from node.devmesh import LocalMesh, LocalNode
from protocol import Alert, Area, Identity, NodeRecord, rotation_payload, sign_envelope
from protocol.keys import open_key_file
from protocol.signing import PURPOSE_ROTATE, sign
from tests.e2e.harness import ScriptedPeer, now_ms
from tests.e2e.test_gossip import wait_until

pytestmark = pytest.mark.slow


def peer_keys(node: LocalNode) -> set[str]:
    return {p["key"] for p in node.api.get("/api/v1/peers")["peers"]}


def test_rotation_is_followed_and_the_old_key_is_retired(mesh_factory: Any) -> None:
    mesh: LocalMesh = mesh_factory(3)
    a, b, c = mesh.nodes
    mesh.connect(mesh.line_edges())
    old_identity = open_key_file((b.home / KEY_FILE).read_bytes(), None)
    old_key = old_identity.sign_public.hex()
    mesh.wait_for(b.send(headline="Before the rotation"), [a, c])
    sealed = a.send(headline="For B only, before its rotation", scope="restricted", to=[b.name])
    mesh.wait_for(sealed, [b])
    debrief = "La familia fue trasladada a la casa del norte"
    b.amparo("alert", "note", sealed, debrief)

    rotated = json.loads(b.amparo("keys", "rotate", "--yes", "--json").stdout)
    new_key = rotated["key"]
    assert new_key != old_key
    wait_until(
        lambda: new_key in peer_keys(a) and old_key not in peer_keys(a), timeout=30, what="A to follow"
    )
    wait_until(lambda: new_key in peer_keys(c), timeout=30, what="C to follow")

    b.stop()
    b.start()
    assert json.loads(b.amparo("id", "--json").stdout)["sign_key"] == new_key
    kept = b.api.get(f"/api/v1/alerts/{sealed}")  # the encryption key survives the rotation
    assert kept["readable"] and kept["headline"] == "For B only, before its rotation"
    assert [n["text"] for n in kept["notes"] if n["kind"] == "debrief"] == [debrief]
    on_disk = b"".join(p.read_bytes() for p in b.home.glob("amparo.db*"))
    assert debrief.encode() not in on_disk  # debrief notes are sealed at rest
    after = b.send(headline="After the rotation")
    mesh.wait_for(after, [a, c])
    assert a.api.get(f"/api/v1/alerts/{after}")["author"] == new_key
    relayed = c.send(headline="From C, relayed by the rotated B")
    mesh.wait_for(relayed, [a])

    forged = sign_envelope(
        old_identity,
        Alert(headline="Signed with the retired key", areas=(Area("MX-OAX"),)),
        created=now_ms(),
        expires=now_ms() + 3600_000,
    )
    intruder = ScriptedPeer()
    intruder.pair_with(a)
    assert intruder.push(a, [forged.raw])["accepted"] == 0
    assert forged.id.hex() not in a.alert_ids()
    assert 'amparo_rejections_total{reason="retired-key"}' in a.api.get_text("/metrics")
    assert not (b.home / (KEY_FILE + ".new")).exists()


def _send(node: LocalNode, headline: str) -> str:
    """As a new user would: through the CLI, which prints the id and exits 0."""
    sent = json.loads(
        node.amparo(
            "alert", "send", "--region", "MX-OAX", "--severity", "severe", "--headline", headline, "--json"
        ).stdout
    )
    return str(sent["id"])


def test_rotation_loses_nothing_and_the_key_family_is_one_author(mesh_factory: Any) -> None:
    """Issue 11 item 13, tried as a new user would on A–B–C: B rotates while running.
    (a) an alert sent right after the rotation, with no restart, is stored and
    reaches everyone; (b) B can still update and cancel its earlier alert, before
    and after a restart, and both peers accept it; (c) the earlier alert shows the
    organization's current key and name as its author everywhere."""
    mesh: LocalMesh = mesh_factory(3)
    a, b, c = mesh.nodes
    mesh.connect(mesh.line_edges())
    old_key = b.api.get("/api/v1/id")["key"]
    earlier = _send(b, "Retén ficticio antes de la rotación")
    mesh.wait_for(earlier, [a, c])

    new_key = json.loads(b.amparo("keys", "rotate", "--yes", "--json").stdout)["key"]
    assert new_key != old_key
    between = _send(b, "Enviada justo después de la rotación, sin reiniciar")  # (a)
    mesh.wait_for(between, [a, b, c])
    assert b.api.get("/api/v1/id")["key"] == new_key  # switched live
    assert a.api.get(f"/api/v1/alerts/{between}")["author"] == new_key
    answer = a.send(headline="De A para todos, después de la rotación de B")  # and the other way
    mesh.wait_for(answer, [b, c])

    b.amparo("alert", "update", earlier, "--headline", "Retén ficticio, ahora más al norte")  # (b)
    wait_until(
        lambda: all(n.api.get(f"/api/v1/alerts/{earlier}")["updates"] == 1 for n in (a, b, c)),
        timeout=30,
        what="the update of an alert authored under the old key",
    )
    b.stop()
    b.start()
    assert b.api.get("/api/v1/id")["key"] == new_key
    b.amparo("alert", "cancel", earlier, "--reason", "Camino libre")
    wait_until(
        lambda: all(n.api.get(f"/api/v1/alerts/{earlier}")["cancelled"] for n in (a, b, c)),
        timeout=30,
        what="the cancel of an alert authored under the old key",
    )
    for node in (a, b, c):  # (c) one author: the family's current key and the organization's name
        shown = node.api.get(f"/api/v1/alerts/{earlier}")
        assert shown["author"] == new_key and shown["signed_by"] == old_key, node.name
        assert shown["author_name"] == b.name, node.name
        assert {t["author"] for t in shown["timeline"]} == {new_key}, node.name
        listed = {x["id"]: x for x in node.api.get("/api/v1/alerts", limit=100)["alerts"]}
        assert listed[earlier]["author"] == new_key and listed[earlier]["cancelled"], node.name


def test_a_rotation_cut_short_before_the_key_file_was_renamed_is_finished_at_start(mesh_factory: Any) -> None:
    """The node switched to the new key, but the CLI died before renaming
    ``identity.key.new``: the next start must not come back with the retired key
    (everything it signed would be refused)."""
    mesh: LocalMesh = mesh_factory(2)
    a, b = mesh.nodes
    mesh.connect([(0, 1)])
    old_file = (b.home / KEY_FILE).read_bytes()
    new_key = json.loads(b.amparo("keys", "rotate", "--yes", "--json").stdout)["key"]
    new_file = (b.home / KEY_FILE).read_bytes()
    b.stop()
    (b.home / KEY_FILE).write_bytes(old_file)  # as if the rename never happened
    (b.home / (KEY_FILE + ".new")).write_bytes(new_file)
    b.start()
    assert b.api.get("/api/v1/id")["key"] == new_key
    assert not (b.home / (KEY_FILE + ".new")).exists()
    assert open_key_file((b.home / KEY_FILE).read_bytes(), None).sign_public.hex() == new_key
    mesh.wait_for(b.send(headline="Después de una rotación interrumpida"), [a, b])


def _committed(node: LocalNode, old: Identity) -> Identity:
    """The key ``node`` committed to (pre-rotation): the only one it may hand over to."""
    nxt = prerotation.open_next(node.home, None)
    assert nxt is not None
    return Identity(sign_seed=nxt.sign_seed, enc_secret=old.enc_secret)


def _hand_over(node: LocalNode, old: Identity, new: Identity, created: int) -> str:
    """A genuine rotation record, as ``amparo keys rotate`` builds it."""
    body = records.node_record(node.home, load(node.home), new, created, next_key=os.urandom(32)).body
    assert isinstance(body, NodeRecord)
    hand_over = sign(old.signing_key, PURPOSE_ROTATE, rotation_payload(new.sign_public, created))
    return sign_envelope(
        new, replace(body, prev=old.sign_public, prev_sig=hand_over), created=created, expires=0
    ).raw.hex()


def test_the_rotation_endpoint_switches_only_to_the_records_own_key(mesh_factory: Any) -> None:
    """The local API switches the node's key only for a seed that is the record's
    key, sealed to the node; and never under an envelope the old key already
    signed later than the record (it would be refused everywhere as retired)."""
    mesh: LocalMesh = mesh_factory(1)
    (b,) = mesh.nodes
    old = open_key_file((b.home / KEY_FILE).read_bytes(), None)
    new = _committed(b, old)
    record = _hand_over(b, old, new, b.api.get("/api/v1/status")["now"])
    to_node = nacl.public.SealedBox(nacl.public.PublicKey(old.enc_public))
    refused = {
        "seed: does not match": to_node.encrypt(os.urandom(32)).hex(),  # another key than the record's
        "seed: the new signing key": new.sign_seed.hex(),  # in clear, not sealed to the node
    }
    for message, seed in refused.items():
        with pytest.raises(ApiError, match=message):
            b.api.post("/api/v1/keys/rotate", {"record": record, "seed": seed})
    with pytest.raises(ApiError, match="seed"):
        b.api.post("/api/v1/keys/rotate", {"record": record})
    b.send(headline="Firmada después del registro de rotación")
    with pytest.raises(ApiError, match="rotate again") as stale:
        b.api.post("/api/v1/keys/rotate", {"record": record, "seed": to_node.encrypt(new.sign_seed).hex()})
    assert stale.value.code == "rotation-stale"
    assert b.api.get("/api/v1/id")["key"] == old.sign_public.hex()  # nothing changed
    fresh = _hand_over(b, old, new, b.api.get("/api/v1/status")["now"] + 1)
    b.api.post("/api/v1/keys/rotate", {"record": fresh, "seed": to_node.encrypt(new.sign_seed).hex()})
    assert b.api.get("/api/v1/id")["key"] == new.sign_public.hex()
    mesh.wait_for(b.send(headline="Firmada con la llave nueva"), [b])


def test_a_refused_rotation_leaves_the_key_file_alone(mesh_factory: Any) -> None:
    mesh: LocalMesh = mesh_factory(1)
    (b,) = mesh.nodes
    before = (b.home / KEY_FILE).read_bytes()
    b.amparo("keys", "compromised", "--yes")
    refused = b.amparo("keys", "rotate", "--yes", check=False)
    assert refused.returncode != 0 and "compromised" in refused.stderr and "Traceback" not in refused.stderr
    assert (b.home / KEY_FILE).read_bytes() == before
    assert not (b.home / (KEY_FILE + ".new")).exists()


def test_a_node_whose_key_was_rotated_elsewhere_refuses_to_send(mesh_factory: Any) -> None:
    """Another copy of this node (a restored backup on another machine) rotated the
    key, and the hand-over reached this node through a peer: what this node would
    sign now is refused by everyone, itself first. The CLI must say so and fail,
    never print an id for an alert that exists nowhere."""
    mesh: LocalMesh = mesh_factory(1)
    (b,) = mesh.nodes
    old = open_key_file((b.home / KEY_FILE).read_bytes(), None)
    elsewhere = _committed(b, old)  # the other copy holds the same next key
    record = bytes.fromhex(_hand_over(b, old, elsewhere, b.api.get("/api/v1/status")["now"]))
    peer = ScriptedPeer()
    peer.pair_with(b)
    assert peer.push(b, [record])["accepted"] == 1
    before = b.alert_ids()
    sent = b.amparo(
        "alert", "send", "--region", "MX-OAX", "--severity", "severe", "--headline", "¿Llega?", check=False
    )
    assert sent.returncode != 0 and "handed over" in sent.stderr and "Traceback" not in sent.stderr
    assert b.alert_ids() == before
