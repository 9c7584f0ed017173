"""Range-based set reconciliation over (created, id), in the spirit of Negentropy / NIP-77.

Two peers each hold a sorted set of keys. The initiator sends fingerprints of
ranges; where a fingerprint differs the receiver splits that range into
`BUCKETS` sub-ranges, or, when it holds few keys there, sends them as an id
list. The initiator compares id lists with its own keys and so learns what the
peer lacks (`have`, we push) and what we lack (`need`, we fetch). The responder
is stateless: it answers one message from its current keys, so a hostile
initiator cannot make it hold anything between requests.

Message shape (plain msgpack-able lists; every bound is an exclusive upper
bound, the lower bound is the previous range's upper, the first starts at
(0, b"")):

    [VERSION, range, range, ...]
    range = [created: int, id_prefix: bytes (0..32), SKIP]
          | [created: int, id_prefix: bytes, FINGERPRINT, fp: bytes (16)]
          | [created: int, id_prefix: bytes, ID_LIST, [id: bytes (32), ...]]

Bounds are strictly increasing and the last one is (INFINITY, b"") so every
message covers the whole key space. A bound (c, p) sorts before every key
(c, id) whose id starts with p, so shortest distinguishing prefixes suffice.
The fingerprint of a range is BLAKE2b-128 (personalised) over the sum of its
ids mod 2**256 and its count: cheap, order-independent, and a peer cannot make
two different ranges collide without finding a BLAKE2b collision on the sum.

A message carries at most `MAX_MESSAGE_BYTES` (48 KiB) worth of ranges; when a
reply would be bigger, the rest of the key space goes as one fingerprint and
the next round continues, so a node a week behind catches up over several
rounds instead of one huge message. `MAX_ROUNDS` bounds a session.

**Ranges instead of ids** (`Initiator(ranges=True)`, against a peer that
answers range fetches: docs/protocol.md §12). The message format and the
responder are unchanged; only the initiator's choices differ. A differing range
in which the initiator holds nothing is not descended into: the initiator
skips it and records it in `need_ranges`, and the node fetches the peer's
envelopes in it by range (`page`, paged by bound), so no id of a range we miss
entirely ever crosses the wire. A differing range in which it holds a few keys
(at most `ID_LIST_MAX`) goes back as its fingerprint rather than an id list, so
the *peer* splits it by its own keys: the empty sub-ranges become ranges to
fetch and only the boundary, where both sides hold keys, is listed by id. The
first message is one fingerprint when the initiator holds few keys. A node back
from an outage thus reconciles in a few round trips of fingerprints (about
600 bytes each) whatever the size of its backlog. `MAX_NEED_RANGES` bounds what
a hostile peer's fingerprints can make it fetch; past it, ranges are listed by
id as before.

Anything malformed raises `MeshError` and nothing else.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from itertools import accumulate
from typing import Any, TypeAlias

from sortedcontainers import SortedList

from mesh.interfaces import ID_BYTES, Key, MeshError
from protocol.signing import PERSON_RECONCILE

Bound: TypeAlias = tuple[int, bytes]
#: [lower, upper): the keys k with lower <= k < upper.
Range: TypeAlias = tuple[Bound, Bound]

VERSION = 1
INFINITY = 2**64 - 1
SKIP, FINGERPRINT, ID_LIST = 0, 1, 2
FINGERPRINT_BYTES = 16
BUCKETS = 16
#: A differing range holding at most this many keys is sent as ids, not split.
ID_LIST_MAX = 2 * BUCKETS
MAX_MESSAGE_BYTES = 48 * 1024
MAX_IDS = MAX_MESSAGE_BYTES // ID_BYTES
MAX_RANGES = 4096
MAX_ROUNDS = 256
#: Ranges to fetch one session may collect (adjacent ones merge): what a peer's
#: fingerprints can make us ask for, at one range fetch or more each.
MAX_NEED_RANGES = 256

_START: Bound = (0, b"")
_END: Bound = (INFINITY, b"")
_MOD = 2**256
# Room kept free before handling one more range: a split or a small id list.
_RESERVE = BUCKETS * 64 + ID_LIST_MAX * (ID_BYTES + 2) + 64


def fingerprint(ids: Iterable[bytes]) -> bytes:
    """Order-independent digest of a set of ids, bound to its size."""
    total = 0
    count = 0
    for id_ in ids:
        total += int.from_bytes(id_, "little")
        count += 1
    return _digest(total, count)


def _digest(total: int, count: int) -> bytes:
    data = (total % _MOD).to_bytes(32, "little") + count.to_bytes(8, "little")
    return hashlib.blake2b(data, digest_size=FINGERPRINT_BYTES, person=PERSON_RECONCILE).digest()


_EMPTY = _digest(0, 0)


class KeyIndex:
    """The sorted (created, id) view of what a node holds; bisect gives any range in O(log n)."""

    def __init__(self, keys: Iterable[Key] = ()) -> None:
        self._keys: SortedList = SortedList(keys)
        # Running sums of ids, rebuilt lazily after a change: any range's
        # fingerprint is then O(1), which keeps multi-round sessions over
        # 10**5 keys fast.
        self._sums: list[int] | None = None

    def add(self, key: Key) -> None:
        if not 0 <= key[0] < INFINITY or len(key[1]) != ID_BYTES:
            raise MeshError("bad-key", "created must be a non-negative ms time and ids 32 bytes")
        self._keys.add(key)
        self._sums = None

    def discard(self, key: Key) -> None:
        self._keys.discard(key)
        self._sums = None

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __iter__(self) -> Iterator[Key]:
        return iter(self._keys)

    def position(self, bound: Bound) -> int:
        return int(self._keys.bisect_left(bound))

    def keys(self, start: int, end: int) -> list[Key]:
        return list(self._keys.islice(start, end))

    def ids(self, start: int, end: int) -> list[bytes]:
        return [key[1] for key in self._keys.islice(start, end)]

    def fingerprint(self, start: int, end: int) -> bytes:
        if self._sums is None:
            self._sums = [0, *accumulate(int.from_bytes(key[1], "little") for key in self._keys)]
        return _digest(self._sums[end] - self._sums[start], end - start)

    def __getitem__(self, position: int) -> Key:
        key: Key = self._keys[position]
        return key

    def between(self, lower: Bound, upper: Bound, limit: int) -> list[Key]:
        """At most ``limit`` keys k with lower <= k < upper, in order."""
        start = self.position(lower)
        end = min(self.position(upper), start + max(limit, 0))
        return self.keys(start, end) if start < end else []


def as_index(keys: KeyIndex | Iterable[Key]) -> KeyIndex:
    return keys if isinstance(keys, KeyIndex) else KeyIndex(keys)


def bound_between(before: Key, after: Key) -> Bound:
    """The shortest bound b with before < b <= after: keeps messages small."""
    if before[0] != after[0]:
        return (after[0], b"")
    shared = 0
    for a, b in zip(before[1], after[1], strict=False):
        if a != b:
            break
        shared += 1
    return (after[0], after[1][: shared + 1])


def page(index: KeyIndex, lower: Bound, upper: Bound, limit: int) -> list[Key]:
    """The keys a range fetch may answer: at most ``limit`` in [lower, upper), plus
    the one after them when there is one (so `next_bound` can say where to go on)."""
    return index.between(lower, upper, limit + 1)


def next_bound(keys: list[Key], served: int) -> Bound | None:
    """Where a range fetch goes on after serving ``keys[:served]`` of `page`'s
    ``keys``: the shortest bound between the last served and the first not served,
    or None when it served the rest of the range."""
    if served >= len(keys):
        return None
    if served <= 0:
        return keys[0]
    return bound_between(keys[served - 1], keys[served])


def ranges_from(ranges: Iterable[Range], resume: Bound) -> tuple[Range, ...]:
    """What is left of ``ranges`` from ``resume`` on (a range fetch that stopped
    there): only ever narrower, never more than was asked."""
    return tuple((max(lower, resume), upper) for lower, upper in ranges if upper > resume)


# -- parsing hostile input ----------------------------------------------------------------


def _fail(code: str, message: str) -> MeshError:
    return MeshError(code, message)


def _parse_range(raw: object, lower: Bound) -> tuple[Bound, int, Any]:
    if not isinstance(raw, list | tuple) or len(raw) not in (3, 4):
        raise _fail("bad-range", "a range is [created, prefix, mode] or [created, prefix, mode, payload]")
    created, prefix, mode = raw[0], raw[1], raw[2]
    if type(created) is not int or not 0 <= created <= INFINITY:
        raise _fail("bad-bound", "created must be an integer in 0..2**64-1")
    if not isinstance(prefix, bytes) or len(prefix) > ID_BYTES:
        raise _fail("bad-bound", "the id prefix must be at most 32 bytes")
    if created == INFINITY and prefix:
        raise _fail("bad-bound", "the infinite bound has no prefix")
    bound = (created, prefix)
    if bound <= lower:
        raise _fail("bad-order", "range bounds must strictly increase")
    if type(mode) is not int:
        raise _fail("bad-mode", "mode must be an integer")
    if mode == SKIP:
        if len(raw) != 3:
            raise _fail("bad-range", "a skip range has no payload")
        return bound, mode, None
    if len(raw) != 4:
        raise _fail("bad-range", "this mode needs a payload")
    payload = raw[3]
    if mode == FINGERPRINT:
        if not isinstance(payload, bytes) or len(payload) != FINGERPRINT_BYTES:
            raise _fail("bad-fingerprint", "a fingerprint is 16 bytes")
        return bound, mode, payload
    if mode == ID_LIST:
        if not isinstance(payload, list | tuple) or len(payload) > MAX_IDS:
            raise _fail("bad-id-list", "an id list is a list of at most MAX_IDS ids")
        for id_ in payload:
            if not isinstance(id_, bytes) or len(id_) != ID_BYTES:
                raise _fail("bad-id-list", "ids are 32 bytes")
        return bound, mode, payload
    raise _fail("bad-mode", f"unknown mode {mode}")


def parse(message: object) -> list[tuple[Bound, int, Any]]:
    """Validate a reconcile message; raise `MeshError` (only) on anything malformed."""
    if not isinstance(message, list | tuple) or not message:
        raise _fail("bad-message", "a reconcile message is a non-empty list")
    if type(message[0]) is not int or message[0] != VERSION:
        raise _fail("bad-version", f"unsupported reconcile version (this node speaks {VERSION})")
    if len(message) - 1 > MAX_RANGES:
        raise _fail("too-large", f"more than {MAX_RANGES} ranges")
    ranges: list[tuple[Bound, int, Any]] = []
    lower = _START
    total_ids = 0
    for raw in message[1:]:
        parsed = _parse_range(raw, lower)
        if parsed[1] == ID_LIST:
            total_ids += len(parsed[2])
            if total_ids > MAX_IDS:
                raise _fail("too-large", f"more than {MAX_IDS} ids in one message")
        ranges.append(parsed)
        lower = parsed[0]
    if lower != _END:
        raise _fail("incomplete", "the ranges must cover the key space up to infinity")
    return ranges


# -- building replies ---------------------------------------------------------------------


class _Reply:
    """An outgoing message under construction; merges skips and tracks its size."""

    def __init__(self) -> None:
        self.ranges: list[list[Any]] = []
        self.size = 4

    @staticmethod
    def _bound_size(bound: Bound) -> int:
        return 12 + len(bound[1])

    def skip(self, bound: Bound) -> None:
        if self.ranges and self.ranges[-1][2] == SKIP:
            self.size += len(bound[1]) - len(self.ranges[-1][1])
            self.ranges[-1] = [bound[0], bound[1], SKIP]
            return
        self.ranges.append([bound[0], bound[1], SKIP])
        self.size += self._bound_size(bound) + 1

    def fingerprint(self, bound: Bound, fp: bytes) -> None:
        self.ranges.append([bound[0], bound[1], FINGERPRINT, fp])
        self.size += self._bound_size(bound) + 3 + FINGERPRINT_BYTES

    def id_list(self, bound: Bound, ids: list[bytes]) -> None:
        self.ranges.append([bound[0], bound[1], ID_LIST, ids])
        self.size += self._bound_size(bound) + 6 + len(ids) * (ID_BYTES + 2)

    def room_for_ids(self) -> int:
        return max(0, (MAX_MESSAGE_BYTES - self.size - 200) // (ID_BYTES + 2))

    @property
    def nearly_full(self) -> bool:
        return self.size + _RESERVE > MAX_MESSAGE_BYTES

    @property
    def full(self) -> bool:
        return self.size + 128 > MAX_MESSAGE_BYTES

    @property
    def settled(self) -> bool:
        """Nothing left to say: every range is a skip."""
        return all(r[2] == SKIP for r in self.ranges)

    def message(self) -> list[Any]:
        return [VERSION, *self.ranges]


class _Side(ABC):
    """What both ends do with one incoming range; only id lists differ by role."""

    def __init__(self, index: KeyIndex) -> None:
        self.index = index

    def split(self, out: _Reply, upper: Bound, start: int, end: int) -> None:
        """Our keys in [start, end) differ from the peer's: ids if few, else bucket fingerprints."""
        count = end - start
        if count <= ID_LIST_MAX:
            out.id_list(upper, self.index.ids(start, end))
            return
        per, extra = divmod(count, BUCKETS)
        at = start
        for bucket in range(BUCKETS):
            first = at
            at += per + (1 if bucket < extra else 0)
            bound = upper if bucket == BUCKETS - 1 else bound_between(self.index[at - 1], self.index[at])
            out.fingerprint(bound, self.index.fingerprint(first, at))

    def rest(self, out: _Reply, start: int) -> None:
        """Out of room: everything from `start` on goes as one fingerprint for the next round."""
        out.fingerprint(_END, self.index.fingerprint(start, len(self.index)))

    @abstractmethod
    def id_list(self, out: _Reply, theirs: list[bytes], upper: Bound, start: int, end: int) -> bool:
        """Compare the peer's id list for a range with ours (responder and initiator differ)."""

    def differs(self, out: _Reply, upper: Bound, start: int, end: int) -> None:
        """The peer's fingerprint of a range differs from ours (and we have room)."""
        self.split(out, upper, start, end)

    def take_range(self, lower: Bound, upper: Bound, start: int, end: int, fp: bytes) -> bool:
        """Whether the range is taken to be fetched whole rather than reconciled (initiator)."""
        return False

    def process(self, message: object) -> _Reply:
        out = _Reply()
        start = 0
        lower = _START
        for upper, mode, payload in parse(message):
            end = self.index.position(upper)
            if mode == FINGERPRINT and self.take_range(lower, upper, start, end, payload):
                out.skip(upper)
            elif mode != SKIP and out.nearly_full:
                if out.full:
                    self.rest(out, start)
                    return out
                # No room to split: hand our fingerprint of the range back, so
                # the peer splits it next round and the descent is not lost.
                ours = self.index.fingerprint(start, end)
                if mode == FINGERPRINT and payload == ours:
                    out.skip(upper)
                else:
                    out.fingerprint(upper, ours)
            elif mode == SKIP:
                out.skip(upper)
            elif mode == FINGERPRINT:
                if payload == self.index.fingerprint(start, end):
                    out.skip(upper)
                else:
                    self.differs(out, upper, start, end)
            elif self.id_list(out, payload, upper, start, end):
                return out
            start, lower = end, upper
        return out


class _Responder(_Side):
    def id_list(self, out: _Reply, theirs: list[bytes], upper: Bound, start: int, end: int) -> bool:
        """Answer with our ids in the range so the initiator can diff; truncate at the size cap."""
        room = out.room_for_ids()
        if end - start <= room:
            out.id_list(upper, self.index.ids(start, end))
            return False
        if room == 0:
            self.rest(out, start)
            return True
        cut = start + room
        out.id_list(bound_between(self.index[cut - 1], self.index[cut]), self.index.ids(start, cut))
        self.rest(out, cut)
        return True


class _InitiatorSide(_Side):
    def __init__(self, index: KeyIndex, ranges: bool, refused: KeyIndex | None) -> None:
        super().__init__(index)
        self.have: dict[bytes, None] = {}
        self.need: dict[bytes, None] = {}
        self.ranges = ranges
        self.refused = refused
        self.need_ranges: list[Range] = []

    def take_range(self, lower: Bound, upper: Bound, start: int, end: int, fp: bytes) -> bool:
        """A range the peer holds something in (its fingerprint is not the empty
        set's) and we hold nothing in: fetched whole, its ids never listed."""
        if not self.ranges or start != end or fp == _EMPTY:
            return False
        if self.refused is not None:
            first, last = self.refused.position(lower), self.refused.position(upper)
            if first < last and self.refused.fingerprint(first, last) == fp:
                return True  # all it holds there we refused (outside the horizon, …): settled
        if self.need_ranges and self.need_ranges[-1][1] == lower:
            self.need_ranges[-1] = (self.need_ranges[-1][0], upper)  # adjacent: one range
            return True
        if len(self.need_ranges) >= MAX_NEED_RANGES:
            return False  # listed by id, as without ranges
        self.need_ranges.append((lower, upper))
        return True

    def differs(self, out: _Reply, upper: Bound, start: int, end: int) -> None:
        """With ranges, a few keys of ours go back as their fingerprint: the peer
        splits the range by its own keys, and the sub-ranges we hold nothing in
        are fetched whole instead of listed (it lists the range when it holds few)."""
        if self.ranges and end - start <= ID_LIST_MAX:
            out.fingerprint(upper, self.index.fingerprint(start, end))
            return
        self.split(out, upper, start, end)

    def id_list(self, out: _Reply, theirs: list[bytes], upper: Bound, start: int, end: int) -> bool:
        ours = self.index.ids(start, end)
        theirs_set = set(theirs)
        ours_set = set(ours)
        for id_ in ours:
            if id_ not in theirs_set:
                self.have[id_] = None
        for id_ in theirs:
            if id_ not in ours_set:
                self.need[id_] = None
        out.skip(upper)
        return False


def respond(keys: KeyIndex | Iterable[Key], message: object) -> list[Any]:
    """The responder's whole job: one reply computed from its keys. Raises only `MeshError`."""
    return _Responder(as_index(keys)).process(message).message()


class Initiator:
    """One reconciliation session, driven by the node layer:

        session = Initiator(mesh_node.keys())
        message = session.initiate()
        while message is not None:          # at most MAX_ROUNDS times
            message = session.reconcile(send_to_peer(message))
        session.have, session.need

    Keys added to the index during a session are harmless: ranges are
    recomputed from bounds every round, and the next session catches stragglers.
    """

    def __init__(
        self, keys: KeyIndex | Iterable[Key], *, ranges: bool = False, refused: KeyIndex | None = None
    ) -> None:
        self._side = _InitiatorSide(as_index(keys), ranges, refused)
        self.rounds = 0

    def initiate(self) -> list[Any]:
        out = _Reply()
        side = self._side
        if side.ranges and len(side.index) <= ID_LIST_MAX:
            out.fingerprint(_END, side.index.fingerprint(0, len(side.index)))  # the peer splits
        else:
            side.split(out, _END, 0, len(side.index))
        return out.message()

    def without_ranges(self) -> None:
        """The peer does not answer range fetches (its first reply says so): go on
        listing ids as before. Only before the first reply is processed."""
        if self.rounds:
            raise MeshError("ranges-too-late", "ranges can only be turned off before the first reply")
        self._side.ranges = False

    def reconcile(self, reply: object) -> list[Any] | None:
        """Process the peer's reply; the next message, or None when reconciled."""
        self.rounds += 1
        if self.rounds > MAX_ROUNDS:
            raise MeshError("too-many-rounds", f"no agreement after {MAX_ROUNDS} rounds")
        out = self._side.process(reply)
        return None if out.settled else out.message()

    @property
    def have(self) -> tuple[bytes, ...]:
        """Ids we hold that the peer lacks: push them."""
        return tuple(self._side.have)

    @property
    def need(self) -> tuple[bytes, ...]:
        """Ids the peer holds that we lack: fetch them."""
        return tuple(self._side.need)

    @property
    def need_ranges(self) -> tuple[Range, ...]:
        """Ranges the peer holds keys in and we hold none (with ``ranges``): fetch
        them by range. In order, adjacent ones merged."""
        merged: list[Range] = []
        for lower, upper in sorted(self._side.need_ranges):
            if merged and merged[-1][1] >= lower:
                merged[-1] = (merged[-1][0], max(merged[-1][1], upper))
            else:
                merged.append((lower, upper))
        return tuple(merged)


def exchange(
    ours: KeyIndex | Iterable[Key], theirs: KeyIndex | Iterable[Key], *, ranges: bool = False
) -> tuple[Initiator, int]:
    """Run a whole session in-process (simulator, tests); returns it and the messages sent."""
    session = Initiator(ours, ranges=ranges)
    responder = _Responder(as_index(theirs))
    message: list[Any] | None = session.initiate()
    messages = 0
    while message is not None:
        reply = responder.process(message).message()
        messages += 2
        message = session.reconcile(reply)
    return session, messages
