"""Check-ins for people travelling or at public events: a missed check-in raises
the alarm, exactly once.

A plan has either a single ``deadline`` or an ``interval`` (check in every N
minutes), plus a ``grace`` period. ``ok`` moves the next deadline; ``stop``
ends the plan; ``tick`` with the current wall-clock time returns ``RaiseAlert``
once when a deadline plus grace has passed. Transitions are data
(``TRANSITIONS``); the record is persisted before the alert is raised, so a
restart never raises the same missed check-in twice.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from typing import Final

from node.errors import Refused

DEFAULT_GRACE_MS: Final = 10 * 60_000

# (state, event) -> next state
TRANSITIONS: Final[dict[tuple[str, str], str]] = {
    ("active", "ok"): "active",
    ("active", "stop"): "stopped",
    ("active", "missed"): "missed",
    ("missed", "ok"): "active",  # the person turned up: the plan goes on (the alert is updated by the node)
    ("missed", "stop"): "stopped",
}


class CheckinError(Refused, ValueError):
    """A plan that cannot work; the message says why."""


@dataclass(frozen=True, slots=True)
class Plan:
    id: str
    who: str
    region: str
    next_deadline: int
    interval_ms: int = 0  # 0 = a single deadline
    grace_ms: int = DEFAULT_GRACE_MS
    note: str = ""
    state: str = "active"
    link_token: str = ""  # the unguessable part of the phone check-in link
    last_ok: int = 0


@dataclass(frozen=True, slots=True)
class RaiseAlert:
    plan: Plan
    missed_deadline: int


@dataclass(frozen=True, slots=True)
class Persist:
    plan: Plan


def new_plan(
    plan_id: str,
    who: str,
    region: str,
    now: int,
    *,
    deadline: int = 0,
    interval_ms: int = 0,
    grace_ms: int = DEFAULT_GRACE_MS,
    note: str = "",
    token: str | None = None,
) -> Plan:
    if bool(deadline) == bool(interval_ms):
        raise CheckinError("give either a deadline or an interval")
    first = deadline or now + interval_ms
    if first <= now:
        raise CheckinError("deadline: the deadline is already past")
    if grace_ms < 0 or interval_ms < 0:
        raise CheckinError("grace and interval cannot be negative")
    return Plan(
        plan_id,
        who,
        region,
        first,
        interval_ms,
        grace_ms,
        note,
        link_token=token or secrets.token_urlsafe(24),
    )


def _move(plan: Plan, event: str) -> str:
    target = TRANSITIONS.get((plan.state, event))
    if target is None:
        raise CheckinError(f"a {plan.state} check-in cannot take {event!r}")
    return target


def ok(plan: Plan, now: int) -> tuple[Plan, list[Persist]]:
    """The person checked in: push the deadline (interval plans) or finish (single deadline)."""
    state = _move(plan, "ok")
    if not plan.interval_ms:
        done = replace(plan, state="stopped", last_ok=now)
        return done, [Persist(done)]
    moved = replace(plan, state=state, last_ok=now, next_deadline=now + plan.interval_ms)
    return moved, [Persist(moved)]


def stop(plan: Plan) -> tuple[Plan, list[Persist]]:
    stopped = replace(plan, state=_move(plan, "stop"))
    return stopped, [Persist(stopped)]


def tick(plan: Plan, now: int) -> tuple[Plan, list[Persist | RaiseAlert]]:
    if plan.state != "active" or now < plan.next_deadline + plan.grace_ms:
        return plan, []
    missed = replace(plan, state=_move(plan, "missed"))
    return missed, [Persist(missed), RaiseAlert(missed, plan.next_deadline)]
