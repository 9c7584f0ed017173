"""A forwarding target for the benchmarks: a peer that accepts pushes and does nothing.

`bench/ingest.py` measures what *one* node costs to accept an alert: verify,
store, and forward. Forwarding to a second real node would charge the measured
node's CPUs with that node's own verify and store work too (2 cores, shared). This
process answers the mesh listener's calls over real HTTPS (TLS 1.3, its own
self-signed certificate, which the node pins) without verifying or keeping
anything, so the forward costs the node exactly what a push costs it.

    python bench/mesh_sink.py DIR     # prints "PORT FINGERPRINT_HEX" once listening,
                                      # then the running total of envelopes after each push

Its answers are signed (docs/protocol.md §12.5) with the identity whose 64 random
bytes the benchmark wrote to ``DIR/sink.seed``, as a real node's are: the node
accepts no unsigned answer.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import mesh  # noqa: E402
from node import tls  # noqa: E402
from node.provision import make_certificate, tls_fingerprint  # noqa: E402
from protocol import framing, reply, request  # noqa: E402
from protocol.keys import Identity  # noqa: E402

SEED_FILE = "sink.seed"
IDENTITY: web.AppKey[Identity] = web.AppKey("identity", Identity)


@web.middleware
async def _signed(req: web.Request, handler: object) -> web.StreamResponse:
    response: web.Response = await handler(req)  # type: ignore[operator]
    auth, _ = request.parse_header(req.headers.get(request.HEADER))
    assert isinstance(response.body, bytes)
    response.headers[reply.HEADER] = reply.sign_reply(
        req.app[IDENTITY].signing_key,
        status=response.status,
        path=req.path,
        body=response.body,
        nonce=auth.nonce,
        requester=auth.sender,
    )
    return response


async def _push(request: web.Request) -> web.Response:
    frame = framing.unpack(await request.read())
    request.app["received"] += len(frame.get("e", []))
    print(request.app["received"], flush=True)  # the benchmark's clock, without polling the node
    return web.Response(body=framing.pack({"accepted": len(frame.get("e", [])), "invalid": 0}))


async def _reconcile(request: web.Request) -> web.Response:
    """An empty set: the node has nothing to fetch from the sink."""
    frame = framing.unpack(await request.read())
    return web.Response(body=framing.pack({"m": mesh.reconcile.respond([], frame.get("m"))}))


async def _empty(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=framing.pack({"e": []}))


async def main(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    make_certificate(home, "amparo-bench-sink")
    app = web.Application(client_max_size=framing.MAX_FRAME_BYTES, middlewares=[_signed])
    app[IDENTITY] = Identity.from_random((home / SEED_FILE).read_bytes())
    app["received"] = 0
    app.router.add_post("/mesh/v1/push", _push)
    app.router.add_post("/mesh/v1/reconcile", _reconcile)
    app.router.add_post("/mesh/v1/fetch", _empty)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.server_context(home))
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fingerprint = tls_fingerprint(home)
    assert fingerprint is not None
    print(port, fingerprint.hex(), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
