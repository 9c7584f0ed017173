"""The decoder's shortcuts accept exactly what the full checks accept.

``decode`` takes faster routes for well-formed input (docs/performance.md): a
one-shot unpack with a precise re-read for refusals, text screened with
``str.isprintable``, the signed bytes cut out of the envelope instead of packed
again, and bodies built without ``__init__``. Each shortcut is checked here
against the rule it stands in for, over the whole of what it could get wrong.
"""

from __future__ import annotations

import sys

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import alert as alert_module
from protocol import codec, decode, envelope, fields, reread, sign_envelope
from protocol.alert import Alert, Area, wire_is_plain
from protocol.errors import BadField, BadText, Malformed, ProtocolError
from tests.protocol.envelopes import all_envelopes
from tests.strategies import Signable, alerts, signable

REFUSED_ON_ONE_LINE = fields._SINGLE_LINE_BAD
REFUSED_ON_MANY_LINES = fields._MULTI_LINE_BAD


def test_every_refused_character_is_refused_by_the_text_reader() -> None:
    """The shortcut passes text that ``isprintable()`` calls printable: every
    character the rules refuse must still be refused, in every position."""
    refused = [chr(c) for c in range(sys.maxunicode + 1) if REFUSED_ON_ONE_LINE.match(chr(c))]
    assert len(refused) == 32 + 1 + 32 + 2 + 5 + 4
    for char in refused:
        for value in (char, f"a{char}", f"{char}b", f"aé{char}ü"):
            with pytest.raises(BadText):
                fields.text({"k": value}, "k", "p", max_chars=10)
            if REFUSED_ON_MANY_LINES.match(char):
                with pytest.raises(BadText):
                    fields.text({"k": value}, "k", "p", max_chars=10, multiline=True)
            else:
                assert fields.text({"k": value}, "k", "p", max_chars=10, multiline=True) == value


def test_text_that_is_not_printable_but_allowed_still_passes() -> None:
    """No-break and other spaces, zero-width joiners and direction marks are not
    ``isprintable()`` yet are ordinary text: the full check lets them through."""
    for value in ("a\u00a0b", "\U0001f469\u200d\U0001f52c", "\u200f\u0645", "a\u3000b"):
        assert not value.isprintable()
        assert fields.text({"k": value}, "k", "p", max_chars=10) == value


def test_text_limits_are_kept_on_the_shortcut() -> None:
    with pytest.raises(BadField, match="longer than 3"):
        fields.text({"k": "abcd"}, "k", "p", max_chars=3)
    with pytest.raises(BadField, match="must not be empty"):
        fields.text({"k": "   "}, "k", "p", max_chars=3, required=True)
    assert fields.text({"k": "   "}, "k", "p", max_chars=3) == "   "


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "truncated"),
        (b"\x92\x01", "truncated"),
        (b"\x01\x01", "trailing bytes"),
        (b"\xd4\x01\x02", "ext"),
        (b"\xc7\x00\x05", "ext type 5"),
        (b"\xa2\xc3\x28", "UTF-8"),
        (b"\x81\x01\x02", "within limits"),
        (b"\x91" * 2000 + b"\xc0", "nesting"),
    ],
)
def test_refused_msgpack_is_explained_by_the_full_reader(data: bytes, words: str) -> None:
    with pytest.raises(Malformed, match=words):
        codec.read_one(data, max_bytes=1 << 16, max_str=64, max_bin=64, max_array=8, max_map=8)


def test_input_over_the_buffer_limit_is_refused_even_when_it_unpacks() -> None:
    data = msgpack.packb(b"x" * 40)
    with pytest.raises(Malformed):
        codec.read_one(data, max_bytes=len(data) - 1, max_str=64, max_bin=64, max_array=8, max_map=8)
    assert codec.read_one(data, max_bytes=len(data), max_str=64, max_bin=64, max_array=8, max_map=8) == b"x" * 40


@settings(max_examples=60)
@given(signable())
def test_the_signed_bytes_cut_from_the_envelope_are_the_packed_map_without_s(args: Signable) -> None:
    env = sign_envelope(args.identity, args.body, created=args.created, expires=args.expires)
    doc = codec.decode(env.raw)
    unsigned = {k: v for k, v in doc.items() if k != "s"}
    assert envelope._unsigned_bytes(doc, env.raw) == codec.encode(unsigned)


def test_a_built_body_equals_a_constructed_one() -> None:
    area = Area("MX-OAX", "Centro", (17_060_000, -96_725_000, 2_000))
    alert = Alert(headline="Redada", areas=(area, Area("MX")), severity="severe", language="es")
    assert Alert.from_wire(alert.to_wire()) == alert
    assert hash(Alert.from_wire(alert.to_wire())) == hash(alert)


def test_the_builder_refuses_a_wrong_number_of_values() -> None:
    build = fields.frozen_builder(Area)
    assert build("MX", "", None) == Area("MX")
    with pytest.raises(TypeError):  # a generated function of exactly one argument per field
        build("MX", "")
    with pytest.raises(TypeError):
        build("MX", "", None, "extra")


AREA_VARIANTS = [
    {"region": "MX"},
    {"region": "*"},
    {"region": "MX-OAX", "desc": "Centro histórico"},
    {"region": "mx"},
    {"region": "MX-OAXX"},
    {"region": ""},
    {"region": 5},
    {"desc": "sin región"},
    {"region": "MX", "desc": "a\nb"},
    {"region": "MX", "desc": "x" * 201},
    {"region": "MX", "desc": "a\u00a0b"},
    {"region": "MX", "desc": b"bytes"},
    {"region": "MX", "circle": [17_060_000, -96_725_000, 2_000]},
    {"region": "MX", "circle": [1, 2, 0]},
    {"region": "MX", "circle": [True, 2, 3]},
    {"region": "MX", "circle": [1, 2]},
    {"region": "MX", "circle": (1, 2, 3)},
    {"region": "MX", "circle": [90_000_001, 0, 1]},
    {"region": "MX", "circle": None},
    {"region": "MX", "other": 1},
    ["MX"],
]


@pytest.mark.parametrize("value", AREA_VARIANTS)
def test_the_plain_area_shortcut_never_accepts_what_the_full_check_refuses(value: object) -> None:
    try:
        full: Area | None = Area.from_wire(value, "alert.areas[0]")
    except BadField:
        full = None
    quick = alert_module._plain_area(value)
    assert quick is None or quick == full


def test_ordinary_areas_take_the_shortcut() -> None:
    for value in (AREA_VARIANTS[0], AREA_VARIANTS[1], AREA_VARIANTS[2], AREA_VARIANTS[12]):
        assert alert_module._plain_area(value) == Area.from_wire(value, "alert.areas[0]")


DEFAULT_SPELLED_OUT: list[dict[str, object]] = [
    {"description": ""},
    {"instruction": ""},
    {"contact": ""},
    {"references": []},
    {"effective": 0},
    {"language": None},
    {"areas": {"desc": ""}},
    {"areas": {"circle": None}},
]


@given(alerts(), st.sampled_from(DEFAULT_SPELLED_OUT), st.booleans())
def test_a_plain_alert_wire_is_exactly_its_alerts_wire(
    alert: Alert, spelled: dict[str, object], extend: bool
) -> None:
    """``alert.wire_is_plain`` lets ``decode`` skip building ``to_wire()`` for the
    compare that refuses default-valued fields: where it says yes, the compare
    would have passed; and a default spelled out is never called plain."""
    wire = alert.to_wire() | ({"ext": {"future": 1}} if extend else {})
    assert wire_is_plain(wire)
    assert Alert.from_wire(wire).to_wire() == fields.without_extensions(wire)
    if "areas" in spelled:
        changed = wire | {"areas": [wire["areas"][0] | spelled["areas"]]}  # type: ignore[operator]
    else:
        changed = wire | spelled
    try:
        built = Alert.from_wire(changed)
    except ProtocolError:
        return  # refused already: nothing to compare
    assert not wire_is_plain(changed)
    assert built.to_wire() != fields.without_extensions(changed)  # the compare still refuses it


def test_reread_gives_what_decode_gave_and_refuses_bytes_that_changed_on_disk() -> None:
    """``reread`` (a node's start) skips only the signature, which was checked when
    the envelope was stored: every kind reads back as ``decode`` read it, and a
    byte changed since (a damaged disk) no longer hashes to the stored id."""
    for name, env in all_envelopes().items():
        assert reread(env.raw, stored_id=env.id) == decode(env.raw, now=env.created, check_time=False), name
        damaged = bytearray(env.raw)
        damaged[len(damaged) // 2] ^= 0x01
        with pytest.raises(ProtocolError):
            reread(bytes(damaged), stored_id=env.id)
    with pytest.raises(Malformed, match="do not hash to their id"):
        env = next(iter(all_envelopes().values()))
        reread(env.raw, stored_id=bytes(32))
