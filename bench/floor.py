"""The floor under the propagation figures: bare relays on the fixed stack.

`bench/propagation.py` measures real nodes against Mosquitto. When a target is
missed, the question is whether *any* node built on the project's fixed stack
(Python, aiohttp over HTTPS, PyNaCl) could meet it on this host. This script
answers by measuring a relay that does strictly less than a node must:

* an aiohttp HTTPS listener (TLS 1.3, the node's certificate code) and one
  keep-alive client session per relay, pinned like the node's;
* a message of the alert's size (1,338 bytes), its Ed25519 signature checked
  by PyNaCl, duplicates dropped by id before the check;
* forwarded to the relay's peers as soon as it is checked, answered at once.

No request signature, no nonce, no canonical decode, no admission, no store,
no fsync, no receipts, no stream: every one of those is work a node adds. So a
target the bare relays miss on this host cannot be met by the node here, and
the gap between the relays and the node is what the node's own code costs.

Same graph as `bench/propagation.py` (a ring plus chords), the same broker
baseline in the same run, the same `--link-delay` forwarders on every relay's
listener and on every broker connection. `--push flood` forwards every message
to every peer but its sender (duplicates included, as flooding does);
`--push tree` forwards it only down the shortest-path tree from its author,
computed by every relay from the graph: the ideal tree, one copy per relay,
which no real tree-push protocol beats. Arrival is the moment a relay has
checked a message (each relay prints it with the host's monotonic clock, which
every process shares), so no stream or listener adds to it.

    python bench/floor.py [--nodes 20] [--alerts 50] [--warmup N]
                          [--link-delay MS] [--push flood|tree|both] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.linkdelay import DelayLink  # noqa: E402
from bench.propagation import Arrivals, Background, _ms, broker_run, hops, tree_cpu_s  # noqa: E402
from node.devmesh import free_port, ring_with_chords  # noqa: E402

MESSAGE_BYTES = 1338  # bench/protocol.py's sample alert envelope
P50_TARGET_MS = 25


def tree_children(n: int, edges: list[tuple[int, int]], root: int) -> dict[int, list[int]]:
    """Each relay's children in the breadth-first (shortest-path) tree from ``root``."""
    neighbours: dict[int, list[int]] = {i: [] for i in range(n)}
    for a, b in edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    children: dict[int, list[int]] = {i: [] for i in range(n)}
    seen, queue = {root}, deque([root])
    while queue:
        here = queue.popleft()
        for there in sorted(neighbours[here]):
            if there not in seen:
                seen.add(there)
                children[here].append(there)
                queue.append(there)
    return children


async def serve_https(app: Any, port: int, home: Path) -> None:
    """Serve ``app`` over HTTPS with the certificate in ``home`` (the node's TLS
    code), say "R" on stdout once listening, and serve until killed."""
    from aiohttp import web

    from node import tls

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls.server_context(home)).start()
    print("R", flush=True)
    await asyncio.Event().wait()


# -- the relay process -----------------------------------------------------------------------


def relay_main(config: dict[str, Any]) -> None:
    """One bare relay: listen, check, forward, print each first arrival."""
    import nacl.bindings
    from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

    from node import tls

    index, n, mode = config["index"], config["nodes"], config["push"]
    edges = [tuple(e) for e in config["edges"]]
    peers = {int(k): v for k, v in config["peers"].items()}  # peer index -> [port, tls fingerprint hex]
    children = {root: tree_children(n, edges, root)[index] for root in range(n)} if mode == "tree" else {}
    seen: set[bytes] = set()
    tasks: set[asyncio.Task[None]] = set()
    state: dict[str, ClientSession] = {}

    async def forward(peer: int, body: bytes) -> None:
        port, fingerprint = peers[peer]
        try:
            async with state["session"].post(
                f"https://127.0.0.1:{port}/push",
                data=body,
                headers={"X-From": str(index)},
                ssl=tls.pinned(bytes.fromhex(fingerprint)),
            ) as answer:
                await answer.read()
        except Exception as exc:  # a floor run that loses messages says so and stops
            print(f"E forward to {peer} failed: {exc!r}", flush=True)

    async def push(request: web.Request) -> web.Response:
        body = await request.read()
        message_id = body[:16]
        if message_id in seen:
            return web.Response(text="duplicate")
        author, signature, payload = body[16], body[17:81], body[81:]
        try:
            nacl.bindings.crypto_sign_open(signature + payload, bytes.fromhex(config["keys"][author]))
        except Exception:
            return web.Response(status=400, text="bad signature")
        seen.add(message_id)
        print(f"A {message_id.hex()} {time.monotonic_ns()}", flush=True)
        sender = int(request.headers.get("X-From", "-1"))
        targets = children[author] if mode == "tree" else [p for p in peers if p != sender]
        for peer in targets:
            task = asyncio.create_task(forward(peer, body))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        return web.Response(text="ok")

    async def main() -> None:
        state["session"] = ClientSession(
            connector=TCPConnector(limit=0), timeout=ClientTimeout(total=30)
        )
        app = web.Application(client_max_size=1 << 20)
        app.router.add_post("/push", push)
        await serve_https(app, config["port"], Path(config["home"]))

    asyncio.run(main())


# -- the benchmark ---------------------------------------------------------------------------


class Relays:
    """N relay processes, their arrival lines read into ``arrivals``."""

    def __init__(self, n: int, push: str, delay_ms: float | None, bg: Background, tmp: Path) -> None:
        import nacl.signing

        from node.provision import make_certificate, tls_fingerprint

        self.n, self.arrivals, self.errors = n, Arrivals(), []  # type: ignore[var-annotated]
        self.edges = ring_with_chords(n)
        self.signers = [nacl.signing.SigningKey(hashlib.sha256(b"floor-%d" % i).digest()) for i in range(n)]
        self.link = DelayLink(delay_ms or 0)
        ports = [free_port() for _ in range(n)]
        dialled = [bg.run(self.link.forward(p)) for p in ports] if delay_ms is not None else ports
        homes, prints = [], []
        for i in range(n):
            home = tmp / f"relay-{i}"
            home.mkdir()
            make_certificate(home, f"relay-{i}")
            homes.append(home)
            prints.append((tls_fingerprint(home) or b"").hex())
        self.procs: list[subprocess.Popen[str]] = []
        for i in range(n):
            peers = {b if a == i else a: [dialled[b if a == i else a], prints[b if a == i else a]]
                     for a, b in self.edges if i in (a, b)}
            config = {
                "index": i, "nodes": n, "push": push, "edges": self.edges, "peers": peers,
                "port": ports[i], "home": str(homes[i]),
                "keys": [bytes(s.verify_key).hex() for s in self.signers],
            }
            self.procs.append(subprocess.Popen(
                [sys.executable, __file__, "relay", json.dumps(config)],
                stdout=subprocess.PIPE, text=True, cwd=ROOT,
            ))
        ready = [threading.Event() for _ in range(n)]
        for i, proc in enumerate(self.procs):
            threading.Thread(target=self._read, args=(i, proc, ready[i]), daemon=True).start()
        for i, event in enumerate(ready):
            if not event.wait(30):
                raise SystemExit(f"relay {i} did not start")
        self.ports, self.prints = ports, prints

    def _read(self, index: int, proc: subprocess.Popen[str], ready: threading.Event) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            kind, _, rest = line.strip().partition(" ")
            if kind == "R":
                ready.set()
            elif kind == "A":
                message_id, at_ns = rest.split()
                with self.arrivals.lock:
                    self.arrivals.times.setdefault(message_id, {}).setdefault(index, int(at_ns) / 1e9)
                    self.arrivals.lock.notify_all()
            elif kind == "E":
                self.errors.append(f"relay {index}: {rest}")

    def message(self, author: int, k: int) -> tuple[str, bytes]:
        payload = (b"floor %d " % k).ljust(MESSAGE_BYTES - 81, b"x")
        signature = self.signers[author].sign(payload).signature
        message_id = hashlib.blake2b(payload + bytes([author]), digest_size=16).digest()
        return message_id.hex(), message_id + bytes([author]) + signature + payload

    def close(self, bg: Background) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        bg.run(self.link.close())


def relay_run(
    n: int, alerts: int, warmup: int, push: str, delay_ms: float | None, bg: Background, say: Any
) -> dict[str, Any]:
    from aiohttp import ClientSession, TCPConnector

    from node import tls

    with tempfile.TemporaryDirectory(prefix="amparo-floor-") as tmp:
        relays = Relays(n, push, delay_ms, bg, Path(tmp))
        say(f"bare relays ({push}): {n} processes, {len(relays.edges)} links")
        holder: dict[str, ClientSession] = {}

        async def open_session() -> None:
            holder["session"] = ClientSession(connector=TCPConnector(limit=0))

        async def send(author: int, body: bytes) -> None:
            async with holder["session"].post(
                f"https://127.0.0.1:{relays.ports[author]}/push",
                data=body,
                ssl=tls.pinned(bytes.fromhex(relays.prints[author])),
            ) as answer:
                await answer.read()

        bg.run(open_session())
        latencies: list[float] = []
        pids = [p.pid for p in relays.procs]
        try:
            cpu_before = 0.0
            for k in range(warmup + alerts):
                if k == warmup:
                    cpu_before = tree_cpu_s(pids)
                author = k % n
                message_id, body = relays.message(author, k)
                start = time.monotonic()
                bg.run(send(author, body))
                took = _wait(relays, message_id, start)
                if k >= warmup:
                    latencies.append(took)
            cpu_ms = (tree_cpu_s(pids) - cpu_before) * 1000 / alerts
        finally:
            bg.run(holder["session"].close())
            relays.close(bg)
        if relays.errors:
            raise SystemExit("; ".join(relays.errors[:5]))
        mean_hops, diameter = hops(n, relays.edges)
    return {
        "latencies": latencies,
        "mean_hops": round(mean_hops, 2),
        "diameter": diameter,
        "relay_cpu_per_alert_ms": round(cpu_ms, 1),
    }


def _wait(relays: Relays, message_id: str, start: float) -> float:
    if (last := relays.arrivals.wait_all(message_id, relays.n, start + 30 - time.monotonic())) is None:
        raise SystemExit(f"message {message_id} did not reach every relay within 30 s")
    return last - start


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "relay":
        relay_main(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--alerts", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=None, help="unmeasured first messages (default: one per relay, so every link is warm)")
    parser.add_argument("--link-delay", type=float, default=None, metavar="MS")
    parser.add_argument("--push", choices=("flood", "tree", "both"), default="both")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    bg = Background()
    broker = broker_run(args.nodes, args.alerts, args.link_delay, bg, say)
    results: dict[str, Any] = {
        "nodes": args.nodes,
        "link_delay_ms": args.link_delay,
        "cpus": os.cpu_count(),
        "broker": {"p50_ms": _ms(broker, 50), "p99_ms": _ms(broker, 99)},
    }
    modes = ["flood", "tree"] if args.push == "both" else [args.push]
    for mode in modes:
        warmup = args.nodes if args.warmup is None else args.warmup
        run = relay_run(args.nodes, args.alerts, warmup, mode, args.link_delay, bg, say)
        latencies = run.pop("latencies")
        run |= {"p50_ms": _ms(latencies, 50), "p99_ms": _ms(latencies, 99)}
        run["p99_over_broker"] = round(run["p99_ms"] / results["broker"]["p99_ms"], 1)
        results[mode] = run
    bg.stop()
    if args.json:
        print(json.dumps(results))
        return
    ratio_target = 3 if args.link_delay else 10
    delay = f", {args.link_delay:g} ms per link" if args.link_delay else ", loopback"
    print(f"bare relays (aiohttp HTTPS + PyNaCl verify, nothing else), {args.nodes} processes{delay}")
    b = results["broker"]
    print(f"broker (mosquitto, 2 hops): p50 {b['p50_ms']} ms, p99 {b['p99_ms']} ms")
    for mode in modes:
        r = results[mode]
        print(
            f"relays {mode:5}: p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms = {r['p99_over_broker']}x the broker's "
            f"(mean path {r['mean_hops']} hops, diameter {r['diameter']}); "
            f"CPU of all relays per alert {r['relay_cpu_per_alert_ms']} ms"
        )
    targets = f"p99 <= {ratio_target}x the broker's" + ("" if args.link_delay else f", p50 <= {P50_TARGET_MS} ms")
    print(f"issue 14's targets for the node: {targets}; a target the bare relays miss, the node cannot meet here")


if __name__ == "__main__":
    main()
