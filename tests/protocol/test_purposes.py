"""Every purpose string comes from ``protocol.signing`` (STYLE principle 3): the
values are pinned (they are part of signatures, hashes and files already made),
and a scan fails on a purpose string spelled anywhere else in the code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from protocol import signing

ROOT = Path(__file__).resolve().parents[2]


def test_the_signing_purposes_follow_the_scheme() -> None:
    assert signing.PURPOSES == (
        "amparo/v1/envelope",
        "amparo/v1/sealed-body",
        "amparo/v1/rotate",
        "amparo/v1/request",
        "amparo/v1/invite",
        "amparo/v1/reply",
        "amparo/v1/endorse",
    )
    assert all(p == signing.purpose(p.removeprefix(signing.SCHEME)) for p in signing.PURPOSES)


def test_the_hash_personalizations_are_pinned_and_fit_blake2b() -> None:
    assert signing.PERSONS == (
        b"amparo/v1/recon",
        b"amparo-hint-v1",
        b"amparo-fpr-v1",
        b"amparo-invite",
        b"amparo-tls-pem1",
        b"amparo/v1/next",
        b"amparo/v1/peers",
        b"amparo/v1/alert",
        b"amparo/v1/pin",
        b"amparo/v1/smskey",
        b"amparo/v1/sms",
    )
    assert len(set(signing.PERSONS)) == len(signing.PERSONS)
    assert all(len(p) <= signing.MAX_PERSON_BYTES for p in signing.PERSONS)


@pytest.mark.parametrize("what", ["", "a/b", "nul\x00", "ñandú"])
def test_a_purpose_name_is_one_ascii_word(what: str) -> None:
    with pytest.raises(ValueError):
        signing.purpose(what)


def test_a_person_longer_than_blake2b_allows_is_refused() -> None:
    assert signing.person("recon") == b"amparo/v1/recon"
    with pytest.raises(ValueError, match="16-byte"):
        signing.person("much-too-long")


def _strays(source: str, filename: str) -> list[str]:
    """Purpose-like constants outside docstrings: ``"amparo/v1/…"`` text, or bytes
    starting ``amparo`` (a personalization)."""
    tree = ast.parse(source, filename)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or id(node) in docstrings:
            continue
        value = node.value
        if (isinstance(value, str) and value.startswith(signing.SCHEME)) or (
            isinstance(value, bytes) and value.startswith(b"amparo")
        ):
            found.append(f"{filename}:{node.lineno}: {value!r}")
    return found


def test_no_purpose_string_is_spelled_outside_signing() -> None:
    found: list[str] = []
    for layer in ("protocol", "mesh", "node"):
        for path in sorted((ROOT / layer).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if name != "protocol/signing.py":
                found += _strays(path.read_text("utf-8"), name)
    assert not found, "use protocol.signing (purpose, person, PURPOSE_*, PERSON_*):\n" + "\n".join(found)


def test_the_scan_catches() -> None:
    assert _strays('X = b"amparo-new"\nY = "amparo/v1/thing"\n', "node/planted.py") == [
        "node/planted.py:1: b'amparo-new'",
        "node/planted.py:2: 'amparo/v1/thing'",
    ]
    assert _strays('"""Signed for ``amparo/v1/reply``."""\n', "node/planted.py") == []
