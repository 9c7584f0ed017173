"""The nemesis's wall-clock shim (``tests/nemesis/clock.py``, finding 16): it moves a
process's wall clock, at run time, and leaves monotonic time and thread wake-ups alone."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.nemesis.clock import build_shim, skew_env

PROBE = textwrap.dedent(
    """
    import json, sys, threading, time
    skew = sys.argv[1]
    def moved():
        return round(time.time() - time.clock_gettime(time.CLOCK_BOOTTIME))
    base = moved()  # the file says "+0" when this starts
    seen = []
    for spec in ("+3600", "-90", "+0"):
        open(skew, "w").write(spec + "\\n")
        deadline = time.monotonic() + 5
        while moved() - base != int(spec) and time.monotonic() < deadline:
            threading.Event().wait(0.05)  # the shim re-reads the file within a second
        seen.append((spec, moved() - base))
    wakes = []
    for _ in range(30):
        ev, woke = threading.Event(), []
        t = threading.Thread(target=lambda: (ev.wait(5.0), woke.append(time.perf_counter())))
        t.start()
        threading.Event().wait(0.002)
        began = time.perf_counter()
        ev.set()
        t.join()
        wakes.append(woke[0] - began)
    print(json.dumps({"seen": seen, "slowest_wake": max(wakes)}))
    """
)


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = build_shim(tmp_path_factory.mktemp("shim"))
    if built is None:
        pytest.skip("no C compiler here: the nemesis falls back to libfaketime")
    return built


def test_the_shim_moves_the_wall_clock_of_a_running_process_and_nothing_else(shim: Path, tmp_path: Path) -> None:
    skew = tmp_path / "skew"
    skew.write_text("+0\n")
    env = {"PATH": "/usr/bin:/bin"} | skew_env(shim, skew)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(skew)], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    result = json.loads(out.stdout)
    assert result["seen"] == [["+3600", 3600], ["-90", -90], ["+0", 0]]
    # Threads wake when told, as on an unskewed host (under libfaketime: 50-900 ms).
    assert result["slowest_wake"] < 0.5
