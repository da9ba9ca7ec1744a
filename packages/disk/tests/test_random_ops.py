"""Random interleavings of writes (some from liars), flushes, checks, resume saves and reloads:
what is "had" is always correct on disk, the cache cap holds, and liars are always named."""

from __future__ import annotations

from typing import Any

import trio
from disk_helpers import BLOCK, build_torrent, rand  # type: ignore[import-not-found]  # tests/ is on sys.path
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from torrio.disk import MemoryFileSystem, PieceVerified, StorageFailed, open_disk_manager

T = {
    v: build_torrent(
        [("a", rand(3 * BLOCK + 5, 1)), ("b", rand(BLOCK, 2)), ("c", rand(4 * BLOCK, 3))],
        piece_length=2 * BLOCK,
        version=v,
    )
    for v in ("v1", "hybrid")
}

_write = st.tuples(st.just("write"), st.integers(0, 63), st.integers(0, 1), st.booleans())
op = st.one_of(
    _write,
    _write,
    _write,
    _write,
    st.tuples(st.just("flush")),
    st.tuples(st.just("save")),
    st.tuples(st.just("reload")),
    st.tuples(st.just("check")),
    st.tuples(st.just("idle")),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["v1", "hybrid"]), st.lists(op, min_size=5, max_size=80), st.integers(2, 6))
def test_random_operations(version: str, ops: list[Any], cap_blocks: int) -> None:
    trio.run(_run, version, ops, cap_blocks)


async def _run(version: str, ops: list[Any], cap_blocks: int) -> None:
    t = T[version]
    fs = MemoryFileSystem()
    cap = cap_blocks * BLOCK
    sent: dict[int, dict[int, str]] = {}  # piece -> block -> peer that sent it
    pad_blocks: set[tuple[int, int]] = set()  # (piece, block) lying wholly in pad files
    resume: bytes | None = None
    async with open_disk_manager(write_cache_bytes=cap) as dm:
        storage = await dm.add_torrent(t, fs, event_buffer=10_000)

        def drain() -> None:
            while True:
                try:
                    ev = storage.events.receive_nowait()
                except trio.WouldBlock:
                    return
                assert not isinstance(ev, StorageFailed), ev
                assert isinstance(ev, PieceVerified)
                by_block = sent.pop(ev.index, {})
                peers = set(by_block.values())
                # A block wholly inside a pad file is discarded (pad bytes are zeros by
                # definition), so a liar there cannot make the piece fail.
                counted = {p for b, p in by_block.items() if (ev.index, b) not in pad_blocks}
                if "unknown" not in peers:
                    assert ev.ok == ("liar" not in counted), (ev, by_block)
                assert set(ev.contributors) <= peers

        for o in ops:
            kind = o[0]
            if kind == "write":
                _, piece, b, good = o
                piece %= t.num_pieces
                blocks = t.blocks(piece)
                b %= len(blocks)
                off, data = blocks[b]
                peer = "good" if good else "liar"
                known = storage.blocks_present(piece) | set(sent.get(piece, {}))
                if storage.have[piece] or b in known:
                    continue
                if not any(data):  # the payload is random: an all-zero block is padding
                    pad_blocks.add((piece, b))
                await storage.write_block(piece, off, data if good else b"\xaa" * len(data), peer)
                sent.setdefault(piece, {})[b] = peer
            elif kind == "flush":
                await storage.flush()
            elif kind == "save":
                await storage.wait_idle()
                drain()
                resume = await storage.save_resume_data()
            elif kind in ("reload", "check"):
                await storage.wait_idle()
                drain()
                if kind == "check":
                    await storage.check()
                else:
                    await dm.remove_torrent(storage)
                    storage = await dm.add_torrent(t, fs, resume_data=resume, event_buffer=10_000)
                # unverified blocks may be gone, or back from older resume data (then we no
                # longer know who sent them)
                sent = {
                    i: {b: sent.get(i, {}).get(b, "unknown") for b in storage.blocks_present(i)}
                    for i in range(t.num_pieces)
                    if storage.blocks_present(i)
                }
            else:
                await storage.wait_idle()
                drain()
            assert dm.statistics().write_cache_bytes <= cap
        await storage.wait_idle()
        drain()
        for i in storage.have:
            buf = bytearray(len(t.piece(i)))
            storage._read_piece_sync(i, memoryview(buf))
            assert bytes(buf) == t.piece(i), f"piece {i} had but wrong on disk"


def test_regression_liar_in_pad_block_does_not_fail_the_piece() -> None:
    # Found by the state test: a liar's block wholly inside a hybrid torrent's pad file is
    # discarded, so the piece passes when the real blocks are good.
    trio.run(
        _run,
        "hybrid",
        [("flush",), ("flush",), ("write", 32, 1, False), ("flush",), ("write", 62, 0, True)],
        2,
    )


def test_regression_liar_pad_bytes_completing_a_piece_in_cache_are_discarded() -> None:
    # The same liar, but its pad-only block arrives last and completes the piece in the cache:
    # the verdict must not depend on order (pad bytes are zeros by definition).
    trio.run(
        _run,
        "hybrid",
        [("flush",), ("flush",), ("flush",), ("write", 47, 0, True), ("write", 57, 1, False)],
        2,
    )
