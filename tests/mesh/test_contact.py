"""The mesh keeps each peer's last contact (issue 12: one record of a peer's
state, in ``MeshNode``, not a second copy beside it in the node): an answered
push or a finished reconciliation moves it, a failed push does not."""

from __future__ import annotations

from mesh import Authored, Push, PushResult, ReconcileDone

from .builders import NOW, alert
from .test_gossip import ME, P1, P2, node


def test_an_answered_push_or_a_reconciliation_is_contact_a_failed_push_is_not() -> None:
    mesh = node(peers=(P1, P2))
    assert mesh.last_contact(P1) is None and mesh.last_contact(P2) is None
    pushes = {a.peer: a for a in mesh.handle(Authored(alert(ME)), NOW + 1_000) if isinstance(a, Push)}
    mesh.handle(PushResult(P1, pushes[P1].batch_id, True, ()), NOW + 2_000)
    mesh.handle(PushResult(P2, pushes[P2].batch_id, False, ()), NOW + 2_000)
    assert mesh.last_contact(P1) == NOW + 2_000 and mesh.last_contact(P2) is None
    mesh.handle(ReconcileDone(P2, (), (), True), NOW + 5_000)
    assert mesh.last_contact(P2) == NOW + 5_000 and mesh.last_contact(P1) == NOW + 2_000
    assert mesh.last_contact(b"\x09" * 32) is None  # not a peer
