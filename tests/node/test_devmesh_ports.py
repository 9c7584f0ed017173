"""Ports for real nodes under a parallel run (node/devmesh.py ``PortPool``): a
port chosen in one process is bound seconds later by another, so parallel test
workers must never be handed the same one, and nothing may take it meanwhile."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from node.devmesh import PortPool, _outside_ephemeral

Pool = Callable[[range], PortPool]


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[Pool]:
    """Pools that claim ports under a name of their own (not the real pool's);
    each claims apart, as separate worker processes would. Claims end with the test."""
    made: list[PortPool] = []

    def make(ports: range) -> PortPool:
        one = PortPool(ports, claim_prefix=f"amparo-test-{tmp_path.name}-")
        one.cursor = 0
        made.append(one)
        return one

    yield make
    for one in made:
        one.release()


@pytest.fixture
def ports() -> range:
    """A small stretch of the pool's own range, likely unused."""
    full = _outside_ephemeral()
    assert full is not None
    return range(full.start + 500, full.start + 540)


def test_two_workers_never_share_a_port(ports: range, pool: Pool) -> None:
    # Each pool opens its own lock files, as two worker processes would.
    gw0, gw1 = pool(ports), pool(ports)
    first = [gw0.take() for _ in range(10)]
    second = [gw1.take() for _ in range(10)]
    assert not set(first) & set(second)
    assert len(set(first)) == len(set(second)) == 10


def test_a_listening_port_is_skipped(ports: range, pool: Pool) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", ports[0]))
        busy.listen()
        assert pool(ports).take() != ports[0]


def test_a_port_is_not_handed_out_again_while_held(ports: range, pool: Pool) -> None:
    small = range(ports.start, ports.start + 4)
    gw0 = pool(small)
    gw0.HOLD = 2
    taken = [gw0.take() for _ in range(4)]
    assert len(set(taken)) == 4
    # the two oldest are released (their tests are over); the two newest are not
    assert gw0.take() == taken[0]
    other = pool(small)
    assert other.take() == taken[1]


def test_a_full_range_says_so(ports: range, pool: Pool) -> None:
    one = range(ports.start, ports.start + 1)
    pool(one).take()
    with pytest.raises(RuntimeError, match="no free loopback port"):
        pool(one).take()


def test_ports_lie_outside_the_kernel_ephemeral_range() -> None:
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    full = _outside_ephemeral()
    assert full is not None
    assert full.stop <= low or full.start > high
