"""Delivery receipts (docs/protocol.md §6.7): round trips, every rule, any mutation
refused, an older node's clean refusal, and the fuzz target reaching them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import ProtocolError, Receipt, decode, envelope, seal_envelope, sign_envelope, unseal
from protocol.errors import blames_sender
from protocol.keys import Identity
from protocol.receipt import RECEIPT_MAX_HELD, RECEIPT_MAX_LIFETIME_MS
from tests.protocol.envelopes import ALICE, BOB, HOUR, NOW, forge, receipt_envelopes
from tests.strategies import deterministic_random, identities, keys32

held_pairs = st.dictionaries(keys32, st.integers(1, NOW), min_size=1, max_size=40)
lifetimes = st.integers(1, RECEIPT_MAX_LIFETIME_MS)


def _receipt_envelope(
    author: Identity, to: Identity, pairs: dict[bytes, int], lifetime: int, seed: bytes = b"s"
) -> Any:
    return seal_envelope(
        author,
        Receipt.of(pairs),
        created=NOW,
        expires=NOW + lifetime,
        recipients=[to.enc_public, author.enc_public],
        random=deterministic_random(seed),
    )


def _code(call: Any) -> str:
    with pytest.raises(ProtocolError) as info:
        call()
    return info.value.code


@settings(max_examples=60)
@given(held_pairs)
def test_body_round_trip_is_canonical_whatever_the_order_given(pairs: dict[bytes, int]) -> None:
    receipt = Receipt.of(pairs)
    assert dict(receipt.held) == pairs
    assert [alert for alert, _ in receipt.held] == sorted(pairs)
    assert Receipt.from_wire(receipt.to_wire()) == receipt


@settings(max_examples=40)
@given(identities, identities, held_pairs, lifetimes, st.binary(min_size=1, max_size=8))
def test_sealed_receipt_opens_for_the_author_and_sender_only(
    sender: Identity, author: Identity, pairs: dict[bytes, int], lifetime: int, seed: bytes
) -> None:
    env = _receipt_envelope(sender, author, pairs, lifetime, seed)
    again = decode(env.raw, now=NOW)
    assert again == env and again.type == "receipt" and again.sealed
    assert unseal(again, author) == Receipt.of(pairs) == unseal(again, sender)
    outsider = Identity(bytes([9]) * 32, bytes([10]) * 32)
    if outsider.enc_public not in (author.enc_public, sender.enc_public):
        assert _code(lambda: unseal(again, outsider)) == "not-recipient"


@settings(max_examples=200)
@given(held_pairs, st.data())
def test_any_bit_flip_or_cut_is_refused(pairs: dict[bytes, int], data: st.DataObject) -> None:
    raw = _receipt_envelope(BOB, ALICE, pairs, HOUR).raw
    bit = data.draw(st.integers(0, len(raw) * 8 - 1), label="bit")
    flipped = bytearray(raw)
    flipped[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(ProtocolError):
        unseal(decode(bytes(flipped), now=NOW), ALICE)  # the outer or the inner check refuses it
    cut = data.draw(st.integers(0, len(raw) - 1), label="cut")
    with pytest.raises(ProtocolError):
        decode(raw[:cut], now=NOW)


def test_a_receipt_is_always_sealed() -> None:
    receipt = Receipt.of({bytes(32): NOW})
    assert _code(lambda: sign_envelope(BOB, receipt, created=NOW, expires=NOW + HOUR)) == "bad-field"
    raw = forge(
        BOB, {"a": BOB.sign_public, "b": receipt.to_wire(), "c": NOW, "t": "receipt", "v": 1, "x": NOW + HOUR}
    )
    with pytest.raises(ProtocolError) as info:
        decode(raw, now=NOW)
    assert (info.value.code, info.value.field) == ("bad-field", "b")


def test_a_receipt_lives_at_most_a_day() -> None:
    ok = _receipt_envelope(BOB, ALICE, {bytes(32): NOW}, RECEIPT_MAX_LIFETIME_MS)
    assert decode(ok.raw, now=NOW).expires == NOW + RECEIPT_MAX_LIFETIME_MS
    assert (
        _code(lambda: _receipt_envelope(BOB, ALICE, {bytes(32): NOW}, RECEIPT_MAX_LIFETIME_MS + 1))
        == "bad-field"
    )


def test_nothing_stored_after_the_receipt_was_made() -> None:
    """The stored-at times are inside the ciphertext, so the author checks them when
    it opens the receipt (a relay cannot)."""
    late = _receipt_envelope(BOB, ALICE, {bytes(32): NOW + 1}, HOUR)  # created NOW
    assert _code(lambda: unseal(late, ALICE)) == "bad-field"


@pytest.mark.parametrize(
    ("wire", "field"),
    [
        ({}, "receipt.held"),
        ({"held": []}, "receipt.held"),
        ({"held": [[bytes(32), NOW]] * 2}, "receipt.held[1][0]"),
        ({"held": [[bytes([1]) * 32, NOW], [bytes(32), NOW]]}, "receipt.held[1][0]"),
        ({"held": [[bytes(31), NOW]]}, "receipt.held[0][0]"),
        ({"held": [[bytes(32), 0]]}, "receipt.held[0][1]"),
        ({"held": [[bytes(32), True]]}, "receipt.held[0][1]"),
        ({"held": [[bytes(32), 2**62 + 1]]}, "receipt.held[0][1]"),
        ({"held": [[bytes(32)]]}, "receipt.held[0]"),
        ({"held": [bytes(32)]}, "receipt.held[0]"),
        ({"held": [[bytes(32), NOW]], "note": "x"}, "receipt"),
        ({"held": [[i.to_bytes(32, "big"), NOW] for i in range(RECEIPT_MAX_HELD + 1)]}, "receipt.held"),
    ],
)
def test_body_rules_name_the_field(wire: dict[str, Any], field: str) -> None:
    with pytest.raises(ProtocolError) as info:
        Receipt.from_wire(wire)
    assert (info.value.code, info.value.field) == ("bad-field", field)


def test_the_largest_receipt_fits_one_envelope() -> None:
    pairs = {i.to_bytes(32, "big"): NOW for i in range(RECEIPT_MAX_HELD)}
    env = _receipt_envelope(BOB, ALICE, pairs, HOUR)
    assert len(env.raw) < 16 * 1024 and len(unseal(env, ALICE).held) == RECEIPT_MAX_HELD


def test_an_older_node_refuses_a_receipt_without_blaming_the_relay(monkeypatch: pytest.MonkeyPatch) -> None:
    """A node of the release before receipts has no ``receipt`` type: it refuses the
    envelope as ``unknown-type``, which never costs the relay score (§9)."""
    raw = receipt_envelopes()["receipt"].raw
    monkeypatch.delitem(envelope.BODY_TYPES, "receipt")
    with pytest.raises(ProtocolError) as info:
        decode(raw, now=NOW + 60)
    assert info.value.code == "unknown-type" and not info.value.blames_sender
    assert not blames_sender("unknown-type")
    forged = bytearray(raw)
    forged[-70] ^= 1  # inside the signature: a forgery is still the relay's fault
    with pytest.raises(ProtocolError) as info:
        decode(bytes(forged), now=NOW + 60)
    assert info.value.blames_sender


def test_the_fuzz_target_opens_receipts(monkeypatch: pytest.MonkeyPatch) -> None:
    target = Path(__file__).resolve().parents[1] / "fuzz" / "fuzz_decode.py"
    spec = importlib.util.spec_from_file_location("fuzz_decode_receipts", target)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    opened: list[object] = []

    def recording(env: Any, reader: Identity) -> object:
        body = unseal(env, reader)
        opened.append(body)
        return body

    monkeypatch.setitem(module.TestOneInput.__globals__, "unseal", recording)
    module.TestOneInput(receipt_envelopes()["receipt"].raw)  # sealed to the fuzz target's reader
    vector = Path(__file__).resolve().parents[1] / "vectors" / "receipt-sealed.json"
    module.TestOneInput(bytes.fromhex(json.loads(vector.read_text(encoding="utf-8"))["envelope_hex"]))
    assert sum(isinstance(b, Receipt) for b in opened) == 4  # each opened once per decode (two per input)
