"""A fake mesh peer's TLS listener for the transport tests: a fresh certificate
in ``home``, the app served on a port the kernel picks, and its pin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web

from node import provision, tls


@asynccontextmanager
async def tls_listener(app: web.Application, home: Path, name: str) -> AsyncIterator[tuple[int, bytes]]:
    """Serve ``app`` over TLS on 127.0.0.1; yields (port, certificate fingerprint)."""
    provision.make_certificate(home, name)
    fingerprint = provision.tls_fingerprint(home)
    assert fingerprint is not None
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.server_context(home)).start()
        port = runner.addresses[0][1]
        yield port, fingerprint
    finally:
        await runner.cleanup()
