"""Frames (docs/protocol.md §12): known answers, round trips, every limit refused
with its code, and nothing but ``ProtocolError`` out of the readers, whatever the
bytes. A frame a peer sent wrong is ``bad-frame`` (remote, blamed); a value this
node cannot put in a frame is ``cannot-encode`` (local, never blamed)."""

from __future__ import annotations

import contextlib
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import framing
from protocol.errors import BadFrame, CannotEncode, ProtocolError, blames_sender

ID = b"\x01" * 32
_ids = st.lists(st.binary(min_size=32, max_size=32), max_size=framing.MAX_FETCH_IDS)
_envelopes = st.lists(st.binary(max_size=300), max_size=40)
_leaves = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=40) | st.text(max_size=20)
_values = st.recursive(
    _leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


def _code(call: Any) -> tuple[str, str | None]:
    with pytest.raises(ProtocolError) as info:
        call()
    return info.value.code, info.value.field


# -- known answers (the same bytes as the request and reply known answers of §12.2 and §12.5)
def test_known_answers() -> None:
    assert framing.pack({"e": []}).hex() == "81a16590"
    assert framing.pack({"accepted": 0, "invalid": 0}).hex() == "82a8616363657074656400a7696e76616c696400"
    assert framing.pack({"ids": [ID]}).hex() == "81a3696473" + "91c420" + "01" * 32
    assert framing.unpack(bytes.fromhex("81a16590")) == {"e": []}


def test_the_sizes_agree() -> None:
    assert framing.MAX_FRAME_BYTES == 65_536 + 1_024  # docs/protocol.md §12: 66 560
    full = [b"x" * (framing.PUSH_BATCH_BYTES // framing.PUSH_BATCH_ITEMS)] * framing.PUSH_BATCH_ITEMS
    assert len(framing.batches(full)) == 1  # one push batch of the outbox is one frame
    assert len(framing.pack({"e": full})) <= framing.MAX_FRAME_BYTES
    asked = framing.pack({"ids": [ID] * framing.MAX_FETCH_IDS})
    assert len(asked) < 9 * 1024


# -- round trips -----------------------------------------------------------------------
@given(_envelopes)
def test_envelope_frames_round_trip(raws: list[bytes]) -> None:
    assert framing.envelope_list(framing.unpack(framing.pack({"e": raws}))) == raws


@given(_ids)
def test_id_frames_round_trip(ids: list[bytes]) -> None:
    assert framing.id_list(framing.unpack(framing.pack({"ids": ids}))) == ids


@given(_ids, st.integers(0, 300))
def test_deferred_ids_round_trip_up_to_what_was_sent(ids: list[bytes], sent: int) -> None:
    reply = framing.unpack(framing.pack({"accepted": 0, "invalid": 0, "deferred": ids}))
    if len(ids) <= sent:
        assert framing.deferred_ids(reply, sent) == ids
    else:
        assert _code(lambda: framing.deferred_ids(reply, sent)) == ("bad-frame", "deferred")


@given(st.lists(st.binary(max_size=9_000), max_size=30), st.integers(9_100, framing.MAX_FRAME_BYTES))
def test_batches_keep_order_and_fit(raws: list[bytes], room: int) -> None:
    out = framing.batches(raws, max_bytes=room)
    assert [raw for frame in out for raw in frame] == raws
    assert all(frame for frame in out)
    for frame in out:
        assert len(framing.pack({"e": frame})) <= room + framing.FRAME_SLACK


# -- every limit, refused with its code ------------------------------------------------
def _packed(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("data", "max_bytes"),
    [
        (_packed({"e": [b"x" * framing.MAX_FRAME_BYTES]}), framing.MAX_FRAME_BYTES),  # over the body limit
        (_packed({"e": []}), 3),  # over a smaller limit (the caller's)
        (_packed({"e": [b""] * (framing.MAX_FRAME_ITEMS + 1)}), framing.MAX_FRAME_BYTES),  # list too long
        (_packed({str(i): 0 for i in range(framing.MAX_FRAME_KEYS + 1)}), framing.MAX_FRAME_BYTES),  # map too big
        (_packed({1: 0}), framing.MAX_FRAME_BYTES),  # a key that is not text
        (_packed({"e": []}) + b"\xc0", framing.MAX_FRAME_BYTES),  # trailing bytes
        (_packed({"e": []})[:-1], framing.MAX_FRAME_BYTES),  # truncated
        (b"", framing.MAX_FRAME_BYTES),
        (b"\xc1", framing.MAX_FRAME_BYTES),  # a reserved byte
        (b"\xd6\xff\x00\x00\x00\x00", framing.MAX_FRAME_BYTES),  # an ext type (Timestamp)
        (b"\xdd\xff\xff\xff\xff", framing.MAX_FRAME_BYTES),  # array32 claiming 4G entries
        (b"\xc6\xff\xff\xff\xff", framing.MAX_FRAME_BYTES),  # bin32 claiming 4 GiB
        (_packed([1, 2, 3]), framing.MAX_FRAME_BYTES),  # not a map
        (_packed(b"\x00"), framing.MAX_FRAME_BYTES),
    ],
)
def test_a_frame_outside_the_limits_is_a_bad_frame(data: bytes, max_bytes: int) -> None:
    assert _code(lambda: framing.unpack(data, max_bytes)) == ("bad-frame", "frame")


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ({}, "e"),
        ({"e": "not a list"}, "e"),
        ({"e": [b"x", "text"]}, "e"),
        ({"e": [1]}, "e"),
    ],
)
def test_an_envelope_list_of_the_wrong_shape_is_a_bad_frame(frame: dict[str, Any], field: str) -> None:
    assert _code(lambda: framing.envelope_list(frame)) == ("bad-frame", field)


@pytest.mark.parametrize(
    "ids",
    [
        [ID] * (framing.MAX_FETCH_IDS + 1),  # more than one fetch may ask for
        [b"\x01" * 31],
        [b"\x01" * 33],
        ["01" * 32],
        ID,
        None,
    ],
)
def test_an_id_list_outside_its_limits_is_a_bad_frame(ids: Any) -> None:
    assert _code(lambda: framing.id_list({"ids": ids})) == ("bad-frame", "ids")


def test_an_id_list_takes_the_callers_limit() -> None:
    assert framing.id_list({"ids": [ID] * 3}, limit=3) == [ID] * 3
    assert _code(lambda: framing.id_list({"ids": [ID] * 4}, limit=3)) == ("bad-frame", "ids")


def test_a_fetchs_authors_are_optional_keys_within_their_limit() -> None:
    assert framing.author_list({"ids": []}) == []  # a fetch from a node before this field
    assert framing.author_list({"ids": [], "authors": [ID, ID]}) == [ID, ID]
    too_many = [ID] * (framing.MAX_FETCH_AUTHORS + 1)
    for authors in (too_many, [b"\x01" * 31], ID):
        assert _code(lambda a=authors: framing.author_list({"authors": a})) == ("bad-frame", "authors")


def test_a_bad_frame_is_the_remote_sides_fault_and_blames_it() -> None:
    error = BadFrame("a frame is a map", field="frame")
    assert error.side == "remote" and error.blames_sender and blames_sender("bad-frame")
    assert str(error) == "[bad-frame] frame: a frame is a map"


@pytest.mark.parametrize("value", [{"e": object()}, {"n": 2**64}, {"n": 1.5j}])
def test_what_no_frame_can_carry_is_a_local_error(value: dict[str, Any]) -> None:
    with pytest.raises(CannotEncode) as info:
        framing.pack(value)
    assert info.value.side == "local" and not info.value.blames_sender
    assert info.value.code == "cannot-encode"


# -- nothing but ProtocolError escapes --------------------------------------------------
@given(st.binary(max_size=300))
def test_unpack_raises_only_bad_frame_for_any_bytes(data: bytes) -> None:
    try:
        frame = framing.unpack(data)
    except BadFrame:
        return
    assert isinstance(frame, dict)


@given(_values)
def test_unpack_of_any_msgpack_value_is_a_map_or_a_bad_frame(value: Any) -> None:
    with contextlib.suppress(BadFrame):
        assert isinstance(framing.unpack(_packed(value)), dict)


@given(_values, st.sampled_from(["e", "ids", "deferred"]), st.integers(0, 10))
def test_the_field_readers_raise_only_bad_frame(value: Any, key: str, sent: int) -> None:
    for frame in ({key: value}, value):
        with contextlib.suppress(BadFrame):
            assert isinstance(framing.envelope_list(frame, key), list)
        with contextlib.suppress(BadFrame):
            assert isinstance(framing.id_list(frame, key), list)
        with contextlib.suppress(BadFrame):
            assert isinstance(framing.deferred_ids(frame, sent), list)


# -- tree signals (tree push, docs/protocol.md §12.7) ------------------------------------
_ID = b"\x07" * 32


@pytest.mark.parametrize(
    "signal",
    [
        framing.TreeSignal(announced=(_ID, b"\x08" * 32)),
        framing.TreeSignal(graft=True),
        framing.TreeSignal(prune=True),
        framing.TreeSignal(announced=(_ID,), graft=True),
        framing.TreeSignal(announced=(_ID,) * framing.MAX_ANNOUNCE_IDS, prune=True),
        framing.TreeSignal(announced=(_ID, b"\x08" * 32), hops=(0, None)),
        framing.TreeSignal(graft=True, roots=(_ID,)),
        framing.TreeSignal(prune=True, roots=(_ID,) * framing.MAX_SIGNAL_ROOTS),
    ],
)
def test_a_tree_signal_round_trips_through_its_bytes(signal: framing.TreeSignal) -> None:
    assert framing.tree_signal(framing.unpack(framing.pack(framing.tree_frame(signal)))) == signal


def test_a_tree_signal_names_only_what_it_says() -> None:
    assert framing.tree_frame(framing.TreeSignal(graft=True)) == {"graft": True}


def test_a_tree_signal_ignores_keys_of_later_versions() -> None:
    assert framing.tree_signal({"prune": True, "hops": 3}) == framing.TreeSignal(prune=True)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ({}, "names ids, graft or prune"),
        ({"ids": []}, "names ids, graft or prune"),
        ({"graft": False}, "names ids, graft or prune"),
        ({"graft": True, "prune": True}, "not both"),
        ({"graft": 1}, "graft: must be true or false"),
        ({"prune": "yes"}, "prune: must be true or false"),
        ({"ids": [_ID] * (framing.MAX_ANNOUNCE_IDS + 1)}, f"exceeds the limit of {framing.MAX_ANNOUNCE_IDS}"),
        ({"ids": [b"\x07" * 31]}, "32-byte ids"),
        ({"ids": _ID}, "must be a list"),
        ([_ID], "a frame is a map"),
        ({"ids": [_ID], "roots": [_ID]}, "roots come with a graft or a prune"),
        ({"prune": True, "roots": [b"\x07" * 31]}, "32-byte ids"),
        ({"graft": True, "roots": [_ID] * (framing.MAX_SIGNAL_ROOTS + 1)}, "exceeds the limit"),
    ],
)
def test_a_malformed_tree_signal_is_a_bad_frame_naming_what_is_wrong(frame: Any, message: str) -> None:
    with pytest.raises(BadFrame, match=message):
        framing.tree_signal(frame)


def test_hop_counts_are_optional_one_per_item_and_within_their_range() -> None:
    """``h`` beside a push's envelopes or an announcement's ids: tree push prefers
    shorter paths by it. Absent from older nodes and from flooding ones."""
    assert framing.hop_counts({"e": [b"x", b"y"]}, 2) == ()
    assert framing.hop_counts({"e": [b"x", b"y"], "h": [0, None]}, 2) == (0, None)
    assert framing.hop_counts({"h": [framing.MAX_HOP_COUNT]}, 1) == (framing.MAX_HOP_COUNT,)
    for hops in ([1], [1, 2, 3], "12", [-1, 0], [0, framing.MAX_HOP_COUNT + 1], [True, 1], [1.0, 2]):
        with pytest.raises(BadFrame, match=r"\] h: "):
            framing.hop_counts({"h": hops}, 2)
    with pytest.raises(BadFrame, match=r"\] h: hop counts"):
        framing.tree_signal({"ids": [_ID], "h": ["near"]})
    assert framing.tree_frame(framing.TreeSignal(announced=(_ID,), hops=(3,))) == {"ids": [_ID], "h": [3]}


def test_tree_in_a_push_is_read_as_a_flag_absent_meaning_no() -> None:
    assert framing.speaks_tree({"e": []}) is False  # a node before the field, or one that floods
    assert framing.speaks_tree({"e": [], "tree": True}) is True
    assert framing.speaks_tree({"accepted": 1, "tree": False}) is False
    with pytest.raises(BadFrame, match="tree: must be true or false"):
        framing.speaks_tree({"tree": "on"})


@given(_values)
def test_the_tree_readers_raise_only_bad_frame(value: Any) -> None:
    for frame in ({"ids": value}, {"graft": value}, {"tree": value}, {"ids": [_ID], "h": value}, value):
        with contextlib.suppress(BadFrame):
            assert isinstance(framing.tree_signal(frame), framing.TreeSignal)
        with contextlib.suppress(BadFrame):
            assert isinstance(framing.hop_counts(frame, 1), tuple)
        with contextlib.suppress(BadFrame):
            assert isinstance(framing.speaks_tree(frame), bool)


# -- range fetches (docs/protocol.md §12) ------------------------------------------------
_INF = framing.BOUND_INFINITY


def test_a_range_fetch_round_trips_and_keeps_ids_for_older_nodes() -> None:
    frame = framing.unpack(framing.pack(framing.range_frame((5, b"\x01"), (_INF, b""), 40)))
    assert framing.id_list(frame) == []  # an older node reads an empty id fetch, and answers {"e": []}
    assert framing.fetch_range(frame) == framing.RangeAsked((5, b"\x01"), (_INF, b""), 40)
    assert framing.fetch_range({"ids": []}) is None  # an id fetch
    assert framing.fetch_range({"range": [0, b"", 1, b""]}) == framing.RangeAsked(
        (0, b""), (1, b""), framing.MAX_FETCH_IDS
    )


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ({"range": [0, b"", 1]}, "range"),
        ({"range": (0, b"", 1, b"")}, "range"),
        ({"range": [5, b"", 5, b""]}, "range"),  # empty: lower not below upper
        ({"range": [6, b"", 5, b""]}, "range"),
        ({"range": [-1, b"", 5, b""]}, "range"),
        ({"range": [0, b"", _INF + 1, b""]}, "range"),
        ({"range": [0, b"", _INF, b"x"]}, "range"),
        ({"range": [0, b"\0" * 33, 5, b""]}, "range"),
        ({"range": [0, "text", 5, b""]}, "range"),
        ({"range": [True, b"", 5, b""]}, "range"),
        ({"range": [0, b"", 5, b""], "limit": 0}, "limit"),
        ({"range": [0, b"", 5, b""], "limit": framing.MAX_FETCH_IDS + 1}, "limit"),
        ({"range": [0, b"", 5, b""], "limit": "9"}, "limit"),
    ],
)
def test_a_range_out_of_shape_is_a_bad_frame(frame: dict[str, Any], field: str) -> None:
    assert _code(lambda: framing.fetch_range(frame)) == ("bad-frame", field)


def test_a_range_replys_next_is_a_bound_or_nil() -> None:
    assert framing.range_next({"e": [], "next": None}) is None
    assert framing.range_next({"e": [], "next": [7, b"\x02"]}) == (7, b"\x02")
    for bad in ([7], [7, b"", 1], [_INF, b"x"], [7, "x"], "next", 7):
        assert _code(lambda b=bad: framing.range_next({"next": b})) == ("bad-frame", "next")


def test_a_reconciliation_reply_says_whether_it_answers_ranges() -> None:
    assert framing.answers_ranges({"m": [], "ranges": True})
    assert not framing.answers_ranges({"m": []})  # a node before range fetches
    assert _code(lambda: framing.answers_ranges({"ranges": 1})) == ("bad-frame", "ranges")


@given(_values)
def test_the_range_readers_raise_only_bad_frame(value: Any) -> None:
    for frame in ({"range": value}, {"range": [0, b"", 1, b""], "limit": value}, {"next": value}, value):
        for read in (framing.fetch_range, framing.range_next, framing.answers_ranges):
            with contextlib.suppress(BadFrame):
                read(frame)
