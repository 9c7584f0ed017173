"""Hostile bytes into ``protocol.decode`` (SPEC §8 Availability): only ``ProtocolError``
escapes, with the expected code, in bounded memory and time."""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import MAX_ENVELOPE_BYTES, ProtocolError, codec, decode
from protocol.keys import Identity
from protocol.sealing import Sealed
from tests.protocol.envelopes import ALICE, BOB, NOW, all_envelopes, envelope_map, forge, plain_map

LIMIT = MAX_ENVELOPE_BYTES


def _code(data: bytes, now: int = NOW) -> str:
    with pytest.raises(ProtocolError) as info:
        decode(data, now=now)
    assert type(info.value).__module__ == "protocol.errors"
    return info.value.code


# ------------------------------------------------------------ random bytes


@settings(max_examples=500)
@given(st.binary(max_size=2048))
def test_random_bytes_raise_only_protocol_error(data: bytes) -> None:
    try:
        decode(data, now=NOW)
    except ProtocolError:
        return
    raise AssertionError("random bytes decoded as a valid envelope")


@settings(max_examples=500)
@given(
    st.sampled_from(sorted(all_envelopes())),
    st.lists(
        st.tuples(st.integers(0, 2**16), st.integers(0, 3), st.binary(min_size=1, max_size=4)), max_size=4
    ),
)
def test_mutated_envelopes_raise_only_protocol_error(name: str, edits: list[tuple[int, int, bytes]]) -> None:
    data = bytearray(all_envelopes()[name].raw)
    for position, op, chunk in edits:
        at = position % (len(data) + 1)
        if op == 0:
            data[at:at] = chunk  # insert
        elif op == 1:
            del data[at : at + len(chunk)]  # delete
        elif op == 2:
            data[at : at + len(chunk)] = chunk  # overwrite
        else:
            data[at:at] = bytes(data[at : at + 64]) * len(chunk)  # duplicate a run
    if bytes(data) == all_envelopes()[name].raw:
        return
    with pytest.raises(ProtocolError):
        decode(bytes(data), now=NOW + 2)


_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.binary(max_size=40)
    | st.text(max_size=20)
)
_wire_values = st.recursive(
    _leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=6),
    max_leaves=20,
)


@pytest.mark.slow
@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from(["v", "t", "a", "c", "x", "b", "s", "z"]), _wire_values, max_size=8))
def test_structured_garbage_raises_only_protocol_error(doc: dict[str, Any]) -> None:
    """Envelope-shaped maps with arbitrary field values, through the canonical encoder
    when possible (so they pass the codec and reach the field checks)."""
    try:
        data = codec.encode(doc)
    except ProtocolError:
        data = msgpack.packb(doc, use_bin_type=True)
    with pytest.raises(ProtocolError):
        decode(data, now=NOW)


@settings(max_examples=200)
@given(_wire_values)
def test_signed_garbage_bodies_raise_only_protocol_error(body: Any) -> None:
    """Bodies of every type, correctly signed, with arbitrary content: past the
    signature check, every body reader must still raise only ProtocolError."""
    for kind in ("alert", "ack", "vouch", "revoke", "node"):
        try:
            data = forge(ALICE, plain_map(ALICE, kind, body))
        except ProtocolError:
            return
        with pytest.raises(ProtocolError):
            decode(data, now=NOW)


# ------------------------------------------------------------------ bombs

BOMBS: list[tuple[str, bytes, str]] = [
    ("array32 4G entries", b"\xdd\xff\xff\xff\xff", "malformed"),
    ("map32 4G entries", b"\xdf\xff\xff\xff\xff", "malformed"),
    ("str32 4 GiB", b"\xdb\xff\xff\xff\xff", "malformed"),
    ("bin32 4 GiB", b"\xc6\xff\xff\xff\xff", "malformed"),
    ("ext32 4 GiB", b"\xc9\xff\xff\xff\xff\x01", "malformed"),
    ("array16 65535 entries", b"\xdc\xff\xff" + b"\xc0" * 100, "malformed"),
    ("map16 65535 entries", b"\xde\xff\xff", "malformed"),
    ("str32 just under the cap, truncated", b"\xdb\x00\x00\xff\xf0abc", "malformed"),
    ("64K nested arrays", b"\x91" * (LIMIT - 1) + b"\xc0", "malformed"),
    ("nested maps", b"\x81\xa1a" * ((LIMIT - 1) // 3) + b"\xc0", "malformed"),
    ("nesting past MAX_DEPTH", b"\x91" * (codec.MAX_DEPTH + 1) + b"\xc0", "not-canonical"),
    ("1024 empty arrays", b"\xdc\x04\x00" + b"\x90" * 1024, "malformed"),
    ("1025 nils", b"\xdc\x04\x01" + b"\xc0" * 1025, "malformed"),
    ("Timestamp ext -1", b"\xd6\xff\x00\x00\x00\x01", "malformed"),
    ("integer map keys", b"\x81\x01\x01", "malformed"),
    ("non-canonical int", b"\xcd\x00\x01", "not-canonical"),
    ("float", b"\xcb" + bytes(8), "not-canonical"),
    ("duplicate keys", b"\x82\xa1a\x01\xa1a\x01", "not-canonical"),
    ("unsorted keys", b"\x82\xa1b\x01\xa1a\x01", "not-canonical"),
    ("non-NFC text", b"\xa3e\xcc\x81", "not-canonical"),
    ("trailing bytes", b"\xc0\xc0", "malformed"),
    ("over 64 KiB", b"\xc6\x00\x01\x00\x00" + bytes(LIMIT), "too-large"),
    ("one byte over 64 KiB", bytes(LIMIT + 1), "too-large"),
    ("64 KiB of zeros", bytes(LIMIT), "malformed"),
    ("64 KiB of 0xff", b"\xff" * LIMIT, "malformed"),
]


@pytest.mark.parametrize(("label", "data", "code"), BOMBS, ids=[b[0] for b in BOMBS])
def test_bombs_are_rejected_in_bounded_memory(label: str, data: bytes, code: str) -> None:
    tracemalloc.start()
    try:
        assert _code(data) == code, label
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024, f"{label}: peak {peak} bytes"


def test_bombs_are_rejected_quickly_in_a_loop() -> None:
    """A generous wall-clock bound over many decodes (not a timing test): a
    quadratic path or an allocation proportional to a header would blow it."""
    started = time.perf_counter()
    for _ in range(20):
        for _, data, _ in BOMBS:
            with pytest.raises(ProtocolError):
                decode(data, now=NOW)
    assert time.perf_counter() - started < 20


def test_bombs_inside_a_correctly_signed_envelope() -> None:
    """Limits hold inside the body too, and are enforced before the signature is checked."""
    deep: Any = "x"
    for _ in range(codec.MAX_DEPTH):
        deep = [deep]
    for body, code in [
        ({f"k{i:03}": 1 for i in range(65)}, "malformed"),  # > MAX_MAP_LEN
        ({"areas": [{"region": "MX"}] * 1025, "headline": "h"}, "malformed"),  # > MAX_ARRAY_LEN
        ({"areas": deep, "headline": "h"}, "not-canonical"),  # too deep with the envelope level
    ]:
        doc = plain_map(ALICE, "alert", body)
        data = msgpack.packb(doc | {"s": bytes(64)}, use_bin_type=True)
        assert _code(data) == code


# --------------------------------------------------------- envelope shape


def _forged(**changes: Any) -> bytes:
    doc = envelope_map(all_envelopes()["alert"]) | changes
    return forge(ALICE, {k: v for k, v in doc.items() if v is not _DROP})


_DROP = object()


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"v": 2}, "unsupported-version", "v"),
        ({"v": True}, "unsupported-version", "v"),
        ({"t": "poll"}, "unknown-type", "t"),
        ({"t": 1}, "unknown-type", "t"),
        ({"a": b"\x00" * 31}, "bad-field", "a"),
        ({"c": -1}, "bad-field", "c"),
        ({"c": True}, "bad-field", "c"),
        ({"x": "tomorrow"}, "bad-field", "x"),
        ({"z": 1}, "malformed", None),
        ({"b": _DROP}, "malformed", None),
        ({"b": [1]}, "bad-field", "alert"),
        ({"t": "vouch"}, "bad-field", "vouch"),
    ],
)
def test_envelope_shape_errors(changes: dict[str, Any], code: str, field: str | None) -> None:
    with pytest.raises(ProtocolError) as info:
        decode(_forged(**changes), now=NOW)
    assert (info.value.code, info.value.field) == (code, field), info.value


def test_signature_of_another_key_or_purpose_is_rejected() -> None:
    doc = envelope_map(all_envelopes()["alert"])
    by_bob = codec.encode(doc | {"s": forge(BOB, doc)[-64:]})
    assert _code(by_bob) in {"bad-signature", "not-canonical"}
    from protocol.signing import PURPOSE_REQUEST, sign

    other_purpose = sign(ALICE.signing_key, PURPOSE_REQUEST, codec.encode(doc))
    assert _code(codec.encode(doc | {"s": other_purpose})) == "bad-signature"
    assert _code(codec.encode(doc | {"s": b"\x00" * 63})) == "bad-field"
    assert _code(codec.encode(doc | {"s": "sig"})) == "bad-field"


def test_small_order_and_garbage_author_keys_are_rejected() -> None:
    doc = envelope_map(all_envelopes()["alert"])
    for key in (bytes(32), b"\x01" + bytes(31), b"\xff" * 32):
        assert _code(codec.encode(doc | {"a": key, "s": bytes(64)})) == "bad-signature"


def test_sealed_garbage_is_a_bad_field() -> None:
    for body in (b"", b"\xc0", codec.encode({"d": b"", "k": [], "n": b""}), codec.encode([1, 2])):
        data = forge(ALICE, plain_map(ALICE, "alert", body))
        with pytest.raises(ProtocolError) as info:
            decode(data, now=NOW)
        assert info.value.code == "bad-field" and (info.value.field or "").startswith("b")
    assert isinstance(all_envelopes()["sealed-alert"].body, Sealed)


def test_unseal_of_garbage_raises_only_protocol_error() -> None:
    from protocol import unseal

    anyone = Identity(bytes(32), bytes(32))
    for env in all_envelopes().values():
        with pytest.raises(ProtocolError):
            unseal(env, anyone)
