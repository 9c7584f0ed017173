"""Propagation latency: real node processes on loopback vs. a central MQTT broker.

For N nodes (default 20, ring plus chords) and M alerts (default 50) sent from
rotating authors, measures the time from `send` until *every* node's SSE stream
has delivered the alert; prints p50/p99, with the mesh's hop counts (mean
shortest path and diameter) and the full copies each node received per alert.
In the same run, the same fan-out through the Mosquitto broker on
127.0.0.1:1883 (one publisher, N subscribers, QoS 1) is the centralized
baseline; the figure that matters is the ratio, since these machines are shared
and noisy.

`--link-delay MS` puts a delay forwarder (`bench/linkdelay.py`) in front of
every node's mesh listener (peers dial it) and between every MQTT client and
the broker, holding each chunk MS milliseconds each way: every mesh hop and
every broker hop crosses one such link. `--tree` runs the mesh with flooding
(`off`), tree push (`on`, the node setting `tree_push`), or `both`, one after
the other. `--warmup K` alerts go first and are not measured: connections are
open and, with tree push, the tree has formed.

    python bench/propagation.py [--nodes 20] [--alerts 50] [--link-delay MS]
                                [--tree off|on|both] [--warmup 5] [--receipts on|off] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.linkdelay import DelayLink  # noqa: E402
from bench.mqtt_lite import MqttClient  # noqa: E402
from node.devmesh import LocalMesh  # noqa: E402
from node.provision import api_token  # noqa: E402
from node.service import RECEIPT_LINGER_MS  # noqa: E402

T = TypeVar("T")
BROKER = ("127.0.0.1", 1883)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def hops(count: int, edges: Sequence[tuple[int, int]]) -> tuple[float, int]:
    """Mean shortest path between two nodes, and the longest (the diameter), in hops."""
    neighbours: dict[int, set[int]] = {i: set() for i in range(count)}
    for a, b in edges:
        neighbours[a].add(b)
        neighbours[b].add(a)
    lengths: list[int] = []
    for start in range(count):
        seen, frontier, hop = {start}, {start}, 0
        while frontier:
            frontier = {n for f in frontier for n in neighbours[f]} - seen
            hop += 1
            lengths += [hop] * len(frontier)
            seen |= frontier
    return statistics.mean(lengths), max(lengths)


class Background:
    """An event loop in a thread: the delay forwarders, SSE listeners and MQTT
    clients run there while the main thread drives the node processes."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class Arrivals:
    """When each node first saw each alert; the waiting thread is woken by the
    arrival that completes an alert, it does not poll (polling took the GIL
    from the loop that timestamps arrivals a thousand times a second)."""

    def __init__(self) -> None:
        self.times: dict[str, dict[int, float]] = {}
        self.lock = threading.Condition()

    def saw(self, alert_id: str, node: int) -> None:
        with self.lock:
            self.times.setdefault(alert_id, {}).setdefault(node, time.monotonic())
            self.lock.notify_all()

    def all_by(self, alert_id: str, count: int) -> float | None:
        with self.lock:
            seen = self.times.get(alert_id, {})
            return max(seen.values()) if len(seen) == count else None

    def wait_all(self, alert_id: str, count: int, timeout: float) -> float | None:
        """The moment the last of ``count`` nodes saw ``alert_id``; None if they
        have not all seen it within ``timeout`` seconds."""
        with self.lock:
            if not self.lock.wait_for(lambda: len(self.times.get(alert_id, {})) == count, max(0.0, timeout)):
                return None
            return max(self.times[alert_id].values())


async def _listen(index: int, base: str, token: str, arrivals: Arrivals, ready: asyncio.Event) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
        async with session.get(f"{base}/api/v1/stream", headers={"Authorization": f"Bearer {token}"}) as resp:
            ready.set()
            async for line in resp.content:
                if line.startswith(b"data: "):
                    arrivals.saw(json.loads(line[6:])["id"], index)


def _wait_all(arrivals: Arrivals, alert_id: str, count: int, start: float, what: str) -> float:
    if (last := arrivals.wait_all(alert_id, count, start + 30 - time.monotonic())) is None:
        raise SystemExit(f"{what} did not reach every node within 30 s")
    return last - start


def tree_cpu_s(pids: list[int]) -> float:
    """CPU seconds (user + system) used so far by ``pids`` and every live process
    below them (a node's signature workers), from /proc."""
    parent: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    wanted = set(pids)
    grew = True
    while grew:
        below = {pid for pid, ppid in parent.items() if ppid in wanted} - wanted
        grew = bool(below)
        wanted |= below
    return sum(times.get(pid, 0.0) for pid in wanted)


def mesh_run(
    nodes: int,
    alerts: int,
    warmup: int,
    tree: bool,
    delay_ms: float | None,
    bg: Background,
    say: Any,
    receipts: bool = True,
) -> dict[str, Any]:
    link = DelayLink(delay_ms or 0)
    with (
        tempfile.TemporaryDirectory(prefix="amparo-bench-") as tmp,
        LocalMesh(Path(tmp), nodes, settings={"tree_push": tree, "delivery_receipts": receipts}) as mesh,
    ):
        edges = mesh.mesh_edges()
        depth = mesh.trust_everyone(edges)
        mean_hops, diameter = hops(nodes, edges)
        if delay_ms is not None:  # peers dial the forwarder, which the node advertises
            for node in mesh.nodes:
                port = bg.run(link.forward(node.mesh_port))
                node.settings["advertise"] = [f"127.0.0.1:{port}"]
        mode = "tree push" if tree else "flooding"
        say(f"{mode}: starting {nodes} nodes (trust depth {depth}, the federation's diameter) …")
        mesh.init_all()
        mesh.start_all()
        say(f"pairing {len(edges)} links …")
        mesh.connect(edges)
        time.sleep(2)
        arrivals = Arrivals()

        async def listen_all() -> asyncio.Future[Any]:
            readies = [asyncio.Event() for _ in mesh.nodes]
            tasks = asyncio.gather(
                *(
                    _listen(i, f"http://127.0.0.1:{n.local_port}", api_token(n.home), arrivals, readies[i])
                    for i, n in enumerate(mesh.nodes)
                ),
                return_exceptions=True,
            )
            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 30)
            return tasks

        listening = bg.run(listen_all())
        try:
            for k in range(warmup):
                author = mesh.nodes[(k * 7) % nodes]
                start = time.monotonic()
                _wait_all(arrivals, author.send(headline=f"Warm-up {k}"), nodes, start, f"warm-up {k}")
            received = sum(n.api.get("/api/v1/status")["received"] for n in mesh.nodes)
            counted = _counters(mesh.nodes)
            pids = [n.proc.pid for n in mesh.nodes if n.proc is not None]
            # The warm-up's tail settles first. Its receipts wait up to RECEIPT_LINGER_MS
            # for an alert to ride with; reading the counters above kept them waiting
            # alone, and they went out by themselves in the middle of the first measured
            # alert, the slowest of 50 in most runs. Every later alert follows the one
            # before at once and takes that one's receipts along; the first now starts
            # on a settled mesh instead of on that accident of the bench's own timing.
            time.sleep(2 * RECEIPT_LINGER_MS / 1000)
            cpu_before = tree_cpu_s(pids)
            dialled = bg.run(link.connections())
            latencies = []
            for k in range(alerts):
                author = mesh.nodes[k % nodes]
                start = time.monotonic()
                alert_id = author.send(headline=f"Benchmark alert {k}")
                latencies.append(_wait_all(arrivals, alert_id, nodes, start, f"alert {k}"))
                if (k + 1) % 10 == 0:
                    say(f"  {k + 1}/{alerts} alerts, last {latencies[-1] * 1000:.1f} ms")
            cpu_ms = (tree_cpu_s(pids) - cpu_before) * 1000 / alerts  # before the late second below
            dialled = bg.run(link.connections()) - dialled
            time.sleep(1)  # late duplicates and announcements count too
            received = sum(n.api.get("/api/v1/status")["received"] for n in mesh.nodes) - received
            counted = {k: v - counted.get(k, 0) for k, v in _counters(mesh.nodes).items()}
        finally:
            listening.add_done_callback(lambda f: f.cancelled() or f.exception())
            bg.loop.call_soon_threadsafe(listening.cancel)  # closes the streams before the nodes stop
            time.sleep(0.2)
    bg.run(link.close())
    return {
        "latencies": latencies,
        "mean_hops": round(mean_hops, 2),
        "diameter": diameter,
        "links": len(edges),
        # full envelopes each node took in per alert, by push or fetch (1.0: no duplicate)
        "copies_per_node": round(received / (alerts * (nodes - 1)), 2),
        # CPU of every node (and its workers) per alert, and so the least mean time an
        # alert sent after the last one arrived can take here, whatever the code waits for
        "node_cpu_per_alert_ms": round(cpu_ms, 1),
        # mesh connections opened while the alerts were measured (with --link-delay):
        # each costs its TCP and TLS round trips before its first push
        "connections_opened": dialled if delay_ms is not None else None,
        "cpu_floor_ms": round(cpu_ms / (os.cpu_count() or 1), 1),
        # what the nodes did for it, summed over all nodes, per alert
        "per_alert": {k: round(v / alerts, 2) for k, v in sorted(counted.items()) if v},
    }


def _counters(nodes: Sequence[Any]) -> dict[str, float]:
    """Every node's push and refusal counters and tree signals, summed: where an
    alert's work went (envelopes pushed, push requests, failed or deferred ones,
    refusals by reason)."""
    total: dict[str, float] = {}
    for node in nodes:
        status = node.api.get("/api/v1/status")
        rows = [(k, status[k]) for k in ("pushed", "push_failures", "push_deferred", "reconciles")]
        rows += [(f"rejected {reason}", n) for reason, n in status["rejected"].items()]
        for line in node.api.get_text("/metrics").splitlines():
            if line.startswith(("amparo_tree_", "amparo_push_requests")):
                name, value = line.rsplit(" ", 1)
                name = name.removeprefix("amparo_tree_").removeprefix("amparo_").removesuffix("_total")
                rows.append((name, float(value)))
        for key, value in rows:
            total[key] = total.get(key, 0) + value
    return total


def broker_run(
    subscribers: int, messages: int, delay_ms: float | None, bg: Background, say: Any
) -> list[float]:
    arrivals = Arrivals()
    link = DelayLink(delay_ms or 0)

    async def connect() -> list[MqttClient]:
        port = await link.forward(BROKER[1]) if delay_ms is not None else BROKER[1]
        clients = []
        for i in range(subscribers):
            client = MqttClient(
                f"amparo-bench-sub-{i}", lambda _topic, payload, i=i: arrivals.saw(payload[:16].decode(), i)
            )
            await client.connect(BROKER[0], port)
            await client.subscribe("amparo/bench")
            clients.append(client)
        publisher = MqttClient("amparo-bench-pub")
        await publisher.connect(BROKER[0], port)
        return [publisher, *clients]

    clients = bg.run(connect())
    time.sleep(1)
    latencies = []
    pad = b"x" * 1000
    for k in range(messages):
        tag = f"{k:016d}"
        start = time.monotonic()
        bg.loop.call_soon_threadsafe(clients[0].publish, "amparo/bench", tag.encode() + pad)
        latencies.append(_wait_all(arrivals, tag, subscribers, start, f"broker message {k}"))

    async def close() -> None:
        for client in clients:
            await client.close()
        await link.close()

    bg.run(close())
    say(f"  broker: {messages} messages to {subscribers} subscribers")
    return latencies


def _ms(values: list[float], p: float) -> float:
    return round((statistics.median(values) if p == 50 else percentile(values, p)) * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--alerts", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--link-delay", type=float, default=None, metavar="MS")
    parser.add_argument("--tree", choices=("off", "on", "both"), default="both")
    parser.add_argument(
        "--receipts", choices=("on", "off"), default="on", help="the nodes' delivery_receipts setting"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    bg = Background()
    broker = broker_run(args.nodes, args.alerts, args.link_delay, bg, say)
    result: dict[str, Any] = {
        "nodes": args.nodes,
        "alerts": args.alerts,
        "link_delay_ms": args.link_delay,
        "broker_p50_ms": _ms(broker, 50),
        "broker_p99_ms": _ms(broker, 99),
        "broker_hops": 2,
    }
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.tree]
    for tree in modes:
        run = mesh_run(
            args.nodes, args.alerts, args.warmup, tree, args.link_delay, bg, say, args.receipts == "on"
        )
        name = "tree" if tree else "flooding"
        latencies = run.pop("latencies")
        result.update({"mean_hops": run.pop("mean_hops"), "diameter": run.pop("diameter")})
        slowest = sorted(range(len(latencies)), key=lambda k: -latencies[k])[:3]
        result[name] = {
            "p50_ms": _ms(latencies, 50),
            "p99_ms": _ms(latencies, 99),
            "slowest": [[k, round(latencies[k] * 1000, 1)] for k in slowest],  # [alert number, ms]
            **run,
        }
        result[name]["p99_ratio"] = round(result[name]["p99_ms"] / max(result["broker_p99_ms"], 0.01), 1)
    bg.stop()
    if args.json:
        print(json.dumps(result))
        return
    delay = f", {args.link_delay:g} ms per link" if args.link_delay is not None else ""
    print(
        f"{args.nodes} nodes{delay}: mean shortest path {result['mean_hops']} hops, diameter {result['diameter']}"
    )
    print(f"broker (mosquitto, 2 hops):  p50 {result['broker_p50_ms']} ms, p99 {result['broker_p99_ms']} ms")
    for name in ("flooding", "tree"):
        if name in result:
            r = result[name]
            print(
                f"mesh {name:9}: p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
                f"p99 {r['p99_ratio']}x the broker's, {r['copies_per_node']} full copies per node per alert"
            )
            slow = ", ".join(f"#{k} {ms} ms" for k, ms in r["slowest"])
            print(f"  slowest alerts: {slow}")
            print(
                f"  CPU of all nodes per alert {r['node_cpu_per_alert_ms']} ms: on {os.cpu_count()} cores, "
                f"alerts sent one after another take at least {r['cpu_floor_ms']} ms each on average"
            )
            print("  all nodes, per alert: " + ", ".join(f"{k} {v:g}" for k, v in r["per_alert"].items()))
            if r["connections_opened"] is not None:
                print(f"  mesh connections opened during the measured alerts: {r['connections_opened']}")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
