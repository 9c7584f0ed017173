"""Escalation with a fake clock: steps fire at the right instants, an ack stops
them, and a restart in the middle neither loses nor repeats a step."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.response import escalation as esc_mod
from node.response.escalation import Escalation, Page, Persist, Policy, Timeline

T0 = 1_795_000_000_000
MIN = 60_000


def pages(actions: list) -> list[str]:
    return [a.targets for a in actions if isinstance(a, Page)]


def test_steps_fire_at_the_right_instants() -> None:
    esc, actions = esc_mod.start("a1", T0)
    assert pages(actions) == ["on-call"]
    esc, actions = esc_mod.tick(esc, T0 + 5 * MIN - 1)
    assert actions == []
    esc, actions = esc_mod.tick(esc, T0 + 5 * MIN)
    assert pages(actions) == ["backup"]
    esc, actions = esc_mod.tick(esc, T0 + 10 * MIN)
    assert pages(actions) == ["all"]
    esc, actions = esc_mod.tick(esc, T0 + 15 * MIN)
    assert pages(actions) == [] and esc.state == "exhausted"
    assert any("whole chain" in a.text for a in actions if isinstance(a, Timeline))


def test_an_ack_stops_the_chain() -> None:
    esc, _ = esc_mod.start("a1", T0)
    esc, _ = esc_mod.tick(esc, T0 + 6 * MIN)
    esc, actions = esc_mod.acknowledge(esc, T0 + 7 * MIN, "Ana")
    assert esc.state == "acknowledged" and esc.acked_by == "Ana"
    assert any(isinstance(a, Persist) for a in actions)
    esc, later = esc_mod.tick(esc, T0 + 60 * MIN)
    assert later == []
    assert esc_mod.acknowledge(esc, T0 + 61 * MIN, "Bruno")[1] == []  # final stays final


def test_a_long_sleep_fires_each_missed_step_once() -> None:
    esc, _ = esc_mod.start("a1", T0)
    esc, actions = esc_mod.tick(esc, T0 + 60 * MIN)
    assert pages(actions) == ["backup", "all"] and esc.state == "exhausted"


@given(st.lists(st.integers(0, 20 * MIN), min_size=1, max_size=12), st.integers(0, 11))
def test_restart_mid_escalation_neither_loses_nor_repeats(offsets: list[int], crash_after: int) -> None:
    """Run once straight through; run again 'crashing' after some tick and
    resuming from the last persisted record: the same pages, in the same order."""
    times = sorted(T0 + o for o in offsets)
    esc, first = esc_mod.start("a1", T0)
    straight = pages(first)
    for t in times:
        esc, actions = esc_mod.tick(esc, t)
        straight += pages(actions)

    esc, first = esc_mod.start("a1", T0)
    resumed = pages(first)
    persisted: Escalation = esc
    for i, t in enumerate(times):
        if i == crash_after:
            esc = Escalation(**{f: getattr(persisted, f) for f in persisted.__slots__})  # reload from disk
        esc, actions = esc_mod.tick(esc, t)
        resumed += pages(actions)
        for a in actions:
            if isinstance(a, Persist):
                persisted = a.escalation
    assert resumed == straight
    assert len(resumed) == len(set(resumed))


def test_chain_is_configurable() -> None:
    policy = Policy(chain=("on-call", "all"), ack_timeout_ms=2 * MIN)
    esc, actions = esc_mod.start("a1", T0, policy)
    esc, more = esc_mod.tick(esc, T0 + 2 * MIN, policy)
    assert pages(actions) + pages(more) == ["on-call", "all"]


@pytest.mark.parametrize(
    ("timeout_ms", "said"),
    [(3_000, "3 s"), (90_000, "90 s"), (60_000, "1 min"), (5 * MIN, "5 min"), (150_000, "2 min 30 s"),
     (3_600_000, "1 h"), (5_400_000, "1 h 30 min"), (1, "1 s")],
)
def test_the_timeline_says_how_long_nobody_answered(timeout_ms: int, said: str) -> None:
    policy = Policy(ack_timeout_ms=timeout_ms)
    esc, _ = esc_mod.start("a1", T0, policy)
    _, actions = esc_mod.tick(esc, T0 + timeout_ms, policy)
    (note,) = [a for a in actions if isinstance(a, Timeline)]
    assert note.text == f"no acknowledgement in {said}: paged backup"
