"""Amparo's wire protocol: pure functions and frozen dataclasses, no I/O.

The stable public API (docs/protocol.md §10). Time is always passed in as Unix
milliseconds and randomness as a callable returning bytes, so every byte format
here is deterministic, testable and fuzzable.

Names are imported on first use (PEP 562), so ``from protocol.alert import
SEVERITIES`` or ``from protocol.errors import ProtocolError`` costs only those
modules: the command line starts without loading PyNaCl, msgpack or pycountry
(docs/performance.md). ``from protocol import Envelope`` works as ever.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from protocol.alert import (
        CERTAINTIES,
        EVENTS,
        MSG_TYPES,
        SCOPES,
        SEVERITIES,
        STATUSES,
        URGENCIES,
        Alert,
        Area,
    )
    from protocol.bodies import ACK_STATES, VOUCH_LEVELS, Ack, NodeRecord, Revoke, Vouch
    from protocol.codec import MAX_ENVELOPE_BYTES
    from protocol.envelope import (
        MAX_LIFETIME_MS,
        MAX_SKEW_MS,
        VERSION,
        Body,
        Envelope,
        decode,
        encode,
        envelope_id,
        reread,
        rotation_payload,
        seal_envelope,
        sign_envelope,
        sign_release,
        unseal,
    )
    from protocol.errors import ERROR_CODES, ProtocolError
    from protocol.keys import Identity, fingerprint, open_key_file, seal_key_file
    from protocol.receipt import Receipt
    from protocol.sealing import Sealed, recipient_hint
    from protocol.threshold import Endorsement, Objection, Proposal, Release, Statement

_HOME = {  # where each public name is defined (some names exist in two modules)
    **dict.fromkeys(("CERTAINTIES", "EVENTS", "MSG_TYPES", "SCOPES", "SEVERITIES", "STATUSES", "URGENCIES",
                     "Alert", "Area"), "alert"),
    **dict.fromkeys(("ACK_STATES", "VOUCH_LEVELS", "Ack", "NodeRecord", "Revoke", "Vouch"), "bodies"),
    "MAX_ENVELOPE_BYTES": "codec",
    **dict.fromkeys(("MAX_LIFETIME_MS", "MAX_SKEW_MS", "VERSION", "Body", "Envelope", "decode", "encode",
                     "envelope_id", "reread", "rotation_payload", "seal_envelope", "sign_envelope", "sign_release",
                     "unseal"), "envelope"),
    **dict.fromkeys(("Endorsement", "Objection", "Proposal", "Release", "Statement"), "threshold"),
    **dict.fromkeys(("ERROR_CODES", "ProtocolError"), "errors"),
    **dict.fromkeys(("Identity", "fingerprint", "open_key_file", "seal_key_file"), "keys"),
    **dict.fromkeys(("Sealed", "recipient_hint"), "sealing"),
    "Receipt": "receipt",
}


def __getattr__(name: str) -> Any:
    """The public names, imported the first time any of them is asked for."""
    if name not in _HOME:
        raise AttributeError(f"module 'protocol' has no attribute {name!r}")
    from protocol import alert, bodies, codec, envelope, errors, keys, receipt, sealing, threshold

    modules = {"alert": alert, "bodies": bodies, "codec": codec, "envelope": envelope, "errors": errors,
               "keys": keys, "sealing": sealing, "receipt": receipt, "threshold": threshold}
    globals().update({n: getattr(modules[home], n) for n, home in _HOME.items()})
    return globals()[name]


__all__ = [
    "ACK_STATES",
    "CERTAINTIES",
    "ERROR_CODES",
    "EVENTS",
    "MAX_ENVELOPE_BYTES",
    "MAX_LIFETIME_MS",
    "MAX_SKEW_MS",
    "MSG_TYPES",
    "SCOPES",
    "SEVERITIES",
    "STATUSES",
    "URGENCIES",
    "VERSION",
    "VOUCH_LEVELS",
    "Ack",
    "Alert",
    "Area",
    "Body",
    "Endorsement",
    "Envelope",
    "Identity",
    "NodeRecord",
    "Objection",
    "Proposal",
    "ProtocolError",
    "Receipt",
    "Release",
    "Revoke",
    "Sealed",
    "Statement",
    "Vouch",
    "decode",
    "encode",
    "envelope_id",
    "fingerprint",
    "open_key_file",
    "recipient_hint",
    "reread",
    "rotation_payload",
    "seal_envelope",
    "seal_key_file",
    "sign_envelope",
    "sign_release",
    "unseal",
]
