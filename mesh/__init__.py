"""Amparo's mesh: gossip (flooding or tree push), anti-entropy, trust horizon, protection, outbound queues.

Deterministic, sans-I/O state machines: the node layer (or the simulator)
feeds events with the current time and carries out the returned actions.
See docs/mesh.md.
"""

from mesh import reconcile
from mesh.events import (
    Action,
    Announce,
    Announced,
    AnnounceFailed,
    Authored,
    Claim,
    Deliver,
    Disconnect,
    Event,
    Fetch,
    FetchDone,
    Graft,
    Grafted,
    NotStored,
    PeerAdded,
    PeerDown,
    PeerHeard,
    PeerInvalid,
    PeerUp,
    Prune,
    Pruned,
    Push,
    PushResult,
    PushUnsent,
    Received,
    ReconcileDone,
    Rejected,
    SaveMark,
    SaveStanding,
    Screen,
    StartReconcile,
    Store,
    Tick,
)
from mesh.gossip import DELIVERED_KINDS, RETRYABLE, MeshNode, Timing
from mesh.interfaces import Item, Key, MeshError
from mesh.outbox import Pacing
from mesh.peers import Limits, SavedStanding, Standing
from mesh.tree import PushTree
from mesh.trust import TrustGraph

__all__ = [
    "DELIVERED_KINDS",
    "RETRYABLE",
    "Action",
    "Announce",
    "AnnounceFailed",
    "Announced",
    "Authored",
    "Claim",
    "Deliver",
    "Disconnect",
    "Event",
    "Fetch",
    "FetchDone",
    "Graft",
    "Grafted",
    "Item",
    "Key",
    "Limits",
    "MeshError",
    "MeshNode",
    "NotStored",
    "Pacing",
    "PeerAdded",
    "PeerDown",
    "PeerHeard",
    "PeerInvalid",
    "PeerUp",
    "Prune",
    "Pruned",
    "Push",
    "PushResult",
    "PushTree",
    "PushUnsent",
    "Received",
    "ReconcileDone",
    "Rejected",
    "SaveMark",
    "SaveStanding",
    "SavedStanding",
    "Screen",
    "Standing",
    "StartReconcile",
    "Store",
    "Tick",
    "Timing",
    "TrustGraph",
    "reconcile",
]
