"""The sealed key file (SPEC §5.2, §8 Seizure) and the fingerprint."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import pytest

from protocol import codec, fingerprint, keys, open_key_file, seal_key_file
from protocol import errors as err
from protocol.keys import Identity
from tests.protocol.envelopes import ALICE, BOB

PASS = b"correct horse battery staple"
SALT, NONCE = bytes(range(16)), bytes(range(24))


@cache
def sealed_file() -> bytes:
    return seal_key_file(ALICE, PASS, salt=SALT, nonce=NONCE, profile="interactive")


def _edit(data: bytes, **changes: Any) -> bytes:
    doc = codec.decode(data)
    assert isinstance(doc, dict)
    return codec.encode(doc | changes)


def test_round_trip_with_a_passphrase() -> None:
    opened = open_key_file(sealed_file(), PASS)
    assert (opened.sign_seed, opened.enc_secret) == (ALICE.sign_seed, ALICE.enc_secret)
    assert keys.key_file_needs_passphrase(sealed_file())


def test_the_file_does_not_contain_the_private_keys() -> None:
    data = sealed_file()
    for secret in (ALICE.sign_seed, ALICE.enc_secret, bytes(ALICE.signing_key), PASS):
        assert secret not in data
    for window in range(len(data) - 8):  # not even an 8-byte run of either seed
        chunk = data[window : window + 8]
        assert chunk not in ALICE.sign_seed and chunk not in ALICE.enc_secret


def test_the_file_records_its_argon2id_parameters() -> None:
    doc = codec.decode(sealed_file())
    ops, mem = keys.KDF_PROFILES["interactive"]
    assert doc["kdf"] == "argon2id" and (doc["ops"], doc["mem"]) == (ops, mem)
    assert (doc["salt"], doc["nonce"], doc["v"]) == (SALT, NONCE, 1)
    assert len(doc["box"]) == len(codec.encode({"enc": bytes(32), "sign": bytes(32)})) + 16


def test_wrong_or_missing_passphrase_is_wrong_passphrase() -> None:
    with pytest.raises(err.WrongPassphrase) as info:
        open_key_file(sealed_file(), b"wrong horse battery staple")
    assert info.value.code == "wrong-passphrase"
    assert "wrong passphrase" in info.value.message
    with pytest.raises(err.WrongPassphrase, match="passphrase is required"):
        open_key_file(sealed_file(), None)


def test_tampered_file_is_rejected() -> None:
    doc = codec.decode(sealed_file())
    box = bytearray(doc["box"])
    box[5] ^= 0x80
    for changes in ({"box": bytes(box)}, {"box": doc["box"][:-1]}, {"salt": bytes(16)}, {"nonce": bytes(24)}):
        with pytest.raises(err.WrongPassphrase, match="altered"):
            open_key_file(_edit(sealed_file(), **changes), PASS)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"ops": 2**40}, "ops"),
        ({"ops": 0}, "ops"),
        ({"ops": -1}, "ops"),
        ({"ops": "2"}, "ops"),
        ({"mem": 2**40}, "mem"),
        ({"mem": 2**63}, "mem"),
        ({"mem": 1024}, "mem"),
        ({"mem": True}, "mem"),
        ({"salt": b"short"}, "salt"),
        ({"nonce": b"short"}, "nonce"),
        ({"box": "text"}, "box"),
        ({"v": 2}, "v"),
        ({"v": True}, "v"),
        ({"kdf": "scrypt"}, "kdf"),
    ],
)
def test_absurd_or_malformed_parameters_are_a_bad_key_file(changes: dict[str, Any], field: str) -> None:
    """Checked before any key derivation: a planted file cannot make the node spend
    terabytes of memory or zero work."""
    with pytest.raises(err.BadKeyFile) as info:
        open_key_file(_edit(sealed_file(), **changes), PASS)
    assert info.value.field == field


@pytest.mark.parametrize("data", [b"", b"\x00", b"garbage", sealed_file()[:-3], codec.encode([1, 2])])
def test_garbage_is_a_bad_key_file(data: bytes) -> None:
    with pytest.raises(err.BadKeyFile):
        open_key_file(data, PASS)


def test_unsealed_key_file() -> None:
    data = seal_key_file(BOB, None, salt=b"", nonce=b"")
    assert not keys.key_file_needs_passphrase(data)
    assert open_key_file(data, None).sign_seed == BOB.sign_seed
    assert open_key_file(data, b"ignored").enc_secret == BOB.enc_secret
    for secrets in (
        b"junk",
        codec.encode({"sign": bytes(31), "enc": bytes(32)}),
        codec.encode({"sign": bytes(32)}),
    ):
        with pytest.raises(err.BadKeyFile) as info:
            open_key_file(_edit(data, secrets=secrets), None)
        assert info.value.field == "secrets"


def test_seal_refuses_bad_salt_or_nonce() -> None:
    with pytest.raises(ValueError):
        seal_key_file(ALICE, PASS, salt=b"short", nonce=NONCE, profile="interactive")
    with pytest.raises(KeyError):
        seal_key_file(ALICE, PASS, salt=SALT, nonce=NONCE, profile="weak")


def test_identity_never_shows_secrets() -> None:
    text = repr(ALICE) + str(ALICE)
    assert ALICE.sign_seed.hex() not in text and ALICE.enc_secret.hex() not in text
    assert fingerprint(ALICE.sign_public) in text
    with pytest.raises(ValueError):
        Identity(bytes(31), bytes(32))
    with pytest.raises(ValueError):
        Identity.from_random(bytes(63))


def test_fingerprint_format() -> None:
    fpr = fingerprint(ALICE.sign_public)
    assert re.fullmatch(r"([A-Z2-7]{4} ){7}[A-Z2-7]{4}", fpr)
    assert fpr != fingerprint(BOB.sign_public)
    assert fingerprint(bytes(32)) == fingerprint(bytes(32))
