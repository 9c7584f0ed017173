"""Panic wipe: make a seized machine useless, in seconds.

Order matters. The sealed key file goes first (crypto-erase: without it the
identity is gone and restricted content that reached this node cannot be
opened), then the TLS key, then the database with its WAL/SHM/journal files,
then everything else and the home itself. Each file is overwritten in place
with random bytes and flushed to the device before it is unlinked, so the old
blocks are not simply left behind on a plain disk. The running node is killed
(SIGKILL) first, so SQLite cannot delete its WAL unseen on the way out.

Limits (see docs/backup-and-wipe.md): flash storage and journaling or
copy-on-write filesystems may keep old copies of blocks that no overwrite
reaches; backups, swap and copies already made are out of reach; a PostgreSQL
store lives on its server and is not touched here.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from node.config import DB_FILE, KEY_FILE, TLS_KEY
from node.prerotation import NEXT_KEY_FILE
from node.shred import overwrite_and_unlink

PID_FILE = "amparo.pid"
FIRST = (KEY_FILE, KEY_FILE + ".new", NEXT_KEY_FILE, TLS_KEY)  # the next key too, if still here
DATABASE = (DB_FILE, DB_FILE + "-wal", DB_FILE + "-shm", DB_FILE + "-journal")


@dataclass
class WipeReport:
    erased: list[str] = field(default_factory=list)
    stopped_pid: int | None = None
    seconds: float = 0.0


def stop_running_node(home: Path, timeout: float = 10.0) -> int | None:
    """SIGKILL the node recorded in the pid file and wait until it is gone.

    Killed, not terminated: a clean stop would let SQLite merge the WAL into
    the database and delete ``-wal`` and ``-shm`` before this wipe reaches
    them, and the node's own overwrite of them (``Database.close``) could be cut
    short by the wipe. Killed, the files stay where the wipe overwrites them."""
    try:
        pid = int((home / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    if not _alive(pid):
        return None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours is dead for this purpose
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def wipe(home: Path) -> WipeReport:
    started = time.monotonic()
    report = WipeReport(stopped_pid=stop_running_node(home))
    for name in (*FIRST, *DATABASE):
        if (home / name).exists():
            overwrite_and_unlink(home / name)
            report.erased.append(name)
    for path in sorted(home.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_file() and not path.is_symlink():
            overwrite_and_unlink(path)
            report.erased.append(str(path.relative_to(home)))
        elif path.is_symlink():
            path.unlink()
        elif path.is_dir():
            path.rmdir()
    shutil.rmtree(home, ignore_errors=True)
    report.seconds = time.monotonic() - started
    return report
