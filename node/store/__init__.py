"""The node's storage (SPEC §5.2): envelopes byte for byte, peers, invites,
request nonces, settings and the response desks' state (``oncall``,
``escalations``, ``checkins``, ``response``), in SQLite (default) or PostgreSQL.

``Store`` is synchronous on purpose: the node calls it from its asyncio loop,
each call is one short transaction, and an SQLite commit with
``synchronous=FULL`` is fast enough that a thread hop would cost more than it
saves. There is one writer path per database (``Database._write``). The
exception is the relay's hot path: envelopes are written by one thread in group
commits (``writer.GroupWriter``), so a push's fsync neither stops the loop nor
is paid once per push.

See ``envelopes`` for the seen-set, ``seq`` and tombstones, ``peers`` for the
atomic one-time checks, ``engine`` for PRAGMAs and migrations, and ``rows`` for
the rule that nothing decrypted is ever written.
"""

from __future__ import annotations

from node.store.checkins import CheckinQueries, PlanRow
from node.store.delivery import Delivery, DeliveryQueries
from node.store.engine import StoreError, head_revision
from node.store.envelopes import EnvelopeQueries
from node.store.escalations import EscalationQueries, EscalationRow, NoteRow, PageRow
from node.store.field import FieldQueries, LinkRow, PersonRow
from node.store.oncall import HandoverRow, OncallQueries, ResponderRow, ShiftRow
from node.store.peers import PeerQueries
from node.store.response import ResponseQueries
from node.store.rows import PeerRow, PeerStanding, StoredEnvelope


class Store(
    EnvelopeQueries,
    PeerQueries,
    OncallQueries,
    EscalationQueries,
    CheckinQueries,
    FieldQueries,
    ResponseQueries,
    DeliveryQueries,
):
    """Open with a database URL; migrates to the newest schema on open.

    >>> with Store("sqlite:///amparo.db") as store:  # doctest: +SKIP
    ...     store.add_envelopes([StoredEnvelope.from_envelope(env, received_at=now, from_peer=None)])
    """

    def __enter__(self) -> Store:
        return self


__all__ = [
    "Delivery",
    "EscalationRow",
    "HandoverRow",
    "LinkRow",
    "NoteRow",
    "PageRow",
    "PeerRow",
    "PeerStanding",
    "PersonRow",
    "PlanRow",
    "ResponderRow",
    "ShiftRow",
    "Store",
    "StoreError",
    "StoredEnvelope",
    "head_revision",
]
