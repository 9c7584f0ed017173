"""How fast the command line starts (issue 13, item 10): ``amparo --help`` and
``amparo alert list`` against ``python -c pass`` in the same run.

Each figure is the median wall time of ``--runs`` fresh interpreters (default
15, after one warm-up run each), so the figure includes Python's own start and
every import the command does. ``alert list`` runs against a home whose node is
not running: it imports, reads the configuration and the API token, tries the
local address and reports "cannot reach the node" (exit 1), which is the
command's whole start; a running node adds one loopback HTTP request.

    python bench/cli_start.py [--runs 15] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 0.3


def timed(argv: list[str], env: dict[str, str], runs: int) -> float:
    """Median seconds of ``runs`` fresh processes (one warm-up first)."""
    subprocess.run(argv, env=env, capture_output=True, check=False)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, capture_output=True, check=False)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def make_home(home: Path, env: dict[str, str]) -> None:
    init = [sys.executable, "-m", "node.cli", "--home", str(home), "init", "--name", "Colectivo Bench",
            "--no-passphrase", "--kdf-profile", "interactive"]
    subprocess.run(init, env=env, capture_output=True, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory(prefix="amparo-bench-") as tmp:
        home = Path(tmp) / "home"
        make_home(home, env)
        amparo = [sys.executable, "-m", "node.cli", "--home", str(home)]
        figures = {
            "python -c pass": timed([sys.executable, "-c", "pass"], env, args.runs),
            "amparo --help": timed([*amparo, "--help"], env, args.runs),
            "amparo alert list": timed([*amparo, "alert", "list"], env, args.runs),
        }
    base = figures["python -c pass"]
    rows = [{"command": k, "seconds": round(v, 4), "ratio": round(v / base, 2),
             "over_python_s": round(v - base, 4)} for k, v in figures.items()]
    if args.json:
        print(json.dumps({"runs": args.runs, "target_s": TARGET_S, "figures": rows}, indent=2))
        return
    print(f"median of {args.runs} runs each (target: every command ≤ {TARGET_S} s)")
    print(f"{'command':<20} {'seconds':>8} {'× python':>9} {'+ python':>9}")
    for r in rows:
        print(f"{r['command']:<20} {r['seconds']:>8.3f} {r['ratio']:>9.2f} {r['over_python_s']:>9.3f}")


if __name__ == "__main__":
    main()
