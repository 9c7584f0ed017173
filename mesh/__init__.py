"""Amparo's mesh: gossip, anti-entropy, trust horizon, protection, outbound queues.

Deterministic, sans-I/O state machines: the node layer (or the simulator)
feeds events with the current time and carries out the returned actions.
See docs/mesh.md.
"""

from mesh import reconcile
from mesh.events import (
    Action,
    Authored,
    Deliver,
    Disconnect,
    Event,
    Fetch,
    FetchDone,
    PeerAdded,
    PeerDown,
    PeerInvalid,
    PeerUp,
    Push,
    PushResult,
    Received,
    ReconcileDone,
    Rejected,
    SaveMark,
    SaveStanding,
    StartReconcile,
    Store,
    Tick,
)
from mesh.gossip import DELIVERED_KINDS, RETRYABLE, MeshNode, Timing
from mesh.interfaces import Item, Key, MeshError
from mesh.outbox import Pacing
from mesh.peers import Limits, SavedStanding, Standing
from mesh.trust import TrustGraph

__all__ = [
    "DELIVERED_KINDS",
    "RETRYABLE",
    "Action",
    "Authored",
    "Deliver",
    "Disconnect",
    "Event",
    "Fetch",
    "FetchDone",
    "Item",
    "Key",
    "Limits",
    "MeshError",
    "MeshNode",
    "Pacing",
    "PeerAdded",
    "PeerDown",
    "PeerInvalid",
    "PeerUp",
    "Push",
    "PushResult",
    "Received",
    "ReconcileDone",
    "Rejected",
    "SaveMark",
    "SaveStanding",
    "SavedStanding",
    "Standing",
    "StartReconcile",
    "Store",
    "Tick",
    "Timing",
    "TrustGraph",
    "reconcile",
]
