"""TLS for the mesh listener and client: TLS 1.3 only, certificates pinned by SHA-256.

There is no certificate authority: each node's self-signed certificate is pinned
by its fingerprint, published in the node's signed ``node`` record. The client
uses aiohttp's ``Fingerprint`` check, so a connection to anything but the pinned
certificate fails before a byte of the request is sent.
"""

from __future__ import annotations

import ssl
from functools import lru_cache
from pathlib import Path

import aiohttp

from node.setup import TLS_CERT, TLS_KEY


def server_context(home: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(home / TLS_CERT, home / TLS_KEY)
    return ctx


@lru_cache(maxsize=4096)
def pinned(fingerprint: bytes) -> aiohttp.Fingerprint:
    """One ``Fingerprint`` object per certificate. aiohttp keys its pool of
    keep-alive connections by the ``ssl`` argument and ``Fingerprint`` compares
    by identity: a fresh object per request meant a fresh TCP + TLS handshake
    for every push. The check itself runs when a connection is made."""
    return aiohttp.Fingerprint(fingerprint)
