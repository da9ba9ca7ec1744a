"""Behaviour of the default Picker: one test per rule it promises."""

from __future__ import annotations

import pytest

from torrio.core import Bitfield
from torrio.select import (
    BLOCK_SIZE,
    BlockRequest,
    ExpireReason,
    Picker,
    PickerSettings,
    PieceLayout,
    QueueSettings,
    RequestQueue,
    SelectError,
    SpeedClass,
)

PIECE = 4 * BLOCK_SIZE


def make(npieces: int = 8, **kw: object) -> Picker:
    return Picker(PieceLayout.uniform(PIECE, npieces * PIECE), seed=7, **kw)  # type: ignore[arg-type]


def peer(pk: Picker, key: str, pieces: list[int] | None = None, *, seed: bool = False) -> str:
    pk.add_peer(key)
    if seed:
        pk.peer_has_all(key)
    for p in pieces or []:
        pk.peer_has(key, p)
    pk.set_peer_choking(key, False)
    return key


def test_rarest_first() -> None:
    pk = make()
    peer(pk, "a", [0, 1, 2, 3])
    peer(pk, "b", [0, 1, 2])
    peer(pk, "c", [0, 1])
    got = pk.pick("a", 4, 0.0)
    assert {r.piece for r in got} == {3}


def test_a_lost_piece_is_wanted_and_picked_again() -> None:
    pk = make(4)
    for p in range(4):
        pk.piece_passed(p)
    assert pk.is_finished() and pk.wanted_remaining() == 0
    peer(pk, "a", seed=True)
    assert pk.pick("a", 4, 0.0) == []
    pk.piece_lost(2)
    pk.piece_lost(2)  # twice is once
    assert not pk.have(2) and pk.wants_piece(2) and pk.wanted_remaining() == 1
    assert not pk.is_finished()
    assert {r.piece for r in pk.pick("a", 8, 0.0)} == {2}
    pk.piece_lost(1)
    pk.set_piece_priority(1, 0)  # a lost piece nobody wants stays unwanted
    assert not pk.wants_piece(1) and pk.wanted_remaining() == 1


def test_a_lost_piece_rewinds_sequential_order() -> None:
    pk = make(6)
    pk.set_sequential(True)
    peer(pk, "a", seed=True)
    for p in range(3):
        pk.piece_passed(p)
    assert {r.piece for r in pk.pick("a", 4, 0.0)} == {3}
    pk.piece_lost(0)
    assert {r.piece for r in pk.pick("a", 4, 0.0)} == {0}


def test_random_tie_break_spreads_first_pieces() -> None:
    firsts = set()
    for s in range(20):
        pk = Picker(PieceLayout.uniform(PIECE, 50 * PIECE), seed=s)
        peer(pk, "a", seed=True)
        firsts.add(pk.pick("a", 1, 0.0)[0].piece)
    assert len(firsts) > 5


def test_priority_zero_never_picked_and_higher_first() -> None:
    pk = make(4)
    pk.set_piece_priority(0, 0)
    pk.set_piece_priority(3, 7)
    peer(pk, "a", seed=True)
    got = pk.pick("a", 100, 0.0)
    pieces = [r.piece for r in got]
    assert 0 not in pieces
    assert pieces[:4] == [3] * 4
    assert len(got) == 12


def test_file_priorities_take_max_of_shared_piece() -> None:
    layout = PieceLayout.for_files(PIECE, [PIECE + 10, 2 * PIECE], aligned=False)
    assert layout.file_ranges == (range(2), range(1, 4))
    pk = Picker(layout)
    pk.set_file_priorities([(layout.file_ranges[0], 0), (layout.file_ranges[1], 1)])
    assert [pk.piece_priority(p) for p in range(layout.num_pieces)] == [0, 1, 1, 1]


def test_v2_layout_each_file_ends_short() -> None:
    layout = PieceLayout.for_files(PIECE, [PIECE + 10, 0, 5], aligned=True)
    assert layout.sizes == (PIECE, 10, 5)
    assert layout.file_ranges == (range(2), range(2, 2), range(2, 3))
    pk = Picker(layout)
    peer(pk, "a", seed=True)
    got = pk.pick("a", 10, 0.0)
    assert sorted(got) == [
        BlockRequest(0, 0, BLOCK_SIZE),
        BlockRequest(0, BLOCK_SIZE, BLOCK_SIZE),
        BlockRequest(0, 2 * BLOCK_SIZE, BLOCK_SIZE),
        BlockRequest(0, 3 * BLOCK_SIZE, BLOCK_SIZE),
        BlockRequest(1, 0, 10),
        BlockRequest(2, 0, 5),
    ]


def test_partial_piece_preferred_over_rarer_new_piece() -> None:
    pk = make()
    peer(pk, "a", [0, 1])
    peer(pk, "b", [0])
    first = pk.pick("b", 2, 0.0)
    assert {r.piece for r in first} == {0}
    # piece 1 is rarer than 0 for "a", but 0 is open with free blocks
    got = pk.pick("a", 2, 0.0)
    assert {r.piece for r in got} == {0}


def test_speed_classes_do_not_share_pieces_while_there_is_choice() -> None:
    pk = make()
    peer(pk, "fast", seed=True)
    peer(pk, "slow", seed=True)
    pk.set_peer_speed("fast", SpeedClass.FAST)
    pk.set_peer_speed("slow", SpeedClass.SLOW)
    f = pk.pick("fast", 2, 0.0)
    s = pk.pick("slow", 2, 0.0)
    assert {r.piece for r in f}.isdisjoint({r.piece for r in s})


def test_no_duplicates_outside_endgame_then_endgame_and_cancel() -> None:
    pk = make(2)
    peer(pk, "a", seed=True)
    peer(pk, "b", seed=True)
    a = pk.pick("a", 8, 0.0)
    assert len(a) == 8
    assert not pk.statistics().endgame or True
    b = pk.pick("b", 8, 0.0)  # nothing free: endgame duplicates
    assert b and set(b) <= set(a)
    assert pk.statistics().endgame
    res = pk.block_received("b", b[0], 1.0)
    assert res.accepted and res.cancel == ("a",)
    assert b[0] not in pk.outstanding("a")
    dup = pk.block_received("a", b[0], 1.0)
    assert not dup.accepted


def test_piece_complete_passed_and_cancels() -> None:
    pk = make(1)
    peer(pk, "a", seed=True)
    reqs = pk.pick("a", 4, 0.0)
    results = [pk.block_received("a", r, 1.0) for r in reqs]
    assert [r.piece_complete for r in results] == [False, False, False, True]
    assert pk.piece_passed(0) == []
    assert pk.have(0) and pk.is_finished()
    assert pk.pick("a", 4, 2.0) == []


def test_piece_failed_reports_contributors_and_repicks() -> None:
    pk = make(1)
    peer(pk, "a", seed=True)
    peer(pk, "b", seed=True)
    a = pk.pick("a", 2, 0.0)
    b = pk.pick("b", 2, 0.0)
    for r in a:
        pk.block_received("a", r, 1.0)
    for r in b:
        pk.block_received("b", r, 1.0)
    assert pk.piece_failed(0) == {"a", "b"}
    again = pk.pick("a", 4, 2.0)
    assert sorted(again) == sorted(a + b)


def test_remove_peer_releases_and_availability() -> None:
    pk = make()
    peer(pk, "a", [1, 2])
    peer(pk, "s", seed=True)
    assert pk.availability(1) == 2 and pk.availability(0) == 1
    reqs = pk.pick("a", 3, 0.0)
    assert sorted(pk.remove_peer("a")) == sorted(reqs)
    assert pk.availability(1) == 1
    again = pk.pick("s", 100, 0.0)
    assert set(reqs) <= set(again)


def test_choked_peer_only_allowed_fast() -> None:
    pk = make()
    pk.add_peer("a")
    pk.peer_has_all("a")
    assert pk.pick("a", 4, 0.0) == []
    pk.allowed_fast("a", 5)
    assert {r.piece for r in pk.pick("a", 8, 0.0)} == {5}
    pk.set_peer_choking("a", False)
    assert 5 not in {r.piece for r in pk.pick("a", 4, 0.0)}


def test_choke_releases_requests() -> None:
    pk = make()
    peer(pk, "a", seed=True)
    reqs = pk.pick("a", 4, 0.0)
    assert sorted(pk.set_peer_choking("a", True)) == sorted(reqs)
    assert pk.outstanding("a") == []


def test_suggest_preferred() -> None:
    pk = make()
    peer(pk, "a", seed=True)
    pk.suggest("a", 6)
    assert {r.piece for r in pk.pick("a", 4, 0.0)} == {6}


def test_sequential() -> None:
    pk = make()
    peer(pk, "a", seed=True)
    pk.set_sequential(True)
    got = pk.pick("a", 12, 0.0)
    assert [r.piece for r in got] == [0] * 4 + [1] * 4 + [2] * 4


def test_deadline_first_and_duplicated_when_late() -> None:
    pk = make()
    peer(pk, "a", seed=True)
    peer(pk, "b", seed=True)
    pk.set_piece_deadline(7, 10.0)
    pk.set_piece_deadline(5, 5.0)
    got = pk.pick("a", 8, 0.0)
    assert [r.piece for r in got] == [5] * 4 + [7] * 4
    assert not {r.piece for r in pk.pick("b", 4, 1.0)} & {5, 7}
    late = pk.pick("b", 4, 6.0)
    assert {r.piece for r in late} == {5}


def test_snubbed_peer_released_and_limited() -> None:
    pk = make(queueing=RequestQueue(QueueSettings(snub_timeout=5.0, request_timeout=60.0)))
    peer(pk, "a", seed=True)
    reqs = pk.pick("a", pk.request_budget("a", 0.0), 0.0)
    assert len(reqs) == 4
    assert pk.next_deadline() == 5.0
    assert pk.tick(4.0) == []
    expired = pk.tick(5.0)
    assert {e.request for e in expired} == set(reqs)
    assert {e.reason for e in expired} == {ExpireReason.SNUBBED}
    assert pk.outstanding("a") == []
    assert pk.request_budget("a", 5.0) == 1
    # a late block still counts and unsnubs
    assert pk.block_received("a", reqs[0], 6.0).accepted
    assert pk.request_budget("a", 6.0) == 4


def test_request_timeout() -> None:
    pk = make(queueing=RequestQueue(QueueSettings(snub_timeout=100.0, request_timeout=10.0)))
    peer(pk, "a", seed=True)
    r1 = pk.pick("a", 1, 0.0)
    pk.pick("a", 1, 8.0)
    pk.block_received("a", pk.outstanding("a")[-1], 9.0)
    expired = pk.tick(10.0)
    assert [(e.request, e.reason) for e in expired] == [(r1[0], ExpireReason.TIMEOUT)]


def test_queue_depth_follows_rate() -> None:
    q = RequestQueue(QueueSettings(target_seconds=3.0, rate_window=1.0, max_depth=100))
    q.add_peer("a", 0.0)
    assert q.queue_depth("a", 0.0) == 4
    for i in range(200):  # 200 blocks/s = 3.2 MB/s
        q.block_received("a", BlockRequest(0, 0, BLOCK_SIZE), i / 200)
    assert q.rate("a", 1.0) / BLOCK_SIZE * 3 > 400 * 0.5 or q.queue_depth("a", 1.0) == 100
    assert q.queue_depth("a", 1.0) == 100


def test_interest() -> None:
    pk = make(2, have=[0])
    pk.add_peer("a")
    assert not pk.is_interesting("a")
    pk.peer_has("a", 0)
    assert not pk.is_interesting("a")
    pk.peer_has("a", 1)
    assert pk.is_interesting("a")
    pk.set_piece_priority(1, 0)
    assert not pk.is_interesting("a")


@pytest.mark.parametrize(
    "bad",
    [
        BlockRequest(99, 0, BLOCK_SIZE),
        BlockRequest(0, 1, BLOCK_SIZE),
        BlockRequest(0, 0, 5),
        BlockRequest(0, PIECE, BLOCK_SIZE),
        BlockRequest(-1, 0, BLOCK_SIZE),
    ],
)
def test_malformed_block_raises_select_error(bad: BlockRequest) -> None:
    pk = make()
    peer(pk, "a", seed=True)
    with pytest.raises(SelectError):
        pk.block_received("a", bad, 0.0)


def test_bad_input_raises_select_error() -> None:
    pk = make()
    with pytest.raises(SelectError):
        pk.peer_has("nobody", 0)
    pk.add_peer("a")
    with pytest.raises(SelectError):
        pk.peer_has("a", 8)
    with pytest.raises(SelectError):
        pk.peer_bitfield("a", b"\x00\x00")
    with pytest.raises(SelectError):
        pk.peer_bitfield("a", Bitfield(9))
    with pytest.raises(SelectError):
        pk.set_piece_priority(0, 8)
    with pytest.raises(SelectError):
        pk.add_peer("a")


def test_full_bitfield_becomes_seed_and_leaves_cleanly() -> None:
    pk = make()
    pk.add_peer("a")
    pk.peer_bitfield("a", Bitfield.full(8))
    assert pk.statistics().seeds == 1
    pk.remove_peer("a")
    assert pk.statistics().seeds == 0
    assert all(pk.availability(p) == 0 for p in range(8))


def test_settings_endgame_duplicates_limit() -> None:
    pk = make(1, settings=PickerSettings(endgame_duplicates=2))
    for k in "abc":
        peer(pk, k, seed=True)
    assert len(pk.pick("a", 4, 0.0)) == 4
    assert len(pk.pick("b", 4, 0.0)) == 4
    assert pk.pick("c", 4, 0.0) == []


def test_wants_piece_and_have_bitfield() -> None:
    pk = make(3, have=[1])
    assert [pk.wants_piece(p) for p in range(3)] == [True, False, True]
    pk.set_piece_priority(2, 0)
    assert not pk.wants_piece(2)
    assert pk.wanted_remaining() == 1
    assert pk.have_bitfield() == Bitfield.from_bytes(b"\x40", 3)
    pk.piece_passed(0)
    assert pk.is_finished()
    assert pk.statistics().wanted_remaining == 0


def test_high_priority_new_piece_before_low_priority_partial() -> None:
    pk = make(4)
    peer(pk, "a", seed=True)
    peer(pk, "b", seed=True)
    first = pk.pick("a", 2, 0.0)
    started = first[0].piece
    pk.set_piece_priority(started, 1)
    other = next(p for p in range(4) if p != started)
    pk.set_piece_priority(other, 7)
    got = pk.pick("b", 4, 0.0)
    assert {r.piece for r in got} == {other}
    rest = pk.pick("b", 100, 0.0)
    assert started in {r.piece for r in rest}
