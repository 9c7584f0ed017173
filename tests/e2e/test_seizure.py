"""The seizure drill (issue 17 item 2, docs/operators.md "After a raid"), on real
node processes: A–B–C in a line. A exported its next key; then A's machine is
taken (its home copied: the attacker's copy). On a new machine A is recovered
from the exported file and declares the old key compromised. B (its peer) and C
(B's) follow the recovered A; the attacker's copy can neither rotate nor get
anything it signs accepted."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from nacl.public import PublicKey, SealedBox

from node.cli.client import ApiError
from node.config import KEY_FILE, load
from node.devmesh import LocalMesh, LocalNode
from node.prerotation import NEXT_KEY_FILE, RECOVERY_PASSPHRASE_ENV
from protocol import NodeRecord, rotation_payload, sign_envelope
from protocol.keys import Identity, open_key_file
from protocol.signing import PURPOSE_ROTATE, sign
from tests.e2e.harness import ScriptedPeer, now_ms
from tests.e2e.test_gossip import wait_until

pytestmark = pytest.mark.slow


def peer_keys(node: LocalNode) -> set[str]:
    return {p["key"] for p in node.api.get("/api/v1/peers")["peers"]}


def test_seizure_drill(mesh_factory: Any, tmp_path: Path) -> None:
    mesh: LocalMesh = mesh_factory(3)
    a, b, c = mesh.nodes
    mesh.connect(mesh.line_edges())
    secret = tmp_path / "recovery-passphrase"
    secret.write_text("una frase larga que guarda la abogada\n")
    env = {RECOVERY_PASSPHRASE_ENV: str(secret)}
    a.env.update(env)
    old_key = a.api.get("/api/v1/id")["key"]
    before = a.send(headline="Brigada Ejemplo antes del allanamiento")
    mesh.wait_for(before, [b, c])

    kept_apart = tmp_path / "offsite" / "brigada-next.json"
    kept_apart.parent.mkdir()
    exported = json.loads(a.amparo("keys", "export-next", str(kept_apart), "--json").stdout)
    assert exported["peers"] == 1 and not exported["kept"]
    assert not (a.home / NEXT_KEY_FILE).exists()  # a raid on the home no longer finds it
    again = a.amparo("keys", "export-next", str(tmp_path / "second.json"), check=False)
    assert again.returncode != 0 and "no longer in the home" in again.stderr

    a.stop()  # the raid: the machine is taken, with a copy of everything on it
    seized = tmp_path / "seized-home"
    shutil.copytree(a.home, seized)

    recovered = LocalNode(name=a.name, home=tmp_path / "new-machine", env=dict(env))
    recovered.init()
    guess = tmp_path / "a-guess"
    guess.write_text("no es la frase correcta\n")
    recovered.env[RECOVERY_PASSPHRASE_ENV] = str(guess)
    wrong = recovered.amparo("keys", "recover", str(kept_apart), "--yes", check=False)
    assert wrong.returncode == 1 and "wrong recovery passphrase" in wrong.stderr, wrong.stderr
    recovered.env.update(env)
    result = json.loads(recovered.amparo("keys", "recover", str(kept_apart), "--yes", "--json").stdout)
    new_key = result["key"]
    assert result["recovers"] == old_key and result["compromised"] and new_key != old_key
    mesh.nodes.append(recovered)  # stopped with the mesh
    recovered.start()

    wait_until(
        lambda: new_key in peer_keys(b) and old_key not in peer_keys(b), timeout=30, what="B to follow"
    )
    after = recovered.send(headline="Brigada Ejemplo, recuperada en una máquina nueva")
    mesh.wait_for(after, [b, c])
    for node in (b, c):
        shown = node.api.get(f"/api/v1/alerts/{after}")
        assert shown["author"] == new_key and shown["author_name"] == a.name, node.name
        assert node.api.get(f"/api/v1/alerts/{before}")["author"] == new_key, node.name  # one organization
    answer = c.send(headline="C responde a la Brigada recuperada")
    mesh.wait_for(answer, [recovered])

    thief = LocalNode(name=a.name, home=seized, mesh_port=a.mesh_port, local_port=a.local_port)
    mesh.nodes.append(thief)
    thief.start()
    refused = thief.amparo("keys", "rotate", "--yes", check=False)
    assert refused.returncode != 0 and "next key" in refused.stderr
    seized_identity = open_key_file((seized / KEY_FILE).read_bytes(), None)
    own_key = Identity.from_random(bytes(range(64)))
    hand_over = _rotation(seized, seized_identity, own_key)
    with pytest.raises(ApiError) as raised:
        seed = SealedBox(PublicKey(seized_identity.enc_public)).encrypt(own_key.sign_seed)
        thief.api.post("/api/v1/keys/rotate", {"record": hand_over.raw.hex(), "seed": seed.hex()})
    assert raised.value.code == "rotation-refused"  # not even its own copy takes a key off the commitment

    forged = ScriptedPeer().alert("Firmada con la llave incautada", author=seized_identity)
    intruder = ScriptedPeer()
    for node in (b, c):
        intruder.pair_with(node)
        assert intruder.push(node, [forged.raw, hand_over.raw])["accepted"] == 0, node.name
        assert forged.id.hex() not in node.alert_ids()
        assert old_key not in peer_keys(node) or node is c
    assert 'amparo_rejections_total{reason="compromised-author"}' in b.api.get_text("/metrics")
    thief_alert = thief.send(headline="Enviada desde la copia incautada")
    wait_until(
        lambda: all(p["state"] == "failing" for p in thief.api.get("/api/v1/peers")["peers"]),
        timeout=30,
        what="B to refuse the seized copy's requests",
    )
    assert thief_alert not in b.alert_ids() and thief_alert not in c.alert_ids()


def _rotation(home: Path, old: Identity, new: Identity) -> Any:
    """What whoever holds the seized key could sign: a hand-over to a key of its own."""
    config = load(home)
    created = now_ms()
    body = NodeRecord(name=config.name, enc=old.enc_public, tls=b"\x01" * 32)
    hand = sign(old.signing_key, PURPOSE_ROTATE, rotation_payload(new.sign_public, created))
    return sign_envelope(new, replace(body, prev=old.sign_public, prev_sig=hand), created=created, expires=0)
