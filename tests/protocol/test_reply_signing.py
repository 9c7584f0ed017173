"""Signed mesh replies (docs/protocol.md §12.5): the known answer in the docs is
what ``protocol.reply`` produces, rebuilt here from the documented steps with raw
hashlib/PyNaCl calls; any change to what is signed is refused."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import msgpack
import nacl.signing
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import ProtocolError
from protocol.reply import sign_reply, verify_reply
from protocol.request import sign_request

DOCS = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
REQUESTER = nacl.signing.SigningKey(bytes(range(32)))
REPLIER = nacl.signing.SigningKey(bytes(range(32, 64)))
OTHER = nacl.signing.SigningKey(bytes(range(64, 96)))
REQUESTER_KEY = bytes(REQUESTER.verify_key)
REPLIER_KEY = bytes(REPLIER.verify_key)
BODY = bytes.fromhex("82a8616363657074656400a7696e76616c696400")  # {"accepted": 0, "invalid": 0}
NONCE = bytes(range(16))
PATH = "/mesh/v1/push"


def documented_blocks() -> list[str]:
    text = DOCS.read_text("utf-8")
    part = text[text.index("### §12.5 Signed replies") :]
    return ["".join(b.split()) for b in re.findall(r"```\n(.*?)```", part, re.S)]


def reply(**over: object) -> str:
    args: dict = {"status": 200, "path": PATH, "body": BODY, "nonce": NONCE, "requester": REQUESTER_KEY}
    return sign_reply(REPLIER, **(args | over))


def check(header: str | None, keys: frozenset[bytes] = frozenset({REPLIER_KEY}), **over: object) -> bytes:
    args: dict = {"status": 200, "path": PATH, "body": BODY, "nonce": NONCE, "requester": REQUESTER_KEY}
    return verify_reply(header, keys=keys, **(args | over))


def test_the_documented_header_is_what_the_code_signs() -> None:
    assert reply() in documented_blocks()
    assert check(reply()) == REPLIER_KEY


def test_the_documented_steps_rebuild_the_payload_and_signature() -> None:
    fields = {
        "h": hashlib.blake2b(BODY, digest_size=32).digest(),
        "n": NONCE,
        "p": PATH,
        "q": REQUESTER_KEY,
        "s": 200,
    }
    payload = msgpack.packb(dict(sorted(fields.items())), use_bin_type=True)
    assert payload.hex() in documented_blocks()
    signature = REPLIER.sign(b"amparo/v1/reply\x00" + payload).signature
    assert reply() == f"v1.{REPLIER_KEY.hex()}.{signature.hex()}"


@pytest.mark.parametrize(
    "change",
    [
        {"status": 429},
        {"path": "/mesh/v1/fetch"},
        {"body": BODY + b"\x00"},
        {"nonce": bytes(16)},
        {"requester": REPLIER_KEY},
    ],
)
def test_any_change_is_refused(change: dict) -> None:
    with pytest.raises(ProtocolError) as err:
        check(reply(), **change)
    assert err.value.code == "bad-signature"


def test_only_the_expected_keys_may_sign() -> None:
    by_other = sign_reply(OTHER, status=200, path=PATH, body=BODY, nonce=NONCE, requester=REQUESTER_KEY)
    with pytest.raises(ProtocolError, match="not the peer's"):
        check(by_other)
    assert check(by_other, keys=frozenset({REPLIER_KEY, bytes(OTHER.verify_key)})) == bytes(OTHER.verify_key)


def test_a_request_signature_never_passes_as_a_reply() -> None:
    """Domain separation: same key, same nonce, but the request's purpose."""
    request = sign_request(
        REPLIER, method="POST", path=PATH, body=BODY, receiver=REQUESTER_KEY, now=1, nonce=NONCE
    )
    forged = f"v1.{REPLIER_KEY.hex()}.{request.rsplit('.', 1)[1]}"
    with pytest.raises(ProtocolError) as err:
        check(forged)
    assert err.value.code == "bad-signature"


@pytest.mark.parametrize("header", [None, "", "v1", "v2.aa.bb", f"v1.{'zz' * 32}.{'00' * 64}", "v1.00.00"])
def test_missing_or_malformed_headers_are_refused(header: str | None) -> None:
    with pytest.raises(ProtocolError):
        check(header)


@given(st.text(max_size=300))
def test_garbage_headers_raise_only_protocol_errors(text: str) -> None:
    with pytest.raises(ProtocolError):
        check(text)
