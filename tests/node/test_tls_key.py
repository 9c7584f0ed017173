"""The TLS private key at rest: sealed on a node with a passphrase, a plain key
from an older version sealed in place (its old inode overwritten), and a wrong
or missing password is a clear error, never a terminal prompt."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from node import provision, tls
from node.config import ConfigError
from protocol.keys import Identity


def _identity(byte: int) -> Identity:
    return Identity.from_random(bytes([byte]) * 64)


def test_a_sealed_key_opens_only_with_its_identity(tmp_path: Path) -> None:
    me = _identity(1)
    provision.make_certificate(tmp_path, "Nodo Ficticio", tls.pem_password(me))
    pem = (tmp_path / provision.TLS_KEY).read_bytes()
    assert tls.is_sealed(pem) and b"BEGIN PRIVATE KEY" not in pem
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(pem, password=None)
    assert tls.server_context(tmp_path, tls.pem_password(me)).minimum_version.name == "TLSv1_3"
    with pytest.raises(ConfigError, match="cannot open the TLS key"):
        tls.server_context(tmp_path, tls.pem_password(_identity(2)))
    with pytest.raises(ConfigError, match="sealed"):
        tls.server_context(tmp_path, None)


def test_the_password_is_bound_to_the_encryption_key_and_a_purpose() -> None:
    me = _identity(1)
    rotated = Identity(sign_seed=b"\x09" * 32, enc_secret=me.enc_secret)  # a rotation keeps enc
    assert tls.pem_password(me) == tls.pem_password(rotated)
    assert tls.pem_password(me) != tls.pem_password(_identity(2))
    assert me.enc_secret.hex().encode() != tls.pem_password(me)
    assert len(tls.pem_password(me)) == 64


def test_sealing_a_plain_key_overwrites_the_old_file(tmp_path: Path) -> None:
    provision.make_certificate(tmp_path, "Nodo Ficticio")  # as an older version wrote it
    path = tmp_path / provision.TLS_KEY
    plain = path.read_bytes()
    os.link(path, tmp_path / "old-inode")
    password = tls.pem_password(_identity(3))
    assert tls.seal_key(tmp_path, password) is True
    assert tls.is_sealed(path.read_bytes())
    old = (tmp_path / "old-inode").read_bytes()
    assert len(old) == len(plain) and b"PRIVATE KEY" not in old
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert tls.seal_key(tmp_path, password) is False  # already sealed: untouched
    tls.server_context(tmp_path, password)


def test_a_damaged_plain_key_is_a_clear_error(tmp_path: Path) -> None:
    provision.make_certificate(tmp_path, "Nodo Ficticio")
    (tmp_path / provision.TLS_KEY).write_bytes(
        b"-----BEGIN PRIVATE KEY-----\nnada\n-----END PRIVATE KEY-----\n"
    )
    with pytest.raises(ConfigError, match="not a PEM private key"):
        tls.seal_key(tmp_path, tls.pem_password(_identity(4)))
