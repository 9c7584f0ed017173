"""Tree push between real nodes: the mesh's tree actions on the wire, and back.

``mesh.tree`` decides (Plumtree: full items along tree links, ids on the rest);
this module is what the node layer needs to carry it, with no I/O of its own.
``NodeService`` runs the calls it asks for and feeds back the events it returns.

* ``Announce``, ``Graft`` and ``Prune`` become tree signals
  (``protocol.framing.TreeSignal``) posted to ``/mesh/v1/tree``; a signal that
  comes in becomes ``Announced``, ``Grafted`` or ``Pruned``.
* Only peers that *speak the tree* get signals: a node running tree push says
  so with ``"tree": true`` in its push requests and push replies (and any
  signal it sends shows it too). A peer that does not (an older node, or one
  that floods) would never act on an announcement, so the link to it must stay
  eager: when the mesh would prune it, the node tells its own mesh the peer
  grafted it instead, and nothing is sent. A peer that stops speaking the tree
  (restarted with flooding) is grafted back at once the same way.
* Until a peer has spoken (after a restart, before its first push or reply)
  it counts as not speaking the tree: every link starts eager anyway, and the
  first push each way settles it.

The knowledge is soft state, like the tree itself: nothing is persisted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import mesh
from protocol.framing import TreeSignal

PATH: Final = "/mesh/v1/tree"


@dataclass
class TreeCounts:
    """Figures for metrics: signals sent and received, by kind."""

    announced_ids: int = 0  # ids announced to peers
    grafts: int = 0
    prunes: int = 0
    heard_ids: int = 0  # ids peers announced to us
    grafted_by_peers: int = 0
    pruned_by_peers: int = 0
    kept_eager: int = 0  # prunes not sent: the peer does not speak the tree


@dataclass
class TreeCarrier:
    """Which peers speak the tree, and the translation between actions, frames
    and events. ``enabled`` is the node's ``tree_push`` setting."""

    enabled: bool
    counts: TreeCounts = field(default_factory=TreeCounts)
    _speaks: dict[bytes, bool] = field(default_factory=dict)

    def speaks(self, peer: bytes) -> bool:
        return self._speaks.get(peer, False)

    def push_fields(self) -> dict[str, Any]:
        """What this node adds to its push requests and replies."""
        return {"tree": True} if self.enabled else {}

    def heard(self, peer: bytes, speaks: bool) -> list[mesh.Event]:
        """``peer`` said whether it speaks the tree (a push or its reply). One that
        stopped is grafted back here, so the mesh pushes it everything again."""
        before = self._speaks.get(peer)
        self._speaks[peer] = speaks
        if self.enabled and before and not speaks:
            return [mesh.Grafted(peer)]
        return []

    def outgoing(
        self, action: mesh.Announce | mesh.Graft | mesh.Prune
    ) -> tuple[TreeSignal | None, list[mesh.Event]]:
        """The signal to post to ``action.peer`` (None: nothing to send), and events
        for this node's own mesh: a link to a peer that does not speak the tree is
        kept eager (grafted back) instead of pruned or announced on."""
        if not self.speaks(action.peer):
            if isinstance(action, mesh.Graft):
                return None, []
            self.counts.kept_eager += isinstance(action, mesh.Prune)
            return None, [mesh.Grafted(action.peer, action.roots if isinstance(action, mesh.Prune) else ())]
        if isinstance(action, mesh.Announce):
            self.counts.announced_ids += len(action.ids)
            return TreeSignal(announced=tuple(action.ids), hops=tuple(action.hops)), []
        if isinstance(action, mesh.Graft):
            self.counts.grafts += 1
            return TreeSignal(graft=True, roots=action.roots), []
        self.counts.prunes += 1
        return TreeSignal(prune=True, roots=action.roots), []

    def incoming(self, peer: bytes, signal: TreeSignal) -> list[mesh.Event]:
        """A signal from ``peer`` as events for the mesh (none while tree push is
        off here: this node floods, and told the peer so)."""
        self._speaks[peer] = True
        if not self.enabled:
            return []
        events: list[mesh.Event] = []
        if signal.announced:
            self.counts.heard_ids += len(signal.announced)
            events.append(mesh.Announced(peer, signal.announced, signal.hops))
        if signal.graft:
            self.counts.grafted_by_peers += 1
            events.append(mesh.Grafted(peer, signal.roots))
        if signal.prune:
            self.counts.pruned_by_peers += 1
            events.append(mesh.Pruned(peer, signal.roots))
        return events

    def gauges(self) -> list[tuple[str, str, Callable[[], float]]]:
        """(name, help, read) rows for ``NodeService.gauges``."""
        c = self.counts
        return [
            (
                "amparo_tree_announced_ids",
                "Ids this node announced to peers (tree push)",
                lambda: c.announced_ids,
            ),
            ("amparo_tree_grafts", "Grafts this node sent (an announced id came late)", lambda: c.grafts),
            ("amparo_tree_prunes", "Prunes this node sent (a pushed duplicate came)", lambda: c.prunes),
            ("amparo_tree_heard_ids", "Ids peers announced to this node", lambda: c.heard_ids),
        ]
