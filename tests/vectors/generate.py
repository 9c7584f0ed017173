"""Generate Amparo's known-answer test vectors (docs/protocol.md, tests/vectors/README.md).

    python tests/vectors/generate.py           # rewrite the JSON files next to this script
    python tests/vectors/generate.py --check   # exit 1 if any file differs

Everything is fixed: identities come from fixed seeds, times are constants, and
the randomness that sealing needs is a SHAKE-256 stream of a fixed seed, so the
output is the same byte for byte on every machine. tests/protocol/test_vectors.py
regenerates them and compares.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
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
    fingerprint,
    recipient_hint,
    rotation_payload,
    seal_envelope,
    sign_envelope,
    sign_release,
)
from protocol.keys import Identity
from protocol.sealing import CONTENT_KEY_BYTES, NONCE_BYTES
from protocol.signing import (
    PURPOSE_ENDORSE,
    PURPOSE_ENVELOPE,
    PURPOSE_ROTATE,
    next_key_commitment,
    sign,
    signed_message,
)
from protocol.threshold import release_wire

HERE = Path(__file__).resolve().parent
NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z, Unix ms
HOUR = 3_600_000
INVALID_FILE = "invalid.json"
UNCATALOGUED_REGION = "XZ-QQQ"  # ISO 3166-2 syntax; XZ is a user-assigned alpha-2 code


def identity(name: str) -> Identity:
    """sign_seed = SHA-256("amparo-vector/<name>/sign"), enc_secret likewise with "enc"."""
    seed = hashlib.sha256(f"amparo-vector/{name}/sign".encode()).digest()
    secret = hashlib.sha256(f"amparo-vector/{name}/enc".encode()).digest()
    return Identity(seed, secret)


def shake_stream(seed: bytes) -> Callable[[int], bytes]:
    """random(n): the next n bytes of SHAKE-256(seed)."""
    position = 0

    def take(n: int) -> bytes:
        nonlocal position
        out = hashlib.shake_256(seed).digest(position + n)[position:]
        position += n
        return out

    return take


ALICE, BOB, CAROL, DANIEL = (identity(n) for n in ("alice", "bob", "carol", "daniel"))


# ----------------------------------------------------------- JSON rendering


def to_json(value: Any) -> Any:
    """msgpack value → JSON: bytes become {"$bytes": hex}, everything else as is."""
    if isinstance(value, bytes):
        return {"$bytes": value.hex()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value


def from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$bytes"}:
            return bytes.fromhex(value["$bytes"])
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def describe_identity(ident: Identity) -> dict[str, str]:
    return {
        "sign_seed": ident.sign_seed.hex(),
        "enc_secret": ident.enc_secret.hex(),
        "sign_public": ident.sign_public.hex(),
        "enc_public": ident.enc_public.hex(),
        "fingerprint": fingerprint(ident.sign_public),
        "hint": recipient_hint(ident.enc_public).hex(),
    }


def describe(env: Envelope, name: str, text: str, author: Identity, body: Any) -> dict[str, Any]:
    doc = codec.decode(env.raw)
    unsigned = codec.encode({k: v for k, v in doc.items() if k != "s"})
    wire = body.to_wire()
    return {
        "name": name,
        "description": text,
        "author": describe_identity(author),
        "type": env.type,
        "created": env.created,
        "expires": env.expires,
        "now": NOW,
        "body": to_json(wire),
        "body_hex": codec.encode(wire).hex(),
        "signed_message_hex": signed_message(PURPOSE_ENVELOPE, unsigned).hex(),
        "signature_hex": env.signature.hex(),
        "envelope_hex": env.raw.hex(),
        "id_hex": env.id.hex(),
    }


def sealed(
    name: str,
    text: str,
    author: Identity,
    body: Alert | Ack | Receipt,
    to: list[Identity],
    seed: bytes,
    *,
    created: int = NOW,
    expires: int = NOW + HOUR,
) -> dict[str, Any]:
    env = seal_envelope(
        author,
        body,
        created=created,
        expires=expires,
        recipients=[r.enc_public for r in to],
        random=shake_stream(seed),
    )
    stream = shake_stream(seed)
    content_key, nonce = stream(CONTENT_KEY_BYTES), stream(NONCE_BYTES)
    return describe(env, name, text, author, body) | {
        "recipients": [describe_identity(r) for r in to],
        "random_seed_hex": seed.hex(),
        "content_key_hex": content_key.hex(),
        "nonce_hex": nonce.hex(),
        "ephemeral_secrets_hex": [stream(32).hex() for _ in to],
        "sealed_body_hex": codec.decode(env.raw)["b"].hex(),
    }


# ------------------------------------------- threshold release, k of n (docs/protocol.md §13)

JOINT_DEADLINE = NOW + 2 * HOUR
JOINT_LIFE = 6 * HOUR


def joint_alert() -> Alert:
    return Alert(
        headline="Denuncia conjunta: desalojo en San Mateo",
        areas=(Area("MX-OAX"),),
        scope="public",
        severity="severe",
        event="raid",
        description="Tres organizaciones confirmamos el desalojo violento.",
        language="es",
    )


def build_threshold_vectors() -> dict[str, dict[str, Any]]:
    """alice proposes to alice, bob and carol (2 of 3); bob endorses, carol objects;
    alice releases with her own and bob's endorsement."""
    everyone = [ALICE, BOB, CAROL]
    proposal = Proposal(joint_alert(), tuple(i.sign_public for i in everyone), 2, JOINT_LIFE)
    proposed = sealed_at(
        "proposal-sealed", "alice proposes a public alert to alice, bob and carol: 2 of 3, deadline 2 h",
        ALICE, proposal, everyone, b"amparo-vector/proposal-sealed", NOW, JOINT_DEADLINE,
    )  # fmt: skip
    statement = proposal.statement(bytes.fromhex(proposed["id_hex"]), JOINT_DEADLINE)
    joint = {
        "alert_hash_hex": statement.alert.hex(),
        "statement_hex": statement.payload().hex(),
        "endorse_message_hex": signed_message(PURPOSE_ENDORSE, statement.payload()).hex(),
    }
    by_alice, by_bob = statement.sign(ALICE.signing_key), statement.sign(BOB.signing_key)
    endorsed = sealed_at(
        "endorsement-sealed", "bob endorses proposal-sealed (sig: bob's amparo/v1/endorse signature)",
        BOB, Endorsement(statement.proposal, statement.alert, by_bob), everyone,
        b"amparo-vector/endorsement-sealed", NOW + 60_000, JOINT_DEADLINE,
    )  # fmt: skip
    objected = sealed_at(
        "objection-sealed", "carol objects to proposal-sealed, with a reason",
        CAROL, Objection(statement.proposal, statement.alert, "Falta confirmar con la comunidad"), everyone,
        b"amparo-vector/objection-sealed", NOW + 120_000, JOINT_DEADLINE,
    )  # fmt: skip
    release = Release(
        statement.proposal, statement.endorsers, 2, JOINT_LIFE, JOINT_DEADLINE,
        ((ALICE.sign_public, by_alice), (BOB.sign_public, by_bob)),
    )  # fmt: skip
    released = sign_release(ALICE, joint_alert(), release, created=NOW + 180_000)
    plain = describe(
        released, "alert-release", "alice releases proposal-sealed: the alert with alice's and bob's endorsements",
        ALICE, joint_alert(),
    )  # fmt: skip
    wire = release_wire(joint_alert(), release)
    plain |= {"body": to_json(wire), "body_hex": codec.encode(wire).hex(), "now": NOW + 180_000}
    return {v["name"]: v | joint for v in (proposed, endorsed, objected, plain)}


def sealed_at(
    name: str,
    text: str,
    author: Identity,
    body: Any,
    to: list[Identity],
    seed: bytes,
    created: int,
    expires: int,
) -> dict[str, Any]:
    """``sealed`` at a given time window (threshold envelopes expire at the deadline)."""
    env = seal_envelope(
        author, body, created=created, expires=expires, recipients=[r.enc_public for r in to],
        random=shake_stream(seed),
    )  # fmt: skip
    stream = shake_stream(seed)
    content_key, nonce = stream(CONTENT_KEY_BYTES), stream(NONCE_BYTES)
    return describe(env, name, text, author, body) | {
        "now": created,
        "recipients": [describe_identity(r) for r in to],
        "random_seed_hex": seed.hex(),
        "content_key_hex": content_key.hex(),
        "nonce_hex": nonce.hex(),
        "ephemeral_secrets_hex": [stream(32).hex() for _ in to],
        "sealed_body_hex": codec.decode(env.raw)["b"].hex(),
    }


def build_threshold_invalid(valid: dict[str, dict[str, Any]]) -> list[tuple[str, str, bytes, int, list[str]]]:
    """Releases every implementation must refuse, and a proposal sent in the clear."""
    raw = bytes.fromhex(valid["alert-release"]["envelope_hex"])
    doc = codec.decode(raw)
    proof = doc["b"]["ext"]["release"]
    at = valid["alert-release"]["now"]

    def with_proof(**changes: Any) -> bytes:
        return forge(
            ALICE,
            {k: v for k, v in doc.items() if k != "s"}
            | {"b": doc["b"] | {"ext": {"release": proof | changes}}},
        )

    forged_sig = bytearray(proof["sigs"][1][1])
    forged_sig[10] ^= 0x01
    forged = with_proof(sigs=[proof["sigs"][0], [proof["sigs"][1][0], bytes(forged_sig)]])
    outer = bytearray(raw)
    outer[raw.index(b"\xa1s\xc4\x40") + 4 + 10] ^= 0x01
    late = forge(
        ALICE,
        {k: v for k, v in doc.items() if k != "s"}
        | {"c": JOINT_DEADLINE + 1, "x": JOINT_DEADLINE + 1 + JOINT_LIFE},
    )
    plain_proposal = forge(
        ALICE,
        {
            "a": ALICE.sign_public,
            "b": {"threshold": 2},
            "c": NOW,
            "t": "proposal",
            "v": 1,
            "x": JOINT_DEADLINE,
        },
    )
    return [
        ("release-forged-endorsement", "alert-release with one bit of bob's endorsement flipped (outer signature valid)", forged, at, ["bad-endorsement"]),
        ("release-below-threshold", "alert-release carrying alice's endorsement only (2 needed)", with_proof(sigs=[proof["sigs"][0]]), at, ["bad-endorsement"]),
        ("release-unnamed-signer", "alert-release whose second signer is daniel, not an endorser", with_proof(sigs=[proof["sigs"][0], [DANIEL.sign_public, proof["sigs"][1][1]]]), at, ["bad-endorsement"]),
        ("release-after-deadline", "alert-release re-signed with c one ms after the deadline", late, JOINT_DEADLINE + 1, ["bad-endorsement"]),
        ("release-outer-forgery", "alert-release with one bit of its envelope signature flipped: blamed, whatever the proof", bytes(outer), at, ["bad-signature"]),
        ("proposal-in-the-clear", "a proposal with a map body: always sealed", plain_proposal, NOW, ["bad-field"]),
    ]  # fmt: skip


def build_vectors() -> dict[str, dict[str, Any]]:
    alert = Alert(
        headline="Defensora detenida en Oaxaca",
        areas=(Area("MX-OAX", "Centro", (17_060_000, -96_725_000, 2_000)), Area("MX-CHP")),
        severity="severe",
        urgency="immediate",
        certainty="observed",
        event="detention",
        scope="public",
        description="Detenida a las 14:00 frente al juzgado.\nSu familia no sabe dónde está.",
        instruction="Llamar a la fiscalía y exigir su paradero.",
        contact="+52 000 000 0000",
        language="es-MX",
    )
    alert_env = sign_envelope(ALICE, alert, created=NOW, expires=NOW + 6 * HOUR)
    ack = Ack(alert_env.id, "responding", "Vamos en camino")
    vouch = Vouch(BOB.sign_public, BOB.enc_public, "Colectivo Bob", "verified")
    revoke = Revoke(DANIEL.sign_public, compromised=True, reason="laptop seized")
    prev_sig = sign(ALICE.signing_key, PURPOSE_ROTATE, rotation_payload(CAROL.sign_public, NOW))
    node = NodeRecord(
        "Colectivo Alice", CAROL.enc_public, hashlib.sha256(b"tls").digest(),
        ("alice.example.org:7170", "abcdefghijklmnop.onion:7170"), 2, ALICE.sign_public, prev_sig,
    )  # fmt: skip
    restricted = Alert(
        headline="Safe house moved",
        areas=(Area("CO-ANT"),),
        scope="restricted",
        severity="extreme",
        event="threat",
        instruction="Use the new meeting point.",
    )
    sealed_alert = sealed(
        "alert-sealed",
        "restricted alert by alice sealed to bob and carol",
        ALICE,
        restricted,
        [BOB, CAROL],
        b"amparo-vector/alert-sealed",
    )
    ack_sealed_body = Ack(bytes.fromhex(sealed_alert["id_hex"]), "seen")
    uncatalogued = Alert(headline="Alerta en una subdivisión nueva", areas=(Area(UNCATALOGUED_REGION),))
    vectors = [
        describe(alert_env, "alert-plain", "public alert by alice, two areas, one circle", ALICE, alert),
        describe(
            sign_envelope(BOB, ack, created=NOW + 60_000, expires=NOW + 6 * HOUR),
            "ack-plain",
            "bob acknowledges alert-plain",
            BOB,
            ack,
        ),
        describe(
            sign_envelope(ALICE, vouch, created=NOW, expires=0),
            "vouch",
            "alice vouches for bob",
            ALICE,
            vouch,
        ),
        describe(
            sign_envelope(DANIEL, revoke, created=NOW, expires=0),
            "revoke-compromised",
            "daniel declares its own key compromised (x = 0: never expires)",
            DANIEL,
            revoke,
        ),
        describe(
            sign_envelope(CAROL, node, created=NOW, expires=0),
            "node-rotation",
            "carol's new key takes over from alice's: prev_sig is alice's rotate signature",
            CAROL,
            node,
        )
        | {
            "rotation_message_hex": signed_message(
                PURPOSE_ROTATE, rotation_payload(CAROL.sign_public, NOW)
            ).hex()
        },
        *pre_rotation_vectors(),
        sealed_alert,
        sealed(
            "ack-sealed",
            "bob acknowledges alert-sealed, sealed to alice",
            BOB,
            ack_sealed_body,
            [ALICE],
            b"amparo-vector/ack-sealed",
        ),
        describe(
            sign_envelope(ALICE, uncatalogued, created=NOW, expires=NOW + HOUR),
            "alert-uncatalogued-region",
            f"a well-formed region ({UNCATALOGUED_REGION}) that no copy of ISO 3166 lists: valid on the wire",
            ALICE,
            uncatalogued,
        ),
        *receipt_vectors(alert_env.id, bytes.fromhex(sealed_alert["id_hex"])),
    ]
    return {v["name"]: v for v in vectors} | build_threshold_vectors()


# ----------------------------------------------------------- delivery receipts (§6.7)

RECEIPT_CREATED = NOW + 2 * 60_000
RECEIPT_EXPIRES = RECEIPT_CREATED + 24 * HOUR


def receipt_vectors(public_id: bytes, restricted_id: bytes) -> list[dict[str, Any]]:
    """Bob tells Alice it stored alert-plain and alert-sealed: one receipt, sealed
    to Alice (the alerts' author) and to Bob itself (a node reads its own receipts
    back to know what it already answered)."""
    receipt = Receipt.of({public_id: NOW + 30_000, restricted_id: NOW + 45_000})
    return [
        sealed(
            "receipt-sealed",
            "bob's delivery receipt for alert-plain and alert-sealed, sealed to alice and bob",
            BOB,
            receipt,
            [ALICE, BOB],
            b"amparo-vector/receipt-sealed",
            created=RECEIPT_CREATED,
            expires=RECEIPT_EXPIRES,
        )
    ]


def invalid_receipts(valid: dict[str, dict[str, Any]]) -> list[tuple[str, str, bytes, int, list[str]]]:
    """Receipts every implementation must refuse (docs/protocol.md §6.7)."""
    vector = valid["receipt-sealed"]
    doc = codec.decode(bytes.fromhex(vector["envelope_hex"]))
    unsigned = {k: v for k, v in doc.items() if k != "s"}
    plain_body = from_json(vector["body"])
    unsealed = forge(BOB, unsigned | {"b": plain_body})
    too_long = forge(BOB, unsigned | {"x": RECEIPT_CREATED + 24 * HOUR + 1})
    unsorted = forge(BOB, unsigned | {"b": {"held": list(reversed(plain_body["held"]))}})
    return [
        ("receipt-unsealed", "receipt-sealed's body sent as a plain map: a receipt is always sealed", unsealed, NOW, ["bad-field"]),
        ("receipt-lives-too-long", "receipt-sealed re-signed with x = c + 24 h + 1 ms", too_long, NOW, ["bad-field"]),
        ("receipt-unsorted", "a plain receipt whose ids are not in ascending order", unsorted, NOW, ["bad-field"]),
    ]  # fmt: skip


def pre_rotation_vectors() -> list[dict[str, Any]]:
    """Pre-rotation (docs/protocol.md §6.5): alice's record commits to carol's key
    as its next; after a raid carol's key recovers alice's without alice's
    signature and declares it compromised, committing in turn to daniel's."""
    tls = hashlib.sha256(b"tls").digest()
    committing = NodeRecord(
        "Colectivo Alice", ALICE.enc_public, tls, next_key=next_key_commitment(CAROL.sign_public)
    )
    recovery = NodeRecord(
        "Colectivo Alice", CAROL.enc_public, hashlib.sha256(b"tls-new").digest(),
        next_key=next_key_commitment(DANIEL.sign_public), recovers=ALICE.sign_public, old_compromised=True,
    )  # fmt: skip
    return [
        describe(
            sign_envelope(ALICE, committing, created=NOW, expires=0),
            "node-next",
            "alice's record commits to the hash of its next key (carol's): ext.next",
            ALICE,
            committing,
        )
        | {"committed_key_hex": CAROL.sign_public.hex()},
        describe(
            sign_envelope(CAROL, recovery, created=NOW + 60_000, expires=0),
            "node-recovery",
            "carol's key, committed by alice's record, recovers it and declares it compromised",
            CAROL,
            recovery,
        ),
    ]


def forge(author: Identity, doc: dict[str, Any]) -> bytes:
    """Sign any envelope map (as a hostile or newer implementation could)."""
    signature = sign(author.signing_key, PURPOSE_ENVELOPE, codec.encode(doc))
    return codec.encode(doc | {"s": signature})


def build_invalid(valid: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Envelopes every implementation must reject, with the expected error code."""
    raw = bytes.fromhex(valid["alert-plain"]["envelope_hex"])
    doc = codec.decode(raw)
    created = doc["c"]
    flipped = bytearray(raw)
    flipped[raw.index(b"\xa1s\xc4\x40") + 4 + 10] ^= 0x01  # a bit of the signature
    wide_v = raw.replace(b"\xa1v\x01", b"\xa1v\xcc\x01")
    bad_ack = bytes.fromhex(valid["ack-plain"]["envelope_hex"])
    unsigned = {k: v for k, v in doc.items() if k != "s"}
    bad_region = forge(ALICE, unsigned | {"b": doc["b"] | {"areas": [{"region": "MX_OAX"}]}})
    petition = forge(ALICE, unsigned | {"t": "petition", "b": {"signatures": 2}})
    forged_petition = bytearray(petition)
    forged_petition[petition.index(b"\xa1s\xc4\x40") + 4 + 10] ^= 0x01
    cases = [
        ("bit-flip", "alert-plain with one bit of its signature flipped", bytes(flipped), NOW, ["bad-signature"]),
        ("malformed-region", "alert-plain re-signed with region MX_OAX (not ISO 3166 syntax)", bad_region, NOW, ["bad-field"]),
        ("expired-forgery", "bit-flip decoded after it expired: the signature is checked first", bytes(flipped), doc["x"] + 1, ["bad-signature"]),
        ("unknown-type", "a signed envelope of type petition (a newer version's)", petition, NOW, ["unknown-type"]),
        ("unknown-type-forgery", "unknown-type with one bit of its signature flipped", bytes(forged_petition), NOW, ["bad-signature"]),
        ("truncated", "alert-plain without its last byte", raw[:-1], NOW, ["malformed"]),
        ("trailing-byte", "alert-plain followed by 0xc0", raw + b"\xc0", NOW, ["malformed"]),
        ("non-canonical-int", "alert-plain with v = 1 written as uint8 (cc 01)", wide_v, NOW, ["not-canonical"]),
        ("expired", "alert-plain one ms after it expires", raw, doc["x"] + 1, ["expired"]),
        ("from-the-future", "alert-plain 10 min + 1 ms before it was created", raw, created - 600_001, ["from-the-future"]),
        ("too-large", "65537 bytes", bytes(65537), NOW, ["too-large"]),
        ("ack-too-early", "ack-plain decoded 10 min + 1 ms before it was created", bad_ack, NOW + 60_000 - 600_001, ["from-the-future"]),
        ("timestamp-ext", "the msgpack Timestamp extension", bytes.fromhex("d6ff00000000"), NOW, ["malformed"]),
        ("headline-newline", "alert-plain re-signed with a newline in its headline", resigned(doc, headline="Defensora\ndetenida"), NOW, ["bad-text"]),
        ("headline-line-separator", "alert-plain re-signed with U+2028 in its headline", resigned(doc, headline="Defensora\u2028detenida"), NOW, ["bad-text"]),
        ("headline-bidi-override", "alert-plain re-signed with U+202E (RLO) in its headline", resigned(doc, headline="Defensora \u202eadinetedad"), NOW, ["bad-text"]),
        ("headline-c1-control", "alert-plain re-signed with U+009B (C1 CSI) in its headline", resigned(doc, headline="Defensora \x9b2J"), NOW, ["bad-text"]),
        ("description-escape", "alert-plain re-signed with ESC (an ANSI escape) in its description (newlines are fine there)", resigned(doc, description="Detenida\x1b[2K"), NOW, ["bad-text"]),
    ]  # fmt: skip
    cases += invalid_receipts(valid)
    cases += build_threshold_invalid(valid)
    return [
        {"name": n, "description": d, "envelope_hex": data.hex(), "now": now, "codes": codes}
        for n, d, data, now, codes in cases
    ]


def resigned(doc: dict[str, Any], **body: str) -> bytes:
    """``doc`` (alert-plain, by ALICE) with body fields replaced, canonical and signed
    again: only the text rule can refuse it."""
    changed = {k: v for k, v in doc.items() if k != "s"} | {"b": doc["b"] | body}
    return codec.encode(changed | {"s": sign(ALICE.signing_key, PURPOSE_ENVELOPE, codec.encode(changed))})


def render(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def expected_files() -> dict[str, str]:
    valid = build_vectors()
    files = {f"{name}.json": render(vector) for name, vector in valid.items()}
    files[INVALID_FILE] = render(build_invalid(valid))
    return files


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for filename, text in expected_files().items():
        path = HERE / filename
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(filename)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("stale vectors: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
