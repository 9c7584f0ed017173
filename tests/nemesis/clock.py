"""How the nemesis moves a node's wall clock (the ``skew`` and ``jump`` faults).

First choice: ``wallclock.c``, a preload shim that moves ``CLOCK_REALTIME`` and
nothing else, built here with the system's C compiler. Fallback where there is no
compiler: Debian's libfaketime, which also wraps thread and semaphore waits and
slows a node's wake-ups 10 to 100 times (finding 16), so timing checks made under
it measure the shim. Either way the offset is read from a file the nemesis
rewrites, so a skew or a jump reaches a running node without a restart.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("wallclock.c")
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


@functools.cache
def shim() -> Path | None:
    """The shim for this machine, built once into the temporary directory."""
    return build_shim(Path(tempfile.gettempdir()) / "amparo-wallclock")


def build_shim(into: Path) -> Path | None:
    """``wallclock.c`` compiled into ``into`` (reused when the source is unchanged),
    or None when there is no C compiler or it fails."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    tag = hashlib.blake2b(SOURCE.read_bytes(), digest_size=6).hexdigest()
    out = into / f"wallclock-{tag}.so"
    if out.is_file():
        return out
    into.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [cc, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", str(out), str(SOURCE), "-ldl"],
        capture_output=True, text=True, check=False,
    )
    return out if done.returncode == 0 else None


def skew_env(shim: Path | None, skew_file: Path) -> dict[str, str]:
    """The environment that puts a process's wall clock under ``skew_file`` (seconds,
    e.g. ``+90``), or {} when neither the shim nor libfaketime is here."""
    if shim is not None:
        return {"LD_PRELOAD": str(shim), "AMPARO_SKEW_FILE": str(skew_file)}
    if LIBFAKETIME.is_file():
        return {
            "LD_PRELOAD": str(LIBFAKETIME),
            "FAKETIME_TIMESTAMP_FILE": str(skew_file),
            "FAKETIME_CACHE_DURATION": "1",  # re-read the offset every second
            # Real monotonic time for asyncio's timers, like a host with a wrong wall
            # clock. Debian's 0.9.10 reads only this name (the old DONT_FAKE_MONOTONIC
            # alone left every node's monotonic clock faked too).
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }
    return {}


def can_skew() -> bool:
    """Whether the clock faults can run here."""
    return shim() is not None or LIBFAKETIME.is_file()
