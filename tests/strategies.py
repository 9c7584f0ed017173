"""Shared Hypothesis strategies for the protocol's values (STYLE: Tahoe-LAFS).

Every strategy here produces values the protocol accepts, so a property test can
say "for every valid X, ..." and other suites (mesh, node) can reuse them.
``signable()`` draws a complete, self-consistent set of ``sign_envelope``
arguments: an author, a body valid for that author (a compromised revoke names the
author itself, a rotation record carries a real ``prev_sig``) and a time window.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from dataclasses import dataclass, replace

import pycountry
from hypothesis import strategies as st

from protocol import (
    ACK_STATES,
    CERTAINTIES,
    EVENTS,
    MAX_LIFETIME_MS,
    SEVERITIES,
    STATUSES,
    URGENCIES,
    VOUCH_LEVELS,
    Ack,
    Alert,
    Area,
    Endorsement,
    NodeRecord,
    Objection,
    Proposal,
    Release,
    Revoke,
    Statement,
    Vouch,
    rotation_payload,
)
from protocol import alert as alert_mod
from protocol import bodies as bodies_mod
from protocol.keys import Identity
from protocol.signing import PURPOSE_ROTATE, sign
from tests.vectors.generate import shake_stream

Body = Alert | Ack | Vouch | Revoke | NodeRecord

# Every country, a deterministic sample of ~1 in 20 subdivisions (all levels, so
# some have parent subdivisions), a few well-known ones, and "everywhere".
_SUBDIVISIONS = sorted(s.code for s in pycountry.subdivisions)
REGION_SAMPLE: tuple[str, ...] = tuple(
    sorted(
        {"*", "MX-OAX", "FR-75C", "GB-LND", "CO-ANT", "US-CA"}
        | {c.alpha_2 for c in pycountry.countries}
        | set(_SUBDIVISIONS[::20])
    )
)
LANGUAGES = ("en", "es", "es-MX", "pt-BR", "fr", "ar", "zh-Hant-TW", "qu")

# ----------------------------------------------------------------- primitives

identities: st.SearchStrategy[Identity] = st.binary(min_size=64, max_size=64).map(Identity.from_random)
keys32 = st.binary(min_size=32, max_size=32)
ids32 = st.binary(min_size=32, max_size=32)
regions = st.sampled_from(REGION_SAMPLE)

# Never controls, line/paragraph separators or bidi overrides (protocol.fields.text).
_LINE = st.characters(
    blacklist_categories=("Cs", "Cc", "Zl", "Zp"),
    blacklist_characters="\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069",
)
_CHARS = _LINE | st.sampled_from("\n\t")


def text(max_chars: int, *, required: bool = False, single_line: bool = False) -> st.SearchStrategy[str]:
    """NFC text without control characters (tab and newline allowed unless single-line)."""
    chars = _LINE if single_line else _CHARS
    strategy = (
        st.text(chars, min_size=1 if required else 0, max_size=max_chars)
        .map(lambda s: unicodedata.normalize("NFC", s))
        .filter(lambda s: len(s) <= max_chars)
    )
    if required:
        strategy = strategy.filter(lambda s: bool(s.strip()))
    return strategy


def circles() -> st.SearchStrategy[tuple[int, int, int]]:
    return st.tuples(
        st.integers(-90_000_000, 90_000_000),
        st.integers(-180_000_000, 180_000_000),
        st.integers(1, alert_mod.MAX_RADIUS_M),
    )


def areas() -> st.SearchStrategy[Area]:
    return st.builds(
        Area,
        region=regions,
        desc=text(alert_mod.MAX_AREA_DESC, single_line=True),
        circle=st.none() | circles(),
    )


# --------------------------------------------------------------------- bodies


@st.composite
def alerts(draw: st.DrawFn, scope: st.SearchStrategy[str] | None = None) -> Alert:
    msg_type = draw(st.sampled_from(alert_mod.MSG_TYPES))
    references = draw(st.lists(ids32, min_size=1 if msg_type != "alert" else 0, max_size=3, unique=True))
    return Alert(
        headline=draw(text(alert_mod.MAX_HEADLINE, required=True, single_line=True)),
        areas=tuple(draw(st.lists(areas(), min_size=1, max_size=4))),
        severity=draw(st.sampled_from(SEVERITIES)),
        status=draw(st.sampled_from(STATUSES)),
        msg_type=msg_type,
        references=tuple(references),
        scope=draw(scope if scope is not None else st.sampled_from(("public", "members"))),
        event=draw(st.sampled_from(EVENTS)),
        urgency=draw(st.sampled_from(URGENCIES)),
        certainty=draw(st.sampled_from(CERTAINTIES)),
        description=draw(text(300)),
        instruction=draw(text(200)),
        contact=draw(text(80, single_line=True)),
        language=draw(st.sampled_from(LANGUAGES)),
        effective=draw(st.integers(0, 2**62) | st.just(0)),
    )


def restricted_alerts() -> st.SearchStrategy[Alert]:
    return alerts(scope=st.just("restricted"))


def acks() -> st.SearchStrategy[Ack]:
    return st.builds(Ack, alert=ids32, state=st.sampled_from(ACK_STATES), note=text(bodies_mod.MAX_NOTE))


def vouches(subject: st.SearchStrategy[bytes] = keys32) -> st.SearchStrategy[Vouch]:
    return st.builds(
        Vouch,
        subject=subject,
        enc=keys32,
        name=text(bodies_mod.MAX_NAME, required=True, single_line=True),
        level=st.sampled_from(VOUCH_LEVELS),
    )


def revokes(subject: st.SearchStrategy[bytes] = keys32) -> st.SearchStrategy[Revoke]:
    """Withdrawn vouches (not ``compromised``: that needs the author, see ``signable``)."""
    return st.builds(Revoke, subject=subject, reason=text(bodies_mod.MAX_REASON))


_HOST = st.from_regex(r"\A[a-z0-9][a-z0-9.-]{0,40}\Z", fullmatch=True)
addresses = st.builds(lambda h, p: f"{h}:{p}", _HOST, st.integers(1, 65535))


def node_records() -> st.SearchStrategy[NodeRecord]:
    """Records without rotation (``prev``/``prev_sig`` depend on author and time)."""
    return st.builds(
        NodeRecord,
        name=text(bodies_mod.MAX_NAME, required=True, single_line=True),
        enc=keys32,
        tls=keys32,
        addresses=st.lists(addresses, max_size=bodies_mod.MAX_ADDRESSES).map(tuple),
        minor=st.integers(0, 1_000_000),
        next_key=st.none() | keys32,
    )


# -------------------------------------------------------------- whole envelopes

created_times = st.integers(1, 2**50)


@dataclass(frozen=True)
class Signable:
    """Arguments for ``sign_envelope`` that the decoder will accept at ``created``."""

    identity: Identity
    body: Body
    created: int
    expires: int


@st.composite
def signable(
    draw: st.DrawFn, kinds: tuple[str, ...] = ("alert", "ack", "vouch", "revoke", "node")
) -> Signable:
    identity = draw(identities)
    me = identity.sign_public
    kind = draw(st.sampled_from(kinds))
    created = draw(created_times)
    lifetime = st.integers(1, MAX_LIFETIME_MS)
    expires = created + draw(lifetime)
    others = keys32.filter(lambda k: k != me)
    body: Body
    if kind == "alert":
        body = draw(alerts())
    elif kind == "ack":
        body = draw(acks())
    elif kind == "vouch":
        body = draw(vouches(others))
    elif kind == "revoke":
        body = draw(revokes(others) | st.builds(Revoke, st.just(me), st.just(True), text(50)))
    else:
        record = draw(node_records())
        change = draw(st.sampled_from(("none", "hand-over", "recovery")))
        if change == "hand-over":
            old = draw(identities.filter(lambda i: i.sign_public != me))
            prev_sig = sign(old.signing_key, PURPOSE_ROTATE, rotation_payload(me, created))
            record = replace(record, prev=old.sign_public, prev_sig=prev_sig)
        elif change == "recovery":
            record = replace(record, recovers=draw(others), old_compromised=draw(st.booleans()))
        body = record
    if kind in ("vouch", "revoke", "node") and draw(st.booleans()):
        expires = 0  # these may live forever
    return Signable(identity, body, created, expires)


@st.composite
def sealable(draw: st.DrawFn) -> tuple[Signable, list[Identity]]:
    """A restricted alert or an ack plus 1-5 recipient identities."""
    identity = draw(identities)
    body: Alert | Ack = draw(restricted_alerts() | acks())
    created = draw(created_times)
    expires = created + draw(st.integers(1, MAX_LIFETIME_MS))
    recipients = draw(st.lists(identities, min_size=1, max_size=5, unique_by=lambda i: i.enc_public))
    return Signable(identity, body, created, expires), recipients


# ------------------------------------------- threshold release, k of n (docs/protocol.md §13)


deadlines = st.integers(10**12, 2**50)


@dataclass(frozen=True)
class Joint:
    """A proposal by ``endorsers[0]`` with its id, deadline and the statement every
    endorsement signs; ``signers`` endorse (at least ``threshold`` of them)."""

    endorsers: tuple[Identity, ...]
    proposal: Proposal
    proposal_id: bytes
    deadline: int
    signers: tuple[Identity, ...]

    @property
    def statement(self) -> Statement:
        return self.proposal.statement(self.proposal_id, self.deadline)

    def release(self, signers: tuple[Identity, ...] | None = None) -> Release:
        chosen = {i.sign_public for i in (self.signers if signers is None else signers)}
        statement = self.statement
        sigs = tuple(
            (i.sign_public, statement.sign(i.signing_key)) for i in self.endorsers if i.sign_public in chosen
        )
        p = self.proposal
        return Release(self.proposal_id, p.endorsers, p.threshold, p.life, self.deadline, sigs)


@st.composite
def joints(draw: st.DrawFn) -> Joint:
    endorsers = tuple(draw(st.lists(identities, min_size=2, max_size=5, unique_by=lambda i: i.sign_public)))
    threshold = draw(st.integers(1, len(endorsers)))
    drawn = draw(alerts(scope=st.sampled_from(("public", "members"))))
    alert = dataclasses.replace(drawn, msg_type="alert", references=())  # a release is a new alert
    proposal = Proposal(
        alert, tuple(i.sign_public for i in endorsers), threshold, draw(st.integers(1, 7 * 86_400_000))
    )
    count = draw(st.integers(threshold, len(endorsers)))
    signers = tuple(draw(st.permutations(endorsers))[:count])
    return Joint(endorsers, proposal, draw(ids32), draw(deadlines), signers)


def endorsements() -> st.SearchStrategy[Endorsement]:
    return st.builds(Endorsement, ids32, ids32, st.binary(min_size=64, max_size=64))


def objections() -> st.SearchStrategy[Objection]:
    return st.builds(Objection, ids32, ids32, text(500))


# ------------------------------------------------------------------ randomness


# A reproducible stand-in for ``os.urandom`` (successive bytes of SHAKE-256(seed)), the same
# stream the published test vectors are sealed with; ``seal_envelope`` takes any random(n).
deterministic_random = shake_stream


random_seeds = st.binary(min_size=1, max_size=16).map(deterministic_random)
