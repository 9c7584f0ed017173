"""When `amparo status` calls a peer up (issue 13 item 8): heard from within the
window tied to the reconciliation cadence, and never while its last call failed."""

from __future__ import annotations

import mesh
from node.service import PEER_UP_MS, peer_state

EVERY = mesh.Timing().reconcile_every_ms


def test_the_window_outlasts_one_reconciliation_interval_but_not_two() -> None:
    # An idle live peer is heard once per interval: it must stay up between two
    # sessions, and one missed session must turn it down.
    assert EVERY < PEER_UP_MS < 2 * EVERY


def test_a_peer_heard_within_the_window_is_up_and_after_it_down() -> None:
    heard = 1_000_000
    assert peer_state(heard + EVERY, heard, None) == "up"
    assert peer_state(heard + PEER_UP_MS - 1, heard, None) == "up"
    assert peer_state(heard + PEER_UP_MS, heard, None) == "down"
    assert peer_state(heard, None, None) == "down"  # never heard since start


def test_a_failed_call_shows_at_once_until_the_next_success() -> None:
    heard = 1_000_000
    assert peer_state(heard + 10, heard, heard + 5) == "failing"  # well inside the window
    assert peer_state(heard, None, heard - 1) == "failing"  # never reached at all
    assert peer_state(heard + 20, heard + 15, heard + 5) == "up"  # a later success clears it
    assert peer_state(heard + 15 + PEER_UP_MS, heard + 15, heard + 5) == "down"
