"""A flooded relay, in one process: what a flood past its author's quota costs
the node it reaches, and how long an honest push waits meanwhile, with the
screen (``node.admission``, ``mesh.Screen``) and without it, in the same run.

Two grid nodes (tests/grid, real SQLite stores with fsync, in-memory wire): ``f``
paired with ``b``. ``f`` pushes 10 × its author quota (3,060 signed alerts,
100 a push, two pushes in flight, as the nemesis's flooder does) straight into
``b``'s relay pipeline, while an honest peer ``h`` pushes one alert every 50 ms;
each honest push is timed from the call until its answer (verified, admitted,
committed). Verification stays in ``b``'s own process (``verify_workers=0``) so
the process CPU time is all the relay's work. "without" runs the same code with
the screen replaced by a pass-through.

    python bench/flood.py [--rounds 2] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mesh import Limits  # noqa: E402
from node.service import NodeService  # noqa: E402
from tests.grid.grid import Grid  # noqa: E402
from tests.grid.test_screen import alerts  # noqa: E402

BATCH = 100
IN_FLIGHT = 2
HONEST_EVERY_S = 0.05


def _no_screen(self: NodeService, raws: Any, known: Any, from_peer: bytes, claims: Any) -> Any:
    return raws, known, ()


async def one(root: Path, screen: bool) -> dict[str, Any]:
    grid = Grid(root)
    try:
        for name in ("f", "b", "h"):
            await grid.add(name, verify_workers=0)
        await grid.pair("f", "b")
        await grid.pair("h", "b")
        f, b, h = grid["f"], grid["b"], grid["h"]
        limits = Limits()
        flood = alerts(f.identity, int(10 * (limits.author_burst + limits.author_rate_per_s * 6)), grid.clock())
        honest = alerts(h.identity, 200, grid.clock(), first=1_000_000)
        batches = [flood[i : i + BATCH] for i in range(0, len(flood), BATCH)]
        waits: list[float] = []
        deferred = accepted = 0
        flooding = True

        async def flooder() -> None:
            nonlocal deferred, accepted
            while batches:
                batch = batches.pop(0)
                outcome = await b.service.relay(batch, f.key)
                accepted += outcome.accepted
                deferred += len(outcome.deferred)

        async def prober() -> None:
            for raw in honest:
                if not flooding:
                    return
                began = time.perf_counter()
                await b.service.relay([raw], h.key)
                waits.append(time.perf_counter() - began)
                await asyncio.sleep(HONEST_EVERY_S)

        patch = mock.patch.object(NodeService, "_screen", _no_screen) if not screen else mock.MagicMock()
        with patch:
            cpu, wall = time.process_time(), time.perf_counter()
            probing = asyncio.ensure_future(prober())
            await asyncio.gather(*(flooder() for _ in range(IN_FLIGHT)))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            flooding = False
            await probing
        return {
            "screen": screen,
            "flood": len(flood),
            "accepted": accepted,
            "deferred": deferred,
            "cpu_s": round(cpu, 2),
            "wall_s": round(wall, 2),
            "honest_pushes": len(waits),
            "honest_p50_ms": round(1000 * statistics.median(waits), 1) if waits else None,
            "honest_max_ms": round(1000 * max(waits), 1) if waits else None,
        }
    finally:
        await grid.close()


async def main(rounds: int) -> list[dict[str, Any]]:
    out = []
    for n in range(rounds):
        for screen in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                out.append(await one(Path(tmp), screen) | {"round": n + 1})
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = asyncio.run(main(args.rounds))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(
                f"round {r['round']} {'with' if r['screen'] else 'without'} the screen: "
                f"{r['flood']} flooded, {r['accepted']} accepted, {r['deferred']} deferred; "
                f"relay CPU {r['cpu_s']} s, wall {r['wall_s']} s; honest push p50 {r['honest_p50_ms']} ms, "
                f"max {r['honest_max_ms']} ms ({r['honest_pushes']} pushes)"
            )
    sys.exit(0)
