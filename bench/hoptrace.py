"""Where a hop's time goes: real nodes in a line, each step of each hop timed.

N node processes (default 4) paired in a line; alerts are sent at the first
and travel to the last, one at a time. Each node process loads
``bench/hoptrace_site/sitecustomize.py``, which writes a timestamp (wall and
the process's CPU time) at each step of a hop; this script lines them up per
alert and prints, per step, the median wall time and the median CPU time the
receiving (or sending) process spent in it. Wall minus CPU is waiting: for the
disk (fsync), for the network, or for a core on a busy host.

Steps of one hop from node s to node r:

    send      s: the push task starts → the HTTPS request is handed to aiohttp
              (peer address lookup, request signature)
    wire      s's request handed over → r's handler starts (TLS, loopback, r's loop)
    auth      r: reading the body, the request signature, peer row, budget, nonce
    check     r: unpacking the frame, `decode`, the mesh's admission
    store     r: the durable write (SQLite, fsync) before anything goes on
    forward   r: stored → r's own push to the next node starts

and at the author: `author` (the local API's call) → store → push.

    python bench/hoptrace.py [--nodes 4] [--alerts 20] [--tree] [--json]
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
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.propagation import Arrivals, Background, _listen, _wait_all  # noqa: E402
from node.devmesh import LocalMesh  # noqa: E402
from node.provision import api_token  # noqa: E402

SITE = Path(__file__).resolve().parent / "hoptrace_site"
Steps = dict[str, tuple[int, int]]  # step -> (wall ns, cpu ns), first occurrence


def read_traces(folder: Path, pids: dict[int, int]) -> dict[int, dict[str, Steps]]:
    """node index -> alert key -> steps."""
    out: dict[int, dict[str, Steps]] = defaultdict(lambda: defaultdict(dict))
    for path in folder.glob("*.log"):
        index = pids.get(int(path.stem))
        if index is None:
            continue
        for line in path.read_text().splitlines():
            wall, cpu, step, key = line.split(" ", 3)
            out[index][key].setdefault(step, (int(wall), int(cpu)))
    return out


def _span(steps: Steps, first: str, last: str, other: Steps | None = None) -> tuple[float, float] | None:
    """(wall ms, cpu ms) from ``first`` to ``last``; across two processes (``other``
    holds ``first``) only the wall time means anything."""
    start = (other if other is not None else steps).get(first)
    end = steps.get(last)
    if start is None or end is None:
        return None
    cpu = (end[1] - start[1]) / 1e6 if other is None else float("nan")
    return (end[0] - start[0]) / 1e6, cpu


def hop_steps(
    traces: dict[int, dict[str, Steps]], key: str, count: int
) -> dict[str, list[tuple[float, float]]]:
    rows: dict[str, list[tuple[float, float]]] = defaultdict(list)
    author = traces[0].get(key, {})
    for name, first, last in (
        ("author: before the store", "author.0", "_store.0"),
        ("author: store", "_store.0", "_store.1"),
        ("author: stored → push starts", "_store.1", "push.0"),
        # a new alert goes through ``publish``: admitted, then the group writer's commit
        ("author: before the store", "author.0", "publish.0"),
        ("author: admitted (publish)", "publish.0", "publish.1"),
        ("author: store (group writer)", "publish.1", "_published.0"),
        ("author: stored → push starts", "_published.0", "push.0"),
    ):
        if (span := _span(author, first, last)) is not None:
            rows[name].append(span)
    for r in range(1, count):
        sender, receiver = traces[r - 1].get(key, {}), traces[r].get(key, {})
        spans = {
            "send": _span(sender, "push.0", "post.0"),
            "wire": None,
        }
        if "post.0" in sender and "handler.0" in receiver:
            spans["wire"] = ((receiver["handler.0"][0] - sender["post.0"][0]) / 1e6, float("nan"))
        spans["auth"] = _span(receiver, "handler.0", "auth.1")
        spans["to relay"] = _span(receiver, "auth.1", "relay.0")
        spans["verify"] = _span(receiver, "relay.0", "_admit_relayed.0")
        spans["admit"] = _span(receiver, "_admit_relayed.0", "_admit_relayed.1")
        spans["commit (writer thread)"] = _span(receiver, "commit.0", "commit.1")
        spans["relay → ack"] = _span(receiver, "relay.0", "relay.1")
        if r < count - 1:
            spans["forward"] = _span(receiver, "_admit_relayed.1", "push.0")
            if "push.0" in sender and "push.0" in receiver:
                spans["hop (push → next push)"] = (
                    (receiver["push.0"][0] - sender["push.0"][0]) / 1e6,
                    float("nan"),
                )
        elif "push.0" in sender and "_deliver.0" in receiver:
            spans["last hop (push → shown)"] = (
                (receiver["_deliver.0"][0] - sender["push.0"][0]) / 1e6,
                float("nan"),
            )
        for name, span in spans.items():
            if span is not None:
                rows[name].append(span)
    return rows


EXTRA = json.loads(os.environ.get("HOPTRACE_SETTINGS", "{}"))


def run(nodes: int, alerts: int, tree: bool, say: Any) -> dict[str, Any]:
    bg = Background()
    with (
        tempfile.TemporaryDirectory(prefix="amparo-hoptrace-") as tmp,
        LocalMesh(Path(tmp) / "homes", nodes, settings={"tree_push": tree, **EXTRA}) as mesh,
    ):
        folder = Path(tmp) / "trace"
        folder.mkdir()
        for node in mesh.nodes:
            node.env.update(
                AMPARO_HOPTRACE=str(folder),
                PYTHONPATH=os.pathsep.join([str(SITE), str(ROOT), os.environ.get("PYTHONPATH", "")]),
            )
        edges = mesh.line_edges()
        mesh.trust_everyone(edges)
        say(f"starting {nodes} nodes in a line …")
        mesh.init_all()
        mesh.start_all()
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
        keys, totals = [], []
        try:
            for k in range(alerts + 3):  # three warm-up alerts open the connections
                start = time.monotonic()
                alert_id = mesh.nodes[0].send(headline=f"Hop trace {k}")
                total = _wait_all(arrivals, alert_id, nodes, start, f"alert {k}")
                if k >= 3:
                    keys.append(alert_id[:16])
                    totals.append(total * 1000)
                time.sleep(0.05)
        finally:
            listening.add_done_callback(lambda f: f.cancelled() or f.exception())
            bg.loop.call_soon_threadsafe(listening.cancel)
            time.sleep(0.2)
        pids = {n.proc.pid: i for i, n in enumerate(mesh.nodes) if n.proc is not None}
        traces = read_traces(folder, pids)
    bg.stop()
    rows: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for key in keys:
        for name, spans in hop_steps(traces, key, nodes).items():
            rows[name] += spans
    table = {
        name: {
            "wall_ms": round(statistics.median(w for w, _ in spans), 2),
            "cpu_ms": None
            if any(c != c for _, c in spans)
            else round(statistics.median(c for _, c in spans), 2),
            "samples": len(spans),
        }
        for name, spans in rows.items()
    }
    return {
        "nodes": nodes,
        "alerts": alerts,
        "tree_push": tree,
        "send_to_last_p50_ms": round(statistics.median(totals), 1),
        "steps": table,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--alerts", type=int, default=20)
    parser.add_argument("--tree", action="store_true", help="tree push on (the node setting tree_push)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.nodes, args.alerts, args.tree, lambda text: print(text, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{args.nodes} nodes in a line, {args.alerts} alerts: send → shown at the last node, "
        f"p50 {result['send_to_last_p50_ms']} ms ({args.nodes - 1} hops)"
    )
    print(f"{'step (median over hops and alerts)':36} {'wall ms':>8} {'cpu ms':>7}")
    for name, row in result["steps"].items():
        cpu = "" if row["cpu_ms"] is None else f"{row['cpu_ms']:7.2f}"
        print(f"{name:36} {row['wall_ms']:8.2f} {cpu:>7}")


if __name__ == "__main__":
    main()
