"""What delivery receipts cost on the wire (docs/protocol.md §6.7), against the
alerts they answer, measured in the same run.

For a burst of ``--alerts`` alerts from one author, each node that stores them
answers with receipts of at most 256 pairs, one envelope a second. The figures:
the bytes of one receipt of 1, 10 and 256 pairs (sealed to the author and the
sender, as a node sends them), and the receipt bytes per alert answered as a
ratio of the alert's own envelope bytes (a typical members alert, the baseline):
what a node's receipts add to the traffic the alerts themselves make.

    python bench/receipts.py [--alerts 1000] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

# bench/protocol.py is named like the package: put the repository root first and
# drop this directory, so ``protocol`` is the package (as bench/protocol.py does).
_BENCH, _ROOT = Path(__file__).resolve().parent, Path(__file__).resolve().parents[1]
sys.path[:] = [str(_ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != _BENCH]

from node.receipts import ReceiptBook  # noqa: E402
from protocol import Alert, Area, Receipt, seal_envelope, sign_envelope  # noqa: E402
from protocol.keys import Identity  # noqa: E402
from protocol.receipt import RECEIPT_MAX_LIFETIME_MS  # noqa: E402

NOW = 1_800_000_000_000


def receipt_bytes(sender: Identity, author: Identity, pairs: dict[bytes, int]) -> int:
    env = seal_envelope(
        sender, Receipt.of(pairs), created=NOW, expires=NOW + RECEIPT_MAX_LIFETIME_MS,
        recipients=[author.enc_public, sender.enc_public], random=os.urandom,
    )  # fmt: skip
    return len(env.raw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    author, sender = Identity.from_random(os.urandom(64)), Identity.from_random(os.urandom(64))
    alert = Alert(
        headline="Detención de una defensora frente a la fiscalía de Juchitán",
        areas=(Area("MX-OAX"),), severity="severe", urgency="immediate", certainty="observed",
        event="detention", instruction="Llamar a la fiscalía y exigir su paradero.",
        description="Detenida a las 14:00 por agentes sin uniforme; su familia no sabe dónde está.",
    )  # fmt: skip
    baseline = len(sign_envelope(author, alert, created=NOW, expires=NOW + 6 * 3_600_000).raw)
    sizes = {n: receipt_bytes(sender, author, {os.urandom(32): NOW for _ in range(n)}) for n in (1, 10, 256)}
    book = ReceiptBook()  # the burst, batched as a node does it
    for i in range(args.alerts):
        book.owe(author.sign_public, i.to_bytes(32, "big"), NOW + i, now=NOW + i)
    batches, now, total = 0, NOW + args.alerts, 0
    while (batch := book.next_batch(now)) is not None or book.owed():
        if batch is not None:
            batches += 1
            total += receipt_bytes(sender, author, batch.held)
        now += 1000
    result = {
        "alert_bytes": baseline,
        "receipt_bytes": sizes,
        "alerts": args.alerts,
        "receipts_per_node": batches,
        "expected_receipts": math.ceil(args.alerts / 256),
        "receipt_bytes_per_alert": round(total / args.alerts, 1),
        "ratio_to_alert": round(total / args.alerts / baseline, 3),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"one members alert: {baseline} bytes (baseline)")
    for n, size in sizes.items():
        print(f"receipt of {n:>3} pair(s): {size:>6} bytes")
    print(f"a burst of {args.alerts} alerts: {batches} receipts per node, {result['receipt_bytes_per_alert']} bytes per alert answered")
    print(f"ratio to the alert itself: {result['ratio_to_alert']}")


if __name__ == "__main__":
    main()
