"""The vocabulary between the node layer and `MeshNode`: events in, actions out.

Events are facts the node layer observed (bytes verified, a push answered, a
peer reachable again); actions are what the mesh wants done. Both are frozen so
a recorded run can be replayed and compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mesh.interfaces import Item
from mesh.peers import SavedStanding
from mesh.reconcile import Bound, Range

# -- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Authored:
    """New content made (or imported) on this node."""

    item: Item


@dataclass(frozen=True, slots=True)
class Received:
    """A batch from `peer`, pushed or fetched; signatures and format already verified.

    `hops`: per item, the sender's own hop count for it (0: the sender authored
    it; None or missing: unknown, e.g. a node before the field). Tree push reads
    it (`Timing.optimize_hops`); it is not signed and decides nothing else."""

    peer: bytes
    items: Sequence[Item]
    hops: Sequence[int | None] = ()


@dataclass(frozen=True, slots=True)
class Claim:
    """What a pushed envelope says about itself before its signature is checked:
    its id (the hash of its bytes, so true), and the author, kind and creation
    time it names (not proven yet; `created` None: not an integer, left to
    verification). `created` places the claim among the ranges being fetched."""

    id: bytes
    author: bytes
    kind: str
    created: int | None = None


@dataclass(frozen=True, slots=True)
class Screen:
    """A batch from `peer` before the node checks its signatures (`Claim`s, in
    order). The mesh answers `Rejected` for each claim it would refuse anyway for
    a cut-off sender or for a live budget already spent, so the node checks
    no signature and writes nothing for those (a flood past its quota costs a
    parse, not a verification and a commit: issue 15, finding 7). Budgets are
    only looked at, never charged here, except the sending peer's own bucket for
    what is refused (as `Received` charges it): an author's budget is spent only
    by items whose signature holds, so envelopes forged under an honest author's
    key cannot drain it. What is not refused goes on to verification and
    `Received`, which decides as always."""

    peer: bytes
    claims: Sequence[Claim]


@dataclass(frozen=True, slots=True)
class NotStored:
    """The node could not write `ids` that the mesh asked it to store (a full
    disk, a failing database): the mesh forgets them, so a later copy is not
    dropped as a duplicate and reconciliation does not count them as held."""

    ids: Sequence[bytes]


@dataclass(frozen=True, slots=True)
class PushUnsent:
    """The node never sent the `Push` `batch_id` to `peer` (the store failed in the
    same turn, so it carried out none of the turn's actions): the batch is taken
    back as if it had not been made, without a failure or a backoff."""

    peer: bytes
    batch_id: int


@dataclass(frozen=True, slots=True)
class PeerInvalid:
    """`peer` sent bytes that prove it misbehaved; `code` is the protocol error code.

    Only for codes that blame the sender (`protocol.errors.BLAMED_CODES`): a
    refusal that depends on time or on this node's version is no fault of the
    relay and must not be reported here."""

    peer: bytes
    code: str


@dataclass(frozen=True, slots=True)
class PeerAdded:
    """A new peering: its catch-up mark starts at "now", history comes by reconciliation."""

    peer: bytes


@dataclass(frozen=True, slots=True)
class PeerUp:
    """`peer` may be contacted: start pushing and reconcile."""

    peer: bytes


@dataclass(frozen=True, slots=True)
class PeerHeard:
    """A valid signed request from `peer` arrived: it is reachable now. A queue to it
    that was backing off after failed pushes is sent at once, instead of when its
    backoff runs out (minutes, after a long partition)."""

    peer: bytes


@dataclass(frozen=True, slots=True)
class PeerDown:
    """`peer` must not be contacted (removed or known unreachable)."""

    peer: bytes


@dataclass(frozen=True, slots=True)
class PushResult:
    """The outcome of `Push(peer, batch_id, …)`; ok means the peer answered it.

    `deferred` names the items of the batch the peer refused for a budget (its
    push reply's ``deferred``): they were not delivered and will be sent again."""

    peer: bytes
    batch_id: int
    ok: bool
    deferred: Sequence[bytes] = ()


@dataclass(frozen=True, slots=True)
class Tick:
    """Periodic wake-up; drives retries, timeouts, expiry and anti-entropy."""


@dataclass(frozen=True, slots=True)
class ReconcileDone:
    """A finished reconciliation with `peer`: ids it lacks (`have`) and ids we lack (`need`).

    `complete` is False when the session stopped at its round cap before every
    range settled: what it found is used, and the next session comes soon."""

    peer: bytes
    have: Sequence[bytes]
    need: Sequence[bytes]
    complete: bool = True
    #: Ranges the peer holds items in and we hold none (`reconcile.Initiator.need_ranges`):
    #: fetched by range (`FetchRange`), their ids never listed.
    ranges: Sequence[Range] = ()


@dataclass(frozen=True, slots=True)
class FetchDone:
    """The exchange for `Fetch(peer, ids)` is over: ids that did not arrive are no
    longer on their way (the call failed, or the reply was capped), so the next
    reconciliation may ask for them again, soon."""

    peer: bytes
    ids: Sequence[bytes]


@dataclass(frozen=True, slots=True)
class FetchRangeDone:
    """The exchange for `FetchRange(peer, ranges, limit)` is over: `got` envelopes
    came; `complete` when every range was fetched to its end (False: the limit was
    reached, a budget deferred some, the call failed or the peer does not answer
    range fetches), so the next reconciliation finds the rest, soon. `resume`:
    the fetch stopped at its limit, and this is the bound it would have gone on
    from (the mesh goes on from there as the catch-up budget refills, without a
    new reconciliation); None for every other stop."""

    peer: bytes
    ranges: tuple[Range, ...]
    got: int
    complete: bool
    resume: Bound | None = None


@dataclass(frozen=True, slots=True)
class Announced:
    """`peer` announced that it holds `ids` (tree push: its link to us is lazy).

    Ids we lack are waited for; if one has not come along the tree within
    `Timing.graft_timeout_ms`, it is fetched from `peer` and the link grafted."""

    peer: bytes
    ids: Sequence[bytes]
    hops: Sequence[int | None] = ()  # per id, the announcer's hop count for it (as `Received.hops`)


@dataclass(frozen=True, slots=True)
class AnnounceFailed:
    """`Announce(peer, ids)` got no answer (the request or its reply was lost, or the
    peer is down): the ids are announced to it once more. A peer whose only live
    link to the mesh is lazy would otherwise wait for reconciliation."""

    peer: bytes
    ids: Sequence[bytes]


@dataclass(frozen=True, slots=True)
class SignalFailed:
    """Our `Graft(peer, roots)` (``graft`` True) or `Prune(peer, roots)` got no answer (the
    request or its reply was lost, or the peer is down). While the link's mode
    at our end is still what the signal asked for, it is sent again (up to
    `mesh.tree.SIGNAL_RETRIES` times in a row): a lost prune leaves a second
    parent pushing every item, a lost graft leaves us without one."""

    peer: bytes
    graft: bool
    roots: tuple[bytes, ...] = ()  # the authors whose trees it moves; empty: every tree on the link


@dataclass(frozen=True, slots=True)
class Grafted:
    """`peer` grafted its link to us into the trees of `roots` (every tree when
    empty): push it those authors' full items again."""

    peer: bytes
    roots: tuple[bytes, ...] = ()  # the authors whose trees it moves; empty: every tree on the link


@dataclass(frozen=True, slots=True)
class Pruned:
    """`peer` pruned its link to us from the tree (it got a duplicate from us):
    announce items to it from now on instead of pushing them (those of `roots`,
    or every author's when empty)."""

    peer: bytes
    roots: tuple[bytes, ...] = ()  # the authors whose trees it moves; empty: every tree on the link


Event = (
    Authored
    | Received
    | Screen
    | PeerInvalid
    | NotStored
    | PushUnsent
    | PeerAdded
    | PeerUp
    | PeerHeard
    | PeerDown
    | PushResult
    | Tick
    | ReconcileDone
    | FetchDone
    | FetchRangeDone
    | Announced
    | AnnounceFailed
    | SignalFailed
    | Grafted
    | Pruned
)

# -- actions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Store:
    """Persist `item` with local sequence number `seq` before anything is acknowledged."""

    item: Item
    seq: int


@dataclass(frozen=True, slots=True)
class Deliver:
    """Notify local users, exactly once per alert or ack."""

    item: Item


@dataclass(frozen=True, slots=True)
class Push:
    """Send `items` to `peer`; answer with `PushResult(peer, batch_id, ok)`.

    `hops`: per item, this node's hop count for it (tree push only; empty when
    flooding), carried to the peer as `Received.hops`."""

    peer: bytes
    batch_id: int
    items: tuple[Item, ...]
    hops: tuple[int | None, ...] = ()


@dataclass(frozen=True, slots=True)
class StartReconcile:
    """Run `reconcile.Initiator` against `peer`; answer with `ReconcileDone`."""

    peer: bytes


@dataclass(frozen=True, slots=True)
class Fetch:
    """Ask `peer` for these ids; feed what comes back as `Received(peer, …)`."""

    peer: bytes
    ids: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class FetchRange:
    """Ask `peer` for its items in `ranges`, in order, a page at a time, at most
    `limit` in all; feed each page as `Received(peer, …)` and close with
    `FetchRangeDone`. Items in the ranges are solicited (catch-up budgets) while
    it is under way."""

    peer: bytes
    ranges: tuple[Range, ...]
    limit: int


@dataclass(frozen=True, slots=True)
class SaveMark:
    """Persist: `peer` holds everything stored here up to `seq` (the catch-up mark)."""

    peer: bytes
    seq: int


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Cut `peer` off: close its connections and refuse it until `until` (Unix ms)."""

    peer: bytes
    reason: str
    until: int = 0


@dataclass(frozen=True, slots=True)
class SaveStanding:
    """Persist `peer`'s standing (it just changed), to restore it with `MeshNode(standings=…)`."""

    peer: bytes
    saved: SavedStanding


@dataclass(frozen=True, slots=True)
class Rejected:
    """An item was not stored (for metrics and logs); `peer` is None for local content."""

    peer: bytes | None
    item_id: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class Announce:
    """Tell `peer` we hold `ids` (tree push, lazy link); the peer's answer carries
    nothing; if none comes, answer with `AnnounceFailed(peer, ids)`.

    A lost announcement is sent once more; after that it costs only time, since
    the peer's reconciliation finds the items anyway. At most `Timing.announce_ids` ids.
    `hops`: per id, this node's hop count for it (`Announced.hops` at the peer)."""

    peer: bytes
    ids: tuple[bytes, ...]
    hops: tuple[int | None, ...] = ()


@dataclass(frozen=True, slots=True)
class Graft:
    """Ask `peer` to push us full items again (deliver as `Grafted` there); the
    peer's answer carries nothing; if none comes, answer with `SignalFailed(peer, True)`.

    Follows a `Fetch` from the same peer for announced ids that did not arrive
    in time, once the fetched item came: the fetch repaired the item, the graft
    repairs its author's tree (`roots`)."""

    peer: bytes
    roots: tuple[bytes, ...] = ()  # the authors whose trees it moves; empty: every tree on the link


@dataclass(frozen=True, slots=True)
class Prune:
    """Ask `peer` to stop pushing us full items (deliver as `Pruned` there): it
    sent one we already held, so the link is redundant; ids keep coming lazily.
    The peer's answer carries nothing; if none comes, answer with `SignalFailed(peer, False)`.
    `roots`: the authors whose trees do not need the link (empty: none does)."""

    peer: bytes
    roots: tuple[bytes, ...] = ()  # the authors whose trees it moves; empty: every tree on the link


Action = (
    Store
    | Deliver
    | Push
    | StartReconcile
    | Fetch
    | FetchRange
    | SaveMark
    | Disconnect
    | SaveStanding
    | Rejected
    | Announce
    | Graft
    | Prune
)
