"""Canonical msgpack (docs/protocol.md §2): one byte string per value, or a rejection."""

from __future__ import annotations

import unicodedata
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import codec, errors
from protocol.errors import ERROR_CODES, ProtocolError

_keys = st.text(max_size=8).map(lambda s: unicodedata.normalize("NFC", s))
_leaves = (
    st.none()
    | st.booleans()
    | st.integers(codec.INT_MIN, codec.INT_MAX)
    | st.binary(max_size=40)
    | st.text(st.characters(blacklist_categories=("Cs",)), max_size=40).map(
        lambda s: unicodedata.normalize("NFC", s)
    )
)
values = st.recursive(
    _leaves,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_keys, inner, max_size=5),
    max_leaves=30,
)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


@given(values)
def test_canonical_round_trip(value: Any) -> None:
    if _depth(value) > codec.MAX_DEPTH:
        return
    data = codec.encode(value)
    assert codec.decode(data) == value
    assert codec.encode(codec.decode(data)) == data


@given(st.dictionaries(_keys, st.integers(codec.INT_MIN, codec.INT_MAX), min_size=2, max_size=10))
def test_key_order_does_not_matter_to_encode_but_does_to_decode(doc: dict[str, int]) -> None:
    reversed_doc = dict(reversed(list(doc.items())))
    assert codec.encode(doc) == codec.encode(reversed_doc)
    unsorted = msgpack.packb(dict(sorted(doc.items(), reverse=True)), use_bin_type=True)
    with pytest.raises(errors.NotCanonical):
        codec.decode(unsorted)


@given(st.integers(codec.INT_MIN, codec.INT_MAX))
def test_integers_use_the_shortest_form(number: int) -> None:
    data = codec.encode(number)
    widths = {0: 1, 1: 2, 2: 3, 3: 5, 4: 9}
    if 0 <= number < 128 or -32 <= number < 0:
        assert len(data) == 1
    else:
        assert len(data) in widths.values()
    forms = [b"\xd3" + number.to_bytes(8, "big", signed=True)] if number < 2**63 else []
    for longer in forms:
        if longer != data:
            with pytest.raises(errors.NotCanonical):
                codec.decode(longer)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\xcd\x00\x01", "not-canonical"),  # 1 as uint16
        (b"\xcc\x05", "not-canonical"),  # 5 as uint8
        (b"\xd0\x05", "not-canonical"),  # 5 as int8
        (b"\xd1\xff\xff", "not-canonical"),  # -1 as int16
        (b"\xd9\x01a", "not-canonical"),  # "a" as str8
        (b"\xc5\x00\x01a", "not-canonical"),  # b"a" as bin16
        (b"\xdc\x00\x00", "not-canonical"),  # [] as array16
        (b"\xde\x00\x00", "not-canonical"),  # {} as map16
        (b"\xca\x3f\x80\x00\x00", "not-canonical"),  # float32 1.0
        (b"\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00", "not-canonical"),  # float64 1.0
        (b"\x82\xa1a\x01\xa1a\x02", "not-canonical"),  # duplicate key
        (b"\x82\xa1b\x01\xa1a\x02", "not-canonical"),  # unsorted keys
        (b"\xa3e\xcc\x81", "not-canonical"),  # "e" + combining acute: not NFC
        (b"\x81\xc4\x01a\x01", "not-canonical"),  # binary map key
        (b"\x81\x01\x01", "malformed"),  # integer map key
        (b"\x81\xc0\x01", "malformed"),  # nil map key
        (b"\xa2\xc3\x28", "malformed"),  # invalid UTF-8
        (b"\xa3\xed\xa0\x80", "malformed"),  # UTF-8-encoded surrogate
        (b"\xc1", "malformed"),  # reserved byte
        (b"", "malformed"),
        (b"\x01\x01", "malformed"),  # trailing bytes
        (b"\x92\x01", "malformed"),  # truncated
        (b"\xd6\xff\x00\x00\x00\x00", "malformed"),  # Timestamp ext (-1), 32-bit
        (b"\xd7\xff" + bytes(8), "malformed"),  # Timestamp ext, 64-bit
        (b"\xc7\x0c\xff" + bytes(12), "malformed"),  # Timestamp ext, 96-bit
        (b"\xc7\x00\xff", "malformed"),  # zero-length Timestamp ext
        (b"\xc7\x00\x05", "malformed"),  # zero-length ext
        (b"\xd4\x05\x00", "malformed"),  # fixext1
    ],
)
def test_non_canonical_and_malformed_inputs(data: bytes, code: str) -> None:
    with pytest.raises(ProtocolError) as info:
        codec.decode(data)
    assert info.value.code == code, info.value


def test_encode_refuses_values_without_a_canonical_form() -> None:
    for value, field in [
        ({"a": 1.5}, "a"),
        ({"a": ["e\u0301"]}, "a[0]"),
        ({"a": {1: 2}}, "a"),
        ({"a": 2**64}, "a"),
        ({"a": {"b": object()}}, "a.b"),
    ]:
        with pytest.raises(errors.NotCanonical) as info:
            codec.encode(value)
        assert info.value.field == field
    nested: Any = 0
    for _ in range(codec.MAX_DEPTH + 1):
        nested = [nested]
    with pytest.raises(errors.NotCanonical):
        codec.encode(nested)
    codec.encode(nested[0])  # exactly MAX_DEPTH is fine


def test_decode_names_the_non_canonical_field() -> None:
    data = msgpack.packb({"a": {"b": ["ok", "e\u0301"]}}, use_bin_type=True)
    with pytest.raises(errors.NotCanonical) as info:
        codec.decode(data)
    assert info.value.field == "a.b[1]"
    assert "a.b[1]" in str(info.value)


@pytest.mark.parametrize(
    ("value", "field"),
    [({b"k": 1}, None), ({"a": {b"k": 1}}, "a"), ({"a": [1, {b"x": 2}]}, "a[1]"), ({"a": {"b": 1, b"c": 2}}, "a")],
)
def test_binary_map_keys_are_refused_wherever_they_are(value: Any, field: str | None) -> None:
    """msgpack's strict_map_key still lets bytes keys through; canonical form is text keys only."""
    with pytest.raises(errors.NotCanonical) as info:
        codec.decode(msgpack.packb(value, use_bin_type=True))
    assert info.value.field == field and "map keys must be text" in info.value.message


def test_decode_accepts_bytes_like_and_refuses_others() -> None:
    assert codec.decode(bytearray(b"\x01")) == 1
    assert codec.decode(memoryview(b"\x01")) == 1
    with pytest.raises(errors.Malformed):
        codec.decode("not bytes")  # type: ignore[arg-type]


def test_size_limit_is_checked_before_parsing() -> None:
    just_fits = codec.encode(b"x" * (codec.MAX_ENVELOPE_BYTES - 3))
    assert len(just_fits) == codec.MAX_ENVELOPE_BYTES
    assert codec.decode(just_fits) == b"x" * (codec.MAX_ENVELOPE_BYTES - 3)
    with pytest.raises(errors.TooLarge):
        codec.decode(codec.encode(b"x" * (codec.MAX_ENVELOPE_BYTES - 2)))
    with pytest.raises(errors.TooLarge):
        codec.decode(b"\x01", max_size=0)


# ------------------------------------------------------------- error codes


EXPECTED_CODES = (
    "protocol-error",
    "too-large",
    "malformed",
    "not-canonical",
    "bad-field",
    "bad-signature",
    "expired",
    "from-the-future",
    "unknown-type",
    "unsupported-version",
    "not-recipient",
    "bad-ciphertext",
    "bad-key-file",
    "wrong-passphrase",
    "bad-text",
    "bad-frame",
    "cannot-encode",
    "bad-endorsement",
)


def _all_subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _all_subclasses(sub)
    return found


def test_error_codes_are_stable_and_unique() -> None:
    """Codes are an interface (metrics, peer scoring, other implementations):
    changing or removing one is a breaking change, adding one extends this list."""
    assert EXPECTED_CODES == ERROR_CODES
    assert len(set(ERROR_CODES)) == len(ERROR_CODES)
    in_module = {c for c in _all_subclasses(ProtocolError) if c.__module__ == "protocol.errors"}
    assert {c.code for c in in_module} | {"protocol-error"} == set(ERROR_CODES)


def test_error_message_and_str() -> None:
    exc = errors.BadField("unknown region 'XX'", field="alert.areas[0].region")
    assert exc.code == "bad-field"
    assert exc.field == "alert.areas[0].region"
    assert exc.message == "alert.areas[0].region: unknown region 'XX'"
    assert str(exc) == "[bad-field] alert.areas[0].region: unknown region 'XX'"
    assert str(errors.Expired("too old")) == "[expired] too old"


# ------------------------------------------- the hot path agrees with the rules

_any_leaf = _leaves | st.floats(allow_nan=False) | st.text(max_size=6)  # may be non-NFC
_any_values = st.recursive(
    _any_leaf,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=4) | st.binary(max_size=3), inner, max_size=3),
    max_leaves=40,
)


@given(_any_values)
def test_fast_check_and_explaining_check_agree(value: Any) -> None:
    """``decode`` trusts ``_is_canonical_tree`` and asks ``_check`` only to word the
    error: they must accept exactly the same values (maps given in sorted order)."""
    data = msgpack.packb(value, use_bin_type=True)
    unpacked = msgpack.unpackb(data, raw=False, strict_map_key=False)
    fast = codec._is_canonical_tree([unpacked], -1)
    try:
        codec._check(unpacked, "", 0)
        slow = True
    except errors.NotCanonical:
        slow = False
    assert fast == slow
    if fast:
        assert codec.encode(unpacked) == codec.encode_decoded(unpacked) or not _sorted_everywhere(unpacked)


def _sorted_everywhere(value: Any) -> bool:
    if isinstance(value, dict):
        return list(value) == sorted(value) and all(map(_sorted_everywhere, value.values()))
    if isinstance(value, list):
        return all(map(_sorted_everywhere, value))
    return True


@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=4), max_size=8))
def test_code_point_order_is_utf8_byte_order(keys: list[str]) -> None:
    assert sorted(keys) == sorted(keys, key=lambda k: k.encode("utf-8"))
