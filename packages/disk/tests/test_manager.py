"""DiskManager: writing, hashing, reading, caching, backpressure - against both backends."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import trio
import trio.testing
from disk_helpers import BLOCK, TTorrent, build_torrent, rand, read_file  # type: ignore[import-not-found]  # tests/ is on sys.path

from torrio.disk import (
    DiskError,
    FileSystem,
    MemoryFileSystem,
    PieceVerified,
    TorrentStorage,
    open_disk_manager,
)

FsFactory = Callable[[str], FileSystem]


def multi_file(version: str = "v1", piece_length: int = 4 * BLOCK) -> TTorrent:
    return build_torrent(
        [
            ("a.bin", rand(3 * BLOCK + 100, 1)),
            ("sub/b.bin", rand(BLOCK // 2, 2)),
            ("empty", b""),
            ("sub/c.bin", rand(9 * BLOCK + 7, 3)),
        ],
        piece_length=piece_length,
        version=version,
    )


async def write_all(
    storage: TorrentStorage, t: TTorrent, order: Sequence[int] | None = None, peer: Any = "p"
) -> list[PieceVerified]:
    """Write every block (shuffled) and collect one PieceVerified per piece."""
    blocks = [(i, off, data) for i in range(t.num_pieces) for off, data in t.blocks(i)]
    random.Random(7).shuffle(blocks)
    events: list[PieceVerified] = []
    async with trio.open_nursery() as nursery:

        async def drain() -> None:
            async for ev in storage.events:
                assert isinstance(ev, PieceVerified)
                events.append(ev)
                if len(events) == t.num_pieces:
                    return

        nursery.start_soon(drain)
        for i, off, data in blocks:
            await storage.write_block(i, off, data, peer)
    return events


def check_files(fs: FileSystem, t: TTorrent) -> None:
    for f, data in zip(t.files, t.contents, strict=True):
        if not f.is_pad:
            assert read_file(fs, "/".join(f.path)) == data, f.path


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
async def test_download_all_pieces(fs_factory: FsFactory, version: str) -> None:
    t = multi_file(version)
    fs = fs_factory("a")
    async with open_disk_manager() as dm:
        storage = await dm.add_torrent(t, fs)
        assert storage.have.none()
        assert fs.stat("t/empty").size == 0, "wanted empty files exist from the start"
        events = await write_all(storage, t)
        assert sorted(e.index for e in events) == list(range(t.num_pieces))
        assert all(e.ok and e.contributors == {"p"} for e in events)
        assert storage.have.all()
        check_files(fs, t)
        for i in range(t.num_pieces):
            for off, data in t.blocks(i):
                assert await storage.read_block(i, off, len(data)) == data
        stats = dm.statistics()
        assert stats.write_cache_bytes == 0
        assert stats.read_cache_hits > 0 and stats.pieces_passed == t.num_pieces
    # pad files are never stored
    assert all(".pad" not in p for p in getattr(fs, "paths", list)())


async def test_bad_piece_names_contributors_and_is_not_written() -> None:
    t = multi_file()
    fs = MemoryFileSystem()
    async with open_disk_manager() as dm:
        storage = await dm.add_torrent(t, fs)
        blocks = t.blocks(0)
        await storage.write_block(0, blocks[0][0], blocks[0][1], "good")
        await storage.write_block(0, blocks[1][0], b"\x00" * BLOCK, "liar")
        for off, data in blocks[2:]:
            await storage.write_block(0, off, data, "good")
        ev = await storage.events.receive()
        assert ev == PieceVerified(0, False, frozenset({"good", "liar"}))
        assert not storage.have[0]
        assert fs.paths() == ["t/empty"], "a failed piece is never written"
        # the piece can be downloaded again
        for off, data in blocks:
            await storage.write_block(0, off, data, "other")
        assert await storage.events.receive() == PieceVerified(0, True, frozenset({"other"}))


async def test_bad_block_shapes_raise() -> None:
    t = multi_file()
    async with open_disk_manager() as dm:
        storage = await dm.add_torrent(t, MemoryFileSystem())
        with pytest.raises(DiskError):
            await storage.write_block(0, 1, b"x" * BLOCK)
        with pytest.raises(DiskError):
            await storage.write_block(0, 0, b"x" * 10)
        with pytest.raises(DiskError):
            await storage.write_block(t.num_pieces, 0, b"x" * BLOCK)
        with pytest.raises(DiskError):
            await storage.read_block(0, 0, BLOCK)
        assert storage.statistics().partial_pieces == 0


async def test_duplicate_blocks_are_ignored() -> None:
    t = multi_file()
    async with open_disk_manager() as dm:
        storage = await dm.add_torrent(t, MemoryFileSystem())
        off, data = t.blocks(1)[0]
        await storage.write_block(1, off, data, "a")
        await storage.write_block(1, off, b"\xff" * BLOCK, "b")
        assert storage.blocks_present(1) == {0}
        for off, data in t.blocks(1)[1:]:
            await storage.write_block(1, off, data, "a")
        assert await storage.events.receive() == PieceVerified(1, True, frozenset({"a"}))
        await storage.write_block(1, 0, data[:BLOCK] if len(data) >= BLOCK else data, "c")
        assert storage.statistics().partial_pieces == 0, "blocks of had pieces are ignored"


async def test_memory_pressure_flushes_partials(fs_factory: FsFactory) -> None:
    t = build_torrent({"big.bin": rand(40 * BLOCK + 5, 9)}, piece_length=4 * BLOCK)
    fs = fs_factory("a")
    async with open_disk_manager(write_cache_bytes=3 * BLOCK) as dm:
        storage = await dm.add_torrent(t, fs)
        events: list[PieceVerified] = []
        peak = 0
        async with trio.open_nursery() as nursery:

            async def drain() -> None:
                async for ev in storage.events:
                    assert isinstance(ev, PieceVerified)
                    events.append(ev)
                    if len(events) == t.num_pieces:
                        return

            nursery.start_soon(drain)
            # interleave: first block of every piece, then second block of every piece, ...
            for k in range(4):
                for i in range(t.num_pieces):
                    blocks = t.blocks(i)
                    if k < len(blocks):
                        await storage.write_block(i, *blocks[k])
                        peak = max(peak, dm.statistics().write_cache_bytes)
        assert peak <= 3 * BLOCK
        assert all(e.ok for e in events) and storage.have.all()
        assert dm.statistics().pressure_flushes > 0
        check_files(fs, t)


class BlockingFileSystem(MemoryFileSystem):
    """Writes wait until ``gate`` is set (a disk slower than the network)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def write(self, path: str, offset: int, buffers: Sequence[Any]) -> int:
        assert self.gate.wait(10)
        return super().write(path, offset, buffers)


async def test_backpressure_when_disk_is_slow() -> None:
    t = build_torrent({"f": rand(8 * BLOCK, 4)}, piece_length=2 * BLOCK)
    fs = BlockingFileSystem()
    async with open_disk_manager(write_cache_bytes=2 * BLOCK) as dm:
        storage = await dm.add_torrent(t, fs, event_buffer=100)
        for off, data in t.blocks(0):
            await storage.write_block(0, off, data)
        # piece 0 is being written (stuck); its bytes still count against the cache
        done = trio.Event()

        async def writer() -> None:
            await storage.write_block(1, *t.blocks(1)[0])
            done.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer)
            await trio.testing.wait_all_tasks_blocked()
            assert not done.is_set(), "writer must wait while the cache is full"
            assert dm.statistics().writers_waiting == 1
            fs.gate.set()
        assert done.is_set()
        assert await storage.events.receive() == PieceVerified(0, True, frozenset())


async def test_read_cache_is_bounded_lru() -> None:
    t = build_torrent({"f": rand(16 * BLOCK, 5)}, piece_length=2 * BLOCK)
    fs = MemoryFileSystem()
    async with open_disk_manager(read_cache_bytes=4 * BLOCK) as dm:
        storage = await dm.add_torrent(t, fs, event_buffer=100)
        await write_all(storage, t)
        for i in range(t.num_pieces):
            assert await storage.read_block(i, 0, BLOCK) == t.piece(i)[:BLOCK]
            assert await storage.read_block(i, BLOCK, BLOCK) == t.piece(i)[BLOCK:]
            assert dm.statistics().read_cache_bytes <= 4 * BLOCK
        s = dm.statistics()
        assert s.read_cache_misses == t.num_pieces and s.read_cache_hits == t.num_pieces


async def test_remove_torrent_flushes_partial_blocks(fs_factory: FsFactory) -> None:
    t = build_torrent({"f": rand(8 * BLOCK, 6)}, piece_length=4 * BLOCK)
    fs = fs_factory("a")
    async with open_disk_manager() as dm:
        storage = await dm.add_torrent(t, fs)
        await storage.write_block(1, *t.blocks(1)[2])
        await dm.remove_torrent(storage)
        assert dm.statistics().torrents == 0 and dm.statistics().write_cache_bytes == 0
        buf = bytearray(BLOCK)
        fs.read("t/f", 6 * BLOCK, buf)
        assert bytes(buf) == t.blocks(1)[2][1]
        with pytest.raises(DiskError):
            await storage.write_block(1, *t.blocks(1)[0])


async def test_v2_torrent_without_piece_layers_is_refused() -> None:
    t = build_torrent({"big": rand(9 * BLOCK, 1)}, piece_length=2 * BLOCK, version="v2")
    t.piece_layers = {}
    async with open_disk_manager() as dm:
        with pytest.raises(DiskError):
            await dm.add_torrent(t, MemoryFileSystem())


async def test_regression_several_writers_waiting_for_room_all_wake() -> None:
    t = build_torrent({"f": rand(8 * BLOCK, 4)}, piece_length=2 * BLOCK)
    fs = BlockingFileSystem()
    async with open_disk_manager(write_cache_bytes=2 * BLOCK) as dm:
        storage = await dm.add_torrent(t, fs, event_buffer=100)
        for off, data in t.blocks(0):
            await storage.write_block(0, off, data)
        done: list[int] = []

        async def writer(piece: int) -> None:
            await storage.write_block(piece, *t.blocks(piece)[0])
            done.append(piece)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer, 1)
            nursery.start_soon(writer, 2)
            await trio.testing.wait_all_tasks_blocked()
            assert dm.statistics().writers_waiting == 2
            fs.gate.set()
        assert sorted(done) == [1, 2]
