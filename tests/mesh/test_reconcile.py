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
    INFINITY,
    MAX_MESSAGE_BYTES,
    SKIP,
    VERSION,
    Initiator,
    KeyIndex,
    exchange,
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
