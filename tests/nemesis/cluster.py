"""Real ``amparo run`` processes, one per network namespace (see ``net.py``).

A ``NetNode`` is a ``node.devmesh.LocalNode`` whose process starts inside its
namespace (``ip netns exec``), whose mesh listener is on the namespace's ``eth0``
and whose local API is on the control link. Its wall clock can be skewed
(``clock.py``: a preload shim, or libfaketime): the offset is read from a file the nemesis rewrites, so a skew or
a jump takes effect in a running node, without a restart.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.config import DB_FILE, TOKEN_FILE
from node.devmesh import LocalMesh, LocalNode, node_name
from protocol.envelope import MAX_SKEW_MS
from tests.nemesis.clock import shim, skew_env
from tests.nemesis.net import LOCAL_PORT, MESH_PORT, Fabric

REQUEST_TIMEOUT_S = 6.0
PAIR_TRIES = 5  # accepts of an invite that could not reach the inviter
GOSSIPED = ("alert", "ack")  # the envelope types the workload writes and every node must hold


class Unanswered(Exception):
    """The node did not answer (down, hung, or too slow): nothing was acknowledged."""


class Refused(Exception):
    """The node answered with an error: nothing was acknowledged."""

    def __init__(self, status: int, code: str, message: str = "") -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


@dataclass
class NetNode(LocalNode):
    ns: str = ""
    mesh_ip: str = ""
    ctl_ip: str = ""
    index: int = 0
    skew_file: Path | None = None
    clock_shim: Path | None = None  # ``clock.build_shim``; None: libfaketime, if installed
    stopped: bool = False  # SIGSTOP'd
    starts: int = 0
    log_path: Path | None = None  # default ``<home>/node.log``; the disk node's is outside its tmpfs
    _token: str = field(default="", repr=False)

    def init(self) -> None:
        self.amparo(
            "init", "--name", self.name, "--no-passphrase", "--kdf-profile", "interactive",
            "--trust-depth", str(self.trust_depth),
            "--listen", f"{self.mesh_ip}:{MESH_PORT}", "--local", f"{self.ctl_ip}:{LOCAL_PORT}",
        )
        self._token = (self.home / TOKEN_FILE).read_text("ascii").strip()
        if self.skew_file is not None:
            self.skew_file.write_text("+0\n")

    def start(self, wait: float = 60.0) -> None:
        log = open(self.log_file, "ab")  # noqa: SIM115 - the process owns it until it exits
        env = self._env()
        if self.skew_file is not None:
            env |= skew_env(self.clock_shim, self.skew_file)
        cmd = ["ip", "netns", "exec", self.ns, sys.executable, "-m", "node.cli", "--home", str(self.home), "run"]
        # No PR_SET_PDEATHSIG here (``LocalNode`` sets it): it fires when the *thread*
        # that forked the node ends, and a fault thread that restarts a killed node
        # ends with its round (every restarted node got SIGTERM: found by the first
        # runs). The run's cleanup kills whatever is left in its namespaces instead
        # (``Fabric.close``, also on SIGTERM).
        try:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        finally:
            log.close()
        self.stopped = False
        self.starts += 1
        self.wait_ready(wait)

    @property
    def log_file(self) -> Path:
        return self.log_path or self.home / "node.log"

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_file.read_text("utf-8", "replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"node {self.name!r} exited ({self.proc.returncode}):\n{self._log_tail()}")
            try:
                self.call("GET", "/healthz", timeout=2)
                return
            except (Unanswered, Refused):
                time.sleep(0.2)
        raise RuntimeError(f"node {self.name!r} did not come up within {timeout} s")

    def call(self, method: str, path: str, doc: dict[str, Any] | None = None, timeout: float = REQUEST_TIMEOUT_S) -> Any:
        """The local API over the control link, with a short timeout (a hung node must
        not hang the workload)."""
        data = json.dumps(doc).encode() if doc is not None else None
        req = urllib.request.Request(
            f"http://{self.ctl_ip}:{LOCAL_PORT}{path}", data=data, method=method,
            headers={"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                error = json.loads(exc.read())["error"]
                code, message = str(error["code"]), str(error["message"])
            except (ValueError, KeyError, TypeError):
                code, message = f"http-{exc.code}", ""
            raise Refused(exc.code, code, message) from None
        except (urllib.error.URLError, OSError) as exc:
            raise Unanswered(str(exc)) from None

    # -- process faults -----------------------------------------------------

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            if sig == signal.SIGSTOP:
                self.stopped = True
            elif sig == signal.SIGCONT:
                self.stopped = False

    def kill9(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None
        self.stopped = False

    def skew(self, spec: str) -> None:
        """Wall-clock offset in seconds, e.g. ``+90``, ``-90``, ``+3600``; ``+0`` corrects it
        (read by the node within a second: ``clock.py``)."""
        if self.skew_file is not None:
            self.skew_file.write_text(spec + "\n")

    # -- the store, read directly (read-only) -------------------------------

    def db_path(self) -> Path:
        return self.home / DB_FILE

    def held(self) -> dict[bytes, tuple[str, bytes, bytes]]:
        """Every gossiped envelope in the store: id → (type, author, raw)."""
        con = sqlite3.connect(f"file:{self.db_path()}?mode=ro", uri=True, timeout=10)
        try:
            marks = ",".join("?" * len(GOSSIPED))
            rows = con.execute(f"SELECT id, type, author, raw FROM envelopes WHERE type IN ({marks})", GOSSIPED)
            return {bytes(r[0]): (r[1], bytes(r[2]), bytes(r[3])) for r in rows}
        finally:
            con.close()

    def held_ids(self) -> tuple[frozenset[bytes], frozenset[bytes]]:
        """(ids any node may hold now, ids dated further ahead than the clock window).

        An envelope signed by a node whose clock jumped an hour ahead is refused by
        every peer until real time catches up (SPEC §8: too far in the future is
        rejected), so it is set apart rather than counted as not delivered."""
        limit = int(time.time() * 1000) + MAX_SKEW_MS
        con = sqlite3.connect(f"file:{self.db_path()}?mode=ro", uri=True, timeout=10)
        try:
            marks = ",".join("?" * len(GOSSIPED))
            rows = con.execute(f"SELECT id, created FROM envelopes WHERE type IN ({marks})", GOSSIPED)
            now: set[bytes] = set()
            ahead: set[bytes] = set()
            for eid, created in rows:
                (ahead if created > limit else now).add(bytes(eid))
            return frozenset(now), frozenset(ahead)
        finally:
            con.close()

    def integrity(self) -> str:
        con = sqlite3.connect(f"file:{self.db_path()}?mode=ro", uri=True, timeout=30)
        try:
            return str(con.execute("PRAGMA integrity_check").fetchone()[0])
        finally:
            con.close()


def ring_with_chords(n: int) -> list[tuple[int, int]]:
    """Not a clique: a ring plus a few chords (``LocalMesh.mesh_edges``)."""
    edges = [(i, i + 1) for i in range(n - 1)] + ([(n - 1, 0)] if n > 2 else [])
    if n > 5:
        edges += [(i, (i + n // 2) % n) for i in range(0, n // 2, 2)]
        edges += [(i, (i + n // 4) % n) for i in range(1, n, 4)]
    return list(dict.fromkeys(tuple(sorted(e)) for e in edges))  # type: ignore[misc]


class Cluster:
    def __init__(self, root: Path, count: int, fabric: Fabric) -> None:
        self.root, self.fabric = root, fabric
        self.edges = ring_with_chords(count)
        self.disk_node = count - 1
        self.mounted: Path | None = None
        # every node inside every horizon, and the hostile peers too: they are paired
        # with one node, one hop beyond the graph (``tests.nemesis.siege``)
        depth = min(6, max(2, LocalMesh.diameter(count, self.edges) + 1))
        self.clock_shim = shim()
        self.nodes = [
            NetNode(
                node_name(i), root / f"node{i}", mesh_port=MESH_PORT, local_port=LOCAL_PORT, trust_depth=depth,
                ns=fabric.ns(i), mesh_ip=fabric.mesh_ip(i), ctl_ip=fabric.ctl_ip(i), index=i,
                skew_file=root / f"skew{i}", clock_shim=self.clock_shim,
            )
            for i in range(count)
        ]

    def setup(self, tmpfs_mb: int = 0) -> None:
        """``tmpfs_mb``: the last node's home is a tmpfs of that size (for the disk fault)."""
        if tmpfs_mb:
            node = self.nodes[self.disk_node]
            node.home.mkdir(parents=True)
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={tmpfs_mb}m", "tmpfs", str(node.home)], check=True)
            self.mounted = node.home
            # Its log on another file system, as journald's would be: what it refused
            # while full, and why, must be readable.
            node.log_path = node.home.with_suffix(".log")
        for node in self.nodes:
            node.init()
        for node in self.nodes:
            node.start()
        for a, b in self.edges:
            self.pair(a, b)

    def pair(self, a: int, b: int) -> None:
        """``b`` accepts ``a``'s invite. An accept that could not reach the inviter is
        tried again with a new invite, as an operator would: on the loaded machine
        a TLS handshake can outlast the 5 s connect timeout (a 20-node run's set-up
        died of one at load 20); any other refusal, or the fifth, ends the run."""
        for attempt in range(1, PAIR_TRIES + 1):
            token = self.nodes[a].call("POST", "/api/v1/peers/invite", {}, timeout=30)["token"]
            try:
                self.nodes[b].call("POST", "/api/v1/peers/accept", {"token": token, "verified": True}, timeout=60)
                return
            except Refused as exc:
                if attempt == PAIR_TRIES or not exc.message.startswith("could not reach"):
                    raise

    def keys(self) -> dict[bytes, int]:
        return {bytes.fromhex(n.call("GET", "/api/v1/id", timeout=30)["key"]): n.index for n in self.nodes}

    def stop(self) -> None:
        for node in self.nodes:
            if node.stopped:
                node.signal(signal.SIGCONT)
            node.stop()

    def unmount(self) -> None:
        """Unmount the tmpfs home (its node's log is next to it, ``<home>.log``)."""
        if self.mounted is not None:
            subprocess.run(["umount", "-l", str(self.mounted)], check=False)
            self.mounted = None
