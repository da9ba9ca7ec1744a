"""Whatever a peer sends, the picker raises only SelectError (or accepts it)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from torrio.select import BLOCK_SIZE, BlockRequest, Picker, PieceLayout, SelectError

LAYOUT = PieceLayout.uniform(3 * BLOCK_SIZE, 5 * 3 * BLOCK_SIZE + 77)


def _picker() -> Picker:
    pk = Picker(LAYOUT, seed=1)
    pk.add_peer("p")
    pk.set_peer_choking("p", False)
    return pk


ints = st.integers(-(2**40), 2**40) | st.integers(-3, 3 * BLOCK_SIZE + 3)


@settings(max_examples=200, deadline=None)
@given(piece=ints, offset=ints, length=ints)
def test_block_fields_fuzz(piece: int, offset: int, length: int) -> None:
    pk = _picker()
    pk.peer_has_all("p")
    r = BlockRequest(piece, offset, length)
    for call in (
        lambda: pk.block_received("p", r, 0.0),
        lambda: pk.block_rejected("p", r),
    ):
        with contextlib.suppress(SelectError):
            call()


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=4), piece=ints)
def test_bitfield_and_have_fuzz(data: bytes, piece: int) -> None:
    pk = _picker()
    with contextlib.suppress(SelectError):
        pk.peer_bitfield("p", data)
    calls: list[Callable[[], object]] = [
        lambda: pk.peer_has("p", piece),
        lambda: pk.suggest("p", piece),
        lambda: pk.allowed_fast("p", piece),
    ]
    for call in calls:
        with contextlib.suppress(SelectError):
            call()
    # whatever happened, availability is consistent and picking works
    got = pk.pick("p", 100, 1.0)
    for r in got:
        assert pk.availability(r.piece) == 1


def test_unrequested_block_is_accepted_once() -> None:
    pk = _picker()
    pk.peer_has_all("p")
    r = LAYOUT.block(2, 1)
    assert pk.block_received("p", r, 0.0).accepted
    assert not pk.block_received("p", r, 0.0).accepted
    assert r not in pk.pick("p", 100, 0.0)


def test_regression_late_block_after_timeout_cancels_new_holder() -> None:
    from torrio.select import QueueSettings, RequestQueue

    pk = Picker(LAYOUT, queueing=RequestQueue(QueueSettings(snub_timeout=2.0)), seed=1)
    for k in ("slow", "fast"):
        pk.add_peer(k)
        pk.peer_has_all(k)
        pk.set_peer_choking(k, False)
    r = pk.pick("slow", 1, 0.0)[0]
    assert [e.request for e in pk.tick(2.0)] == [r]
    again = pk.pick("fast", 100, 2.0)
    assert r in again
    res = pk.block_received("slow", r, 2.5)  # it arrives after all
    assert res.accepted and res.cancel == ("fast",)
    assert r not in pk.outstanding("fast")


def test_deadline_on_priority_zero_piece_ignored_and_cleared_on_pass() -> None:
    pk = _picker()
    pk.peer_has_all("p")
    pk.set_piece_priority(0, 0)
    pk.set_piece_deadline(0, 1.0)
    pk.set_piece_deadline(4, 2.0)
    got = pk.pick("p", 3, 0.0)
    assert {r.piece for r in got} == {4}
    pk.clear_piece_deadline(4)
    pk.piece_passed(4)
    assert all(r.piece not in (0, 4) for r in pk.pick("p", 100, 0.0))
