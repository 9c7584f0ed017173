"""``node.treepush.TreeCarrier``: tree signals go only to peers that speak the tree;
toward the others the link is kept eager; a peer that stops speaking it is
grafted back; a node that floods ignores the signals it gets."""

from __future__ import annotations

import mesh
from node.treepush import TreeCarrier
from protocol.framing import TreeSignal

PEER = b"\x05" * 32
ID = b"\x09" * 32


def test_signals_go_only_to_a_peer_that_said_it_speaks_the_tree() -> None:
    carrier = TreeCarrier(enabled=True)
    assert carrier.outgoing(mesh.Prune(PEER)) == (None, [mesh.Grafted(PEER)])  # not heard from yet
    assert carrier.outgoing(mesh.Announce(PEER, (ID,))) == (None, [mesh.Grafted(PEER)])
    assert carrier.counts.kept_eager == 1
    assert carrier.heard(PEER, speaks=True) == []
    assert carrier.outgoing(mesh.Prune(PEER)) == (TreeSignal(prune=True), [])
    assert carrier.outgoing(mesh.Graft(PEER)) == (TreeSignal(graft=True), [])
    assert carrier.outgoing(mesh.Announce(PEER, (ID,))) == (TreeSignal(announced=(ID,)), [])
    assert (carrier.counts.prunes, carrier.counts.grafts, carrier.counts.announced_ids) == (1, 1, 1)


def test_grafts_and_prunes_name_the_authors_whose_trees_they_move() -> None:
    """A tree per author: the roots travel in the signal and come back as the
    mesh's events; a prune a peer that does not speak the tree would never get
    keeps those trees eager."""
    carrier = TreeCarrier(enabled=True)
    root = b"\x0a" * 32
    assert carrier.outgoing(mesh.Prune(PEER, (root,))) == (None, [mesh.Grafted(PEER, (root,))])
    carrier.heard(PEER, speaks=True)
    assert carrier.outgoing(mesh.Prune(PEER, (root,))) == (TreeSignal(prune=True, roots=(root,)), [])
    assert carrier.outgoing(mesh.Graft(PEER, (root,))) == (TreeSignal(graft=True, roots=(root,)), [])
    assert carrier.incoming(PEER, TreeSignal(graft=True, roots=(root,))) == [mesh.Grafted(PEER, (root,))]
    assert carrier.incoming(PEER, TreeSignal(prune=True, roots=(root,))) == [mesh.Pruned(PEER, (root,))]


def test_a_peer_that_stops_speaking_the_tree_is_grafted_back_once() -> None:
    carrier = TreeCarrier(enabled=True)
    carrier.heard(PEER, speaks=True)
    assert carrier.heard(PEER, speaks=False) == [mesh.Grafted(PEER)]
    assert carrier.heard(PEER, speaks=False) == []
    assert not carrier.speaks(PEER)


def test_a_signal_becomes_mesh_events_and_shows_the_sender_speaks_the_tree() -> None:
    carrier = TreeCarrier(enabled=True)
    events = carrier.incoming(PEER, TreeSignal(announced=(ID,), graft=True))
    assert events == [mesh.Announced(PEER, (ID,)), mesh.Grafted(PEER)]
    assert carrier.incoming(PEER, TreeSignal(prune=True)) == [mesh.Pruned(PEER)]
    assert carrier.speaks(PEER)


def test_a_node_that_floods_says_nothing_and_ignores_signals() -> None:
    carrier = TreeCarrier(enabled=False)
    assert carrier.push_fields() == {}
    assert carrier.incoming(PEER, TreeSignal(prune=True)) == []
    assert carrier.heard(PEER, speaks=False) == []
    assert TreeCarrier(enabled=True).push_fields() == {"tree": True}
