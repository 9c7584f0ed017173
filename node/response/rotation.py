"""The on-call rotation: someone is always on call, nobody for more than 24 h.

A schedule is a list of shifts. Adding a shift that overlaps another is refused
(two people on call means each thinks the other has it); a shift longer than
24 hours is refused unless explicitly overridden, and then carries a warning.
``gaps`` finds the hours nobody covers, so the dashboard and ``amparo oncall
schedule`` can show them before they happen. A hand-over ends the current
shift at the moment of hand-over and gives its remainder to the next person,
and is recorded so both people see it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, replace
from typing import Final

HOUR_MS: Final = 3_600_000
MAX_SHIFT_MS: Final = 24 * HOUR_MS
DEFAULT_SHIFT_MS: Final = 24 * HOUR_MS


class ScheduleError(ValueError):
    """A shift that cannot be scheduled; the message says why."""


@dataclass(frozen=True, slots=True)
class Shift:
    responder: str
    start: int
    end: int
    backup: str | None = None
    override: bool = False  # explicitly allowed to exceed 24 h

    @property
    def hours(self) -> float:
        return (self.end - self.start) / HOUR_MS

    def covers(self, at: int) -> bool:
        return self.start <= at < self.end


@dataclass(frozen=True, slots=True)
class HandOver:
    at: int
    outgoing: str
    incoming: str
    note: str = ""


def check_shift(shift: Shift) -> list[str]:
    """Raise ``ScheduleError`` for an impossible shift; return warnings for an allowed long one."""
    if not shift.responder.strip():
        raise ScheduleError("a shift needs a responder")
    if shift.end <= shift.start:
        raise ScheduleError("a shift must end after it starts")
    if shift.backup == shift.responder:
        raise ScheduleError("the backup must be someone else")
    if shift.end - shift.start > MAX_SHIFT_MS:
        if not shift.override:
            raise ScheduleError(
                f"a {shift.hours:.0f} h shift is longer than 24 h; "
                "rest matters in this work: split it, or override explicitly"
            )
        return [f"{shift.responder} is on call for {shift.hours:.0f} h (more than 24 h, overridden)"]
    return []


class Rotation:
    """Shifts ordered by start, never overlapping."""

    def __init__(self, shifts: list[Shift] | None = None) -> None:
        self._shifts: list[Shift] = []
        self.handovers: list[HandOver] = []
        self.warnings: list[str] = []
        for shift in shifts or []:
            self.add(shift)

    @property
    def shifts(self) -> tuple[Shift, ...]:
        return tuple(self._shifts)

    def add(self, shift: Shift) -> list[str]:
        warnings = check_shift(shift)
        clash = [s for s in self._shifts if s.start < shift.end and shift.start < s.end]
        if clash:
            other = clash[0]
            raise ScheduleError(f"overlaps {other.responder}'s shift; two people on call means nobody is")
        bisect.insort(self._shifts, shift, key=lambda s: s.start)
        self.warnings += warnings
        return warnings

    def on_call(self, at: int) -> Shift | None:
        """Who is on call at ``at`` (Unix ms), or None in a gap."""
        index = bisect.bisect_right([s.start for s in self._shifts], at) - 1
        if index >= 0 and self._shifts[index].covers(at):
            return self._shifts[index]
        return None

    def gaps(self, start: int, end: int) -> list[tuple[int, int]]:
        """Intervals within [start, end) that no shift covers."""
        out: list[tuple[int, int]] = []
        cursor = start
        for shift in self._shifts:
            if shift.end <= cursor or shift.start >= end:
                continue
            if shift.start > cursor:
                out.append((cursor, shift.start))
            cursor = max(cursor, shift.end)
        if cursor < end:
            out.append((cursor, end))
        return out

    def hand_over(self, at: int, incoming: str, note: str = "") -> HandOver:
        """The current person hands over to ``incoming`` now; both see the record."""
        current = self.on_call(at)
        if current is None:
            raise ScheduleError("nobody is on call right now: schedule a shift instead")
        if incoming == current.responder:
            raise ScheduleError(f"{incoming} is already on call")
        self._shifts.remove(current)
        if at > current.start:
            self._shifts.append(replace(current, end=at))
        backup = current.backup if current.backup != incoming else current.responder
        self._shifts.append(replace(current, responder=incoming, start=at, backup=backup))
        self._shifts.sort(key=lambda s: s.start)
        record = HandOver(at, current.responder, incoming, note)
        self.handovers.append(record)
        return record


def round_robin(
    responders: list[str], start: int, days: int = 7, shift_ms: int = DEFAULT_SHIFT_MS
) -> list[Shift]:
    """A simple rotation: consecutive shifts, each backed up by the next person."""
    if len(responders) < 2:
        raise ScheduleError("a rotation needs at least two responders (one on call, one backup)")
    if not 0 < shift_ms <= MAX_SHIFT_MS:
        raise ScheduleError("shift length must be between 1 ms and 24 h")
    count = -(-days * 24 * HOUR_MS // shift_ms)
    return [
        Shift(
            responders[i % len(responders)],
            start + i * shift_ms,
            start + (i + 1) * shift_ms,
            backup=responders[(i + 1) % len(responders)],
        )
        for i in range(count)
    ]
