"""Every body type survives sign → encode → decode unchanged (SPEC §3.1, STYLE 9)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import (
    Alert,
    Envelope,
    Sealed,
    decode,
    encode,
    envelope_id,
    seal_envelope,
    sign_envelope,
    unseal,
)
from protocol.keys import Identity
from tests.strategies import Signable, deterministic_random, sealable, signable


def _check_round_trip(env: Envelope, args: Signable) -> Envelope:
    raw = encode(env)
    again = decode(raw, now=args.created)
    assert again == env
    assert again.raw == raw == env.raw
    assert again.id == envelope_id(raw) == env.id
    assert (again.author, again.created, again.expires) == (
        args.identity.sign_public,
        args.created,
        args.expires,
    )
    return again


@settings(max_examples=60)
@given(signable(("alert",)))
def test_alert_round_trip(args: Signable) -> None:
    env = sign_envelope(args.identity, args.body, created=args.created, expires=args.expires)
    again = _check_round_trip(env, args)
    assert again.body == args.body
    assert isinstance(again.body, Alert) and again.type == "alert"


@settings(max_examples=120)
@given(signable(("ack", "vouch", "revoke", "node")))
def test_other_bodies_round_trip(args: Signable) -> None:
    env = sign_envelope(args.identity, args.body, created=args.created, expires=args.expires)
    again = _check_round_trip(env, args)
    assert again.body == args.body
    assert again.type == args.body.kind


@settings(max_examples=40)
@given(sealable(), st.binary(min_size=1, max_size=8))
def test_sealed_round_trip_for_every_recipient(case: tuple[Signable, list[Identity]], seed: bytes) -> None:
    args, recipients = case
    env = seal_envelope(
        args.identity,
        args.body,  # type: ignore[arg-type]
        created=args.created,
        expires=args.expires,
        recipients=[r.enc_public for r in recipients],
        random=deterministic_random(seed),
    )
    again = _check_round_trip(env, args)
    assert isinstance(again.body, Sealed) and again.sealed
    assert len(again.body.slots) == len(recipients)
    for recipient in recipients:
        assert unseal(again, recipient) == args.body


@given(signable())
def test_signing_is_deterministic(args: Signable) -> None:
    """Ed25519 is deterministic, so the same inputs give the same id: a relay cannot
    tell two honest copies apart, and vectors are reproducible."""
    one = sign_envelope(args.identity, args.body, created=args.created, expires=args.expires)
    two = sign_envelope(args.identity, args.body, created=args.created, expires=args.expires)
    assert one.raw == two.raw and one.id == two.id


@settings(max_examples=20)
@given(sealable(), st.binary(min_size=1, max_size=8))
def test_sealing_is_reproducible_from_its_random_stream(
    case: tuple[Signable, list[Identity]], seed: bytes
) -> None:
    args, recipients = case
    keys = [r.enc_public for r in recipients]
    one, two = (
        seal_envelope(
            args.identity,
            args.body,  # type: ignore[arg-type]
            created=args.created,
            expires=args.expires,
            recipients=keys,
            random=deterministic_random(seed),
        )
        for _ in range(2)
    )
    assert one.raw == two.raw
