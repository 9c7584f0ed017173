"""Tree push between real nodes on the grid (fake clock): the mesh's `Announce`,
`Graft` and `Prune` travel as tree signals (`/mesh/v1/tree`, node.treepush) and
come back as events, so the tree forms over the real listener, a quiet tree
link is routed around through announcements, a node that floods keeps getting
everything in full, and a malformed signal is refused and blamed on its sender.
The gossip tests run on both wires; these on the in-memory one and, where the
wire matters (the signals themselves), over loopback HTTPS too."""

from __future__ import annotations

import pytest

import mesh
from mesh.tree import SIGNAL_RETRIES, Mode
from node.incidents import send_alert
from node.transport import TransportError
from node.treepush import PATH
from tests.grid.grid import Grid

RING = ("a", "b", "c", "d")  # a — b — c — d — a
# On the grid a node's timers run at its ticks (2 s) only: an announcement goes at
# the next tick, its graft timeout (0.5 s plus up to 1.5 s of jitter, mesh.Timing)
# ends by the tick after, and then the fetch: three ticks at most.
REPAIR_MS = 6_000
LINKS = [(x, y) for i, x in enumerate(RING) for y in (RING[i - 1], RING[(i + 1) % 4])]  # both ways


def send(grid: Grid, name: str, headline: str) -> bytes:
    made = send_alert(grid[name].service, {"headline": headline, "regions": ["MX-OAX"]})
    return bytes.fromhex(made["id"])


def holders(grid: Grid, alert: bytes) -> list[str]:
    return [name for name, node in grid.nodes.items() if node.store.get(alert) is not None]


def mode(grid: Grid, judge: str, peer: str, author: str = "a") -> Mode:
    """How ``judge`` sends ``author``'s items to ``peer`` (a tree per author):
    full (eager) or ids only (lazy)."""
    return grid[judge].service.mesh.tree.mode(grid[peer].key, grid[author].key)


async def ring(grid: Grid, *, flooding: tuple[str, ...] = ()) -> None:
    """The ring, paired; the pairings' own records and vouches already shape the tree."""
    for name in RING:
        await grid.add(name, tree_push=name not in flooding)
    for a, b in zip(RING, RING[1:] + RING[:1], strict=True):
        await grid.pair(a, b)
    await grid.advance(4_000)


async def test_hop_counts_travel_with_pushes_and_announcements(any_grid: Grid) -> None:
    """Each node learns how far from its author an alert came (``h`` beside the
    envelopes of a push and the ids of an announcement, docs/protocol.md §12.7):
    what lets the tree prefer shorter paths between real nodes, as in the simulator."""
    grid = any_grid
    await ring(grid)
    for n in range(3):
        alert = send(grid, "a", f"Retén en la carretera {n}")
        await grid.advance(REPAIR_MS)
        assert holders(grid, alert) == list(RING)
        hops = {name: grid[name].service.mesh.hops_from_author(alert) for name in RING}
        assert hops == {"a": 0, "b": 1, "c": 2, "d": 1}, hops


async def test_a_graft_with_no_answer_is_sent_again(any_grid: Grid) -> None:
    """A lost graft left the far end of the link lazy, and a lost prune a second
    parent pushing every item: the node tells its mesh (``SignalFailed``), which
    sends the signal again while the link is still in the mode it asked for."""
    grid = any_grid
    await ring(grid)
    a, b, root = grid["a"].service, grid["b"].key, grid["c"].key
    a.handle(mesh.Pruned(b))  # b asked a for ids only: the link is lazy at a's end
    a.handle(mesh.Grafted(b, (root,)))  # then took it back into c's tree
    grid.cut("a", "b", both=False)  # a's requests to b get no answer
    before = a.tree.counts.grafts
    a._tree_action(mesh.Graft(b, (root,)))  # a repair from b came: a grafts b into c's tree
    await grid.advance(REPAIR_MS)
    assert mode(grid, "a", "b", "c") is Mode.EAGER and mode(grid, "a", "b", "d") is Mode.LAZY
    assert a.tree.counts.grafts - before == 1 + SIGNAL_RETRIES


async def test_the_tree_forms_over_the_wire_and_later_alerts_cross_it_once(any_grid: Grid) -> None:
    grid = any_grid
    await ring(grid)
    first = send(grid, "a", "Desalojo en la colonia")
    # A node whose every inbound link was pruned (by duplicates of different
    # records during pairing) gets the id, waits the graft timeout, and grafts.
    await grid.advance(REPAIR_MS)
    assert holders(grid, first) == list(RING)
    # Duplicates pruned links, on both ends, by a signal over the wire.
    pruned = [(x, y) for x, y in LINKS if mode(grid, x, y) is Mode.LAZY]
    assert pruned, "no link was pruned"
    assert all(mode(grid, y, x) is Mode.LAZY for x, y in pruned), "a prune reached only one end"
    assert sum(n.service.tree.counts.prunes for n in grid.nodes.values()) >= 1
    pushed = sum(n.service.counters.pushed for n in grid.nodes.values())
    grafts = sum(n.service.tree.counts.grafts for n in grid.nodes.values())
    second = send(grid, "a", "Segundo aviso: el desalojo sigue")
    await grid.advance(2_000)  # announcements go out after their batching delay
    assert holders(grid, second) == list(RING)
    # Three pushes reach the other three nodes; the lazy links carry ids only.
    assert sum(n.service.counters.pushed for n in grid.nodes.values()) - pushed == 3
    assert sum(n.service.tree.counts.announced_ids for n in grid.nodes.values()) >= 1
    assert sum(n.service.tree.counts.grafts for n in grid.nodes.values()) == grafts  # the tree held


async def test_a_quiet_tree_link_is_routed_around_through_announcements(grid: Grid) -> None:
    await ring(grid)
    send(grid, "a", "Forma el árbol")
    await grid.advance(REPAIR_MS)  # any graft it needs
    probe = send(grid, "a", "Sigue el árbol")
    await grid.settle()  # pushes only: no time passes, so no announcement or graft
    row = grid["c"].store.get(probe)
    assert row is not None and row.from_peer is not None, "c got it along the tree"
    parent = next(name for name in RING if grid[name].key == row.from_peer)
    other = ({"b", "d"} - {parent}).pop()
    assert mode(grid, other, "c") is Mode.LAZY
    for peer in RING:  # c's parent accepts what it gets and forwards nothing
        if peer != parent:
            grid.cut(parent, peer, both=False)
    grafts = grid["c"].service.tree.counts.grafts
    alert = send(grid, "a", "Ataque a la caravana")
    await grid.settle()
    assert "c" not in holders(grid, alert)
    await grid.advance(REPAIR_MS)  # the announcement, the graft timeout, the fetch
    assert holders(grid, alert) == list(RING)
    assert grid["c"].service.tree.counts.grafts == grafts + 1
    assert mode(grid, other, "c") is Mode.EAGER  # the graft reached the other end
    later = send(grid, "a", "La caravana sigue detenida")
    await grid.settle()
    assert "c" in holders(grid, later)  # along the grafted link now, no waiting
    assert grid["c"].service.tree.counts.grafts == grafts + 1


async def test_a_node_that_floods_keeps_getting_every_alert_in_full(grid: Grid) -> None:
    await ring(grid, flooding=("c",))
    alerts = [send(grid, name, f"Aviso {name}") for name in RING for _ in range(2)]
    await grid.settle()
    await grid.advance(REPAIR_MS)
    assert all(holders(grid, alert) == list(RING) for alert in alerts)
    for neighbour in ("b", "d"):  # never pruned toward c, never a signal to it
        assert not grid[neighbour].service.tree.speaks(grid["c"].key)
        assert all(mode(grid, neighbour, "c", author) is Mode.EAGER for author in RING)
    assert grid["c"].service.tree.counts.heard_ids == 0
    assert grid["b"].service.tree.counts.kept_eager + grid["d"].service.tree.counts.kept_eager >= 1
    assert grid["b"].service.tree.speaks(grid["a"].key)  # the others speak it among themselves


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        ({"graft": True, "prune": True}, "not both"),
        ({"ids": [b"\x01" * 31]}, "32-byte ids"),
        ({}, "names ids, graft or prune"),
    ],
)
async def test_a_malformed_tree_signal_is_refused_and_blamed_on_its_sender(
    any_grid: Grid, frame: dict[str, object], why: str
) -> None:
    grid = any_grid
    await grid.add("a", tree_push=True)
    await grid.add("b", tree_push=True)
    await grid.pair("a", "b")
    a, b = grid["a"].service, grid["b"].service
    before = b.mesh.score(a.key)
    address = a.peer_address(b.key)
    assert address is not None
    with pytest.raises(TransportError, match=f"HTTP 400.*bad frame.*{why}"):
        await a.client.call(address, PATH, frame)
    assert b.counters.rejected.get("bad-frame") == 1
    score = b.mesh.score(a.key)
    assert before is not None and score is not None and score < before
