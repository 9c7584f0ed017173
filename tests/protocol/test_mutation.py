"""SPEC §8 "No forgery": any single flipped bit or truncation of a valid envelope is rejected.

Two complementary checks: an exhaustive loop over every bit and every prefix of
one fixed envelope per type (sealed ones included), and a Hypothesis property over
freshly drawn envelopes and bit positions (2000 examples).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import ProtocolError, decode, seal_envelope, sign_envelope
from protocol.keys import Identity
from tests.protocol.envelopes import NOW, all_envelopes
from tests.strategies import Signable, deterministic_random, sealable, signable


def _flip(raw: bytes, bit: int) -> bytes:
    data = bytearray(raw)
    data[bit // 8] ^= 1 << (bit % 8)
    return bytes(data)


def _rejected(data: bytes, now: int) -> None:
    with pytest.raises(ProtocolError):
        decode(data, now=now)
    with pytest.raises(ProtocolError):
        decode(data, now=now, check_time=False)


@pytest.mark.parametrize("name", sorted(all_envelopes()))
def test_every_single_bit_flip_is_rejected(name: str) -> None:
    raw = all_envelopes()[name].raw
    assert decode(raw, now=NOW + 2).raw == raw
    for bit in range(len(raw) * 8):
        _rejected(_flip(raw, bit), NOW + 2)


@pytest.mark.parametrize("name", sorted(all_envelopes()))
def test_every_truncation_and_extension_is_rejected(name: str) -> None:
    raw = all_envelopes()[name].raw
    for length in range(len(raw)):
        _rejected(raw[:length], NOW + 2)
    for extra in (b"\x00", b"\xc0", raw[-1:], raw):
        _rejected(raw + extra, NOW + 2)


@pytest.mark.slow
@settings(max_examples=max(2000, settings.default.max_examples))  # more under HYPOTHESIS_PROFILE=thorough
@given(signable(), st.data())
def test_bit_flip_property(args: Signable, data: st.DataObject) -> None:
    raw = sign_envelope(args.identity, args.body, created=args.created, expires=args.expires).raw
    bit = data.draw(st.integers(0, len(raw) * 8 - 1), label="bit")
    _rejected(_flip(raw, bit), args.created)
    cut = data.draw(st.integers(0, len(raw) - 1), label="truncate at")
    _rejected(raw[:cut], args.created)


@pytest.mark.slow
@settings(max_examples=max(300, settings.default.max_examples // 5))
@given(sealable(), st.data())
def test_sealed_bit_flip_property(case: tuple[Signable, list[Identity]], data: st.DataObject) -> None:
    args, recipients = case
    raw = seal_envelope(
        args.identity,
        args.body,  # type: ignore[arg-type]
        created=args.created,
        expires=args.expires,
        recipients=[r.enc_public for r in recipients],
        random=deterministic_random(b"flip"),
    ).raw
    bit = data.draw(st.integers(0, len(raw) * 8 - 1), label="bit")
    _rejected(_flip(raw, bit), args.created)
    cut = data.draw(st.integers(0, len(raw) - 1), label="truncate at")
    _rejected(raw[:cut], args.created)
