"""Threshold release, k of n (docs/protocol.md §13): the body types round-trip,
travel sealed only, and a released alert is accepted exactly when k distinct
named endorsers signed this alert's statement before the deadline. Any other
release is ``bad-endorsement``, which never blames the relay (SPEC §8); a
forgery of the envelope itself is still ``bad-signature`` and blamed."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import (
    Alert,
    Endorsement,
    Objection,
    Proposal,
    ProtocolError,
    Release,
    codec,
    decode,
    errors,
    seal_envelope,
    sign_envelope,
    sign_release,
    unseal,
)
from protocol.keys import Identity
from protocol.signing import PURPOSE_ENVELOPE, sign
from protocol.threshold import alert_hash, release_wire
from tests.protocol.envelopes import ALICE, BOB, CAROL, HOUR, MALLORY, NOW, threshold_envelopes
from tests.strategies import Joint, deterministic_random, endorsements, identities, joints, objections


def _code(call: Any) -> str:
    with pytest.raises(ProtocolError) as info:
        call()
    return info.value.code


def _release_raw(author: Identity, alert: Alert, release: Release, created: int, **times: int) -> bytes:
    """A release envelope signed by hand, so the decoder (not sign_release) judges it."""
    doc = {"a": author.sign_public, "b": release_wire(alert, release), "c": created, "t": "alert", "v": 1,
           "x": created + release.life} | times  # fmt: skip
    return codec.encode(doc | {"s": sign(author.signing_key, PURPOSE_ENVELOPE, codec.encode(doc))})


@settings(max_examples=25, deadline=None)
@given(joints())
def test_k_distinct_named_endorsements_release_and_every_node_can_check(joint: Joint) -> None:
    releaser = joint.endorsers[-1]
    created = joint.deadline - 1
    env = sign_release(releaser, joint.proposal.alert, joint.release(), created=created)
    again = decode(env.raw, now=created)
    assert again.id == env.id and again.body == joint.proposal.alert
    assert env.expires - env.created == joint.proposal.life


@settings(max_examples=25, deadline=None)
@given(joints())
def test_fewer_than_k_endorsements_are_refused_without_blame(joint: Joint) -> None:
    k = joint.proposal.threshold
    short = joint.release(joint.signers[: k - 1]) if k > 1 else None
    if short is None:  # k = 1: an empty list is not a release either
        short = dataclasses.replace(joint.release(), sigs=())
    raw = _release_raw(joint.endorsers[0], joint.proposal.alert, short, joint.deadline)
    assert _code(lambda: decode(raw, now=joint.deadline)) == "bad-endorsement"
    assert not errors.blames_sender("bad-endorsement")


@settings(max_examples=25, deadline=None)
@given(joints(), identities, st.data())
def test_an_endorsement_by_anyone_else_is_refused(
    joint: Joint, stranger: Identity, data: st.DataObject
) -> None:
    """A signature in an endorser's name by another key, or a signer not named."""
    release = joint.release()
    i = data.draw(st.integers(0, len(release.sigs) - 1))
    key, _ = release.sigs[i]
    forged_sig = joint.statement.sign(stranger.signing_key)
    forged = dataclasses.replace(release, sigs=(*release.sigs[:i], (key, forged_sig), *release.sigs[i + 1 :]))
    raw = _release_raw(joint.endorsers[0], joint.proposal.alert, forged, joint.deadline)
    if stranger.sign_public != key:
        assert _code(lambda: decode(raw, now=joint.deadline)) == "bad-endorsement"


@settings(max_examples=25, deadline=None)
@given(joints(), st.text(min_size=1, max_size=20).filter(str.isprintable))
def test_a_changed_alert_voids_the_endorsements(joint: Joint, extra: str) -> None:
    alert = joint.proposal.alert
    changed = dataclasses.replace(alert, headline=(extra + alert.headline)[:160])
    if alert_hash(changed.to_wire()) == alert_hash(alert.to_wire()):
        return
    raw = _release_raw(joint.endorsers[0], changed, joint.release(), joint.deadline)
    assert _code(lambda: decode(raw, now=joint.deadline)) == "bad-endorsement"


@settings(max_examples=15, deadline=None)
@given(joints())
def test_after_the_deadline_or_by_a_non_endorser_or_for_another_lifetime_is_refused(joint: Joint) -> None:
    alert, release, deadline = joint.proposal.alert, joint.release(), joint.deadline
    late = _release_raw(joint.endorsers[0], alert, release, deadline + 1)
    outsider = _release_raw(MALLORY, alert, release, deadline) if MALLORY not in joint.endorsers else late
    longer = _release_raw(joint.endorsers[0], alert, release, deadline, x=deadline + release.life + 1)
    assert _code(lambda: decode(late, now=deadline + 1)) == "bad-endorsement"
    assert _code(lambda: decode(outsider, now=deadline)) == "bad-endorsement"
    if release.life + 1 <= 90 * 24 * HOUR:
        assert _code(lambda: decode(longer, now=deadline)) == "bad-endorsement"


@settings(max_examples=25, deadline=None)
@given(joints())
def test_a_forged_release_envelope_is_still_blamed(joint: Joint) -> None:
    raw = bytearray(_release_raw(joint.endorsers[0], joint.proposal.alert, joint.release(), joint.deadline))
    raw[raw.index(b"\xa1s\xc4\x40") + 4 + 10] ^= 0x01
    assert _code(lambda: decode(bytes(raw), now=joint.deadline)) == "bad-signature"
    assert errors.blames_sender("bad-signature")


@settings(max_examples=20, deadline=None)
@given(joints(), endorsements(), objections())
def test_the_bodies_round_trip_sealed_to_the_endorsers(
    joint: Joint, endorsement: Endorsement, objection: Objection
) -> None:
    proposer = joint.endorsers[0]
    to = [i.enc_public for i in joint.endorsers]
    for body in (joint.proposal, endorsement, objection):
        assert type(body).from_wire(body.to_wire()) == body
        env = seal_envelope(proposer, body, created=NOW, expires=NOW + HOUR, recipients=to,
                            random=deterministic_random(b"t"))  # fmt: skip
        assert decode(env.raw, now=NOW).type == body.kind
        for reader in joint.endorsers:
            assert unseal(env, reader) == body
        assert (
            _code(lambda b=body: sign_envelope(proposer, b, created=NOW, expires=NOW + HOUR)) == "bad-field"
        )


def test_a_proposal_in_the_clear_is_refused_and_blamed() -> None:
    proposal = threshold_envelopes()["proposal"]
    body = unseal(proposal, BOB)
    doc = {"a": ALICE.sign_public, "b": body.to_wire(), "c": NOW, "t": "proposal", "v": 1, "x": NOW + HOUR}
    raw = codec.encode(doc | {"s": sign(ALICE.signing_key, PURPOSE_ENVELOPE, codec.encode(doc))})
    assert _code(lambda: decode(raw, now=NOW)) == "bad-field"


def test_the_proposer_is_one_of_the_endorsers() -> None:
    proposal = unseal(threshold_envelopes()["proposal"], BOB)
    assert isinstance(proposal, Proposal)
    env = seal_envelope(MALLORY, proposal, created=NOW, expires=NOW + HOUR, recipients=[BOB.enc_public],
                        random=deterministic_random(b"m"))  # fmt: skip
    assert _code(lambda: unseal(env, BOB)) == "bad-field"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"threshold": 0}, "proposal.threshold"),
        ({"threshold": 4}, "proposal.threshold"),
        ({"endorsers": [ALICE.sign_public]}, "proposal.endorsers"),
        ({"endorsers": [ALICE.sign_public, ALICE.sign_public]}, "proposal.endorsers"),
        ({"life": 0}, "proposal.life"),
        ({"surprise": 1}, "proposal"),
    ],
)
def test_proposal_limits_name_the_field(changes: dict[str, Any], field: str) -> None:
    proposal = unseal(threshold_envelopes()["proposal"], CAROL)
    with pytest.raises(ProtocolError) as info:
        Proposal.from_wire(proposal.to_wire() | changes)
    assert info.value.code == "bad-field" and info.value.field == field


def test_a_restricted_or_follow_up_alert_cannot_be_proposed() -> None:
    proposal = unseal(threshold_envelopes()["proposal"], CAROL)
    assert isinstance(proposal, Proposal)
    for alert in (
        dataclasses.replace(proposal.alert, scope="restricted"),
        dataclasses.replace(proposal.alert, msg_type="update", references=(bytes(32),)),
    ):
        with pytest.raises(ProtocolError):
            Proposal(alert, proposal.endorsers, 2, proposal.life)
