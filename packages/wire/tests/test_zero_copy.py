"""Opt-in zero-copy receive: Piece blocks as memoryviews into the receive buffer."""

from __future__ import annotations

import os

import trio
import trio.testing

from torrio.wire import Have, Message, Piece, WireDecoder, encode_many, open_peer_connection


def test_default_mode_still_copies_into_bytes() -> None:
    d = WireDecoder()
    d.receive_data(bytes(encode_many([Piece(0, 0, b"x" * 100)])))
    ev = d.next_event()
    assert isinstance(ev, Piece) and type(ev.block) is bytes


def test_zero_copy_views_survive_later_receives() -> None:
    """Views handed out stay correct while the decoder keeps receiving: it never moves data
    inside a buffer a view may point into (a small buffer forces many buffer turnovers)."""
    blocks = [os.urandom(16384) for _ in range(64)]
    msgs: list[Message] = [Piece(i, 0, b) for i, b in enumerate(blocks)]
    wire = bytes(encode_many([*msgs, Have(1)]))
    d = WireDecoder(zero_copy=True, buffer_size=1 << 16)
    got: list[Piece] = []
    for i in range(0, len(wire), 7000):  # odd chunking: messages straddle reads
        d.receive_data(wire[i : i + 7000])
        while True:
            ev = d.next_event()
            if isinstance(ev, Piece):
                assert isinstance(ev.block, memoryview) and ev.block.readonly
                got.append(ev)
            elif ev == Have(1):
                continue
            else:
                break
    assert [bytes(p.block) for p in got] == blocks
    assert [p.index for p in got] == list(range(64))


async def test_zero_copy_through_peer_connection_receive_batch() -> None:
    s1, s2 = trio.testing.memory_stream_pair()
    blocks = [os.urandom(16384) for _ in range(40)]
    async with (
        open_peer_connection(s1, num_pieces=100) as a,
        open_peer_connection(s2, num_pieces=100, zero_copy=True) as b,
    ):
        for i, blk in enumerate(blocks):
            await a.send(Piece(i, 0, blk))
        kept: list[Piece] = []
        while len(kept) < len(blocks):
            for ev in await b.receive_batch():
                assert isinstance(ev, Piece) and isinstance(ev.block, memoryview)
                kept.append(ev)
        assert [bytes(p.block) for p in kept] == blocks
