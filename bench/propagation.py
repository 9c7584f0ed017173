"""Propagation latency: real node processes on loopback vs. a central MQTT broker.

For N nodes (default 20, ring plus chords) and M alerts (default 50) sent from
rotating authors, measures the time from `send` returning until *every* node's
SSE stream has delivered the alert; prints p50/p99. In the same run, the same
fan-out through the Mosquitto broker on 127.0.0.1:1883 (one publisher, N
subscribers, QoS 1) is the centralized baseline; the figure that matters is the
ratio, since these machines are shared and noisy.

    python bench/propagation.py [--nodes 20] [--alerts 50] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from node.devmesh import LocalMesh  # noqa: E402
from node.provision import api_token  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Arrivals:
    def __init__(self) -> None:
        self.times: dict[str, dict[int, float]] = {}
        self.lock = threading.Lock()

    def saw(self, alert_id: str, node: int) -> None:
        with self.lock:
            self.times.setdefault(alert_id, {}).setdefault(node, time.monotonic())


async def _listen(index: int, base: str, token: str, arrivals: Arrivals, ready: asyncio.Event) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
        async with session.get(f"{base}/api/v1/stream", headers={"Authorization": f"Bearer {token}"}) as resp:
            ready.set()
            async for line in resp.content:
                if line.startswith(b"data: "):
                    arrivals.saw(json.loads(line[6:])["id"], index)


def mesh_run(nodes: int, alerts: int, say: Any) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="amparo-bench-") as tmp, LocalMesh(Path(tmp), nodes) as mesh:
        edges = mesh.mesh_edges()
        depth = mesh.trust_everyone(edges)
        say(f"starting {nodes} nodes (trust depth {depth}, the federation's diameter) …")
        mesh.init_all()
        mesh.start_all()
        say(f"pairing {len(edges)} links …")
        mesh.connect(edges)
        time.sleep(2)
        arrivals = Arrivals()
        loop = asyncio.new_event_loop()
        readies = [asyncio.Event() for _ in mesh.nodes]

        listening: list[asyncio.Future[Any]] = []

        def run_listeners() -> None:
            asyncio.set_event_loop(loop)
            tasks = [
                _listen(i, f"http://127.0.0.1:{n.local_port}", api_token(n.home), arrivals, readies[i])
                for i, n in enumerate(mesh.nodes)
            ]
            listening.append(asyncio.gather(*tasks, return_exceptions=True))
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(listening[0])

        listener = threading.Thread(target=run_listeners, daemon=True)
        listener.start()
        time.sleep(1.5)
        latencies = []
        for k in range(alerts):
            author = mesh.nodes[k % nodes]
            start = time.monotonic()
            alert_id = author.send(headline=f"Benchmark alert {k}")
            deadline = start + 30
            while time.monotonic() < deadline:
                with arrivals.lock:
                    seen = arrivals.times.get(alert_id, {})
                    if len(seen) == nodes:
                        latencies.append(max(seen.values()) - start)
                        break
                time.sleep(0.002)
            else:
                raise SystemExit(f"alert {k} did not reach every node within 30 s")
            if (k + 1) % 10 == 0:
                say(f"  {k + 1}/{alerts} alerts, last {latencies[-1] * 1000:.1f} ms")
        loop.call_soon_threadsafe(listening[0].cancel)  # closes the streams before the nodes stop
        listener.join(10)
        return latencies


def broker_run(subscribers: int, messages: int, say: Any) -> list[float]:
    import paho.mqtt.client as mqtt

    arrivals = Arrivals()
    clients = []
    for i in range(subscribers):
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"amparo-bench-sub-{i}")
        client.on_message = lambda _c, idx, msg: arrivals.saw(msg.payload[:16].decode(), idx)
        client.user_data_set(i)
        client.connect("127.0.0.1", 1883)
        client.subscribe("amparo/bench", qos=1)
        client.loop_start()
        clients.append(client)
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="amparo-bench-pub")
    pub.connect("127.0.0.1", 1883)
    pub.loop_start()
    time.sleep(1)
    latencies = []
    payload_pad = b"x" * 1000
    for k in range(messages):
        tag = f"{k:016d}"
        start = time.monotonic()
        pub.publish("amparo/bench", tag.encode() + payload_pad, qos=1)
        while True:
            with arrivals.lock:
                seen = arrivals.times.get(tag, {})
                if len(seen) == subscribers:
                    latencies.append(max(seen.values()) - start)
                    break
            if time.monotonic() - start > 10:
                raise SystemExit("broker baseline lost a message")
            time.sleep(0.0005)
    for c in [*clients, pub]:
        c.loop_stop()
        c.disconnect()
    say(f"  broker: {messages} messages to {subscribers} subscribers")
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--alerts", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    broker = broker_run(args.nodes, args.alerts, say)
    mesh = mesh_run(args.nodes, args.alerts, say)
    result = {
        "nodes": args.nodes,
        "alerts": args.alerts,
        "mesh_p50_ms": round(statistics.median(mesh) * 1000, 1),
        "mesh_p99_ms": round(percentile(mesh, 99) * 1000, 1),
        "broker_p50_ms": round(statistics.median(broker) * 1000, 2),
        "broker_p99_ms": round(percentile(broker, 99) * 1000, 2),
    }
    result["p99_ratio"] = round(result["mesh_p99_ms"] / max(result["broker_p99_ms"], 0.01), 1)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"mesh   ({args.nodes} nodes): p50 {result['mesh_p50_ms']} ms, p99 {result['mesh_p99_ms']} ms")
        print(f"broker (mosquitto):   p50 {result['broker_p50_ms']} ms, p99 {result['broker_p99_ms']} ms")
        print(f"p99 ratio mesh/broker: {result['p99_ratio']}x  (target ≤ 3x)")


if __name__ == "__main__":
    main()
