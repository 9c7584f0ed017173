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

CODES = {  # every code the local API answers with; docs/operators.md shows the same table
    "invalid-input": "what was sent cannot be used; the message names the field",
    "bad-json": "the request body is not a JSON object",
    "unauthorized": "missing or wrong API token",
    "wrong-host": "the Host header names a host this node does not serve",
    "not-found": "no such alert, peer, subscription, region or route",
    "not-author": "only the node that sent an alert can update or cancel it",
    "not-sent": "the node refused what it signed itself; no id was handed out",
    "sealed": "the alert is sealed to other nodes; this node cannot read it",
    "key-compromised": "this node's key is declared compromised; it signs nothing more",
    "key-handed-over": "this node's key was already handed over to a newer key",
    "rotation-stale": "the node signed something after the rotation record was made",
    "rotation-refused": "the node refused the rotation record; it keeps its current key",
    "cannot-vote": "this organization cannot endorse or object to that proposal (not named, already answered, expired or released)",
    "forbidden": "not allowed",
    "method-not-allowed": "the route does not take that method",
    "too-large": "the request body is larger than the local API accepts",
    "store-unavailable": "the node cannot write to its store (a full disk?); nothing was saved or sent: try again",
    "internal": "a fault in the node (its log has the details)",
}


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
