"""Request budgets at the mesh listener's door, on an injected clock."""

from __future__ import annotations

import pytest

from node.door import MAX_ADDRESSES, Rate, RequestBudget, address_key

PEER_A, PEER_B = b"\x01" * 32, b"\x02" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


def budget(clock: Clock) -> RequestBudget:
    return RequestBudget(clock, peer=Rate(10.0, 5.0), address=Rate(1.0, 3.0), pair=Rate(1 / 60, 2.0))


def test_a_peer_spends_its_own_burst_then_refills_at_its_rate() -> None:
    clock = Clock()
    door = budget(clock)
    assert [door.spend_peer(PEER_A) for _ in range(6)] == [True] * 5 + [False]
    assert not door.peer_has_budget(PEER_A)
    assert door.spend_peer(PEER_B)  # one sender's budget is its own
    clock.now += 100  # 10 a second: one token back after 100 ms
    assert door.peer_has_budget(PEER_A)
    assert door.peer_has_budget(PEER_A)  # looking does not spend
    assert door.spend_peer(PEER_A) and not door.spend_peer(PEER_A)


def test_pair_requests_are_limited_per_address() -> None:
    clock = Clock()
    door = budget(clock)
    assert [door.spend_pair("192.0.2.7") for _ in range(3)] == [True, True, False]
    assert door.spend_pair("192.0.2.8")
    clock.now += 60_000
    assert door.spend_pair("192.0.2.7")


@pytest.mark.parametrize(
    ("remote", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        (None, "?"),
        ("not an address", "?"),
    ],
)
def test_addresses_count_ipv6_by_its_64(remote: str | None, key: str) -> None:
    assert address_key(remote) == key


def test_the_address_table_is_bounded() -> None:
    clock = Clock()
    door = budget(clock)
    for i in range(MAX_ADDRESSES + 10):
        door.spend_address(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
    assert door.tracked("address") <= MAX_ADDRESSES


def test_failed_signatures_naming_a_peer_spend_that_addresss_bucket_for_that_peer() -> None:
    """A forger naming an active peer's key is refused at its address; the same
    address naming another key, and the named peer elsewhere, still have budget."""
    clock = Clock()
    door = budget(clock)
    named, other = b"\x01" * 32, b"\x02" * 32
    for _ in range(3):
        assert door.address_has_budget("192.0.2.7", named)
        door.spend_address("192.0.2.7", named)
    assert not door.address_has_budget("192.0.2.7", named)
    assert door.address_has_budget("192.0.2.8", named)
    assert door.address_has_budget("192.0.2.7", other)
    assert door.address_has_budget("192.0.2.7")  # its unsigned budget is its own
    clock.now += 1_000
    assert door.address_has_budget("192.0.2.7", named)
