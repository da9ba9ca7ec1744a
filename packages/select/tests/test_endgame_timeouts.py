"""Endgame not held back by choking peers; timed-out blocks go to another peer first."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from torrio.select import (
    BLOCK_SIZE,
    ExpireReason,
    Picker,
    PieceLayout,
    QueueSettings,
    RequestQueue,
)

PIECE = 4 * BLOCK_SIZE


def make(npieces: int = 4, **kw: object) -> Picker:
    return Picker(PieceLayout.uniform(PIECE, npieces * PIECE), seed=3, **kw)  # type: ignore[arg-type]


def test_endgame_not_delayed_by_pieces_only_choking_peers_have() -> None:
    """Regression: a free piece that only a choking peer had kept endgame off, so the unchoked
    peers sat idle instead of duplicating the last outstanding blocks."""
    pk = make(2)
    pk.add_peer("a")
    pk.peer_has("a", 0)
    pk.set_peer_choking("a", False)
    pk.add_peer("b")
    pk.peer_has("b", 0)
    pk.set_peer_choking("b", False)
    pk.add_peer("choker")
    pk.peer_has_all("choker")  # has piece 1 too, but keeps choking us
    a = pk.pick("a", 4, 0.0)
    assert {r.piece for r in a} == {0} and len(a) == 4
    assert pk.statistics().free == 1  # piece 1 is free, but nobody unchoked has it
    assert pk.statistics().endgame
    b = pk.pick("b", 4, 0.0)
    assert b and set(b) <= set(a)  # endgame duplicates of a's blocks
    # once the choker unchokes us, its free piece holds endgame back again
    pk.set_peer_choking("choker", False)
    assert not pk.statistics().endgame
    assert {r.piece for r in pk.pick("choker", 4, 0.0)} == {1}


def test_choking_changes_move_availability_both_ways() -> None:
    pk = make(3)
    pk.add_peer("x")
    pk.peer_bitfield("x", bytes([0b0110_0000]))
    assert pk._free_unchoked == 0
    pk.set_peer_choking("x", False)
    assert pk._free_unchoked == 2
    pk.set_peer_choking("x", True)
    assert pk._free_unchoked == 0
    pk.set_peer_choking("x", False)
    pk.remove_peer("x")
    assert pk._free_unchoked == 0 and pk._uavail == [0, 0, 0]


def _timeout_picker() -> Picker:
    q = RequestQueue(QueueSettings(request_timeout=30.0, snub_timeout=1e9))
    pk = make(1, queueing=q)
    for key in ("slow", "other"):
        pk.add_peer(key)
        pk.peer_has_all(key)
        pk.set_peer_choking(key, False)
    return pk


def test_timed_out_block_goes_to_another_peer_first() -> None:
    """Regression: a block released by a request timeout was picked again by the very peer that
    let it time out (its partial piece came first in that peer's next pick)."""
    pk = _timeout_picker()
    first = pk.pick("slow", 1, 0.0)
    assert len(first) == 1
    expired = pk.tick(31.0)
    assert [(e.peer, e.request, e.reason) for e in expired] == [
        ("slow", first[0], ExpireReason.TIMEOUT)
    ]
    again = pk.pick("slow", 4, 31.0)
    assert first[0] not in again  # the other three blocks, not the timed-out one
    assert len(again) == 3
    got = pk.pick("other", 4, 31.0)
    assert got[0] == first[0]  # the free block first; the rest are endgame duplicates
    assert set(got[1:]) <= set(again)


def test_timed_out_block_returns_to_same_peer_when_nobody_else_has_it() -> None:
    q = RequestQueue(QueueSettings(request_timeout=30.0, snub_timeout=1e9))
    pk = make(1, queueing=q)
    pk.add_peer("only")
    pk.peer_has_all("only")
    pk.set_peer_choking("only", False)
    r = pk.pick("only", 1, 0.0)
    pk.tick(31.0)
    got = pk.pick("only", 4, 31.0)
    assert r[0] in got and len(got) == 4  # someone has to fetch it: no starvation


def test_avoid_entries_cleared_on_receive_and_peer_leave() -> None:
    pk = _timeout_picker()
    r = pk.pick("slow", 1, 0.0)[0]
    pk.tick(31.0)
    assert pk._avoid
    assert pk.block_received("slow", r, 32.0).accepted  # it arrived late after all
    assert not pk._avoid
    r2 = pk.pick("slow", 1, 40.0)[0]
    pk.tick(80.0)
    assert pk._avoid
    pk.remove_peer("slow")
    assert not pk._avoid
    assert r2 in pk.pick("other", 4, 80.0)


def _brute_free_unchoked(pk: Picker) -> int:
    """Free wanted pieces some unchoked non-seed peer has (unchoked seeds count apart)."""
    count = 0
    for p in range(pk.num_pieces):
        if pk._slot[p] < 0 or not pk._prio[p]:
            continue
        if any(
            not s.choked and not s.seed and s.bits[p >> 3] & (0x80 >> (p & 7))
            for s in pk._peers.values()
        ):
            count += 1
    return count


ops = st.lists(
    st.tuples(
        st.sampled_from(
            ["has", "bitfield", "all", "none", "choke", "unchoke", "leave", "pick", "pass", "prio"]
        ),
        st.integers(0, 3),
        st.integers(0, 9),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_unchoked_availability_matches_brute_force(seq: list[tuple[str, int, int]]) -> None:
    """The incremental count of free pieces available from unchoked peers never drifts."""
    pk = make(10)
    peers = [f"p{i}" for i in range(4)]
    for op, who, x in seq:
        key = peers[who]
        if key not in pk._peers:
            pk.add_peer(key)
        if op == "has":
            pk.peer_has(key, x)
        elif op == "bitfield":
            pk.peer_bitfield(key, bytes([(x * 37) & 0xFF, (x * 11) & 0xC0]))
        elif op == "all":
            pk.peer_has_all(key)
        elif op == "none":
            pk.peer_has_none(key)
        elif op == "choke":
            pk.set_peer_choking(key, True)
        elif op == "unchoke":
            pk.set_peer_choking(key, False)
        elif op == "leave":
            pk.remove_peer(key)
        elif op == "pick":
            pk.pick(key, 3, 0.0)
        elif op == "pass":
            pk.piece_passed(x)
        elif op == "prio":
            pk.set_piece_priority(x, x % 3)
        assert pk._free_unchoked == _brute_free_unchoked(pk)
        assert pk._useeds == sum(s.seed and not s.choked for s in pk._peers.values())


def test_blocks_of_a_snubbed_peer_go_to_another_peer_first() -> None:
    q = RequestQueue(QueueSettings(request_timeout=1e9, snub_timeout=15.0))
    pk = make(1, queueing=q)
    for key in ("snubbed", "other"):
        pk.add_peer(key)
        pk.peer_has_all(key)
        pk.set_peer_choking(key, False)
    taken = pk.pick("snubbed", 2, 0.0)
    expired = pk.tick(16.0)
    assert {e.reason for e in expired} == {ExpireReason.SNUBBED}
    assert not set(taken) & set(pk.pick("snubbed", 1, 16.0))
    assert set(taken) <= set(pk.pick("other", 4, 16.0))
