"""Forward compatibility (a newer minor version talking to this one): bodies may
carry an ``ext`` map of fields this version does not know. They are ignored but
signed, so the envelope keeps its id and relays unchanged; a malformed ``ext`` is
still refused by name."""

from __future__ import annotations

import os
from typing import Any

import pytest

from protocol import Alert, Area, decode, sign_envelope
from protocol.errors import BadField, ProtocolError
from protocol.keys import Identity
from tests.protocol.envelopes import forge

NOW = 1_795_000_000_000
AUTHOR = Identity.from_random(os.urandom(64))


def envelope_doc(body: dict[str, Any], kind: str = "alert") -> dict[str, Any]:
    return {"a": AUTHOR.sign_public, "b": body, "c": NOW, "t": kind, "v": 1, "x": NOW + 3_600_000}


def alert_wire(**extra: Any) -> dict[str, Any]:
    return Alert(headline="Radio comunitaria allanada", areas=(Area("MX-OAX"),)).to_wire() | extra


def test_unknown_extension_fields_are_ignored_but_signed() -> None:
    raw = forge(AUTHOR, envelope_doc(alert_wire(ext={"geo-precision": 3, "media": [b"\x01" * 32]})))
    env = decode(raw, now=NOW)
    plain = sign_envelope(
        AUTHOR,
        Alert(headline="Radio comunitaria allanada", areas=(Area("MX-OAX"),)),
        created=NOW,
        expires=NOW + 3_600_000,
    )
    assert env.body == plain.body  # what this version understands
    assert env.raw == raw and env.id != plain.id  # the extension is part of what was signed
    tampered = raw.replace(b"geo-precision\x03", b"geo-precision\x04")
    assert tampered != raw
    with pytest.raises(Exception, match="signature"):
        decode(tampered, now=NOW)


def test_extensions_on_acks_and_node_records() -> None:
    ack = {"alert": b"\x02" * 32, "state": "responding", "ext": {"eta-minutes": 20}}
    assert decode(forge(AUTHOR, envelope_doc(ack, "ack")), now=NOW).body.state == "responding"  # type: ignore[union-attr]
    record = {
        "name": "Nodo Futuro",
        "enc": b"\x03" * 32,
        "tls": b"\x04" * 32,
        "minor": 7,
        "ext": {"transports": ["quic"]},
    }
    doc = envelope_doc(record, "node") | {"x": 0}
    assert decode(forge(AUTHOR, doc), now=NOW).body.minor == 7  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "ext",
    [{}, [], "x", {"Upper": 1}, {"": 1}, {"with space": 1}, {f"k{i}": i for i in range(17)}, {1: 2}],
)
def test_malformed_extensions_are_refused_by_name(ext: object) -> None:
    with pytest.raises(ProtocolError, match=r"\.ext"):  # bad-field, or not-canonical for non-text keys
        decode(forge(AUTHOR, envelope_doc(alert_wire(ext=ext))), now=NOW)


def test_known_fields_stay_canonical_next_to_extensions() -> None:
    wire = alert_wire(ext={"future": 1}) | {"description": ""}  # a default-valued field spelled out
    with pytest.raises(BadField, match="not canonical"):
        decode(forge(AUTHOR, envelope_doc(wire)), now=NOW)
