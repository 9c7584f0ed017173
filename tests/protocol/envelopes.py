"""A few fixed, valid envelopes (one per type, plus sealed ones) shared by the tests."""

from __future__ import annotations

from functools import cache
from typing import Any

from protocol import (
    Ack,
    Alert,
    Area,
    Endorsement,
    Envelope,
    NodeRecord,
    Objection,
    Proposal,
    Receipt,
    Release,
    Revoke,
    Vouch,
    codec,
    rotation_payload,
    seal_envelope,
    sign_envelope,
    sign_release,
)
from protocol.keys import Identity
from protocol.signing import PURPOSE_ENVELOPE, PURPOSE_ROTATE, sign
from tests.strategies import deterministic_random

NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z in Unix ms
HOUR = 3_600_000
ALICE = Identity(bytes([1]) * 32, bytes([2]) * 32)
BOB = Identity(bytes([3]) * 32, bytes([4]) * 32)
CAROL = Identity(bytes([5]) * 32, bytes([6]) * 32)
MALLORY = Identity(bytes([7]) * 32, bytes([8]) * 32)

ALERT = Alert(
    headline="Defensora detenida en Oaxaca",
    areas=(Area("MX-OAX", "Centro", (17_060_000, -96_725_000, 2_000)), Area("MX")),
    severity="severe",
    urgency="immediate",
    certainty="observed",
    event="detention",
    description="Detenida a las 14:00 frente al juzgado.",
    instruction="Llamar a la fiscalía y exigir su paradero.",
    language="es-MX",
)
RESTRICTED = Alert(
    headline="Safe house location changed",
    areas=(Area("CO-ANT"),),
    scope="restricted",
    severity="extreme",
    event="threat",
)


@cache
def plain_envelopes() -> dict[str, Envelope]:
    alert = sign_envelope(ALICE, ALERT, created=NOW, expires=NOW + 6 * HOUR)
    ack = Ack(alert.id, "responding", "On our way")
    rotation = sign(ALICE.signing_key, PURPOSE_ROTATE, rotation_payload(CAROL.sign_public, NOW))
    record = NodeRecord(
        "Colectivo", CAROL.enc_public, bytes(32), ("amparo.example.org:7170",), 1, ALICE.sign_public, rotation
    )
    return {
        "alert": alert,
        "ack": sign_envelope(BOB, ack, created=NOW + 1, expires=NOW + 6 * HOUR),
        "vouch": sign_envelope(ALICE, Vouch(BOB.sign_public, BOB.enc_public, "Bob"), created=NOW, expires=0),
        "revoke": sign_envelope(
            ALICE, Revoke(ALICE.sign_public, True, "laptop seized"), created=NOW, expires=0
        ),
        "node": sign_envelope(CAROL, record, created=NOW, expires=0),
    }


@cache
def sealed_envelopes() -> dict[str, Envelope]:
    to = [BOB.enc_public, CAROL.enc_public]
    alert = seal_envelope(
        ALICE, RESTRICTED, created=NOW, expires=NOW + HOUR, recipients=to, random=deterministic_random(b"a")
    )
    ack = Ack(alert.id, "seen")
    return {
        "sealed-alert": alert,
        "sealed-ack": seal_envelope(
            BOB,
            ack,
            created=NOW,
            expires=NOW + HOUR,
            recipients=[ALICE.enc_public],
            random=deterministic_random(b"b"),
        ),
    }


@cache
def receipt_envelopes() -> dict[str, Envelope]:
    """Bob's delivery receipt for Alice's alerts (docs/protocol.md §6.7): sealed to
    Alice and to Bob itself, as a node sends them."""
    alert = plain_envelopes()["alert"]
    receipt = Receipt.of({alert.id: NOW + 40, sealed_envelopes()["sealed-alert"].id: NOW + 50})
    return {
        "receipt": seal_envelope(
            BOB,
            receipt,
            created=NOW + 60,
            expires=NOW + 24 * HOUR,
            recipients=[ALICE.enc_public, BOB.enc_public],
            random=deterministic_random(b"r"),
        )
    }


def threshold_envelopes() -> dict[str, Envelope]:
    """A joint release (docs/protocol.md §13): alice proposes to alice, bob and carol
    (2 of 3), bob endorses, carol objects, alice releases."""
    everyone = [ALICE, BOB, CAROL]
    public = Alert(headline="Denuncia conjunta", areas=(Area("MX-OAX"),), scope="public", severity="severe")
    proposal = Proposal(public, tuple(i.sign_public for i in everyone), 2, 6 * HOUR)
    deadline = NOW + 2 * HOUR
    to = [i.enc_public for i in everyone]
    proposed = seal_envelope(
        ALICE, proposal, created=NOW, expires=deadline, recipients=to, random=deterministic_random(b"p")
    )
    statement = proposal.statement(proposed.id, deadline)
    by_bob = statement.sign(BOB.signing_key)
    sigs = ((ALICE.sign_public, statement.sign(ALICE.signing_key)), (BOB.sign_public, by_bob))
    release = Release(proposed.id, proposal.endorsers, 2, proposal.life, deadline, sigs)
    return {
        "proposal": proposed,
        "endorsement": seal_envelope(
            BOB, Endorsement(proposed.id, statement.alert, by_bob), created=NOW + 1, expires=deadline,
            recipients=to, random=deterministic_random(b"e"),
        ),
        "objection": seal_envelope(
            CAROL, Objection(proposed.id, statement.alert, "No todavía"), created=NOW + 2, expires=deadline,
            recipients=to, random=deterministic_random(b"o"),
        ),
        "release": sign_release(ALICE, public, release, created=NOW + 3),
    }  # fmt: skip


def all_envelopes() -> dict[str, Envelope]:
    return plain_envelopes() | sealed_envelopes() | receipt_envelopes() | threshold_envelopes()


def forge(identity: Identity, doc: dict[str, Any]) -> bytes:
    """Sign an arbitrary envelope map the way a buggy or hostile implementation
    could: canonical bytes and a valid signature, whatever the content."""
    signature = sign(identity.signing_key, PURPOSE_ENVELOPE, codec.encode(doc))
    return codec.encode(doc | {"s": signature})


def envelope_map(env: Envelope) -> dict[str, Any]:
    """The decoded map of ``env`` without its signature, ready to alter and ``forge``."""
    doc = codec.decode(env.raw)
    assert isinstance(doc, dict)
    return {k: v for k, v in doc.items() if k != "s"}


def plain_map(
    identity: Identity, kind: str, body: Any, *, created: int = NOW, expires: int = NOW + HOUR
) -> dict[str, Any]:
    return {"a": identity.sign_public, "b": body, "c": created, "t": kind, "v": 1, "x": expires}
