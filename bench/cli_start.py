"""How fast the command line starts (issue 13, item 10): ``amparo --help`` and
``amparo alert list`` against ``python -c pass`` in the same run.

Each figure is the median wall time of ``--runs`` fresh interpreters (default
15, after one warm-up run each), so the figure includes Python's own start and
every import the command does. ``alert list`` runs against a home whose node is
not running: it imports, reads the configuration and the API token, tries the
local address and reports "cannot reach the node" (exit 1), which is the
command's whole start; a running node adds one loopback HTTP request.

Bytecode caches are allowed (``PYTHONDONTWRITEBYTECODE`` is dropped for the
children), as on an installed node: otherwise every run compiles every module
from source and the figure measures the compiler. Wall time depends on how
busy the machine is; CPU time (user + system of the child) much less so, so
both are printed.

    python bench/cli_start.py [--runs 15] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 0.3


def timed(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds of ``runs`` fresh processes (one warm-up first)."""
    subprocess.run(argv, env=env, capture_output=True, check=False)
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, env=env, capture_output=True, check=False)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def make_home(home: Path, env: dict[str, str]) -> None:
    init = [
        sys.executable,
        "-m",
        "node.cli",
        "--home",
        str(home),
        "init",
        "--name",
        "Colectivo Bench",
        "--no-passphrase",
        "--kdf-profile",
        "interactive",
    ]
    subprocess.run(init, env=env, capture_output=True, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory(prefix="amparo-bench-") as tmp:
        home = Path(tmp) / "home"
        make_home(home, env)
        amparo = [sys.executable, "-m", "node.cli", "--home", str(home)]
        figures = {
            "python -c pass": timed([sys.executable, "-c", "pass"], env, args.runs),
            "amparo --help": timed([*amparo, "--help"], env, args.runs),
            "amparo alert list": timed([*amparo, "alert", "list"], env, args.runs),
        }
    (base, base_cpu) = figures["python -c pass"]
    rows = [
        {
            "command": k,
            "seconds": round(wall, 4),
            "ratio": round(wall / base, 2),
            "over_python_s": round(wall - base, 4),
            "cpu_s": round(cpu, 4),
            "cpu_ratio": round(cpu / base_cpu, 2) if base_cpu else None,
        }
        for k, (wall, cpu) in figures.items()
    ]
    if args.json:
        print(json.dumps({"runs": args.runs, "target_s": TARGET_S, "figures": rows}, indent=2))
        return
    print(f"median of {args.runs} runs each (target: every command ≤ {TARGET_S} s)")
    print(f"{'command':<20} {'wall s':>8} {'× python':>9} {'+ python':>9} {'CPU s':>8} {'× python':>9}")
    for r in rows:
        print(
            f"{r['command']:<20} {r['seconds']:>8.3f} {r['ratio']:>9.2f} {r['over_python_s']:>9.3f} "
            f"{r['cpu_s']:>8.3f} {r['cpu_ratio'] or 0:>9.2f}"
        )


if __name__ == "__main__":
    main()
