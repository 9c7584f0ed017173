"""How long a node takes to read its store back at start (finding 11 of
docs/reliability.md): every stored envelope rebuilds the mesh's memory, the
directory of names, the receipts and the joint releases.

A SQLite store is filled with ``--envelopes`` signed alerts of ten authors (as
a relay's store holds them), then ``NodeService`` is built on it, which is the
part of ``amparo run`` that grows with the store. The baseline, in the same
run, is what the start used to spend on signatures alone: ``decode`` (with its
Ed25519 check) of every stored envelope; the start re-reads them with
``protocol.reread`` instead (docs/threat-model.md says why that is safe for a
SQLite home). Each figure is the best of ``--rounds``.

    python bench/node_start.py [--envelopes 20000] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from node.config import Config  # noqa: E402
from node.service import NodeService  # noqa: E402
from node.store import Store, StoredEnvelope  # noqa: E402
from protocol import Alert, Identity, decode, sign_envelope  # noqa: E402
from protocol.alert import Area  # noqa: E402

NOW = 1_795_000_000_000
DAY_MS = 86_400_000


def fill(store: Store, count: int) -> None:
    authors = [Identity.from_random(os.urandom(64)) for _ in range(10)]
    page: list[StoredEnvelope] = []
    for i in range(count):
        alert = Alert(
            headline=f"Retén en la carretera, punto {i}", areas=(Area("MX-OAX"),), severity="severe",
            urgency="immediate", certainty="observed", event="detention",
        )  # fmt: skip
        env = sign_envelope(authors[i % 10], alert, created=NOW + i, expires=NOW + 80 * DAY_MS)
        page.append(StoredEnvelope.from_envelope(env, received_at=NOW + i, from_peer=None))
        if len(page) == 1000 or i == count - 1:
            store.add_envelopes(page)
            page = []
            print(f"  stored {i + 1}/{count}", file=sys.stderr, flush=True)


def best(rounds: int, run: object) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envelopes", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="amparo-bench-") as tmp:
        home = Path(tmp)
        store = Store(f"sqlite:///{home}/store.db")
        fill(store, args.envelopes)
        me = Identity.from_random(os.urandom(64))
        config = Config(name="Colectivo de Prueba")
        clock = lambda: NOW + args.envelopes  # noqa: E731

        def start() -> None:
            NodeService(home, config, me, store, clock)

        def verify_all() -> None:
            for row in store.iter_all():
                decode(row.raw, now=clock(), check_time=False)

        start_s = best(args.rounds, start)
        verify_s = best(args.rounds, verify_all)
    result = {
        "envelopes": args.envelopes,
        "start_s": round(start_s, 3),
        "verify_all_s": round(verify_s, 3),
        "start_us_per_envelope": round(start_s / args.envelopes * 1e6, 1),
        "start_over_verify_all": round(start_s / verify_s, 2),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.envelopes} envelopes in a SQLite store:")
    print(f"  node start (NodeService on the store): {start_s:.2f} s, {result['start_us_per_envelope']} µs each")
    print(f"  baseline, decode + verify of every row: {verify_s:.2f} s")
    print(f"  start / verify-all: {result['start_over_verify_all']}")


if __name__ == "__main__":
    main()
