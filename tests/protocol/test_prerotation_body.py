"""The pre-rotation fields of a ``node`` body (docs/protocol.md §6.5): they live in
``ext``, so an older decoder ignores them; this one checks their shape."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from protocol import NodeRecord, ProtocolError, decode, sign_envelope
from protocol.keys import Identity
from protocol.signing import next_key_commitment
from tests.vectors.generate import forge

NOW = 1_767_225_600_000
ALICE = Identity.from_random(hashlib.sha512(b"alice").digest())
CAROL = Identity.from_random(hashlib.sha512(b"carol").digest())
BASE = NodeRecord("Colectivo Alice", ALICE.enc_public, b"\x01" * 32)


def test_a_commitment_round_trips_inside_ext() -> None:
    record = replace(BASE, next_key=next_key_commitment(CAROL.sign_public))
    env = decode(sign_envelope(ALICE, record, created=NOW, expires=0).raw, now=NOW)
    assert isinstance(env.body, NodeRecord) and env.body.next_key == record.next_key
    assert env.body.to_wire()["ext"] == {"next": record.next_key}


def test_a_recovery_round_trips() -> None:
    record = replace(BASE, recovers=ALICE.sign_public, old_compromised=True)
    env = decode(sign_envelope(CAROL, record, created=NOW, expires=0).raw, now=NOW)
    assert isinstance(env.body, NodeRecord) and env.body.recovers == ALICE.sign_public
    assert env.body.old_compromised


@pytest.mark.parametrize(
    ("ext", "field"),
    [
        ({"compromised": False}, "node.ext.compromised"),  # a default value on the wire
        ({"compromised": True}, "node.ext.compromised"),  # without recovers
        ({"next": b"\x00" * 31}, "node.ext.next"),
        ({"recovers": "alice"}, "node.ext.recovers"),
    ],
)
def test_malformed_pre_rotation_fields_name_the_field(ext: dict[str, object], field: str) -> None:
    wire = BASE.to_wire() | {"ext": ext}
    raw = forge(CAROL, {"v": 1, "t": "node", "a": CAROL.sign_public, "c": NOW, "x": 0, "b": wire})
    with pytest.raises(ProtocolError) as info:
        decode(raw, now=NOW)
    assert info.value.field == field


def test_a_key_cannot_commit_to_itself_nor_recover_itself() -> None:
    with pytest.raises(ProtocolError, match="next key must differ"):
        decode(
            sign_envelope(
                ALICE, replace(BASE, next_key=next_key_commitment(ALICE.sign_public)), created=NOW, expires=0
            ).raw,
            now=NOW,
        )
    with pytest.raises(ProtocolError, match="itself"):
        decode(
            sign_envelope(ALICE, replace(BASE, recovers=ALICE.sign_public), created=NOW, expires=0).raw,
            now=NOW,
        )


def test_unknown_ext_entries_next_to_a_commitment_are_ignored() -> None:
    commit = next_key_commitment(CAROL.sign_public)
    wire = BASE.to_wire() | {"ext": {"next": commit, "later-field": 7}}
    raw = forge(ALICE, {"v": 1, "t": "node", "a": ALICE.sign_public, "c": NOW, "x": 0, "b": wire})
    env = decode(raw, now=NOW)
    assert isinstance(env.body, NodeRecord) and env.body.next_key == commit
