"""One error model for everything a person asks of the node (STYLE principle 4).

A ``Refused`` carries a stable machine ``code`` (``invalid-input``,
``not-found``, ``not-author``, ``not-sent``, …) and a message for a person; the
local API answers it as ``{"error": {"code": ..., "message": ...}}`` with its
``status`` (docs/operator-guide.md lists the codes), the dashboard shows the
message, the CLI prints it. Input errors of every desk (alerts, responders,
check-ins, subscriptions, pairing) are ``Refused`` subclasses, so there is one
place that turns them into an answer.
"""

from __future__ import annotations


class Refused(Exception):
    """A request the node refuses for a reason the person can act on."""

    code = "invalid-input"
    status = 400  # the HTTP status hint for the local API

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
