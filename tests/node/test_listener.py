"""``node.listener.ConnectionCount``: the caps on mesh-listener connections."""

from __future__ import annotations

from node.door import address_key
from node.listener import PER_ADDRESS, TOTAL, ConnectionCount, total_for


def test_an_address_gets_its_cap_and_not_one_more() -> None:
    count = ConnectionCount(per_address=3, total=100)
    assert [count.admit("198.51.100.7") for _ in range(4)] == [None, None, None, "address"]
    assert count.admit("203.0.113.9") is None  # another address is not affected
    assert count.held("198.51.100.7") == 3 and count.held() == 4


def test_a_released_connection_makes_room_again() -> None:
    count = ConnectionCount(per_address=2, total=100)
    count.admit("198.51.100.7")
    count.admit("198.51.100.7")
    count.release("198.51.100.7")
    assert count.admit("198.51.100.7") is None
    count.release("198.51.100.7")
    count.release("198.51.100.7")
    assert count.held("198.51.100.7") == 0 and count.held() == 0


def test_the_total_cap_holds_across_addresses() -> None:
    count = ConnectionCount(per_address=2, total=3)
    assert [count.admit(f"198.51.100.{i}") for i in range(4)] == [None, None, None, "total"]
    assert count.held() == 3


def test_one_ipv6_host_is_counted_by_its_slash_64() -> None:
    count = ConnectionCount(per_address=2, total=100)
    hosts = ["2001:db8:1:2::1", "2001:db8:1:2::ffff", "2001:db8:1:2:abcd::9"]
    assert [count.admit(address_key(h)) for h in hosts] == [None, None, "address"]
    assert count.admit(address_key("2001:db8:1:3::1")) is None


def test_the_caps_leave_most_descriptors_to_the_rest_of_the_node() -> None:
    assert PER_ADDRESS * 8 <= TOTAL <= 1024 // 2


def test_the_listener_never_holds_more_than_half_the_descriptors() -> None:
    assert total_for(1_048_576) == TOTAL
    assert total_for(256) == 128
    assert total_for(10) == PER_ADDRESS  # absurdly low limits still let one peer in
