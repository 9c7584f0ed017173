"""Signed mesh requests (docs/protocol.md §12): the known answer in the docs is
what ``protocol.request`` produces, rebuilt here from the documented steps with
raw hashlib/PyNaCl calls, so an independent implementation can rely on the text."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import msgpack
import nacl.signing
import pytest

from protocol import ProtocolError
from protocol.request import MAX_REQUEST_AGE_MS, sign_request, verify_request

DOCS = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
SENDER = nacl.signing.SigningKey(bytes(range(32)))
RECEIVER = bytes(nacl.signing.SigningKey(bytes(range(32, 64))).verify_key)
BODY = bytes.fromhex("81a16590")  # {"e": []}
NOW = 1767225600000
NONCE = bytes(range(16))


def section_12() -> str:
    text = DOCS.read_text("utf-8")
    return text[text.index("## §12 Mesh requests") :]


def documented_hex_blocks() -> list[str]:
    """The code blocks of §12.2, whitespace removed."""
    part = section_12()
    part = part[part.index("### §12.2") : part.index("### §12.3")]
    return ["".join(b.split()) for b in re.findall(r"```\n(.*?)```", part, re.S)]


def test_the_documented_header_is_what_the_code_signs() -> None:
    header = sign_request(
        SENDER, method="POST", path="/mesh/v1/push", body=BODY, receiver=RECEIVER, now=NOW, nonce=NONCE
    )
    blocks = documented_hex_blocks()
    assert header in blocks
    assert RECEIVER.hex() in section_12()
    assert len(header) <= 400


def test_the_documented_steps_rebuild_the_payload_and_signature() -> None:
    """§12.1 by hand: canonical map with sorted one-letter keys, purpose, 0x00."""
    fields = {
        "h": hashlib.blake2b(BODY, digest_size=32).digest(),
        "m": "POST",
        "n": NONCE,
        "p": "/mesh/v1/push",
        "r": RECEIVER,
        "t": NOW,
    }
    payload = msgpack.packb(dict(sorted(fields.items())), use_bin_type=True)
    assert payload.hex() in documented_hex_blocks()
    signature = SENDER.sign(b"amparo/v1/request\x00" + payload).signature
    sender = bytes(SENDER.verify_key)
    assert f"v1.{sender.hex()}.{NOW}.{NONCE.hex()}.{signature.hex()}" in documented_hex_blocks()


def test_the_documented_window_and_receiver_binding_hold() -> None:
    assert f"{MAX_REQUEST_AGE_MS:_}".replace("_", " ") in section_12()  # "120 000"
    header = sign_request(
        SENDER, method="POST", path="/mesh/v1/push", body=BODY, receiver=RECEIVER, now=NOW, nonce=NONCE
    )
    ok = dict(method="POST", path="/mesh/v1/push", body=BODY, receiver=RECEIVER)
    assert verify_request(header, **ok, now=NOW + MAX_REQUEST_AGE_MS).nonce == NONCE  # edge of the window
    for changed, code in [
        ({"now": NOW + MAX_REQUEST_AGE_MS + 1}, "expired"),
        ({"now": NOW - MAX_REQUEST_AGE_MS - 1}, "from-the-future"),
        ({"receiver": bytes(SENDER.verify_key)}, "bad-signature"),
        ({"path": "/mesh/v1/fetch"}, "bad-signature"),
        ({"body": BODY + b"\x00"}, "bad-signature"),
        ({"method": "PUT"}, "bad-signature"),
    ]:
        args = {**ok, "now": NOW, **changed}
        with pytest.raises(ProtocolError) as raised:
            verify_request(header, **args)  # type: ignore[arg-type]
        assert raised.value.code == code, changed
    upper = header.upper().replace("V1.", "v1.", 1)
    assert verify_request(upper, **ok, now=NOW).sender == bytes(SENDER.verify_key)  # either hex case


def test_no_signature_uses_the_reserved_invite_purpose() -> None:
    """docs §5/§12.4 say `amparo/v1/invite` is reserved; keep code and docs agreeing."""
    root = DOCS.parents[1]
    users = [
        p.relative_to(root).as_posix()
        for layer in ("protocol", "mesh", "node")
        for p in (root / layer).rglob("*.py")
        if "PURPOSE_INVITE" in p.read_text("utf-8") and p.name != "signing.py"
    ]
    assert users == [], f"PURPOSE_INVITE is used in {users}: document what it signs in docs/protocol.md §12.4"
    assert "reserved" in section_12()
