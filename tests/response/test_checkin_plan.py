"""A missed check-in produces exactly one alarm after the grace period."""

from __future__ import annotations

import pytest

from node.response import checkin_plan
from node.response.checkin_plan import CheckinError, RaiseAlert

T0 = 1_795_000_000_000
MIN = 60_000


def alarms(actions: list) -> list[RaiseAlert]:
    return [a for a in actions if isinstance(a, RaiseAlert)]


def test_missed_deadline_raises_once_after_grace() -> None:
    plan = checkin_plan.new_plan("c1", "Lucía", "MX-OAX", T0, deadline=T0 + 60 * MIN, grace_ms=10 * MIN)
    raised = []
    for minute in range(0, 200):
        plan, actions = checkin_plan.tick(plan, T0 + minute * MIN)
        raised += alarms(actions)
        if alarms(actions):
            assert minute == 70
    assert len(raised) == 1 and raised[0].missed_deadline == T0 + 60 * MIN


def test_checking_in_in_time_raises_nothing() -> None:
    plan = checkin_plan.new_plan("c1", "Lucía", "MX-OAX", T0, interval_ms=30 * MIN, grace_ms=5 * MIN)
    for minute in range(0, 300, 20):
        plan, _ = checkin_plan.ok(plan, T0 + minute * MIN)
        plan, actions = checkin_plan.tick(plan, T0 + minute * MIN + MIN)
        assert alarms(actions) == []
    plan, actions = checkin_plan.tick(plan, T0 + 500 * MIN)
    assert len(alarms(actions)) == 1


def test_stop_and_invalid_plans() -> None:
    plan = checkin_plan.new_plan("c1", "Lucía", "MX-OAX", T0, deadline=T0 + MIN)
    plan, _ = checkin_plan.stop(plan)
    assert checkin_plan.tick(plan, T0 + 99 * MIN)[1] == []
    with pytest.raises(CheckinError):
        checkin_plan.ok(plan, T0)
    with pytest.raises(CheckinError):
        checkin_plan.new_plan("c2", "X", "MX", T0, deadline=T0 - 1)
    with pytest.raises(CheckinError):
        checkin_plan.new_plan("c3", "X", "MX", T0, deadline=T0 + MIN, interval_ms=MIN)
    assert len(checkin_plan.new_plan("c4", "X", "MX", T0, deadline=T0 + MIN).link_token) >= 32
