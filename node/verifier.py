"""Signature checks on every core: ``protocol.decode`` in worker processes.

Verifying an envelope (unpacking, the canonical re-encoding, Ed25519, the body's
rules) is most of what a relay spends on it, and it is pure CPU. Threads do not
help (the GIL: two threads decoding a frame ran at 0.87x the speed of one), so
a push's envelopes are cut into one chunk per worker process and decoded there
by the very same ``decode`` the node would run. What comes back is, per
envelope and in order, either the decoded ``Envelope`` (unpickling one costs a
tenth of decoding it) or a ``Refusal``: the error's stable code, whether it
blames the sender (SPEC §8), and its message. Nothing is decided here; the
node's mesh admits or refuses what a verdict allows.

- ``workers=0`` verifies in the node's own process (a one-core box, tests);
  so does every batch smaller than ``POOLED_FROM``, where handing the bytes
  to a process would cost more than checking them here, and a batch that
  arrives ``alone`` (no other under way): nothing would overlap its check, and
  the hop only lengthens its sender's wait.
- The pool starts on the first batch that needs it, so a quiet node (and a
  test that pushes a few alerts) never starts a process.
- A worker that dies (killed, out of memory) breaks the pool: it is started
  again and the batch is verified once more in the new one. If that fails too
  the batch is refused as a whole (``VerifierUnavailable``: the sender is told
  to try later and is not blamed): a verdict is never made up, so nothing
  goes unverified and nothing is lost.
- Workers end with the node: ``close`` on a clean stop, and a watchdog thread
  in each worker when the node is killed (``kill -9`` leaves no one to close).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Final, NamedTuple

from protocol import Envelope, ProtocolError, decode

log = logging.getLogger("amparo.verifier")

POOLED_FROM: Final = 16  # envelopes: smaller batches are verified in the node's own process
CHUNK_MIN: Final = 8  # a worker's chunk is never smaller (below that its round trip dominates)
WATCHDOG_S: Final = 1.0  # how often a worker checks that its node still runs
# Workers run at a lower CPU priority than the node's event loop: on a host
# short of CPU, bulk checks (a flood's in-quota batches, a catch-up) yield to
# the loop, which reads every push and checks small ones itself (an honest
# alert is a batch of one). On an idle core the workers run as fast as before.
WORKER_NICE: Final = 5


class Refusal(NamedTuple):
    """Why ``decode`` refused an envelope, as plain values that cross processes."""

    code: str
    blames_sender: bool
    message: str

    @classmethod
    def of(cls, exc: ProtocolError) -> Refusal:
        return cls(exc.code, exc.blames_sender, exc.message)


Verdict = Envelope | Refusal


class VerifierUnavailable(Exception):
    """The worker processes failed twice on one batch: nothing of it is accepted,
    and the sender is asked to send it again later."""


def verify_here(raws: Sequence[bytes], now: int) -> list[Verdict]:
    """One verdict per envelope, in order (what a worker runs, and the in-process path)."""
    verdicts: list[Verdict] = []
    for raw in raws:
        try:
            verdicts.append(decode(raw, now=now))
        except ProtocolError as exc:
            verdicts.append(Refusal.of(exc))
    return verdicts


def default_workers() -> int:
    """One worker per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class Verifier:
    """The node's verifier: ``await verify(raws, now)``; ``close`` on stop."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self.restarts = 0  # pools started again after a worker died (a metric)

    async def verify(self, raws: Sequence[bytes], now: int, *, alone: bool = False) -> list[Verdict]:
        """``alone``: no other batch is under way, so nothing would overlap this
        one's check and the hop to a worker would only add to its latency: it is
        checked here (measured: docs/performance.md "Ingest")."""
        if self.workers <= 0 or alone or len(raws) < POOLED_FROM:
            return verify_here(raws, now)
        try:
            return await self._pooled(raws, now)
        except BrokenProcessPool:
            self._restart()
        try:
            return await self._pooled(raws, now)
        except BrokenProcessPool:
            self._restart()
            raise VerifierUnavailable("signature verification workers keep failing") from None

    async def _pooled(self, raws: Sequence[bytes], now: int) -> list[Verdict]:
        pool = self._started()
        loop = asyncio.get_running_loop()
        count = max(1, min(self.workers, len(raws) // CHUNK_MIN))
        size = -(-len(raws) // count)
        chunks = [list(raws[start : start + size]) for start in range(0, len(raws), size)]
        parts = await asyncio.gather(*(loop.run_in_executor(pool, verify_here, c, now) for c in chunks))
        verdicts = [verdict for part in parts for verdict in part]
        if len(verdicts) != len(raws) or any(
            isinstance(v, Envelope) and v.raw != raw for v, raw in zip(verdicts, raws, strict=True)
        ):
            raise BrokenProcessPool("a worker answered for other bytes")  # never trust a mismatch
        return verdicts

    def _started(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_watch_node,
                initargs=(os.getpid(),),
            )
        return self._pool

    def _restart(self) -> None:
        self.restarts += 1
        log.warning("a signature verification worker died: starting the workers again")
        self._close_pool(wait=False)

    def _close_pool(self, *, wait: bool) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=True)

    def close(self) -> None:
        """End the workers (waiting for the batch under way, if any)."""
        self._close_pool(wait=True)


def _watch_node(node_pid: int) -> None:
    """In each worker: a lower CPU priority (``WORKER_NICE``), and an end when
    its node is gone (a ``kill -9`` closes nothing)."""
    with contextlib.suppress(OSError):  # not allowed here: run at the node's priority
        os.nice(WORKER_NICE)

    def watch() -> None:
        # An Event's timed wait, not ``time.sleep``: under libfaketime (the nemesis's
        # clock faults) ``time.sleep`` raises EINVAL, which ended this thread with a
        # traceback and left the workers to outlive a killed node (finding 13).
        tick = threading.Event()
        while os.getppid() == node_pid:
            tick.wait(WATCHDOG_S)
        os._exit(0)

    threading.Thread(target=watch, name="amparo-verifier-watchdog", daemon=True).start()
