"""Issue 11, items 2 and 3 ("nothing unauthenticated can stall a node"): one
address cannot take the descriptors the node needs, and a connection that does
not deliver its request in time is closed.

Found by an audit: the mesh listener never closed a TLS connection whose request
head did not arrive (``POST /mesh/v1/push HTTP/1.1``, then nothing), or whose
body trickled; aiohttp has no header or body read timeout, its idle keep-alive
timeout was an hour, and the door's budgets only run once a head is complete.
With the 1024 descriptors a systemd service gets by default, one unauthenticated
address opened 1013 such connections in a few seconds; then ``accept()`` failed
with EMFILE and ``/healthz`` on the *local* listener and an honest peer's push
both timed out for as long as the connections were held.

The defence (node/listener.py, docs/protocol.md §12.3): a per-address cap and a
global cap on mesh-listener connections, checked at accept, before the TLS
handshake; deadlines for the handshake, the request head and the body; the idle
keep-alive timeout cut to 75 s; the descriptor limit raised at start.

The attacker connects from 127.0.0.2 (127.0.0.2 to .71 for the flood from many
addresses) and the honest peer from 127.0.0.1: different addresses, as a flooder
and an honest peer are on the Internet. Each test failed on the code before the
fix: 245 connections held from one address (of 256 descriptors) and /healthz
timed out; 1013 held from 70 addresses (of 1024) and /healthz timed out; an
unfinished head and a trickling body were still held after 25 s and 45 s."""

from __future__ import annotations

import resource
import socket
import ssl
import time
import urllib.request
from contextlib import ExitStack
from typing import Any

import pytest

from tests.e2e.harness import ScriptedPeer

pytestmark = pytest.mark.slow

FD_LIMIT = 256  # lowered for the test; the default of a systemd service is 1024
ATTACKER = "127.0.0.2"
PER_ADDRESS_CAP = 16  # node/listener.py PER_ADDRESS: what one address may hold at a time
TOTAL_CAP = 512  # node/listener.py TOTAL: what the mesh listener holds at a time
HEAD_DEADLINE_S = 10.0  # node/listener.py HEAD_S
BODY_DEADLINE_S = 30.0  # node/listener.py BODY_S
MARGIN_S = 15.0  # a loaded 2-core machine; the old code held them for an hour


def _healthz_ok(port: int, timeout: float) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=timeout) as resp:
            return resp.status == 200
    except OSError:
        return False


def _tls_client() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _open_from_attacker(port: int, ctx: ssl.SSLContext, source: str = ATTACKER) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=3, source_address=(source, 0))
    try:
        return ctx.wrap_socket(raw)
    except BaseException:
        raw.close()
        raise


def _seconds_until_closed(conn: ssl.SSLSocket, limit: float) -> float:
    """How long until the node closes ``conn`` (EOF or reset); fails after ``limit``."""
    start = time.monotonic()
    conn.settimeout(1.0)
    while time.monotonic() - start < limit:
        try:
            if conn.recv(4096) == b"":
                return time.monotonic() - start
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - start
    raise AssertionError(f"the node still held the connection after {limit:.0f} s")


def test_unfinished_requests_from_one_address_cannot_take_every_descriptor(mesh_factory: Any) -> None:
    mesh = mesh_factory(1)
    (node,) = mesh.nodes
    assert node.proc is not None
    resource.prlimit(node.proc.pid, resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))
    honest = ScriptedPeer("Nodo Honesto")
    honest.pair_with(node)
    ctx = _tls_client()
    opened = 0
    with ExitStack() as held:
        for _ in range(FD_LIMIT + 50):
            try:
                conn = held.enter_context(_open_from_attacker(node.mesh_port, ctx))
                conn.sendall(b"POST /mesh/v1/push HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and nothing more
                opened += 1
            except OSError:
                break
        started = time.monotonic()
        healthy = _healthz_ok(node.local_port, timeout=5)
        healthz_s = time.monotonic() - started
        print(
            f"unfinished requests held open by one address: {opened}; /healthz answered in {healthz_s:.3f} s"
        )
        assert opened <= PER_ADDRESS_CAP, f"one address held {opened} connections at once"
        assert healthy, f"{opened} unfinished requests from one address stalled the node's local listener"
        started = time.monotonic()
        pushed = honest.push(node, [honest.alert("Honest alert while the door is crowded").raw])
        print(f"an honest push during the attack took {time.monotonic() - started:.3f} s")
        assert pushed["accepted"] == 1


def test_unfinished_requests_from_many_addresses_meet_the_total_cap(mesh_factory: Any) -> None:
    """70 addresses, 17 connections each: more than the 1024 descriptors a systemd
    service gets by default. The listener holds at most its total, the local
    listener keeps answering, and an honest peer gets in once the head deadline
    has closed the flood's first connections."""
    mesh = mesh_factory(1)
    (node,) = mesh.nodes
    assert node.proc is not None
    resource.prlimit(node.proc.pid, resource.RLIMIT_NOFILE, (1024, 1024))
    honest = ScriptedPeer("Nodo Honesto")
    honest.pair_with(node)
    ctx = _tls_client()
    opened = failed_in_a_row = 0
    with ExitStack() as held:
        for host in range(2, 72):
            for _ in range(PER_ADDRESS_CAP + 1):
                try:
                    conn = held.enter_context(_open_from_attacker(node.mesh_port, ctx, f"127.0.0.{host}"))
                    conn.sendall(b"POST /mesh/v1/push HTTP/1.1\r\n")  # and nothing more
                    opened, failed_in_a_row = opened + 1, 0
                except OSError:
                    failed_in_a_row += 1
            if failed_in_a_row > PER_ADDRESS_CAP:
                break  # the door is full (or the node out of descriptors): hold what we have
        started = time.monotonic()
        healthy = _healthz_ok(node.local_port, timeout=5)
        print(
            f"unfinished requests held open by 70 addresses: {opened}; /healthz answered in "
            f"{time.monotonic() - started:.3f} s"
        )
        assert opened <= TOTAL_CAP, f"the mesh listener held {opened} connections at once"
        assert healthy, "a flood from many addresses stalled the node's local listener"
        started = time.monotonic()
        pushed: dict[str, Any] = {}
        while not pushed and time.monotonic() - started < HEAD_DEADLINE_S + MARGIN_S:
            try:
                pushed = honest.push(node, [honest.alert("Honest alert through a full door").raw])
            except Exception:  # refused at accept while the flood fills the listener
                time.sleep(0.5)  # the pace of retries; what is measured is when one gets through
        print(f"an honest push got through after {time.monotonic() - started:.1f} s")
        assert pushed.get("accepted") == 1, "an honest peer stayed locked out past the head deadline"


def test_a_request_head_that_does_not_arrive_is_closed(mesh_factory: Any) -> None:
    mesh = mesh_factory(1)
    (node,) = mesh.nodes
    with _open_from_attacker(node.mesh_port, _tls_client()) as conn:
        conn.sendall(b"POST /mesh/v1/push HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        closed_after = _seconds_until_closed(conn, HEAD_DEADLINE_S + MARGIN_S)
    print(f"an unfinished request head was closed after {closed_after:.1f} s")


def test_a_body_that_trickles_is_closed(mesh_factory: Any) -> None:
    mesh = mesh_factory(1)
    (node,) = mesh.nodes
    with _open_from_attacker(node.mesh_port, _tls_client()) as conn:
        conn.sendall(
            b"POST /mesh/v1/push HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-msgpack\r\nContent-Length: 4000\r\n\r\n"
        )
        start = time.monotonic()
        closed = False
        while not closed and time.monotonic() - start < BODY_DEADLINE_S + MARGIN_S:
            try:
                conn.sendall(b"\x00")  # one byte a second: far below any honest rate
                conn.settimeout(1.0)
                closed = conn.recv(4096) == b""
            except TimeoutError:
                continue
            except OSError:
                closed = True
        elapsed = time.monotonic() - start
    print(f"a trickling body was closed after {elapsed:.1f} s")
    assert closed, f"the node still read a trickling body after {elapsed:.0f} s"
