"""Signed mesh requests: bound to method, path, body, time, nonce and receiver."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import Identity, ProtocolError
from protocol.request import MAX_REQUEST_AGE_MS, sign_request, verify_request

A = Identity.from_random(bytes(range(64)))
B = Identity.from_random(bytes(range(64, 128)))
NOW = 1_760_000_000_000
NONCE = bytes(16)


def header(**over: object) -> str:
    args: dict = {
        "method": "POST",
        "path": "/mesh/v1/push",
        "body": b"frame",
        "receiver": B.sign_public,
        "now": NOW,
        "nonce": NONCE,
    } | over
    return sign_request(A.signing_key, **args)


def check(h: str, **over: object) -> bytes:
    args: dict = {
        "method": "POST",
        "path": "/mesh/v1/push",
        "body": b"frame",
        "receiver": B.sign_public,
        "now": NOW,
    } | over
    return verify_request(h, **args).sender


def test_valid_request_names_its_sender() -> None:
    assert check(header()) == A.sign_public


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"method": "GET"}, "bad-signature"),
        ({"path": "/mesh/v1/fetch"}, "bad-signature"),
        ({"body": b"other"}, "bad-signature"),
        ({"receiver": A.sign_public}, "bad-signature"),
        ({"now": NOW + MAX_REQUEST_AGE_MS + 1}, "expired"),
        ({"now": NOW - MAX_REQUEST_AGE_MS - 1}, "from-the-future"),
    ],
)
def test_any_change_is_refused(change: dict, code: str) -> None:
    with pytest.raises(ProtocolError) as err:
        check(header(), **change)
    assert err.value.code == code


@given(st.text(max_size=500))
def test_garbage_headers_raise_only_protocol_errors(text: str) -> None:
    with pytest.raises(ProtocolError):
        check(text)


def test_missing_header() -> None:
    with pytest.raises(ProtocolError, match="missing"):
        check(None)  # type: ignore[arg-type]
