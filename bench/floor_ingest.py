"""The floor under the ingest figure: a bare pipeline on the fixed stack.

`bench/ingest.py` asks how many alerts a second one node takes from a peer,
verifies, stores and forwards, against raw Ed25519 verification on one core
(issue 14 asks ≥ 0.5). This script measures a receiver that does strictly less
than a node must, on the same two cores and in the same run, so a ratio the
bare pipeline misses is out of reach for any node on this stack here:

* a pusher (this process) sends frames of 48 messages of 1,338 bytes (≈ 64 KiB,
  the mesh's frame), one frame in flight, over aiohttp HTTPS kept alive
  (``--pushers N``: N connections at once, as `bench/ingest.py --pushers`);
* the receiver (its own process) drops duplicates by id, checks every
  signature with PyNaCl (in the process, or with ``--workers N`` in N worker
  processes, a batch each), inserts the frame's rows with one ``executemany``
  and commits them (SQLite, WAL, ``synchronous=FULL``, as the node), forwards
  the frame to a sink over HTTPS, and answers once both are done;
* the sink (its own process) counts what arrives.

No request signature, nonce, canonical decode, body checks, admission, regions,
receipts or stream: every one of those is work a node adds.

    python bench/floor_ingest.py [--messages 2000] [--rounds 3] [--workers 0] [--pushers 1] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import msgpack

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.floor import serve_https  # noqa: E402
from node.devmesh import free_port  # noqa: E402

MESSAGE_BYTES = 1338  # bench/protocol.py's sample alert envelope
PER_FRAME = 48  # ≈ 64 KiB frames, as framing.batches makes them
TARGET = 0.5


def _check(batch: list[tuple[bytes, bytes, bytes]]) -> list[bool]:
    """Signature checks of (key, signature, payload) triples, in a worker or here."""
    import nacl.bindings

    out = []
    for key, signature, payload in batch:
        try:
            nacl.bindings.crypto_sign_open(signature + payload, key)
            out.append(True)
        except Exception:
            out.append(False)
    return out


def split(message: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """(id, author key, signature, payload) of one bench message."""
    return message[:16], message[16:48], message[48:112], message[112:]


# -- the receiver and the sink ---------------------------------------------------------------


def serve(config: dict[str, Any]) -> None:
    """The receiver (``config["sink"]`` set: forwards there) or the sink."""
    from aiohttp import ClientSession, TCPConnector, web


    seen: set[bytes] = set()
    counted = {"n": 0}
    state: dict[str, Any] = {}

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        frame = msgpack.unpackb(body)
        if "sink" not in config:
            counted["n"] += len(frame)
            return web.Response(text=str(counted["n"]))
        fresh = [m for m in frame if m[:16] not in seen]
        triples = [split(m)[1:] for m in fresh]
        if state["pool"] is not None:
            ok = await asyncio.get_running_loop().run_in_executor(state["pool"], _check, triples)
        else:
            ok = _check(triples)
        good = [m for m, fine in zip(fresh, ok, strict=True) if fine]
        seen.update(m[:16] for m in good)
        # forwarded as soon as checked; answered once stored and forwarded
        forward = asyncio.create_task(_forward(state, config, msgpack.packb(good)))
        rows = [(m[:16], m) for m in good]
        await asyncio.get_running_loop().run_in_executor(None, _store, state["db"], rows)
        await forward
        return web.Response(text=str(len(rows)))

    async def count(_request: web.Request) -> web.Response:
        return web.Response(text=str(counted["n"]))

    async def main() -> None:
        if "sink" in config:
            workers = config["workers"]
            state["pool"] = ProcessPoolExecutor(workers) if workers else None
            db = sqlite3.connect(config["db"], isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            db.execute("CREATE TABLE envelopes (id BLOB PRIMARY KEY, raw BLOB NOT NULL)")
            state["db"] = db
            state["session"] = ClientSession(connector=TCPConnector(limit=0))
            if state["pool"] is not None:  # start the workers before the clock does
                await asyncio.get_running_loop().run_in_executor(state["pool"], _check, [])
        app = web.Application(client_max_size=1 << 20)
        app.router.add_post("/push", receive)
        app.router.add_get("/count", count)
        await serve_https(app, config["port"], Path(config["home"]))

    asyncio.run(main())


async def _forward(state: dict[str, Any], config: dict[str, Any], body: bytes) -> None:
    from node import tls

    port, fingerprint = config["sink"]
    async with state["session"].post(
        f"https://127.0.0.1:{port}/push", data=body, ssl=tls.pinned(bytes.fromhex(fingerprint))
    ) as answer:
        await answer.read()


def _store(db: sqlite3.Connection, rows: list[tuple[bytes, bytes]]) -> None:
    db.execute("BEGIN IMMEDIATE")
    db.executemany("INSERT INTO envelopes (id, raw) VALUES (?, ?)", rows)
    db.execute("COMMIT")


# -- the benchmark ---------------------------------------------------------------------------


def messages(count: int, round_no: int) -> list[bytes]:
    import nacl.signing

    signers = [nacl.signing.SigningKey(hashlib.sha256(b"floor-ingest-%d" % i).digest()) for i in range(10)]
    out = []
    for k in range(count):
        signer = signers[k % len(signers)]
        payload = (b"floor ingest %d %d " % (round_no, k)).ljust(MESSAGE_BYTES - 112, b"x")
        message_id = hashlib.blake2b(payload, digest_size=16).digest()
        out.append(message_id + bytes(signer.verify_key) + signer.sign(payload).signature + payload)
    return out


def raw_verify_rate(batch: list[bytes], seconds: float = 2.0) -> float:
    """PyNaCl verifications a second of these messages, one core."""
    triples = [split(m)[1:] for m in batch]
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        _check(triples)
        done += len(triples)
    return done / (time.perf_counter() - start)


def start(config: dict[str, Any]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(  # its own process group: its signature workers stop with it
        [sys.executable, __file__, "serve", json.dumps(config)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        start_new_session=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "R":
        raise SystemExit("a bare process did not start")
    return proc


def run(count: int, rounds: int, workers: int, pushers: int, say: Any) -> list[dict[str, float]]:
    from aiohttp import ClientSession

    from node import tls
    from node.provision import make_certificate, tls_fingerprint

    results = []
    with tempfile.TemporaryDirectory(prefix="amparo-floor-ingest-") as tmp:
        homes = {}
        for name in ("receiver", "sink"):
            homes[name] = Path(tmp) / name
            homes[name].mkdir()
            make_certificate(homes[name], name)
        prints = {name: (tls_fingerprint(home) or b"").hex() for name, home in homes.items()}
        ports = {name: free_port() for name in homes}
        sink = start({"port": ports["sink"], "home": str(homes["sink"])})
        receiver = start(
            {
                "port": ports["receiver"],
                "home": str(homes["receiver"]),
                "sink": [ports["sink"], prints["sink"]],
                "workers": workers,
                "db": str(Path(tmp) / "bare.db"),
            }
        )
        try:

            async def push_all(frames: list[bytes]) -> None:
                """``pushers`` connections at once, each with one frame in flight."""

                async def one(share: list[bytes]) -> None:
                    async with ClientSession() as session:
                        for body in share:
                            async with session.post(
                                f"https://127.0.0.1:{ports['receiver']}/push",
                                data=body,
                                ssl=tls.pinned(bytes.fromhex(prints["receiver"])),
                            ) as answer:
                                await answer.read()

                await asyncio.gather(*(one(frames[k::pushers]) for k in range(pushers)))

            async def sink_count() -> int:
                async with ClientSession() as session:
                    async with session.get(
                        f"https://127.0.0.1:{ports['sink']}/count", ssl=tls.pinned(bytes.fromhex(prints["sink"]))
                    ) as answer:
                        return int(await answer.text())

            asyncio.run(push_all([msgpack.packb(messages(PER_FRAME, -1))]))  # warm-up: connections open
            for round_no in range(rounds):
                batch = messages(count, round_no)
                baseline = raw_verify_rate(batch)
                frames = [msgpack.packb(batch[i : i + PER_FRAME]) for i in range(0, count, PER_FRAME)]
                before = asyncio.run(sink_count())
                began = time.perf_counter()
                asyncio.run(push_all(frames))
                elapsed = time.perf_counter() - began
                arrived = asyncio.run(sink_count()) - before
                if arrived != count:
                    raise SystemExit(f"{arrived} of {count} messages reached the sink")
                rate = count / elapsed
                results.append({"raw_verify_per_s": round(baseline), "per_s": round(rate), "ratio": round(rate / baseline, 3)})
                say(f"round {round_no + 1}/{rounds}: {results[-1]}")
        finally:
            for proc in (receiver, sink):
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(10)
    return results


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        serve(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0, help="signature worker processes (0: in the receiver)")
    parser.add_argument("--pushers", type=int, default=1, help="connections pushing at once, one frame in flight each")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = run(args.messages, args.rounds, args.workers, args.pushers, lambda text: print(text, file=sys.stderr, flush=True))
    ratios = [r["ratio"] for r in results]
    median = statistics.median(ratios)
    if args.json:
        print(json.dumps({"rounds": results, "ratio": median, "workers": args.workers, "pushers": args.pushers}))
        return
    workers = f"{args.workers} verify workers" if args.workers else "verify in the receiver"
    workers += f", {args.pushers} pusher{'s' if args.pushers > 1 else ''}"
    print(f"bare ingest pipeline (HTTPS in, verify, SQLite commit, HTTPS forward; {workers}), {os.cpu_count()} cores")
    print(f"rounds: {ratios}; median ratio to raw verify on one core: {median:.3f} (issue 14's target for the node: >= {TARGET})")
    print("a ratio the bare pipeline misses, the node cannot reach here")


if __name__ == "__main__":
    main()
