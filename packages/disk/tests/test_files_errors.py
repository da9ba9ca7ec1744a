"""File priorities and the part file, rename/move/delete, and storage errors (fault injection)."""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
from disk_helpers import BLOCK, TTorrent, build_torrent, rand, read_file  # type: ignore[import-not-found]  # tests/ is on sys.path

from torrio.disk import (
    DiskError,
    FileSystem,
    MemoryFileSystem,
    NativeFileSystem,
    PieceVerified,
    StorageError,
    StorageFailed,
    TorrentStorage,
    open_disk_manager,
)
from torrio.testing.filesystem_conformance import FaultInjectingFileSystem

FsFactory = Callable[[str], FileSystem]


def three_files() -> TTorrent:
    # piece length 2 blocks; b.bin only has bytes in pieces shared with a.bin and c.bin
    return build_torrent(
        [
            ("a.bin", rand(3 * BLOCK, 21)),
            ("b.bin", rand(2 * BLOCK, 22)),
            ("c.bin", rand(3 * BLOCK, 23)),
        ],
        piece_length=2 * BLOCK,
    )


async def get_piece(storage: TorrentStorage, t: TTorrent, i: int) -> PieceVerified:
    for off, data in t.blocks(i):
        await storage.write_block(i, off, data)
    ev = await storage.events.receive()
    assert isinstance(ev, PieceVerified)
    return ev


async def test_priority_zero_file_is_not_created_edges_go_to_part_file(
    fs_factory: FsFactory,
) -> None:
    t = three_files()
    fs = fs_factory("a")
    async with open_disk_manager() as dm:
        storage = await dm.add_torrent(t, fs, file_priorities=[1, 0, 1])
        # piece 0 is a.bin, 1 is a.bin + b.bin, 2 is b.bin + c.bin, 3 is c.bin
        for i in range(t.num_pieces):
            assert (await get_piece(storage, t, i)).ok
        with pytest.raises(FileNotFoundError):
            fs.stat("t/b.bin")
        assert fs.stat(".t.parts").size > 0
        assert read_file(fs, "t/a.bin") == t.contents[0]
        assert read_file(fs, "t/c.bin") == t.contents[2]
        # edge pieces read back whole (the b.bin bytes come from the part file)
        assert await storage.read_block(1, 0, 2 * BLOCK) == t.piece(1)
        resume = await storage.save_resume_data()
        # now we want b.bin: its bytes move out of the part file
        await storage.set_file_priorities([1, 1, 1])
        assert read_file(fs, "t/b.bin") == t.contents[1]
        assert await storage.read_block(2, 0, 2 * BLOCK) == t.piece(2)
        await dm.remove_torrent(storage)
        # resume data from before the change is still usable: b.bin changed, so its pieces are
        # re-checked - and they check out
        again = await dm.add_torrent(t, fs, resume_data=resume, file_priorities=[1, 1, 1])
        assert again.have.all()


async def test_rename_file(fs_factory: FsFactory) -> None:
    t = three_files()
    fs = fs_factory("a")
    async with open_disk_manager() as dm:
        storage = await dm.add_torrent(t, fs)
        for i in range(t.num_pieces):
            await get_piece(storage, t, i)
        await storage.rename_file(0, "t/renamed/A.bin")
        assert storage.file_paths[0] == "t/renamed/A.bin"
        assert read_file(fs, "t/renamed/A.bin") == t.contents[0]
        assert await storage.read_block(0, 0, BLOCK) == t.piece(0)[:BLOCK]
        resume = await storage.save_resume_data()
        await dm.remove_torrent(storage)
        again = await dm.add_torrent(t, fs, resume_data=resume)
        assert again.file_paths[0] == "t/renamed/A.bin" and again.have.all()
        with pytest.raises(DiskError):
            await again.rename_file(1, "../escape")


async def test_move_storage(fs_factory: FsFactory) -> None:
    t = three_files()
    old, new = fs_factory("old"), fs_factory("new")
    async with open_disk_manager() as dm:
        storage = await dm.add_torrent(t, old, file_priorities=[1, 0, 1])
        for i in (0, 1, 3):
            await get_piece(storage, t, i)
        await storage.write_block(2, *t.blocks(2)[0])
        await storage.flush()
        await storage.move_storage(new)
        assert storage.fs is new
        assert read_file(new, "t/a.bin") == t.contents[0]
        assert new.stat(".t.parts").size > 0
        for path in ("t/a.bin", "t/c.bin", ".t.parts"):
            with pytest.raises(FileNotFoundError):
                old.stat(path)
        assert await storage.read_block(1, 0, 2 * BLOCK) == t.piece(1)
        await storage.write_block(2, *t.blocks(2)[1])
        assert await storage.events.receive() == PieceVerified(2, True, frozenset())
        assert read_file(new, "t/c.bin")[:BLOCK] == t.contents[2][:BLOCK]


async def test_move_storage_failure_keeps_old_storage() -> None:
    t = three_files()
    old = MemoryFileSystem()
    new = FaultInjectingFileSystem(MemoryFileSystem())
    async with open_disk_manager() as dm:
        storage = await dm.add_torrent(t, old)
        for i in range(t.num_pieces):
            await get_piece(storage, t, i)
        new.fail_write_at = 2
        with pytest.raises(StorageError) as info:
            await storage.move_storage(new)
        assert info.value.operation == "move" and info.value.errno == errno.ENOSPC
        assert storage.fs is old
        assert read_file(old, "t/c.bin") == t.contents[2]
        assert new.inner.paths() == [] if isinstance(new.inner, MemoryFileSystem) else True


async def test_delete_files(fs_factory: FsFactory) -> None:
    t = three_files()
    fs = fs_factory("a")
    async with open_disk_manager() as dm:
        storage = await dm.add_torrent(t, fs, file_priorities=[1, 0, 1])
        for i in (0, 1):
            await get_piece(storage, t, i)
        await storage.write_block(3, *t.blocks(3)[0])
        await dm.remove_torrent(storage, delete_files=True)
        for path in ("t/a.bin", "t/c.bin", ".t.parts"):
            with pytest.raises(FileNotFoundError):
                fs.stat(path)
        assert dm.statistics().write_cache_bytes == 0


async def test_enospc_pauses_keeps_verified_data_and_resumes() -> None:
    t = three_files()
    fs = FaultInjectingFileSystem(MemoryFileSystem())
    async with open_disk_manager() as dm:
        storage = await dm.add_torrent(t, fs)
        fs.fail_write_at = fs.writes + 1
        for off, data in t.blocks(0):
            await storage.write_block(0, off, data, "peer")
        ev = await storage.events.receive()
        assert isinstance(ev, StorageFailed)
        assert (ev.file, ev.operation, ev.errno) == ("t/a.bin", "write", errno.ENOSPC)
        assert not storage.have[0], "not on disk, so not had"
        assert storage.statistics().unwritten_pieces == 1
        with pytest.raises(StorageError):
            await storage.write_block(1, *t.blocks(1)[0])
        # still failing: resume raises and stays paused
        fs.fail_writes_from = fs.writes + 1
        with pytest.raises(StorageError):
            await storage.resume()
        assert storage.error is not None and not storage.have[0]
        fs.heal()
        assert await storage.resume() == ()
        assert await storage.events.receive() == PieceVerified(0, True, frozenset({"peer"}))
        assert list(storage.have) == [0] and storage.statistics().error is None
        assert read_file(fs, "t/a.bin")[: 2 * BLOCK] == t.piece(0)
        assert dm.statistics().write_cache_bytes == 0


async def test_failed_pressure_flush_drops_unverified_blocks() -> None:
    t = three_files()
    fs = FaultInjectingFileSystem(MemoryFileSystem())
    async with open_disk_manager(write_cache_bytes=BLOCK) as dm:
        storage = await dm.add_torrent(t, fs)
        await storage.write_block(0, *t.blocks(0)[0])
        fs.fail_writes_from = fs.writes + 1
        fs.fail_errno = errno.EACCES
        with pytest.raises(StorageError):
            await storage.write_block(1, *t.blocks(1)[0])  # must flush piece 0's block first
        ev = await storage.events.receive()
        assert isinstance(ev, StorageFailed) and ev.errno == errno.EACCES
        assert dm.statistics().write_cache_bytes == 0
        assert storage.blocks_present(0) == frozenset()


async def test_file_truncated_under_us(fs_factory: FsFactory) -> None:
    t = three_files()
    inner = fs_factory("a")
    fs = FaultInjectingFileSystem(inner)
    async with open_disk_manager() as dm:
        storage = await dm.add_torrent(t, fs)
        for i in range(t.num_pieces):
            await get_piece(storage, t, i)
        fs.truncate_under("t/c.bin", BLOCK)
        last = t.num_pieces - 1
        with pytest.raises(StorageError) as info:
            await storage.read_block(last, 0, BLOCK)
        assert info.value.file == "t/c.bin" and info.value.operation == "read"
        ev = await storage.events.receive()
        assert isinstance(ev, StorageFailed) and ev.pieces_lost == (last,)
        assert not storage.have[last]
        lost = await storage.resume()
        assert set(lost) == {2}, "the other piece of c.bin is gone too"
        assert sorted(storage.have) == [0, 1]
        for i in (2, last):
            assert (await get_piece(storage, t, i)).ok
        assert read_file(fs, "t/c.bin") == t.contents[2]


async def test_file_removed_under_us_and_eio() -> None:
    t = three_files()
    fs = FaultInjectingFileSystem(MemoryFileSystem())
    async with open_disk_manager() as dm:
        storage = await dm.add_torrent(t, fs)
        for i in range(t.num_pieces):
            await get_piece(storage, t, i)
        fs.fail_reads = True
        with pytest.raises(StorageError) as info:
            await storage.read_block(0, 0, BLOCK)
        assert info.value.errno == errno.EIO
        fs.heal()
        fs.remove_under("t/a.bin")
        assert set(await storage.resume()) == {1}  # piece 0 was already lost to the EIO
        assert sorted(storage.have) == [2, 3]
        assert (await storage.check()).count() == 2


async def test_exclusive_operations_wait_for_pieces_in_flight() -> None:
    t = three_files()
    fs = MemoryFileSystem()
    async with open_disk_manager() as dm:
        storage = await dm.add_torrent(t, fs)
        for off, data in t.blocks(0):
            await storage.write_block(0, off, data)
        # rename while piece 0 is being hashed/written: it lands in the renamed file
        await storage.rename_file(0, "t/x.bin")
        await storage.wait_idle()
        assert (await storage.events.receive()).ok  # type: ignore[union-attr]
        assert read_file(fs, "t/x.bin")[: 2 * BLOCK] == t.piece(0)
        with trio.fail_after(5):
            await storage.check()


async def test_move_storage_between_native_roots_links_files(tmp_path: Path) -> None:
    t = three_files()
    old, new = NativeFileSystem(tmp_path / "old"), NativeFileSystem(tmp_path / "new")
    async with open_disk_manager() as dm:
        storage = await dm.add_torrent(t, old)
        for i in range(t.num_pieces):
            await get_piece(storage, t, i)
        inode = (tmp_path / "old" / "t" / "c.bin").stat().st_ino
        await storage.move_storage(new)
        assert (tmp_path / "new" / "t" / "c.bin").stat().st_ino == inode, "linked, not copied"
        assert not (tmp_path / "old" / "t" / "c.bin").exists()
        assert read_file(new, "t/c.bin") == t.contents[2]
        assert not list((tmp_path / "new").rglob("*.torrio-move"))


async def test_move_storage_copy_keeps_holes() -> None:
    t = build_torrent({"big": rand(256 * BLOCK, 3)}, piece_length=4 * BLOCK)
    old, new = MemoryFileSystem(), MemoryFileSystem()
    async with open_disk_manager() as dm:
        storage = await dm.add_torrent(t, old)
        await get_piece(storage, t, 15)
        await storage.move_storage(new)
        assert new.stat("t/big").size == 256 * BLOCK
        assert new._allocated() <= 1 << 20, "the unwritten 3 MiB stay sparse"
        assert await storage.read_block(15, 0, BLOCK) == t.piece(15)[:BLOCK]


async def test_regression_delete_while_piece_is_finishing_does_not_recreate_files() -> None:
    t = three_files()
    fs = MemoryFileSystem()
    async with open_disk_manager() as dm:
        storage = await dm.add_torrent(t, fs)
        blocks = t.blocks(0)
        for off, data in blocks:
            storage.write_block_nowait(0, off, data)  # the hashing task has not started yet
        await storage.delete_files()
        await storage.wait_idle()
        assert fs.paths() == []
        assert dm.statistics().write_cache_bytes == 0
        assert storage.have.none()
