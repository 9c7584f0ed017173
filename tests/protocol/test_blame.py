"""Which rejections blame the sender (SPEC §8, "Blame only what a peer did").

The rule is data in protocol/errors.py; the decoding order (docs/protocol.md
§4.3) makes sure a forgery is always reported as one, whatever its age or type,
so a relay can never pass unverified bytes off as merely expired."""

from __future__ import annotations

from typing import Any

import pytest

from protocol import ProtocolError, decode, errors
from tests.protocol.envelopes import ALERT, ALICE, HOUR, NOW, forge, plain_map


def _code(raw: bytes, now: int = NOW) -> str:
    with pytest.raises(ProtocolError) as info:
        decode(raw, now=now)
    return info.value.code


def _flip_signature(raw: bytes) -> bytes:
    forged = bytearray(raw)
    forged[raw.index(b"\xa1s\xc4\x40") + 4 + 10] ^= 0x01
    return bytes(forged)


def test_the_rule_as_data() -> None:
    # Exact on purpose: a new code that blames (or a subclass that inherits
    # blame from BadField) must be a decision, made here and in the docs.
    assert {"too-large", "malformed", "not-canonical", "bad-field", "bad-signature", "bad-frame"} == errors.BLAMED_CODES
    assert {"expired", "from-the-future", "unknown-type", "unsupported-version"} <= errors.SILENT_CODES
    assert {cls.code for cls in errors.ERROR_CLASSES} == set(errors.ERROR_CODES)  # none left out
    assert set(errors.ERROR_CODES) == errors.BLAMED_CODES | errors.SILENT_CODES
    assert not errors.BLAMED_CODES & errors.SILENT_CODES
    assert all(errors.blames_sender(cls.code) is cls.blames_sender for cls in errors.ERROR_CLASSES)
    assert not errors.blames_sender("some-code-from-a-newer-version")
    assert errors.BadCiphertext("x").blames_sender is False  # relays cannot open sealed bodies


def _signed(kind: str = "alert", body: Any = None, **times: int) -> bytes:
    return forge(ALICE, plain_map(ALICE, kind, ALERT.to_wire() if body is None else body, **times))


@pytest.mark.parametrize(
    ("raw", "now", "code"),
    [
        (_signed(created=NOW - 2 * HOUR, expires=NOW - HOUR), NOW, "expired"),
        (_signed(created=NOW + HOUR, expires=NOW + 2 * HOUR), NOW, "from-the-future"),
        (_signed("petition", {"signatures": 2}), NOW, "unknown-type"),
        (_signed("petition", {"signatures": 2}, expires=0), NOW, "unknown-type"),  # no v1 lifetime rule
        (
            _signed("petition", {"signatures": 2}, created=NOW - 2 * HOUR, expires=NOW - HOUR),
            NOW,
            "unknown-type",
        ),
    ],
)
def test_refusals_of_time_and_version_are_silent_when_the_signature_holds(raw: bytes, now: int, code: str) -> None:
    assert _code(raw, now) == code
    assert not errors.blames_sender(code)


@pytest.mark.parametrize(
    "raw",
    [
        _signed(created=NOW - 2 * HOUR, expires=NOW - HOUR),
        _signed(created=NOW + HOUR, expires=NOW + 2 * HOUR),
        _signed("petition", {"signatures": 2}),
        _signed("petition", {"signatures": 2}, expires=0),
    ],
)
def test_a_forged_signature_is_blamed_however_old_or_new_the_envelope(raw: bytes) -> None:
    assert _code(_flip_signature(raw)) == "bad-signature"
    assert errors.blames_sender("bad-signature")


def test_a_well_formed_region_unknown_to_the_catalogue_is_accepted() -> None:
    body = ALERT.to_wire() | {"areas": [{"region": "XZ-QQQ"}, {"region": "XX"}]}
    env = decode(_signed(body=body), now=NOW)
    assert [a.region for a in env.body.areas] == ["XZ-QQQ", "XX"]  # type: ignore[union-attr]


def test_a_malformed_region_is_blamed() -> None:
    body = ALERT.to_wire() | {"areas": [{"region": "MX_OAX"}]}
    assert _code(_signed(body=body)) == "bad-field"
    assert errors.blames_sender("bad-field")


def test_docs_state_the_same_rule() -> None:
    """docs/protocol.md §9 has a "blames sender" column; it must say what errors.py does."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text(encoding="utf-8")
    for cls in errors.ERROR_CLASSES:
        row = next(line for line in text.splitlines() if line.startswith(f"| `{cls.code}` | `{cls.__name__}` |"))
        assert row.endswith(f"| {'yes' if cls.blames_sender else 'no'} |"), row
