"""Restricted bodies (SPEC §3.4, §8 Confidentiality): only recipients read them, and
they know who wrote them."""

from __future__ import annotations

from typing import Any

import nacl.public
import pytest

from protocol import (
    Ack,
    Alert,
    Envelope,
    Sealed,
    codec,
    decode,
    recipient_hint,
    seal_envelope,
    sealing,
    unseal,
)
from protocol import errors as err
from protocol.keys import Identity
from tests.protocol.envelopes import (
    ALERT,
    ALICE,
    BOB,
    CAROL,
    HOUR,
    MALLORY,
    NOW,
    RESTRICTED,
    envelope_map,
    forge,
    sealed_envelopes,
)
from tests.strategies import deterministic_random


def _seal(author: Identity, body: Alert | Ack, to: list[Identity], seed: bytes = b"s") -> Envelope:
    return seal_envelope(
        author,
        body,
        created=NOW,
        expires=NOW + HOUR,
        recipients=[r.enc_public for r in to],
        random=deterministic_random(seed),
    )


def _resign(author: Identity, env: Envelope, **changes: Any) -> Envelope:
    """Re-sign ``env`` with changes: the outer signature is valid again, so only the
    sealed layer can catch the change."""
    return decode(forge(author, envelope_map(env) | changes), now=NOW)


def _plaintext(env: Envelope, reader: Identity) -> dict[str, Any]:
    """What a recipient sees after decryption: ``{"b": body, "s": inner signature}``."""
    assert isinstance(env.body, Sealed)
    slot = next(w for h, w in env.body.slots if h == recipient_hint(reader.enc_public))
    key = nacl.public.SealedBox(reader.enc_private).decrypt(slot)
    plain = sealing.sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
        env.body.ciphertext, codec.encode(env.header()), env.body.nonce, key
    )
    doc = codec.decode(plain)
    assert isinstance(doc, dict)
    return doc


def test_recipients_read_it_and_others_do_not() -> None:
    env = sealed_envelopes()["sealed-alert"]
    assert env.sealed and env.type == "alert"
    for reader in (BOB, CAROL):
        assert unseal(env, reader) == RESTRICTED
    for outsider in (ALICE, MALLORY, Identity(bytes(32), bytes(32))):  # the author too: not a recipient
        with pytest.raises(err.NotRecipient):
            unseal(env, outsider)


def test_a_relay_sees_only_the_header_and_hints() -> None:
    env = sealed_envelopes()["sealed-alert"]
    assert isinstance(env.body, Sealed)
    assert set(env.body.hints) == {recipient_hint(BOB.enc_public), recipient_hint(CAROL.enc_public)}
    for secret in (b"Safe house", b"CO-ANT", b"restricted", b"extreme", BOB.enc_public, CAROL.enc_public):
        assert secret not in env.raw
    assert decode(env.raw, now=NOW) == env  # relays verify the outer signature without any key


def test_sealed_ack_round_trip() -> None:
    env = sealed_envelopes()["sealed-ack"]
    alert_id = sealed_envelopes()["sealed-alert"].id
    assert env.type == "ack" and env.author == BOB.sign_public
    assert unseal(env, ALICE) == Ack(alert_id, "seen")
    with pytest.raises(err.NotRecipient):
        unseal(env, BOB)


def test_author_reads_its_own_only_when_listed() -> None:
    env = _seal(ALICE, RESTRICTED, [ALICE, BOB, BOB])  # duplicate recipients collapse
    assert isinstance(env.body, Sealed) and len(env.body.slots) == 2
    assert unseal(env, ALICE) == RESTRICTED


def test_tampered_ciphertext_resigned_by_the_author_is_bad_ciphertext() -> None:
    env = sealed_envelopes()["sealed-alert"]
    assert isinstance(env.body, Sealed)
    ct = bytearray(env.body.ciphertext)
    ct[len(ct) // 2] ^= 0x01
    for tampered in (
        Sealed(env.body.slots, env.body.nonce, bytes(ct)),
        Sealed(env.body.slots, bytes(24), env.body.ciphertext),
        Sealed(env.body.slots, env.body.nonce, env.body.ciphertext[:-1]),
    ):
        again = _resign(ALICE, env, b=tampered.to_bytes())
        with pytest.raises(err.BadCiphertext):
            unseal(again, BOB)


def test_header_is_bound_to_the_ciphertext() -> None:
    """Moving the sealed body under another created/expires/type fails authentication."""
    env = sealed_envelopes()["sealed-alert"]
    for changes in ({"c": NOW + 1}, {"x": NOW + 2 * HOUR}, {"t": "ack"}):
        with pytest.raises(err.BadCiphertext):
            unseal(_resign(ALICE, env, **changes), BOB)


def test_tampered_wrapped_key_is_not_recipient() -> None:
    env = sealed_envelopes()["sealed-alert"]
    assert isinstance(env.body, Sealed)
    slots = [(h, w[:40] + bytes([w[40] ^ 1]) + w[41:]) for h, w in env.body.slots]
    again = _resign(ALICE, env, b=Sealed(tuple(slots), env.body.nonce, env.body.ciphertext).to_bytes())
    with pytest.raises(err.NotRecipient):
        unseal(again, BOB)


def test_recipient_list_is_signed_inside() -> None:
    """Dropping or reordering slots keeps every remaining slot openable, but the
    inner signature covers the hints, so the change is detected."""
    env = sealed_envelopes()["sealed-alert"]
    assert isinstance(env.body, Sealed)
    for slots in (env.body.slots[::-1], env.body.slots[:1]):
        again = _resign(ALICE, env, b=Sealed(slots, env.body.nonce, env.body.ciphertext).to_bytes())
        with pytest.raises(err.BadSignature):
            unseal(again, BOB)


def _rewrap(plaintext: bytes, author: Identity, to: list[Identity], created: int = NOW) -> Envelope:
    """Seal ``plaintext`` as-is (keeping its inner signature) in a new envelope."""
    header = sealing.header_map("alert", author.sign_public, created, created + HOUR)
    key, nonce = bytes(range(32)), bytes(24)
    ct = sealing.sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
        plaintext, codec.encode(header), nonce, key
    )
    slots = tuple(
        (recipient_hint(r.enc_public), sealing._wrap(key, r.enc_public, bytes([i + 9]) * 32))
        for i, r in enumerate(to)
    )
    doc = {k: header[k] for k in "acx"} | {
        "t": "alert",
        "v": 1,
        "b": Sealed(slots, nonce, bytes(ct)).to_bytes(),
    }
    return decode(forge(author, doc), now=NOW)


def test_a_recipient_cannot_rewrap_the_plaintext_as_its_own() -> None:
    """SealedBox does not authenticate senders; the inner signature does. BOB takes
    ALICE's plaintext (body + ALICE's inner signature) and seals it to CAROL under
    his own envelope: CAROL rejects it."""
    env = sealed_envelopes()["sealed-alert"]
    plaintext = codec.encode(_plaintext(env, BOB))
    assert _plaintext(env, BOB)["b"] == RESTRICTED.to_wire()
    with pytest.raises(err.BadSignature):
        unseal(_rewrap(plaintext, BOB, [CAROL]), CAROL)


def test_a_recipient_cannot_forge_a_body_without_an_inner_signature() -> None:
    body = RESTRICTED.to_wire() | {"headline": "Forged by Bob"}
    for inner in ({"b": body, "s": bytes(64)}, {"b": body, "s": b"x"}):
        with pytest.raises((err.BadSignature, err.BadField)):
            unseal(_rewrap(codec.encode(inner), BOB, [CAROL]), CAROL)
    for garbage in (b"not msgpack", codec.encode({"b": body}), codec.encode([1])):
        with pytest.raises(err.BadCiphertext):
            unseal(_rewrap(garbage, BOB, [CAROL]), CAROL)


def test_sealed_alert_must_be_restricted_inside() -> None:
    header = sealing.header_map("alert", ALICE.sign_public, NOW, NOW + HOUR)
    inner = sealing.seal(ALICE, header, ALERT.to_wire(), [BOB.enc_public], deterministic_random(b"q"))
    doc = {k: header[k] for k in "acx"} | {"t": "alert", "v": 1, "b": inner.to_bytes()}
    with pytest.raises(err.BadField) as info:
        unseal(decode(forge(ALICE, doc), now=NOW), BOB)
    assert info.value.field == "alert.scope"


def test_hint_collisions_are_handled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hints are 4 bytes, so two recipients may share one: each reader tries every
    slot with its hint, and a non-recipient with a colliding hint is NotRecipient."""
    monkeypatch.setattr(sealing, "recipient_hint", lambda key: b"\x00\x00\x00\x00")
    env = _seal(ALICE, RESTRICTED, [BOB, CAROL, ALICE])
    assert isinstance(env.body, Sealed) and set(env.body.hints) == {bytes(4)}
    for reader in (BOB, CAROL, ALICE):
        assert unseal(env, reader) == RESTRICTED
    with pytest.raises(err.NotRecipient):
        unseal(env, MALLORY)


def test_recipient_list_limits() -> None:
    with pytest.raises(err.BadField):
        _seal(ALICE, RESTRICTED, [])
    many = [Identity(bytes([i]) * 32, bytes([i]) * 32) for i in range(1, sealing.MAX_RECIPIENTS + 2)]
    with pytest.raises(err.BadField):
        _seal(ALICE, RESTRICTED, many)
    assert _seal(ALICE, RESTRICTED, many[: sealing.MAX_RECIPIENTS]).sealed
    with pytest.raises(err.BadField):
        seal_envelope(
            ALICE,
            RESTRICTED,
            created=NOW,
            expires=NOW + HOUR,
            recipients=[b"short"],
            random=deterministic_random(b"x"),
        )


def test_unseal_of_a_plain_envelope_is_a_bad_field() -> None:
    from tests.protocol.envelopes import plain_envelopes

    with pytest.raises(err.BadField):
        unseal(plain_envelopes()["alert"], BOB)


def test_wrapping_is_crypto_box_seal_compatible() -> None:
    """A slot is exactly libsodium's crypto_box_seal output, so any libsodium opens it."""
    slot = sealing._wrap(b"k" * 32, BOB.enc_public, b"e" * 32)
    assert len(slot) == sealing.WRAPPED_BYTES
    assert nacl.public.SealedBox(BOB.enc_private).decrypt(slot) == b"k" * 32
