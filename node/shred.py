"""Overwriting files in place before they go, so a seized disk does not hold
their old bytes in freed blocks.

Unlinking a file (or replacing it with ``os.replace``) frees its blocks without
touching them: the bytes stay readable on the device until something else
happens to be written there. Everything here writes random bytes over the same
inode (same blocks on a plain filesystem) and fsyncs before letting go. Flash
wear levelling, journaling and copy-on-write filesystems may still keep old
copies (docs/backup-and-wipe.md says what no overwrite reaches).
"""

from __future__ import annotations

import os
from pathlib import Path

CHUNK = 1024 * 1024


def overwrite_fd(fd: int) -> None:
    """Random bytes over the whole file behind ``fd``, from offset 0, then fsync."""
    size = os.fstat(fd).st_size
    os.lseek(fd, 0, os.SEEK_SET)
    written = 0
    while written < size:
        written += os.write(fd, os.urandom(min(CHUNK, size - written)))
    os.fsync(fd)


def overwrite_and_unlink(path: Path) -> None:
    """Overwrite ``path`` in place, fsync, then unlink it; a missing file is fine."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        return
    try:
        overwrite_fd(fd)
    finally:
        os.close(fd)
    path.unlink(missing_ok=True)


def replace_overwriting(tmp: Path, path: Path) -> None:
    """``os.replace(tmp, path)``, but the old ``path`` is overwritten first, so the
    content it replaces is not left in freed blocks (a plain key made sealed)."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        os.replace(tmp, path)
        return
    try:
        overwrite_fd(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class DeletedByOthers:
    """Hold files open while someone else (SQLite, closing the database) may
    delete them; afterwards, overwrite each one that was deleted.

    SQLite removes ``-wal`` and ``-shm`` when the last connection closes, after
    merging the WAL into the database: a clean stop would leave every alert the
    WAL held in freed blocks. A file still at its path (another process keeps
    the database open) is live and left alone."""

    def __init__(self, paths: list[Path]) -> None:
        self._held: list[tuple[Path, int]] = []
        for path in paths:
            try:
                self._held.append((path, os.open(path, os.O_WRONLY)))
            except OSError:
                continue

    def overwrite_deleted(self) -> list[Path]:
        done = []
        for path, fd in self._held:
            try:
                if not _same_inode(path, fd):
                    overwrite_fd(fd)
                    done.append(path)
            finally:
                os.close(fd)
        self._held = []
        return done


def _same_inode(path: Path, fd: int) -> bool:
    try:
        now = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)
