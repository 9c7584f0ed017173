"""One-time setup of a node's home: TLS certificate and the local API token.

The mesh listener's certificate is self-signed; peers pin its SHA-256, which the
node publishes in its signed ``node`` record, so no certificate authority (and
no third party able to issue a rogue certificate) is involved.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from node.config import TLS_CERT, TLS_KEY, TOKEN_FILE, Config, parse_hostport, write_private
from node.tls import pem_password
from protocol.keys import Identity


def after_init(home: Path, config: Config, identity: Identity, sealed: bool) -> None:
    """``sealed``: the node has a passphrase, so its TLS key is sealed too (node/tls.py)."""
    make_certificate(home, config.name, pem_password(identity) if sealed else None)
    write_private(home / TOKEN_FILE, secrets.token_urlsafe(32).encode("ascii"))


def make_certificate(home: Path, common_name: str, password: bytes | None = None) -> None:
    """A fresh key and self-signed certificate; the key encrypted under ``password``
    when given (a node with a passphrase), plain otherwise."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "amparo-node")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    write_private(
        home / TLS_KEY,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption(),
        ),
    )
    write_private(home / TLS_CERT, cert.public_bytes(serialization.Encoding.PEM))


def tls_fingerprint(home: Path) -> bytes | None:
    path = home / TLS_CERT
    if not path.exists():
        return None
    der = ssl.PEM_cert_to_DER_cert(path.read_text("ascii"))
    return hashlib.sha256(der).digest()


def tls_fingerprint_hex(home: Path) -> str:
    fp = tls_fingerprint(home)
    return fp.hex() if fp else ""


def advertised_addresses(config: Config) -> list[str]:
    """Where peers should connect: the configured list, else the listener itself
    (an unspecified listen address is advertised as loopback, for local meshes)."""
    if config.advertise:
        return list(config.advertise)
    host, port = parse_hostport(config.listen, "listen")
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - mapping "all interfaces" to loopback
        host = "127.0.0.1"
    return [f"{host}:{port}"]


def api_token(home: Path) -> str:
    return (home / TOKEN_FILE).read_text("ascii").strip()
