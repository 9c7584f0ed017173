"""Range-based reconciliation: exact symmetric difference, bounded messages, hostile input."""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesh import MeshError
from mesh.reconcile import (
    FINGERPRINT,
    ID_LIST,
    ID_LIST_MAX,
    INFINITY,
    MAX_MESSAGE_BYTES,
    MAX_NEED_RANGES,
    SKIP,
    VERSION,
    Initiator,
    KeyIndex,
    Range,
    exchange,
    next_bound,
    page,
    respond,
)


def keys_for(numbers: set[int], spread: int = 50) -> list[tuple[int, bytes]]:
    # Few distinct timestamps, so many keys share `created` and bounds need id prefixes.
    return [(1000 + n % spread, hashlib.blake2b(str(n).encode(), digest_size=32).digest()) for n in numbers]


def run(ours: list[tuple[int, bytes]], theirs: list[tuple[int, bytes]]) -> tuple[Initiator, list[int]]:
    """A full session, checking every message on the way stays under the size cap."""
    session = Initiator(ours)
    responder = KeyIndex(theirs)
    sizes = []
    message: list[Any] | None = session.initiate()
    while message is not None:
        sizes.append(len(msgpack.packb(message)))
        reply = respond(responder, msgpack.unpackb(msgpack.packb(message)))
        sizes.append(len(msgpack.packb(reply)))
        message = session.reconcile(msgpack.unpackb(msgpack.packb(reply)))
    return session, sizes


@settings(max_examples=150)
@given(
    common=st.sets(st.integers(0, 10**6), max_size=400),
    only_ours=st.sets(st.integers(10**6 + 1, 2 * 10**6), max_size=120),
    only_theirs=st.sets(st.integers(2 * 10**6 + 1, 3 * 10**6), max_size=120),
    spread=st.sampled_from([1, 7, 10**6]),
)
def test_both_sides_learn_exactly_the_symmetric_difference(
    common: set[int], only_ours: set[int], only_theirs: set[int], spread: int
) -> None:
    ours = keys_for(common | only_ours, spread)
    theirs = keys_for(common | only_theirs, spread)
    session, _ = run(ours, theirs)
    assert set(session.have) == {k[1] for k in keys_for(only_ours, spread)}
    assert set(session.need) == {k[1] for k in keys_for(only_theirs, spread)}
    assert len(session.have) == len(set(session.have))


def test_large_catch_up_splits_into_bounded_messages() -> None:
    theirs = keys_for(set(range(20_000)))
    ours = keys_for(set(range(0, 20_000, 3)) | {10**7})
    session, sizes = run(ours, theirs)
    assert set(session.need) == {k[1] for k in theirs} - {k[1] for k in ours}
    assert set(session.have) == {keys_for({10**7})[0][1]}
    assert max(sizes) <= MAX_MESSAGE_BYTES
    assert len(sizes) > 2  # it really took several rounds


def test_identical_sets_settle_in_one_round_trip() -> None:
    keys = keys_for(set(range(5_000)))
    session, messages = exchange(keys, keys)
    assert (session.have, session.need, messages) == ((), (), 2)


def test_empty_sides() -> None:
    keys = keys_for(set(range(100)))
    assert set(exchange([], keys)[0].need) == {k[1] for k in keys}
    assert set(exchange(keys, [])[0].have) == {k[1] for k in keys}
    assert exchange([], [])[0].have == ()


# -- hostile input --------------------------------------------------------------------------

END = [INFINITY, b"", SKIP]


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (None, "bad-message"),
        ([], "bad-message"),
        ([2, END], "bad-version"),
        ([True, END], "bad-version"),
        ([VERSION], "incomplete"),
        ([VERSION, [5, b"", SKIP]], "incomplete"),
        ([VERSION, [5, b"", SKIP], [5, b"", SKIP], END], "bad-order"),
        ([VERSION, [-1, b"", SKIP], END], "bad-bound"),
        ([VERSION, [INFINITY + 1, b"", SKIP]], "bad-bound"),
        ([VERSION, [INFINITY, b"x", SKIP]], "bad-bound"),
        ([VERSION, [5, "text", SKIP], END], "bad-bound"),
        ([VERSION, [5, b"\0" * 33, SKIP], END], "bad-bound"),
        ([VERSION, [INFINITY, b"", 9, b""]], "bad-mode"),
        ([VERSION, [INFINITY, b"", FINGERPRINT, b"short"]], "bad-fingerprint"),
        ([VERSION, [INFINITY, b"", ID_LIST, [b"short"]]], "bad-id-list"),
        ([VERSION, [INFINITY, b"", ID_LIST, [b"\0" * 32] * 2000]], "bad-id-list"),
        ([VERSION, [INFINITY, b"", SKIP, b"extra"]], "bad-range"),
        ([VERSION, *[[n, b"", SKIP] for n in range(1, 5000)], END], "too-large"),
    ],
)
def test_malformed_messages_raise_mesh_error(message: object, code: str) -> None:
    with pytest.raises(MeshError) as caught:
        respond(keys_for(set(range(50))), message)
    assert caught.value.code == code


msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**65), 2**65) | st.binary(max_size=40) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=6),
    max_leaves=40,
)


@pytest.mark.slow
@settings(max_examples=400)
@given(garbage=msgpack_values)
def test_fuzzed_messages_raise_only_mesh_error(garbage: object) -> None:
    index = KeyIndex(keys_for(set(range(300))))
    for attempt in (lambda: respond(index, garbage), lambda: Initiator(index).reconcile(garbage)):
        with contextlib.suppress(MeshError):
            attempt()


@settings(max_examples=300)
@given(data=st.data())
def test_mutated_valid_messages_raise_only_mesh_error(data: st.DataObject) -> None:
    ours = KeyIndex(keys_for(set(range(400))))
    theirs = KeyIndex(keys_for(set(range(200, 700))))
    message = msgpack.packb(respond(theirs, Initiator(ours).initiate()))
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(message) - 1), st.integers(1, 255)), max_size=4))
    mutated = bytearray(message)
    for at, xor in flips:
        mutated[at] ^= xor
    try:
        decoded = msgpack.unpackb(bytes(mutated), strict_map_key=False)
    except Exception:
        return
    for attempt in (lambda: respond(ours, decoded), lambda: Initiator(ours).reconcile(decoded)):
        with contextlib.suppress(MeshError):
            attempt()


def test_rounds_are_bounded_against_a_stalling_peer() -> None:
    """A peer that always answers "differs" cannot keep the initiator busy forever."""
    session = Initiator(keys_for(set(range(100))))
    session.initiate()
    stall = [VERSION, [INFINITY, b"", FINGERPRINT, b"\1" * 16]]
    with pytest.raises(MeshError) as caught:
        for _ in range(10_000):
            session.reconcile(stall)
    assert caught.value.code == "too-many-rounds"


# -- ranges instead of ids (Initiator(ranges=True)) -----------------------------------------


def run_ranges(
    ours: list[tuple[int, bytes]], theirs: list[tuple[int, bytes]], refused: KeyIndex | None = None
) -> tuple[Initiator, list[list[Any]]]:
    """A session with ranges against the unchanged responder; every message kept."""
    session = Initiator(ours, ranges=True, refused=refused)
    responder = KeyIndex(theirs)
    messages: list[list[Any]] = []
    message: list[Any] | None = session.initiate()
    while message is not None:
        reply = respond(responder, msgpack.unpackb(msgpack.packb(message)))
        messages += [message, reply]
        message = session.reconcile(msgpack.unpackb(msgpack.packb(reply)))
    return session, messages


def in_ranges(keys: list[tuple[int, bytes]], ranges: tuple[Range, ...]) -> set[bytes]:
    return {k[1] for k in keys if any(lower <= k < upper for lower, upper in ranges)}


def listed_ids(messages: list[list[Any]]) -> int:
    return sum(len(r[3]) for m in messages for r in m[1:] if r[2] == ID_LIST)


def wire_bytes(messages: list[list[Any]]) -> int:
    return sum(len(msgpack.packb(m)) for m in messages)


@settings(max_examples=150)
@given(
    common=st.sets(st.integers(0, 10**6), max_size=400),
    only_ours=st.sets(st.integers(10**6 + 1, 2 * 10**6), max_size=120),
    only_theirs=st.sets(st.integers(2 * 10**6 + 1, 3 * 10**6), max_size=600),
    spread=st.sampled_from([1, 7, 10**6]),
)
def test_with_ranges_the_difference_is_exact_ids_plus_ranges_we_hold_nothing_in(
    common: set[int], only_ours: set[int], only_theirs: set[int], spread: int
) -> None:
    ours = keys_for(common | only_ours, spread)
    theirs = keys_for(common | only_theirs, spread)
    session, messages = run_ranges(ours, theirs)
    assert set(session.have) == {k[1] for k in keys_for(only_ours, spread)}
    fetched = set(session.need) | in_ranges(theirs, session.need_ranges)
    assert fetched == {k[1] for k in keys_for(only_theirs, spread)}
    assert not in_ranges(ours, session.need_ranges)  # a range to fetch holds nothing of ours
    bounds = [b for r in session.need_ranges for b in r]
    assert bounds == sorted(bounds) and all(lower < upper for lower, upper in session.need_ranges)
    assert max(len(msgpack.packb(m)) for m in messages) <= MAX_MESSAGE_BYTES


def test_a_backlog_missed_entirely_is_one_range_and_a_few_fingerprints() -> None:
    """A node down while 10,000 items were written: no id of the backlog is listed."""
    before = [(1_000 + n, hashlib.blake2b(b"old%d" % n, digest_size=32).digest()) for n in range(5)]
    backlog = [(10_000 + 7 * n, hashlib.blake2b(b"new%d" % n, digest_size=32).digest()) for n in range(10_000)]
    session, messages = run_ranges(before, before + backlog)
    assert len(session.need_ranges) == 1
    fetched = set(session.need) | in_ranges(backlog, session.need_ranges)
    assert fetched == {k[1] for k in backlog}
    assert listed_ids(messages) <= ID_LIST_MAX  # only the range shared with what it held
    assert len(messages) // 2 <= 4 and wire_bytes(messages) < 2_500
    # Without ranges: every id listed, ~340 KB.
    old, old_messages = run(before, before + backlog)
    assert len(old.need) == 10_000 and sum(old_messages) > 100 * wire_bytes(messages)


def test_an_empty_node_fetches_everything_as_one_range() -> None:
    theirs = keys_for(set(range(3_000)), spread=10**6)
    session, messages = run_ranges([], theirs)
    assert session.need == () and session.need_ranges == (((0, b""), (INFINITY, b"")),)
    assert len(messages) == 2 and listed_ids(messages) == 0


def test_sets_differing_by_one_item_stay_cheap_with_ranges() -> None:
    """Negentropy's anchor: a large set differing by one item, a few round trips and ~2 KB."""
    keys = keys_for(set(range(100_000)), spread=10**6)
    for ours, theirs in ((keys[:50_000] + keys[50_001:], keys), (keys, keys[:50_000] + keys[50_001:])):
        session, messages = run_ranges(ours, theirs)
        assert len(session.have) + len(session.need) + len(in_ranges(theirs, session.need_ranges)) == 1
        assert len(messages) // 2 <= 3 and wire_bytes(messages) < 3_000


def test_a_range_holding_only_what_we_refused_is_not_fetched_again() -> None:
    ours = keys_for(set(range(0, 200)), spread=10**6)
    refused = keys_for(set(range(10**6, 10**6 + 40)), spread=10**6)
    wanted = keys_for(set(range(2 * 10**6, 2 * 10**6 + 40)), spread=10**6)
    first, _ = run_ranges(ours, ours + refused + wanted)
    assert in_ranges(refused, first.need_ranges) | set(first.need) >= {k[1] for k in refused}
    again, _ = run_ranges(ours + wanted, ours + refused + wanted, refused=KeyIndex(refused))
    assert not in_ranges(refused, again.need_ranges)  # settled by their fingerprint, or listed by id
    assert set(again.need) <= {k[1] for k in refused}  # ids the mesh filters as refused


def test_a_peer_cannot_make_us_collect_more_ranges_than_the_cap() -> None:
    """Fingerprints for thousands of ranges we hold nothing in: at most
    MAX_NEED_RANGES are kept to fetch; the rest go on being reconciled (our
    fingerprint back, for the peer to split or list), bounded by MAX_ROUNDS."""
    session = Initiator(keys_for(set(range(10))), ranges=True)
    session.initiate()
    # Non-adjacent: each hostile range is followed by a skip.
    hostile = [VERSION]
    for n in range(1, 1_500):
        hostile += [[2 * n, b"", FINGERPRINT, b"\1" * 16], [2 * n + 1, b"", SKIP]]
    hostile.append([INFINITY, b"", SKIP])
    reply = session.reconcile(hostile)
    assert len(session.need_ranges) == MAX_NEED_RANGES
    assert reply is not None and any(r[2] == FINGERPRINT for r in reply[1:])


def test_ranges_are_turned_off_before_the_first_reply_only() -> None:
    ours, theirs = keys_for(set(range(10))), keys_for(set(range(500)))
    session = Initiator(ours, ranges=True)
    message = session.initiate()
    session.without_ranges()  # an older peer: ids, as it expects
    reply: list[Any] | None = respond(KeyIndex(theirs), message)
    while reply is not None:
        message = session.reconcile(reply)
        reply = None if message is None else respond(KeyIndex(theirs), message)
    assert session.need_ranges == () and len(session.need) == 490
    with pytest.raises(MeshError):
        session.without_ranges()


@settings(max_examples=100)
@given(
    numbers=st.sets(st.integers(0, 10**6), max_size=300),
    spread=st.sampled_from([1, 7, 10**6]),
    limit=st.integers(1, 40),
    cut=st.integers(0, 40),
)
def test_range_pages_cover_a_range_once_in_order(numbers: set[int], spread: int, limit: int, cut: int) -> None:
    """Paging by `next_bound` (as a range fetch does, a reply serving ``cut`` or
    fewer of its keys when its frame is full) yields every key of the range once."""
    index = KeyIndex(keys_for(numbers, spread))
    keys = list(index)
    lower, upper = (keys[len(keys) // 4] if keys else (0, b"")), (INFINITY, b"")
    seen: list[tuple[int, bytes]] = []
    cursor: tuple[int, bytes] | None = lower
    while cursor is not None:
        got = page(index, cursor, upper, limit)
        served = max(1, min(cut, limit, len(got))) if got else 0
        seen += got[:served]
        following = next_bound(got, served)
        assert following is None or following > cursor
        cursor = following
    assert seen == [k for k in keys if lower <= k < upper]
