"""Revelation strategies: standard, lazy bitfield, BEP 16 super-seeding."""

from __future__ import annotations

from torrio.core import Bitfield
from torrio.select import (
    LazyBitfieldRevelation,
    SendBitfield,
    SendHave,
    SendHaveAll,
    SendHaveNone,
    StandardRevelation,
    SuperSeedingRevelation,
)


def test_standard_messages() -> None:
    assert StandardRevelation(Bitfield.full(5)).peer_connected("p", fast=True) == [SendHaveAll()]
    assert StandardRevelation(Bitfield(5)).peer_connected("p", fast=True) == [SendHaveNone()]
    assert StandardRevelation(Bitfield(5)).peer_connected("p", fast=False) == []
    (msg,) = StandardRevelation(Bitfield.full(5)).peer_connected("p", fast=False)
    assert isinstance(msg, SendBitfield) and msg.bitfield == Bitfield.full(5)


def test_standard_have_goes_to_every_peer_once() -> None:
    rv = StandardRevelation(Bitfield(5))
    rv.peer_connected("a", fast=True)
    rv.peer_connected("b", fast=False)
    assert rv.piece_completed(2) == [("a", SendHave(2)), ("b", SendHave(2))]
    assert rv.piece_completed(2) == []
    assert rv.may_upload("a", 2) and not rv.may_upload("a", 1)


def test_lazy_bitfield_holds_back_then_haves() -> None:
    have = Bitfield.full(100)
    msgs = LazyBitfieldRevelation(have, withhold=5, seed=2).peer_connected("p", fast=True)
    bf = msgs[0]
    assert isinstance(bf, SendBitfield)
    assert bf.bitfield.count() == 95  # never a full bitfield, never HAVE ALL
    haves = [m.piece for m in msgs[1:] if isinstance(m, SendHave)]
    assert len(haves) == 5
    assert set(bf.bitfield) | set(haves) == set(range(100))


def test_lazy_bitfield_few_pieces() -> None:
    have = Bitfield(10)
    have.set(3)
    msgs = LazyBitfieldRevelation(have, withhold=5, seed=2).peer_connected("p", fast=False)
    assert isinstance(msgs[0], SendBitfield) and msgs[0].bitfield.count() == 0
    assert msgs[1:] == [SendHave(3)]


def test_super_seeding_reveals_one_piece_each_and_next_after_spread() -> None:
    rv = SuperSeedingRevelation(Bitfield.full(8), seed=4)
    a = rv.peer_connected("a", fast=True)
    assert a[0] == SendHaveNone() and len(a) == 2
    pa = a[1]
    assert isinstance(pa, SendHave)
    b = rv.peer_connected("b", fast=False)
    assert len(b) == 1
    pb = b[0]
    assert isinstance(pb, SendHave) and pb.piece != pa.piece  # a piece never shown before
    assert rv.may_upload("a", pa.piece) and not rv.may_upload("a", pb.piece)
    # "a" downloads its piece: nothing new yet (it has not spread)
    assert rv.peer_has("a", pa.piece) == []
    # "b" gets that piece from "a": it spread, "a" is shown a fresh piece
    out = rv.peer_has("b", pa.piece)
    assert len(out) == 1 and out[0][0] == "a"
    nxt = out[0][1]
    assert isinstance(nxt, SendHave) and nxt.piece not in {pa.piece, pb.piece}
    assert rv.may_upload("a", nxt.piece)


def test_super_seeding_prefers_least_seen_when_all_shown() -> None:
    rv = SuperSeedingRevelation(Bitfield.full(3), seed=1)
    shown = []
    for k in "abc":
        (m,) = rv.peer_connected(k, fast=False)
        assert isinstance(m, SendHave)
        shown.append(m.piece)
    assert sorted(shown) == [0, 1, 2]
    # two peers already have piece 0 and 1 is common too; a new peer gets the rarest it lacks
    rv.peer_bitfield("a", Bitfield.from_bytes(b"\xc0", 3))
    rv.peer_bitfield("b", Bitfield.from_bytes(b"\xc0", 3))
    (m,) = rv.peer_connected("d", fast=False)
    assert m == SendHave(2)


def test_super_seeding_peer_that_has_its_piece_gets_another() -> None:
    rv = SuperSeedingRevelation(Bitfield.full(4), seed=1)
    (m,) = rv.peer_connected("a", fast=False)
    assert isinstance(m, SendHave)
    bf = Bitfield(4)
    bf.set(m.piece)
    out = rv.peer_bitfield("a", bf)
    assert len(out) == 1 and out[0][0] == "a"


def test_super_seeding_leaving_peer_uncounted() -> None:
    rv = SuperSeedingRevelation(Bitfield.full(2), seed=1)
    rv.peer_connected("a", fast=False)
    rv.peer_bitfield("a", Bitfield.full(2))
    rv.peer_left("a")
    rv.peer_left("a")
    assert rv.peer_has("a", 0) == []
