"""docs/mesh.md shows the peer standing and tree link tables; they must say what the code does."""

from __future__ import annotations

from pathlib import Path

from mesh import events
from mesh.peers import TRANSITIONS
from mesh.tree import TRANSITIONS as TREE_TRANSITIONS

DOC = Path(__file__).resolve().parents[2] / "docs" / "mesh.md"


def test_every_standing_transition_is_documented() -> None:
    text = DOC.read_text()
    for t in TRANSITIONS:
        row = f"| {t.source.name} | {t.cause.value} | {t.target.name} |"
        assert row in text, row


def test_every_tree_link_transition_is_documented() -> None:
    text = DOC.read_text()
    for t in TREE_TRANSITIONS:
        row = f"| {t.source.name} | {t.cause.value} | {t.target.name} |"
        assert row in text, row


def test_every_event_and_action_is_documented() -> None:
    text = DOC.read_text()
    for name in ("Authored", "Received", "PeerInvalid", "PeerAdded", "PeerUp", "PeerDown", "PushResult"):
        assert f"`{name}`" in text
    for name in ("ReconcileDone", "Tick", "Store", "Deliver", "Push", "StartReconcile", "Fetch"):
        assert f"`{name}`" in text
    for name in ("Announced", "Grafted", "Pruned", "Announce", "Graft", "Prune"):
        assert f"| `{name}` |" in text and hasattr(events, name)
    for name in ("SaveMark", "Disconnect", "SaveStanding", "Rejected"):
        assert f"`{name}`" in text and hasattr(events, name)
