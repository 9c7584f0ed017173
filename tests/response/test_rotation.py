"""On-call rotation: no gap, no overlap, nobody on call for more than 24 h."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.response.rotation import HOUR_MS, Rotation, ScheduleError, Shift, round_robin

MONDAY = 1_795_000_000_000
WEEK = 7 * 24 * HOUR_MS
TEAM = ["Ana", "Bruno", "Carmen", "Diego"]


def test_a_week_of_round_robin_has_no_gap_and_no_overlap() -> None:
    rotation = Rotation(round_robin(TEAM, MONDAY))
    assert rotation.gaps(MONDAY, MONDAY + WEEK) == []
    for minute in range(0, WEEK, 7 * 60_000):
        covering = [s for s in rotation.shifts if s.covers(MONDAY + minute)]
        assert len(covering) == 1
        assert rotation.on_call(MONDAY + minute) == covering[0]
        assert covering[0].backup and covering[0].backup != covering[0].responder


@given(st.lists(st.integers(1, 24), min_size=1, max_size=14))
def test_any_sequence_of_shifts_up_to_24h_tiles_without_gaps(hours: list[int]) -> None:
    rotation, start = Rotation(), MONDAY
    for i, h in enumerate(hours):
        rotation.add(Shift(TEAM[i % 4], start, start + h * HOUR_MS))
        start += h * HOUR_MS
    assert rotation.gaps(MONDAY, start) == []
    assert rotation.gaps(MONDAY, start + HOUR_MS) == [(start, start + HOUR_MS)]


def test_a_30_hour_shift_is_refused_without_override_and_warns_with_it() -> None:
    long = Shift("Ana", MONDAY, MONDAY + 30 * HOUR_MS)
    with pytest.raises(ScheduleError, match="longer than 24 h"):
        Rotation().add(long)
    rotation = Rotation()
    warnings = rotation.add(Shift("Ana", MONDAY, MONDAY + 30 * HOUR_MS, override=True))
    assert warnings and "30 h" in warnings[0]


def test_overlaps_are_refused() -> None:
    rotation = Rotation([Shift("Ana", MONDAY, MONDAY + 8 * HOUR_MS)])
    with pytest.raises(ScheduleError, match="overlaps Ana"):
        rotation.add(Shift("Bruno", MONDAY + 7 * HOUR_MS, MONDAY + 12 * HOUR_MS))


def test_hand_over_moves_the_rest_of_the_shift_and_is_recorded() -> None:
    rotation = Rotation([Shift("Ana", MONDAY, MONDAY + 24 * HOUR_MS, backup="Bruno")])
    at = MONDAY + 10 * HOUR_MS
    record = rotation.hand_over(at, "Carmen", "Ana has a fever")
    assert (record.outgoing, record.incoming) == ("Ana", "Carmen")
    assert rotation.on_call(at - 1).responder == "Ana"  # type: ignore[union-attr]
    assert rotation.on_call(at).responder == "Carmen"  # type: ignore[union-attr]
    assert rotation.gaps(MONDAY, MONDAY + 24 * HOUR_MS) == []
    with pytest.raises(ScheduleError):
        rotation.hand_over(MONDAY + 30 * HOUR_MS, "Diego")
