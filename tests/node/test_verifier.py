"""Signature checks in worker processes (node.verifier): the verdicts are those of
``decode`` in the node's own process, in order; a worker that dies costs a
restart, never a verdict made up; workers end with ``close``. Real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from unittest import mock

import pytest

from node.verifier import POOLED_FROM, Refusal, Verifier, VerifierUnavailable, verify_here
from protocol import Alert, Area, Envelope, Identity, sign_envelope

NOW = 1_795_000_000_000
HOUR = 3_600_000
AUTHOR = Identity.from_random(bytes(range(64)))


def _alerts(count: int) -> list[bytes]:
    return [
        sign_envelope(
            AUTHOR,
            Alert(headline=f"Retén en la carretera {i}", areas=(Area("MX-OAX"),), severity="severe"),
            created=NOW,
            expires=NOW + HOUR,
        ).raw
        for i in range(count)
    ]


def _flip_last(raw: bytes) -> bytes:
    return raw[:-1] + bytes([raw[-1] ^ 1])


@pytest.fixture(scope="module")
def batch() -> list[bytes]:
    """Good alerts with a forged one, a malformed one and an expired one among them."""
    raws = _alerts(2 * POOLED_FROM)
    raws[3] = _flip_last(raws[3])  # the signature no longer matches
    raws[7] = b"\x93\x01\x02"  # not an envelope
    raws[11] = sign_envelope(
        AUTHOR, Alert(headline="Vencida", areas=(Area("MX"),), severity="minor"), created=NOW - 2 * HOUR,
        expires=NOW - HOUR,
    ).raw  # fmt: skip
    return raws


@pytest.fixture(scope="module")
def pooled() -> Iterator[Verifier]:
    verifier = Verifier(2)
    yield verifier
    verifier.close()


def _codes(verdicts: list[Envelope | Refusal]) -> list[str]:
    return [v.code if isinstance(v, Refusal) else "ok" for v in verdicts]


def test_in_process_verdicts_name_each_refusal_and_who_is_blamed(batch: list[bytes]) -> None:
    verdicts = verify_here(batch, NOW)
    codes = _codes(verdicts)
    assert codes[3] == "bad-signature" and codes[7] == "malformed" and codes[11] == "expired"
    assert codes.count("ok") == len(batch) - 3
    blamed = {v.code: v.blames_sender for v in verdicts if isinstance(v, Refusal)}
    assert blamed == {"bad-signature": True, "malformed": True, "expired": False}


async def test_workers_give_the_same_verdicts_in_the_same_order(pooled: Verifier, batch: list[bytes]) -> None:
    verdicts = await pooled.verify(batch, NOW)
    assert verdicts == verify_here(batch, NOW)
    assert all(v.raw == raw for v, raw in zip(verdicts, batch, strict=True) if isinstance(v, Envelope))
    assert pooled._pool is not None  # the batch was large enough to go to the workers


async def test_a_small_batch_never_starts_a_worker(batch: list[bytes]) -> None:
    verifier = Verifier(2)
    try:
        verdicts = await verifier.verify(batch[: POOLED_FROM - 1], NOW)
        assert _codes(verdicts)[3] == "bad-signature"
        assert verifier._pool is None
    finally:
        verifier.close()


async def test_a_batch_alone_is_checked_here(batch: list[bytes]) -> None:
    """No other batch under way: nothing would overlap, so no hop to a worker."""
    verifier = Verifier(2)
    try:
        assert await verifier.verify(batch, NOW, alone=True) == verify_here(batch, NOW)
        assert verifier._pool is None
    finally:
        verifier.close()


async def test_a_killed_worker_is_replaced_and_the_batch_still_verified(batch: list[bytes]) -> None:
    verifier = Verifier(2)
    try:
        await verifier.verify(batch, NOW)
        assert verifier._pool is not None
        for process in list(verifier._pool._processes.values()):  # type: ignore[attr-defined]
            process.kill()
            process.join()
        verdicts = await verifier.verify(batch, NOW)
        assert verdicts == verify_here(batch, NOW)  # the forgery is still refused
        assert verifier.restarts == 1
    finally:
        verifier.close()


async def test_workers_that_keep_failing_refuse_the_batch_without_a_verdict(batch: list[bytes]) -> None:
    verifier = Verifier(2)
    broken = mock.AsyncMock(side_effect=BrokenProcessPool("killed"))
    with mock.patch.object(verifier, "_pooled", broken), pytest.raises(VerifierUnavailable):
        await verifier.verify(batch, NOW)
    assert broken.await_count == 2  # tried in a fresh pool once, then refused
    verifier.close()


async def test_close_ends_the_worker_processes(batch: list[bytes]) -> None:
    verifier = Verifier(2)
    await verifier.verify(batch, NOW)
    assert verifier._pool is not None
    processes = list(verifier._pool._processes.values())  # type: ignore[attr-defined]
    verifier.close()
    deadline = time.monotonic() + 10
    while any(p.is_alive() for p in processes) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(p.is_alive() for p in processes)


# A "node" that starts its workers on a batch, says their pids and waits to be killed.
NODE_SCRIPT = """
import asyncio, sys, threading
from tests.node.test_verifier import NOW, _alerts
from node.verifier import Verifier
verifier = Verifier(2)
asyncio.run(verifier.verify(_alerts(64), NOW))
print(" ".join(str(pid) for pid in verifier._pool._processes), flush=True)
threading.Event().wait()
"""
# Where ``time.sleep`` fails as under libfaketime (the nemesis's clock faults): EINVAL.
BROKEN_SLEEP = """
import errno, time
def sleep(seconds):
    raise OSError(errno.EINVAL, "Invalid argument")
time.sleep = sleep
"""
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_workers_end_after_their_node_is_killed_where_time_sleep_fails(tmp_path: Path) -> None:
    """Finding 13 (20-node nemesis run, seed 20261208): under libfaketime ``time.sleep``
    raises EINVAL, the workers' watchdog thread died with a traceback in the node's
    log, and a ``kill -9`` of the node left its workers running. ``time.sleep`` fails
    here as it did there (and libfaketime is loaded too where it is installed)."""
    (tmp_path / "sitecustomize.py").write_text(BROKEN_SLEEP)
    repo = Path(__file__).resolve().parents[2]
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(tmp_path), str(repo)])}
    if LIBFAKETIME.is_file():
        (tmp_path / "skew").write_text("+90\n")
        env |= {
            "LD_PRELOAD": str(LIBFAKETIME), "FAKETIME_TIMESTAMP_FILE": str(tmp_path / "skew"),
            "DONT_FAKE_MONOTONIC": "1",
        }  # fmt: skip
    workers: list[int] = []
    node = subprocess.Popen(
        [sys.executable, "-c", NODE_SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    )
    try:
        assert node.stdout is not None
        workers += [int(pid) for pid in node.stdout.readline().split()]
        assert workers, "the batch did not reach the workers"
        node.kill()
        node.wait(30)
        deadline = time.monotonic() + 10  # the watchdog looks every WATCHDOG_S (1 s)
        while any(_running(pid) for pid in workers):
            assert time.monotonic() < deadline, "signature workers outlived their killed node"
            time.sleep(0.05)
        assert node.stderr is not None
        assert "Traceback" not in node.stderr.read()
    finally:
        if node.poll() is None:
            node.kill()
        for pid in workers:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
