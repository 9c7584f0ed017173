"""Clock window, lifetimes, body semantics and field-naming messages (SPEC §3, §8)."""

from __future__ import annotations

from typing import Any

import pytest

from protocol import (
    MAX_LIFETIME_MS,
    MAX_SKEW_MS,
    Ack,
    Alert,
    Area,
    NodeRecord,
    ProtocolError,
    Revoke,
    Vouch,
    decode,
    rotation_payload,
    seal_envelope,
    sign_envelope,
)
from protocol import errors as err
from protocol.signing import PURPOSE_ENVELOPE, PURPOSE_ROTATE, sign
from tests.protocol.envelopes import (
    ALERT,
    ALICE,
    BOB,
    CAROL,
    HOUR,
    MALLORY,
    NOW,
    RESTRICTED,
    all_envelopes,
    envelope_map,
    forge,
    plain_map,
)
from tests.strategies import deterministic_random

DAY = 24 * HOUR


def _raises(code: str, data: bytes, now: int = NOW, **kwargs: Any) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode(data, now=now, **kwargs)
    assert info.value.code == code, info.value
    return info.value


# -------------------------------------------------------------------- clock


def test_created_up_to_ten_minutes_in_the_future_is_accepted() -> None:
    env = sign_envelope(ALICE, ALERT, created=NOW + MAX_SKEW_MS, expires=NOW + HOUR)
    assert decode(env.raw, now=NOW) == env


def test_created_more_than_ten_minutes_in_the_future_is_rejected() -> None:
    env = sign_envelope(ALICE, ALERT, created=NOW + MAX_SKEW_MS + 1, expires=NOW + HOUR)
    error = _raises("from-the-future", env.raw)
    assert error.field == "c"
    assert isinstance(error, err.FromTheFuture)


def test_expired_is_rejected_but_readable_from_the_store() -> None:
    env = sign_envelope(ALICE, ALERT, created=NOW, expires=NOW + HOUR)
    assert decode(env.raw, now=NOW + HOUR) == env  # expiry instant itself still valid
    assert _raises("expired", env.raw, now=NOW + HOUR + 1).field == "x"
    # check_time=False: an old stored envelope is still readable (and still verified)
    assert decode(env.raw, now=NOW + 365 * DAY, check_time=False) == env
    future = sign_envelope(ALICE, ALERT, created=NOW + DAY, expires=NOW + 2 * DAY)
    assert decode(future.raw, now=NOW, check_time=False) == future
    flipped = bytearray(env.raw)
    flipped[-70] ^= 1
    with pytest.raises(ProtocolError):
        decode(bytes(flipped), now=NOW + 365 * DAY, check_time=False)


def test_never_expiring_types_may_carry_x_zero() -> None:
    for name in ("vouch", "revoke", "node"):
        env = all_envelopes()[name]
        assert env.expires == 0
        assert decode(env.raw, now=NOW + 10 * 365 * DAY) == env  # never expires


def test_alert_and_ack_with_x_zero_are_rejected() -> None:
    for kind, body in (("alert", ALERT), ("ack", Ack(bytes(32), "seen"))):
        error = _raises("bad-field", forge(ALICE, plain_map(ALICE, kind, body.to_wire(), expires=0)))
        assert error.field == "x"
        with pytest.raises(err.BadField):
            sign_envelope(ALICE, body, created=NOW, expires=0)


def test_lifetime_limits() -> None:
    assert (
        sign_envelope(ALICE, ALERT, created=NOW, expires=NOW + MAX_LIFETIME_MS).expires
        == NOW + MAX_LIFETIME_MS
    )
    with pytest.raises(err.BadField, match="90 days"):
        sign_envelope(ALICE, ALERT, created=NOW, expires=NOW + MAX_LIFETIME_MS + 1)
    too_long = forge(ALICE, plain_map(ALICE, "alert", ALERT.to_wire(), expires=NOW + MAX_LIFETIME_MS + 1))
    assert "90 days" in _raises("bad-field", too_long, check_time=False).message
    for expires in (NOW, NOW - 1):
        with pytest.raises(err.BadField, match="after creation"):
            sign_envelope(ALICE, ALERT, created=NOW, expires=expires)
    vouch = Vouch(BOB.sign_public, BOB.enc_public, "Bob")
    with pytest.raises(err.BadField):
        sign_envelope(ALICE, vouch, created=NOW, expires=NOW + MAX_LIFETIME_MS + 1)
    assert sign_envelope(ALICE, vouch, created=NOW, expires=NOW + DAY).expires == NOW + DAY


# ---------------------------------------------------------------- semantics


def test_compromised_revoke_only_for_the_author_itself() -> None:
    own = sign_envelope(ALICE, Revoke(ALICE.sign_public, compromised=True), created=NOW, expires=0)
    assert isinstance(own.body, Revoke) and own.body.compromised
    with pytest.raises(err.BadField) as info:
        sign_envelope(MALLORY, Revoke(ALICE.sign_public, compromised=True), created=NOW, expires=0)
    assert info.value.field == "revoke.subject"
    forged = forge(MALLORY, plain_map(MALLORY, "revoke", {"compromised": True, "subject": ALICE.sign_public}))
    assert _raises("bad-field", forged).field == "revoke.subject"


def test_withdrawing_a_vouch_for_another_is_fine_but_not_for_self() -> None:
    assert sign_envelope(ALICE, Revoke(BOB.sign_public, reason="left"), created=NOW, expires=0)
    with pytest.raises(err.BadField) as info:
        sign_envelope(ALICE, Revoke(ALICE.sign_public), created=NOW, expires=0)
    assert info.value.field == "revoke.subject"


def test_vouch_for_self_is_rejected() -> None:
    with pytest.raises(err.BadField) as info:
        sign_envelope(ALICE, Vouch(ALICE.sign_public, ALICE.enc_public, "me"), created=NOW, expires=0)
    assert info.value.field == "vouch.subject"
    body = Vouch(ALICE.sign_public, ALICE.enc_public, "me").to_wire()
    assert _raises("bad-field", forge(ALICE, plain_map(ALICE, "vouch", body))).field == "vouch.subject"


def _rotation(new_author: Any, old: Any, created: int, prev_sig: bytes | None = None) -> NodeRecord:
    sig = prev_sig or sign(old.signing_key, PURPOSE_ROTATE, rotation_payload(new_author.sign_public, created))
    return NodeRecord("Colectivo", new_author.enc_public, bytes(32), (), 0, old.sign_public, sig)


def test_key_rotation_with_a_valid_prev_sig_is_accepted() -> None:
    env = sign_envelope(CAROL, _rotation(CAROL, ALICE, NOW), created=NOW, expires=0)
    assert isinstance(env.body, NodeRecord) and env.body.prev == ALICE.sign_public
    assert decode(env.raw, now=NOW) == env


@pytest.mark.parametrize(
    "prev_sig",
    [
        # MALLORY claims to succeed ALICE, signing the handover with its own key
        sign(MALLORY.signing_key, PURPOSE_ROTATE, rotation_payload(MALLORY.sign_public, NOW)),
        # ALICE's handover to CAROL replayed by MALLORY
        sign(ALICE.signing_key, PURPOSE_ROTATE, rotation_payload(CAROL.sign_public, NOW)),
        # ALICE's handover to MALLORY, but for another time
        sign(ALICE.signing_key, PURPOSE_ROTATE, rotation_payload(MALLORY.sign_public, NOW - 1)),
        # ALICE's envelope signature (other purpose) over the same payload
        sign(ALICE.signing_key, PURPOSE_ENVELOPE, rotation_payload(MALLORY.sign_public, NOW)),
        bytes(64),
    ],
)
def test_key_rotation_with_a_forged_prev_sig_is_rejected(prev_sig: bytes) -> None:
    record = _rotation(MALLORY, ALICE, NOW, prev_sig)
    with pytest.raises(err.BadSignature):
        sign_envelope(MALLORY, record, created=NOW, expires=0)
    forged = forge(MALLORY, plain_map(MALLORY, "node", record.to_wire(), expires=0))
    _raises("bad-signature", forged)


def test_prev_and_prev_sig_come_together() -> None:
    base = _rotation(CAROL, ALICE, NOW).to_wire()
    for drop in ("prev", "prev_sig"):
        body = {k: v for k, v in base.items() if k != drop}
        assert (
            _raises("bad-field", forge(CAROL, plain_map(CAROL, "node", body, expires=0))).field
            == "node.prev_sig"
        )


def test_restricted_alerts_must_be_sealed_and_sealed_alerts_restricted() -> None:
    with pytest.raises(err.BadField, match="sealed"):
        sign_envelope(ALICE, RESTRICTED, created=NOW, expires=NOW + HOUR)
    forged = forge(ALICE, plain_map(ALICE, "alert", RESTRICTED.to_wire()))
    assert _raises("bad-field", forged).field == "alert.scope"
    with pytest.raises(err.BadField):
        seal_envelope(
            ALICE,
            ALERT,
            created=NOW,
            expires=NOW + HOUR,
            recipients=[BOB.enc_public],
            random=deterministic_random(b"x"),
        )


def test_only_alerts_and_acks_may_be_sealed() -> None:
    sealed = envelope_map(all_envelopes()["sealed-alert"])
    for kind in ("vouch", "revoke", "node"):
        assert _raises("bad-field", forge(ALICE, sealed | {"t": kind})).field == "b"


def test_default_valued_optional_fields_are_not_canonical() -> None:
    """Optional fields at their default are omitted: one encoding per body."""
    for kind, body, extra in [
        ("alert", ALERT.to_wire(), {"references": []}),
        ("alert", ALERT.to_wire(), {"contact": ""}),
        ("alert", ALERT.to_wire(), {"effective": 0}),
        ("alert", ALERT.to_wire() | {"areas": [{"region": "MX", "desc": ""}]}, {}),
        ("ack", {"alert": bytes(32), "state": "seen"}, {"note": ""}),
        ("revoke", {"subject": BOB.sign_public}, {"compromised": False}),
        ("node", {"enc": bytes(32), "name": "n", "tls": bytes(32)}, {"minor": 0}),
        ("node", {"enc": bytes(32), "name": "n", "tls": bytes(32)}, {"addrs": []}),
    ]:
        data = forge(ALICE, plain_map(ALICE, kind, body | extra))
        assert _raises("bad-field", data).field == "b", (kind, extra)


def test_required_enumerations_must_be_present() -> None:
    for key in ("status", "msg_type", "scope", "event", "urgency", "severity", "certainty", "language"):
        body = {k: v for k, v in ALERT.to_wire().items() if k != key}
        error = _raises("bad-field", forge(ALICE, plain_map(ALICE, "alert", body)))
        assert error.field in (f"alert.{key}", "b"), error


# ----------------------------------------------------------- field messages


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"areas": [{"region": "MX-OAXX"}]}, "alert.areas[0].region", "did you mean MX-OAX"),
        ({"areas": [{"region": "MX"}, {"region": "mx-oax"}]}, "alert.areas[1].region", "MX-OAX"),
        ({"areas": [{"region": "MX", "circle": [91_000_000, 0, 5]}]}, "alert.areas[0].circle", "range"),
        ({"areas": [{"region": "MX", "circle": [1, 2]}]}, "alert.areas[0].circle", "lat"),
        ({"areas": [{"region": "MX", "shape": "x"}]}, "alert.areas[0]", "unknown field"),
        ({"areas": []}, "alert.areas", "1 to 32"),
        ({"headline": " "}, "alert.headline", "empty"),
        ({"headline": "x" * 161}, "alert.headline", "160"),
        ({"severity": "catastrophic"}, "alert.severity", "extreme"),
        ({"language": "english!"}, "alert.language", "BCP 47"),
        ({"msg_type": "update"}, "alert.references", "reference"),
        ({"references": [b"x"]}, "alert.references", "32-byte"),
        ({"references": [bytes(32), bytes(32)]}, "alert.references", "duplicate"),
        ({"effective": -1}, "alert.effective", "integer"),
        ({"colour": "red"}, "alert", "colour"),
    ],
)
def test_messages_name_the_field(change: dict[str, Any], field: str, words: str) -> None:
    data = forge(ALICE, plain_map(ALICE, "alert", ALERT.to_wire() | change))
    error = _raises("bad-field", data)
    assert error.field == field
    assert error.message.startswith(f"{field}: ")
    assert words in error.message


FORGING = {
    "newline": "\n",
    "carriage return": "\r",
    "tab": "\t",
    "escape (ANSI)": "\x1b",
    "bell": "\x07",
    "DEL": "\x7f",
    "C1 NEL": "\x85",
    "C1 CSI": "\x9b",
    "line separator": "\u2028",
    "paragraph separator": "\u2029",
    "LRE": "\u202a",
    "RLO": "\u202e",
    "LRI": "\u2066",
    "PDI": "\u2069",
}
MULTI_LINE_KEEPS = {"newline", "tab"}


@pytest.mark.parametrize("char", FORGING.values(), ids=FORGING.keys())
@pytest.mark.parametrize(
    ("kind", "field", "build"),
    [
        ("alert", "alert.headline", lambda t: ALERT.to_wire() | {"headline": f"Raid{t}ok"}),
        ("alert", "alert.contact", lambda t: ALERT.to_wire() | {"contact": f"+52{t}55"}),
        (
            "alert",
            "alert.areas[0].desc",
            lambda t: ALERT.to_wire() | {"areas": [{"region": "MX", "desc": f"a{t}b"}]},
        ),
        (
            "vouch",
            "vouch.name",
            lambda t: Vouch(BOB.sign_public, BOB.enc_public, "Bob").to_wire() | {"name": f"B{t}"},
        ),
        (
            "node",
            "node.name",
            lambda t: NodeRecord("n", bytes(32), bytes(32), ()).to_wire() | {"name": f"N{t}x"},
        ),
    ],
)
def test_single_line_fields_refuse_controls_separators_and_bidi_overrides(
    char: str, kind: str, field: str, build: Any
) -> None:
    """These would forge rows in ``alert list``, ``watch`` or a log: a newline starts
    a fake row, CR or ANSI rewrite the current one, RLO shows text backwards."""
    error = _raises(
        "bad-text",
        forge(ALICE, plain_map(ALICE, kind, build(char), expires=0 if kind != "alert" else NOW + HOUR)),
    )
    assert error.field == field and "U+" in error.message
    assert isinstance(error, err.BadField)  # still a bad field, with its own code


@pytest.mark.parametrize("char", FORGING.values(), ids=FORGING.keys())
@pytest.mark.parametrize("key", ["description", "instruction"])
def test_multi_line_fields_keep_newline_and_tab_only(char: str, key: str) -> None:
    data = forge(ALICE, plain_map(ALICE, "alert", ALERT.to_wire() | {key: f"Line one{char}line two"}))
    name = next(k for k, v in FORGING.items() if v == char)
    if name in MULTI_LINE_KEEPS:
        assert getattr(decode(data, now=NOW).body, key) == f"Line one{char}line two"
    else:
        assert _raises("bad-text", data).field == f"alert.{key}"


def test_right_to_left_text_and_marks_are_still_welcome() -> None:
    """Arabic, Hebrew and the plain direction marks (LRM, RLM, ALM) are ordinary text."""
    headline = "مداهمة في الحي \u200f — פשיטה \u200e — \u061c"
    data = forge(ALICE, plain_map(ALICE, "alert", ALERT.to_wire() | {"headline": headline}))
    body = decode(data, now=NOW).body
    assert isinstance(body, Alert) and body.headline == headline


def test_constructors_validate_with_the_same_messages() -> None:
    with pytest.raises(err.BadField) as info:
        Alert(headline="h", areas=(Area("MX"), Area("MX-OAXX")))
    assert info.value.field == "alert.areas[1].region"
    with pytest.raises(err.BadField) as ack:
        Ack(b"short", "seen")
    assert ack.value.field == "ack.alert"
    with pytest.raises(err.BadField) as node:
        NodeRecord("n", bytes(32), bytes(32), ("has space:1",))
    assert node.value.field == "node.addrs[0]"
