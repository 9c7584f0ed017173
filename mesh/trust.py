"""The trust horizon: who may author content this node stores and relays.

Nodes vouch for their peers; a key is inside the horizon when a chain of
*current* vouches of at most `depth` hops leads to it from this node (self is
depth 0, keys self vouched for depth 1, their vouchees depth 2). That is how an
ally-of-an-ally's alert reaches us while strangers cannot inject.

Every (voucher, subject) pair keeps only its latest claim, ordered by
(created, id): a vouch and a later revoke leave no edge whatever order they
arrive in, so every node that saw the same records computes the same graph.

A key that declares itself compromised is dead everywhere, forever: its vouches
stop counting, it never re-enters the horizon, and no later vouch revives it.
Anyone may relay such a declaration because it can only hurt its author.

Key rotation: a ``node`` record by a new key carrying the old key's hand-over
signature joins the two into one family. Every key of a family has the same
depth and the vouches of any of them count for all, so peers follow without a
new pairing. The old key is *retired* at the rotation's ``created``: what it
signs later is refused (``retired_at``). A compromised key hands over nothing:
rotations out of it are void, because whoever stole it could rotate too.

Pre-rotation: a key's ``node`` record may commit to the hash of its next key
(``Item.commits``; the first commitment seen for a key holds, and the mesh
refuses records that change it). A hand-over out of a committed key must go to
the committed key; a *recovery* (a record by the committed key naming the old
one, no signature of the old key needed) joins the family even when the old key
is in an attacker's hands, and may declare it compromised. A recovered
successor keeps the compromised key's place: vouches *for* the old key count
for it, while the old key's own vouches stop counting.

Fresh vouches and budgets: every edge remembers when this node first saw it
(`observe(item, seen=now)`; after a restart, stored vouches count from when
this node received them, never from their ``created``, which the voucher signs
and may backdate). A key whose every vouch into the horizon is *fresh* (seen less
than ``fresh_ms`` ago) and comes from someone other than this node has no
budget of its own yet: `budget_holder` names the voucher whose rate limits its
items draw on (recursively, up to the trust depth). Forty keys vouched for by
one peer yesterday therefore share that peer's budget until they have stood
for a day; keys this node vouched for itself (depth 1) are always their own.

Depths are kept incrementally for new vouches (the common case, cheap even
with thousands of them) and recomputed lazily by one bounded BFS after a
revocation, which is rare.
"""

from __future__ import annotations

from collections import deque

from mesh.interfaces import Item

# (created, id, is_vouch): the latest word of a voucher about a subject.
_Claim = tuple[int, bytes, bool]


class TrustGraph:
    def __init__(self, self_key: bytes, depth: int = 2) -> None:
        if depth < 0:
            raise ValueError("trust depth must be >= 0")
        self.self_key = self_key
        self.depth = depth
        self._claims: dict[tuple[bytes, bytes], _Claim] = {}
        self._edges: dict[bytes, set[bytes]] = {}
        self._compromised: set[bytes] = set()
        self._depths: dict[bytes, int] | None = None
        self._rotations: dict[bytes, tuple[int, bytes]] = {}  # old key -> (created, new key)
        self._aliases: dict[bytes, set[bytes]] = {}  # both directions, for the BFS
        self._vouchers: dict[bytes, set[bytes]] = {}  # subject -> current vouchers (reverse edges)
        self._since: dict[tuple[bytes, bytes], int] = {}  # current edge -> first seen here (ms)
        self._commitments: dict[bytes, bytes] = {}  # key -> hash of its committed next key
        self._recovered: dict[bytes, bytes] = {}  # old key -> the committed key that recovered it

    # -- queries --------------------------------------------------------------------------
    def in_horizon(self, key: bytes) -> bool:
        return key in self._current_depths()

    def depth_of(self, key: bytes) -> int | None:
        """Vouch hops from self to `key`, or None outside the horizon."""
        return self._current_depths().get(key)

    def is_compromised(self, key: bytes) -> bool:
        return key in self._compromised

    def commitment(self, key: bytes) -> bytes | None:
        """The hash of the next key ``key`` committed to (pre-rotation), if any."""
        return self._commitments.get(key)

    def rotation_allowed(self, item: Item) -> bool:
        """Whether a rotation record may join its old key (``subject``) and author:
        a hand-over to a committed key's committed successor only; a recovery only
        by the committed successor (it needs no signature of the old key)."""
        if item.subject is None:
            return False
        if item.author == self.self_key:
            return True  # this node's own recovery: it may no longer hold the old key's records
        committed = self._commitments.get(item.subject)
        if item.recovery:
            return committed is not None and committed == item.author_commitment
        return committed is None or committed == item.author_commitment

    def changes_commitment(self, item: Item) -> bool:
        """A node record committing its author to another next key than the first
        one seen: refused, or whoever seized the key could re-commit to its own."""
        committed = self._commitments.get(item.author)
        return item.commits is not None and committed is not None and committed != item.commits

    def vouches(self, voucher: bytes) -> frozenset[bytes]:
        """Keys `voucher` currently vouches for (compromised vouchers vouch for nobody)."""
        return frozenset(self._edges.get(voucher, ()))

    def vouchers(self, key: bytes) -> frozenset[bytes]:
        """Keys currently vouching for `key` (the reverse of `vouches`): who to name
        when saying how an author is trusted."""
        return frozenset(self._vouchers.get(key, ()))

    def horizon(self) -> dict[bytes, int]:
        return dict(self._current_depths())

    def retired_at(self, key: bytes) -> int | None:
        """When ``key`` handed over to a successor (its later signatures are refused)."""
        rotation = self._rotations.get(key)
        if rotation is None or key in self._compromised:
            return None
        return rotation[0]

    def newest(self, key: bytes) -> bytes:
        """The key ``key`` was last handed over to (``key`` itself when it never
        rotated): the one name a family of keys is shown under."""
        seen = {key}
        while (rotation := self._rotations.get(key)) is not None and rotation[1] not in seen:
            key = rotation[1]
            seen.add(key)
        return key

    def family(self, key: bytes) -> set[bytes]:
        """``key`` and every key it rotated from or to."""
        seen, todo = {key}, [key]
        while todo:
            for other in self._aliases.get(todo.pop(), ()):
                if other not in seen:
                    seen.add(other)
                    todo.append(other)
        return seen

    def budget_holder(self, key: bytes, now: int, fresh_ms: int) -> bytes:
        """Whose rate budget `key`'s items draw on: `key` itself once it stands on an
        established vouch (or this node's own), else the voucher of its oldest fresh
        vouch, followed up the chain at most `depth` times."""
        holder = key
        for _ in range(self.depth):
            voucher = self._fresh_voucher(holder, now, fresh_ms)
            if voucher is None:
                return holder
            holder = voucher
        return holder

    def _fresh_voucher(self, key: bytes, now: int, fresh_ms: int) -> bytes | None:
        depths = self._current_depths()
        depth = depths.get(key)
        if depth is None or depth <= 1:
            return None  # this node, keys it vouched for itself, or outside (refused anyway)
        oldest: tuple[int, bytes] | None = None
        for member in self.family(key):
            for voucher in self._vouchers.get(member, ()):
                voucher_depth = depths.get(voucher)
                if voucher_depth is None or voucher_depth >= self.depth:
                    continue  # this edge does not bring `key` into the horizon
                since = self._since.get((voucher, member), now)
                if since <= now - fresh_ms:
                    return None  # an established vouch: its own budget
                if oldest is None or (since, voucher) < oldest:
                    oldest = (since, voucher)
        return None if oldest is None else oldest[1]

    # -- updates --------------------------------------------------------------------------
    def observe(self, item: Item, seen: int | None = None) -> bool:
        """Take a vouch, revoke or rotation into account; True when the horizon may have changed.

        `seen` is when this node got `item` (default: its ``created``); a vouch's
        freshness counts from it, so a backdated vouch is still fresh here."""
        if item.kind == "node" and item.commits is not None and not self.changes_commitment(item):
            self._commitments.setdefault(item.author, item.commits)
        if item.rotates:
            if not self.rotation_allowed(item):
                return False
            rotated = self._rotate(item)
            if not item.recovery:
                return rotated
            assert item.subject is not None
            self._recovered[item.subject] = item.author
            if item.compromised:
                self._compromise(item.subject)
            self._depths = None
            return True
        if item.kind not in ("vouch", "revoke") or item.subject is None:
            return False
        if item.declares_compromise:
            return self._compromise(item.author)
        if item.author == item.subject:
            return False
        pair = (item.author, item.subject)
        claim = (item.created, item.id, item.kind == "vouch")
        current = self._claims.get(pair)
        if current is not None and current[:2] >= claim[:2]:
            return False
        self._claims[pair] = claim
        if item.author in self._compromised:
            return False
        if claim[2]:
            return self._add_edge(item.author, item.subject, item.created if seen is None else seen)
        return self._remove_edge(item.author, item.subject)

    def _rotate(self, item: Item) -> bool:
        old, new = item.subject, item.author
        assert old is not None
        known = self._rotations.get(old)
        if known is not None and known[0] <= item.created:
            return False  # the first hand-over wins; a key cannot be handed over twice
        if known is not None:
            self._aliases.get(known[1], set()).discard(old)
            self._aliases.get(old, set()).discard(known[1])
        self._rotations[old] = (item.created, new)
        self._aliases.setdefault(old, set()).add(new)
        self._aliases.setdefault(new, set()).add(old)
        self._depths = None
        return True

    def _compromise(self, key: bytes) -> bool:
        if key in self._compromised:
            return False
        self._compromised.add(key)
        for subject in self._edges.pop(key, set()):
            self._unlink(key, subject)
        self._depths = None
        return True

    def _unlink(self, voucher: bytes, subject: bytes) -> None:
        self._vouchers.get(subject, set()).discard(voucher)
        self._since.pop((voucher, subject), None)

    def _add_edge(self, voucher: bytes, subject: bytes, seen: int) -> bool:
        targets = self._edges.setdefault(voucher, set())
        if subject in targets:
            return False
        targets.add(subject)
        self._vouchers.setdefault(subject, set()).add(voucher)
        self._since[(voucher, subject)] = seen
        if self._depths is None:
            return True
        if subject in self._compromised:
            if subject not in self._recovered:
                return False
            self._depths = None  # a vouch for a recovered key counts for its successor
            return True
        start = self._depths.get(voucher)
        if start is None or start >= self.depth:
            return False
        known = self._depths.get(subject)
        if known is not None and known <= start + 1:
            return False
        self._depths[subject] = start + 1
        self._spread(self._depths, deque([subject]))
        return True

    def _remove_edge(self, voucher: bytes, subject: bytes) -> bool:
        targets = self._edges.get(voucher)
        if not targets or subject not in targets:
            return False
        targets.discard(subject)
        self._unlink(voucher, subject)
        if self._depths is None:
            return True
        if voucher in self._depths and subject in self._depths:
            self._depths = None
            return True
        return False

    def _in_place_of(self, key: bytes) -> bytes | None:
        """Who a vouch for ``key`` reaches: ``key``; or, when it is compromised, the
        committed key that recovered it (which keeps its place); else nobody."""
        seen = set()
        while key in self._compromised:
            seen.add(key)
            successor = self._recovered.get(key)
            if successor is None or successor in seen:
                return None
            key = successor
        return key

    # -- breadth-first search -------------------------------------------------------------
    def _current_depths(self) -> dict[bytes, int]:
        if self._depths is None:
            depths: dict[bytes, int] = {}
            if self.self_key not in self._compromised:
                depths[self.self_key] = 0
                self._spread(depths, deque([self.self_key]))
            self._depths = depths
        return self._depths

    def _spread(self, depths: dict[bytes, int], queue: deque[bytes]) -> None:
        """Relax depths outward from `queue`, never past `self.depth` hops. Keys of
        one rotation family share a depth (a hand-over is not a hop)."""
        while queue:
            key = queue.popleft()
            here = depths[key]
            if key not in self._compromised:
                for alias in self._aliases.get(key, ()):
                    if alias not in self._compromised and depths.get(alias, here + 1) > here:
                        depths[alias] = here
                        queue.appendleft(alias)
            if here >= self.depth:
                continue
            for vouched in self._edges.get(key, ()):
                subject = self._in_place_of(vouched)
                if subject is None:
                    continue
                known = depths.get(subject)
                if known is None or known > here + 1:
                    depths[subject] = here + 1
                    queue.append(subject)
