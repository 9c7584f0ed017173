"""A store that cannot be written: a full disk, a database failing.

The node keeps running (it answers, relays what it can, and its peers keep what
it refuses): every write that fails is refused to whoever asked for it, and
nothing is acknowledged that was not stored. What an operator needs is to see
that it happened, why, and when it ended, without a traceback per request:

- the first failure logs one error saying what the node does meanwhile;
- each further refused piece of work logs one short line (no traceback);
- the first write that works again logs that the node accepts new work.

Nothing here retries: the peers retry what they were refused (503), and the
next tick, push or reconciliation writes again on its own, so space freed is
picked up without an operator. When the outage ends the node reconciles with
every peer at once (``NodeService._store_back``): the peers backed off from
its refusals (up to minutes), and it would otherwise wait for their retries.
"""

from __future__ import annotations

import logging

log = logging.getLogger("amparo.node")


def reason(exc: BaseException) -> str:
    """The database's own words (``database or disk is full``), one line."""
    lines = str(getattr(exc, "orig", None) or exc).splitlines() or [type(exc).__name__]
    return lines[0][:200]


class StoreOutage:
    """Whether the store is failing now, and the log lines its changes earn."""

    def __init__(self) -> None:
        self.failing = False
        self.refused = 0  # pieces of work refused during the current outage

    def failed(self, what: str, exc: BaseException) -> None:
        """``what`` (a push, a new alert, a tick) could not be written."""
        if not self.failing:
            self.failing, self.refused = True, 0
            log.error(
                "the store cannot be written (%s): refusing new alerts and peers' pushes "
                "until it can; nothing refused is acknowledged",
                reason(exc),
            )
        self.refused += 1
        log.warning("%s refused: store unavailable (%s)", what, reason(exc))

    def worked(self) -> bool:
        """A write succeeded: the outage, if any, is over. True when it just ended
        (then the node asks its peers for what it refused meanwhile)."""
        if not self.failing:
            return False
        self.failing = False
        log.warning("the store can be written again after %d refusals: accepting new work", self.refused)
        return True
