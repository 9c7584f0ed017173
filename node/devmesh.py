"""A mesh of real node processes on loopback, for the demo, tests and benchmarks.

Each node is a separate ``amparo run`` process with its own home, ports and
SQLite file, talking HTTPS to the others exactly as in production; only the
addresses are 127.0.0.1. Fictional organization names only.
"""

from __future__ import annotations

import errno
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from node.cli.client import LocalClient, NodeUnavailable
from node.config import CONFIG_FILE

NAMES = (
    "Colectivo Ejemplo",
    "Brigada Solidaria Norte",
    "Observatorio Ficticio",
    "Red de Acompañamiento Sur",
    "Casa de la Memoria",
    "Defensoras del Valle",
    "Comité Imaginario",
    "Radio Comunitaria Prueba",
)


def _die_with_parent() -> None:
    """Linux: the node gets SIGTERM if the demo/test/bench that started it dies,
    so an interrupted run never leaves orphan nodes holding ports."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class PortPool:
    """Loopback ports for listeners that another process binds later (a node's
    ``amparo run``, a test's fake server), so "nothing listens there now" is not
    enough: between the choice and the bind, someone else must not take it.

    - The ports lie outside the kernel's ephemeral range (``ip_local_port_range``),
      so no outgoing connection of any process lands on one in the meantime.
    - Each port handed out stays claimed while the next ``HOLD`` ports are handed
      out, so parallel test workers, and parallel runs on one machine, never pick
      the same one. The claim is a Linux abstract socket named after the port: no
      file is left anywhere, and the kernel drops a dead process's claims.
    - This process never hands out a port twice within that window either: a
      node stopped and started again keeps its port, no other node gets it.
    """

    HOLD = 128  # far more ports than one test, demo or benchmark holds at once

    def __init__(self, ports: range | None, claim_prefix: str = "amparo-port-") -> None:
        self.ports = ports
        self.cursor = secrets.randbelow(len(ports)) if ports else 0  # workers start far apart
        self.held: deque[tuple[int, socket.socket | None]] = deque()
        self.claim_prefix = claim_prefix

    def take(self) -> int:
        if self.ports is None:
            return self._from_kernel()
        for _ in range(len(self.ports)):
            port = self.ports[self.cursor]
            self.cursor = (self.cursor + 1) % len(self.ports)
            if any(port == held for held, _ in self.held):
                continue
            try:
                claim = self._claim(port)
            except FileExistsError:  # another process holds it
                continue
            if _bindable(port):
                self._hold(port, claim)
                return port
            if claim is not None:
                claim.close()
        raise RuntimeError(f"no free loopback port in {self.ports.start}-{self.ports.stop - 1}")

    def release(self) -> None:
        """Let go of every claim (the process's exit does the same)."""
        while self.held:
            _, claim = self.held.popleft()
            if claim is not None:
                claim.close()

    def _from_kernel(self) -> int:
        """Where no range lies outside the ephemeral one: whatever the kernel offers."""
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port: int = s.getsockname()[1]
            if all(port != held for held, _ in self.held):
                self._hold(port, None)
                return port

    def _claim(self, port: int) -> socket.socket | None:
        """The claim, or ``None`` where abstract sockets do not exist (not Linux:
        then only the bind check guards). Raises ``FileExistsError`` when another
        process holds the port."""
        claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            claim.bind(f"\0{self.claim_prefix}{port}")
        except OSError as exc:
            claim.close()
            if exc.errno == errno.EADDRINUSE:
                raise FileExistsError(port) from None
            return None
        return claim

    def _hold(self, port: int, claim: socket.socket | None) -> None:
        self.held.append((port, claim))
        while len(self.held) > self.HOLD:
            _, old = self.held.popleft()
            if old is not None:
                old.close()


def _bindable(port: int) -> bool:
    """Nothing is bound there, not even a connection lingering in TIME_WAIT."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _outside_ephemeral() -> range | None:
    """At least 1,000 ports below (else above) the kernel's ephemeral range."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999  # Linux's default; other systems start theirs higher
    if low - 10000 >= 1000:
        return range(max(10000, low - 12000), low)
    if 65535 - high >= 1000:
        return range(high + 1, 65536)
    return None


_POOL = PortPool(_outside_ephemeral())


def free_port() -> int:
    """A loopback port for a listener to bind later, never one another process or
    another live node was given (see ``PortPool``)."""
    return _POOL.take()


def ring_with_chords(n: int) -> list[tuple[int, int]]:
    """A ring plus chords (like allies who also know someone across the country):
    2–4 peers each, several paths between any two, a small diameter. The graph
    of ``LocalMesh.mesh_edges``, and of the benchmarks' bare relays."""
    edges = [(i, i + 1) for i in range(n - 1)] + ([(n - 1, 0)] if n > 2 else [])
    if n > 4:
        edges += [(i, (i + n // 2) % n) for i in range(0, n // 2, 2)]
        edges += [(i, (i + n // 4) % n) for i in range(1, n, 4)]
    return list(dict.fromkeys(tuple(sorted(e)) for e in edges))  # type: ignore[misc]


def node_name(i: int) -> str:
    base = NAMES[i % len(NAMES)]
    return base if i < len(NAMES) else f"{base} {i // len(NAMES) + 1}"


@dataclass
class LocalNode:
    name: str
    home: Path
    mesh_port: int = field(default_factory=free_port)
    local_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)
    trust_depth: int = 2
    # config.toml settings written after `amparo init`, e.g. allow_private_targets
    # for webhook receivers on loopback (the outbound policy refuses them otherwise)
    settings: dict[str, Any] = field(default_factory=dict)

    def amparo(
        self, *args: str, check: bool = True, input_text: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the real CLI against this node's home."""
        cmd = [sys.executable, "-m", "node.cli", "--home", str(self.home), *args]
        result = subprocess.run(  # noqa: S603 - our own CLI with our own arguments
            cmd, capture_output=True, text=True, env=self._env(), input=input_text, timeout=120
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"amparo {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}"
            )
        return result

    def _env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}

    def init(self) -> None:
        self.amparo(
            "init",
            "--name",
            self.name,
            "--no-passphrase",
            "--kdf-profile",
            "interactive",
            "--trust-depth",
            str(self.trust_depth),
            "--listen",
            f"127.0.0.1:{self.mesh_port}",
            "--local",
            f"127.0.0.1:{self.local_port}",
        )
        if self.settings:
            self.configure(**self.settings)

    def configure(self, **settings: Any) -> None:
        """Change settings in config.toml (they take effect at the next start)."""
        path = self.home / CONFIG_FILE
        path.write_text(tomli_w.dumps(tomllib.loads(path.read_text("utf-8")) | settings), "utf-8")

    def start(self, wait: float = 30.0) -> None:
        log = open(self.home / "node.log", "ab")  # noqa: SIM115 - the process owns it until it exits
        self.proc = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "node.cli", "--home", str(self.home), "run"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self._env(),
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        log.close()
        self.wait_ready(wait)

    def _log_tail(self, lines: int = 15) -> str:
        """The last lines of the node's log (its home may be a temporary folder gone by the time
        anyone looks)."""
        try:
            text = (self.home / "node.log").read_text("utf-8", "replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"node {self.name!r} exited ({self.proc.returncode}); the end of {self.home}/node.log:\n"
                    + self._log_tail()
                )
            try:
                self.api.get("/healthz")
                return
            except NodeUnavailable:
                time.sleep(0.1)
        raise RuntimeError(f"node {self.name!r} did not come up within {timeout} s")

    @property
    def api(self) -> LocalClient:
        return LocalClient(self.home)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        code = self.proc.returncode
        self.proc = None
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def alert_ids(self) -> set[str]:
        return {a["id"] for a in self.api.get("/api/v1/alerts", limit=1000)["alerts"]}

    def send(self, **fields: Any) -> str:
        doc: dict[str, Any] = {"regions": ["MX-OAX"], "severity": "severe", "headline": "Test alert"} | fields
        result: str = self.api.post("/api/v1/alerts", doc)["id"]
        return result


class LocalMesh:
    def __init__(
        self,
        root: Path,
        count: int,
        env: dict[str, str] | None = None,
        trust_depth: int = 2,
        settings: dict[str, Any] | None = None,
    ) -> None:
        self.root = root
        self.nodes = [
            LocalNode(
                node_name(i), root / f"node{i}", env=dict(env or {}), trust_depth=trust_depth,
                settings=dict(settings or {}),
            )
            for i in range(count)
        ]

    def __enter__(self) -> LocalMesh:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def init_all(self) -> None:
        for node in self.nodes:
            node.init()

    def start_all(self) -> None:
        for node in self.nodes:
            node.start()

    def stop_all(self) -> None:
        for node in self.nodes:
            node.stop()

    @staticmethod
    def pair(inviter: LocalNode, invitee: LocalNode) -> None:
        token = inviter.api.post("/api/v1/peers/invite", {})["token"]
        invitee.api.post("/api/v1/peers/accept", {"token": token, "verified": True})

    def connect(self, edges: Sequence[tuple[int, int]]) -> None:
        for a, b in edges:
            self.pair(self.nodes[a], self.nodes[b])

    def line_edges(self) -> list[tuple[int, int]]:
        return [(i, i + 1) for i in range(len(self.nodes) - 1)]

    def mesh_edges(self) -> list[tuple[int, int]]:
        return ring_with_chords(len(self.nodes))

    def trust_everyone(self, edges: Sequence[tuple[int, int]]) -> int:
        """Before ``init_all``: set each node's trust depth to the federation's
        diameter (at least the default 2) so every member's alerts reach everyone.
        A real federation chooses its depth; a demo ring of 20 needs more than 2."""
        depth = min(6, max(2, self.diameter(len(self.nodes), edges)))
        for node in self.nodes:
            node.trust_depth = depth
        return depth

    @staticmethod
    def diameter(count: int, edges: Sequence[tuple[int, int]]) -> int:
        """Longest shortest path in hops: the trust depth at which every member's
        alerts are accepted everywhere (vouches follow the pairings)."""
        neighbours: dict[int, set[int]] = {i: set() for i in range(count)}
        for a, b in edges:
            neighbours[a].add(b)
            neighbours[b].add(a)
        longest = 0
        for start in range(count):
            seen, frontier, hops = {start}, {start}, 0
            while True:
                frontier = {n for f in frontier for n in neighbours[f]} - seen
                if not frontier:
                    break
                seen |= frontier
                hops += 1
            longest = max(longest, hops)
        return longest

    def wait_for(
        self, alert_id: str, nodes: Sequence[LocalNode] | None = None, timeout: float = 30.0
    ) -> dict[str, float]:
        """Seconds until each node holds ``alert_id``; raises if some never do."""
        start = time.monotonic()
        pending = {n.name: n for n in (nodes or self.nodes)}
        arrived: dict[str, float] = {}
        while pending and time.monotonic() - start < timeout:
            for name, node in list(pending.items()):
                if alert_id in node.alert_ids():
                    arrived[name] = time.monotonic() - start
                    del pending[name]
            time.sleep(0.05)
        if pending:
            raise TimeoutError(f"alert {alert_id[:12]} never reached {', '.join(pending)} in {timeout} s")
        return arrived
