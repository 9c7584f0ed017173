"""Delivery to allies: from an alert's arrival at a node to the last webhook.

One real node (a separate ``amparo run`` process) holds 100 webhook
subscriptions spread over regions (countries, subdivisions and ``*``). A
scripted peer pushes 1,000 signed alerts; a local aiohttp receiver records when
each (alert, subscription) delivery lands. Latency is measured from the moment
the push frame carrying the alert was acknowledged (the alert is then on disk)
to the moment its delivery reached the receiver.

Baseline, measured in the same run: the rate at which a plain aiohttp client
posts the same JSON bodies to the same receiver, 16 at a time (the node's own
parallelism), for 3 s before the burst and 3 s after it (the mean of the two). The ratio deliveries/s ÷ baseline is what to compare across
machines.

With ``--batch`` every subscription opts in to several alerts per request
(docs/allies.md, "batch"): a delivery is still one (alert, subscription) pair,
counted when the request carrying it lands; ``requests`` says how many POSTs
carried them.

    python bench/delivery.py [--alerts 1000] [--subscriptions 100] [--batch] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiohttp import ClientSession, web  # noqa: E402

from node.devmesh import LocalMesh, free_port  # noqa: E402
from node.transport import MeshClient  # noqa: E402
from protocol import Alert, Area, framing, sign_envelope  # noqa: E402
from tests.e2e.harness import ScriptedPeer, now_ms  # noqa: E402

# Where alerts happen, and what allies subscribe to (parents match children).
ALERT_REGIONS = ["MX-OAX", "MX-CHP", "MX-GRO", "CO-ANT", "CO-CAU", "GT-14", "HN-CR", "BR-PA", "PE-CUS", "PH-00"]
SUB_REGIONS = ["MX", "MX-OAX", "MX-CHP", "MX-GRO", "CO", "CO-CAU", "GT", "HN", "BR", "PE", "PH", "*"]
PARALLEL = 16
BASELINE_BODY = json.dumps({"alert": {"headline": "x" * 600}}).encode()
AUTHOR_BURST = 250  # alerts per author: under the per-author burst of 300 (mesh.peers)


class Receiver:
    def __init__(self) -> None:
        self.arrivals: list[tuple[str, float]] = []  # (alert id, monotonic time)
        self.requests = 0

    async def handle(self, request: web.Request) -> web.Response:
        doc = await request.json()
        now = time.monotonic()
        self.requests += 1
        for item in doc.get("deliveries", [doc]):  # a batch, or one alert
            self.arrivals.append((item["alert"]["id"], now))
        return web.Response(status=204)

    async def start(self, port: int) -> web.AppRunner:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/{sub}", self.handle)
        app.router.add_post("/baseline", self.baseline)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner

    async def baseline(self, request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=204)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its threads, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of the node process and of each of its live children (its
    signature workers, node.verifier), by pid."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids += [int(child) for child in (task / "children").read_text().split()]
    return {p: cpu_seconds(p) for p in pids}


def cpu_since(before: dict[int, float], pid: int) -> float:
    """CPU the node and its workers spent since ``before`` (a worker started since counts from zero)."""
    return sum(spent - before.get(p, 0.0) for p, spent in tree_cpu(pid).items())


async def baseline_rate(port: int, body: bytes, seconds: float = 3.0) -> tuple[float, float]:
    """Plain aiohttp posts of the same body to the same receiver: the ceiling.
    Posts per wall second, and per CPU second of this process (client and
    receiver both: what a post costs, whatever else the machine is doing)."""
    done = 0
    cpu = time.process_time()
    deadline = time.monotonic() + seconds
    async with ClientSession() as session:

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                async with session.post(f"http://127.0.0.1:{port}/baseline", data=body) as resp:
                    await resp.read()
                done += 1

        start = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(PARALLEL)))
        return done / (time.monotonic() - start), done / (time.process_time() - cpu)


async def run(args: argparse.Namespace, say: Any) -> dict[str, Any]:
    receiver = Receiver()
    port = free_port()
    runner = await receiver.start(port)
    # Each author is a paired peer of its own: a key the node vouched for draws on
    # its own rate budget (burst 300), where keys a peer vouched for would share
    # that peer's one budget and most of the burst would be deferred.
    authors = [ScriptedPeer(f"Nodo de Carga {k}") for k in range(-(-args.alerts // AUTHOR_BURST))]
    peer = authors[0]  # pushes everyone's alerts over one connection
    envelopes = [
        sign_envelope(
            authors[i % len(authors)].identity,
            Alert(
                headline=f"Delivery {i}",
                areas=(Area(ALERT_REGIONS[i % len(ALERT_REGIONS)]),),
                severity="severe",
                instruction="Llamar a la brigada de acompañamiento",
            ),
            created=now_ms(),
            expires=now_ms() + 3600_000,
        )
        for i in range(args.alerts)
    ]
    with tempfile.TemporaryDirectory(prefix="amparo-delivery-") as tmp, LocalMesh(Path(tmp), 1, settings={"allow_private_targets": ["127.0.0.0/8"]}) as mesh:
        mesh.init_all()
        mesh.start_all()
        node = mesh.nodes[0]
        subs: dict[str, str] = {}
        for k in range(args.subscriptions):
            region = SUB_REGIONS[k % len(SUB_REGIONS)]
            doc: dict[str, Any] = {"regions": [region], "channel": {"kind": "webhook", "url": f"http://127.0.0.1:{port}/s{k}"}}
            if args.batch:
                doc["batch"] = True
            subs[node.api.post("/api/v1/subscriptions", doc)["id"]] = region
        expected = sum(
            1
            for env in envelopes
            for region in subs.values()
            if region == "*" or env.body.areas[0].region.startswith(region)  # type: ignore[union-attr]
        )
        say(f"{len(subs)} subscriptions; {args.alerts} alerts → {expected} deliveries expected")
        before, before_cpu = await baseline_rate(port, BASELINE_BODY)  # before and after: the load drifts
        for author in authors:
            await asyncio.to_thread(author.pair_with, node)

        acked_at: dict[str, float] = {}
        client = MeshClient(peer.identity, now_ms)
        await client.start()
        address = peer.address_of(node)
        node_cpu_start = tree_cpu(node.proc.pid)  # type: ignore[union-attr]
        start = time.monotonic()
        try:
            accepted = 0
            for frame in framing.batches([e.raw for e in envelopes], max_bytes=64 * 1024):
                accepted += (await client.call(address, "/mesh/v1/push", {"e": frame}))["accepted"]
                now = time.monotonic()
                for raw in frame:
                    acked_at.setdefault(raw, now)
        finally:
            await client.close()
        arrived = {e.id.hex(): acked_at[e.raw] for e in envelopes}
        pushed_s = time.monotonic() - start
        if accepted < args.alerts:  # deferred by a rate budget: the figures would mean nothing
            raise SystemExit(f"the node accepted {accepted} of {args.alerts} alerts")
        say(f"pushed in {pushed_s:.1f} s; waiting for deliveries …")
        last_report = 0.0
        while len(receiver.arrivals) < expected and time.monotonic() - start < args.timeout:
            await asyncio.sleep(0.2)
            if time.monotonic() - last_report > 5:
                say(f"  {len(receiver.arrivals)}/{expected} delivered")
                last_report = time.monotonic()
        end = max((t for _, t in receiver.arrivals), default=time.monotonic())
        latencies = sorted(t - arrived[alert] for alert, t in receiver.arrivals)
        node_cpu = cpu_since(node_cpu_start, node.proc.pid)  # type: ignore[union-attr]
        after, after_cpu = await baseline_rate(port, BASELINE_BODY)
    base, base_cpu = (before + after) / 2, (before_cpu + after_cpu) / 2
    await runner.cleanup()
    delivered = len(receiver.arrivals)
    rate = delivered / (end - start)
    return {
        "alerts": args.alerts,
        "subscriptions": args.subscriptions,
        "deliveries_expected": expected,
        "deliveries": delivered,
        "batch": args.batch,
        "requests": receiver.requests,
        "deliveries_per_s": round(rate),
        "latency_p50_ms": round(1000 * statistics.median(latencies)) if latencies else None,
        "latency_p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))]) if latencies else None,
        "last_delivery_s": round(end - start, 2),
        "baseline_posts_per_s": round(base),
        "baseline_before_after": [round(before), round(after)],
        "ratio": round(rate / base, 3),
        "node_cpu_s": round(node_cpu, 2),
        "deliveries_per_node_cpu_s": round(delivered / node_cpu),
        "baseline_posts_per_cpu_s": round(base_cpu),
        "cpu_ratio": round(delivered / node_cpu / base_cpu, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--subscriptions", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--batch", action="store_true", help="subscriptions take several alerts per request")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    result = asyncio.run(run(args, say))
    if args.json:
        print(json.dumps(result))
        return
    print(f"deliveries: {result['deliveries']}/{result['deliveries_expected']} in {result['requests']:,} requests")
    print(f"arrival → webhook latency: p50 {result['latency_p50_ms']} ms, p99 {result['latency_p99_ms']} ms")
    print(f"last delivery {result['last_delivery_s']} s after the first push")
    print(f"node deliveries: {result['deliveries_per_s']:,}/s; plain aiohttp posts: {result['baseline_posts_per_s']:,}/s")
    print(f"ratio: {result['ratio']}")
    print(
        f"per CPU second: node {result['deliveries_per_node_cpu_s']:,} deliveries (ingest included), "
        f"plain aiohttp {result['baseline_posts_per_cpu_s']:,} posts (client and receiver); "
        f"ratio {result['cpu_ratio']}"
    )


if __name__ == "__main__":
    main()
