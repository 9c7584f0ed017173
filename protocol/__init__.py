"""Amparo's wire protocol: pure functions and frozen dataclasses, no I/O.

The stable public API (docs/protocol.md §10). Time is always passed in as Unix
milliseconds and randomness as a callable returning bytes, so every byte format
here is deterministic, testable and fuzzable.
"""

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
    rotation_payload,
    seal_envelope,
    sign_envelope,
    unseal,
)
from protocol.errors import ERROR_CODES, ProtocolError
from protocol.keys import Identity, fingerprint, open_key_file, seal_key_file
from protocol.sealing import Sealed, recipient_hint

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
    "Envelope",
    "Identity",
    "NodeRecord",
    "ProtocolError",
    "Revoke",
    "Sealed",
    "Vouch",
    "decode",
    "encode",
    "envelope_id",
    "fingerprint",
    "open_key_file",
    "recipient_hint",
    "rotation_payload",
    "seal_envelope",
    "seal_key_file",
    "sign_envelope",
    "unseal",
]
