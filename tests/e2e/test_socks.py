"""Outbound mesh traffic through a real local SOCKS5 proxy (as with Tor): the
proxy's own log shows every connection, and with the proxy down nothing leaves."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from node.devmesh import LocalMesh, LocalNode, free_port
from tests.e2e.test_escalation import configure
from tests.e2e.test_gossip import wait_until

pytestmark = pytest.mark.slow


def start_proxy(port: int, log: Path) -> subprocess.Popen[bytes]:
    proxy = subprocess.Popen(
        [sys.executable, "-m", "pproxy", "-l", f"socks5://127.0.0.1:{port}", "-v"],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )

    def listening() -> bool:
        assert proxy.poll() is None, log.read_text()
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
        return False

    wait_until(listening, timeout=20, what="the SOCKS proxy to listen")
    return proxy


def failed_since(node: LocalNode, peer: LocalNode, since_ms: int) -> bool:
    """Whether ``node`` saw a call to ``peer`` fail at or after ``since_ms``."""
    for shown in node.api.get("/api/v1/peers")["peers"]:
        failure = shown.get("last_failure")
        if shown["name"] == peer.name and failure is not None and failure["at"] >= since_ms:
            return True
    return False


def test_node_reaches_its_peer_only_through_the_socks_proxy(tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "proxy.log"
    proxy = start_proxy(port, log)
    mesh = LocalMesh(tmp_path / "mesh", 2)
    mesh.init_all()
    a, b = mesh.nodes
    configure(b.home, socks_proxy=f"socks5://127.0.0.1:{port}")
    mesh.start_all()
    try:
        mesh.connect([(0, 1)])  # B accepts A's invite: B's pairing call goes through the proxy
        assert f"127.0.0.1:{a.mesh_port}" in log.read_text()
        first = b.send(headline="Sent through the proxy")
        mesh.wait_for(first, [a], timeout=20)

        proxy.terminate()
        proxy.wait(5)
        sent_at = int(time.time() * 1000)
        cut_off = b.send(headline="Proxy down: must not leave directly")
        # B tried (its push failed at the proxy) and A still has nothing: it did not go direct
        wait_until(lambda: failed_since(b, a, sent_at), timeout=20, what="B's push to fail at the proxy")
        assert cut_off not in a.alert_ids()

        # The restarted proxy logs to a file of its own: only connections made
        # after the restart can appear there, so the delivery of `cut_off` must.
        restarted_log = tmp_path / "proxy-restarted.log"
        proxy = start_proxy(port, restarted_log)
        wait_until(lambda: cut_off in a.alert_ids(), timeout=60, what="delivery once the proxy is back")
        assert f"127.0.0.1:{a.mesh_port}" in restarted_log.read_text()
    finally:
        mesh.stop_all()
        proxy.terminate()
