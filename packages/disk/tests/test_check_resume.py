"""Full check, fast resume, seed mode, and the kill-and-resume guarantee."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import trio
from disk_helpers import BLOCK, TTorrent, build_torrent, rand, read_file  # type: ignore[import-not-found]  # tests/ is on sys.path
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from torrio.disk import (
    DiskError,
    FileStat,
    FileSystem,
    MemoryFileSystem,
    PieceVerified,
    ResumeData,
    TorrentStorage,
    open_disk_manager,
)
from torrio.disk import read_file as read_disk_file

FsFactory = Callable[[str], FileSystem]


def torrent(version: str = "v1") -> TTorrent:
    return build_torrent(
        [("x.bin", rand(5 * BLOCK + 3, 11)), ("d/y.bin", rand(6 * BLOCK, 12))],
        piece_length=2 * BLOCK,
        version=version,
    )


def put_files(fs: FileSystem, t: TTorrent) -> None:
    for f, data in zip(t.files, t.contents, strict=True):
        if not f.is_pad:
            path = "/".join(f.path)
            fs.open(path, create=True)
            fs.write(path, 0, [data])


class CountingFileSystem(MemoryFileSystem):
    """Counts bytes read (to prove resume does not re-hash)."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes_read = 0

    def read(self, path: str, offset: int, buffer: bytearray | memoryview) -> int:
        n = super().read(path, offset, buffer)
        self.bytes_read += n
        return n


async def write_pieces(storage: TorrentStorage, t: TTorrent, pieces: Sequence[int]) -> None:
    for i in pieces:
        for off, data in t.blocks(i):
            await storage.write_block(i, off, data)
        ev = await storage.events.receive()
        assert ev == PieceVerified(i, True, frozenset())


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
async def test_check_finds_existing_and_corrupt_pieces(fs_factory: FsFactory, version: str) -> None:
    t = torrent(version)
    fs = fs_factory("a")
    put_files(fs, t)
    # corrupt one byte of the second file's first piece
    y = next(f for f in t.files if f.path[-1] == "y.bin")
    fs.write("t/d/y.bin", 5, [b"\xee"])
    bad = y.offset // t.piece_length
    async with open_disk_manager(threads=2) as dm:
        storage = await dm.add_torrent(t, fs)
        assert set(storage.have.missing()) == {bad}
        seen: list[tuple[int, int]] = []
        have = await storage.check(progress=lambda d, n: seen.append((d, n)))
        assert set(have.missing()) == {bad}
        assert seen[-1] == (t.num_pieces, t.num_pieces) and len(seen) == t.num_pieces


async def test_check_without_files_has_nothing() -> None:
    t = torrent()
    async with open_disk_manager() as dm:
        storage = await dm.add_torrent(t, MemoryFileSystem())
        assert (await storage.check()).none()


class CancellingFileSystem(MemoryFileSystem):
    """Cancels ``scope`` (from the worker thread) on the ``at``-th read."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at
        self.reads = 0
        self.scope: trio.CancelScope | None = None

    def read(self, path: str, offset: int, buffer: bytearray | memoryview) -> int:
        self.reads += 1
        if self.reads == self.at and self.scope is not None:
            trio.from_thread.run_sync(self.scope.cancel)
        return super().read(path, offset, buffer)


async def test_check_is_cancellable() -> None:
    t = build_torrent({"f": rand(64 * BLOCK, 3)}, piece_length=BLOCK)
    fs = CancellingFileSystem(at=3)
    put_files(fs, t)
    async with open_disk_manager(threads=1) as dm:
        storage = await dm.add_torrent(t, fs, check=False)
        assert storage.have.none()
        seen: list[int] = []
        with trio.CancelScope() as scope:
            fs.scope = scope
            await storage.check(progress=lambda done, total: seen.append(done))
        assert scope.cancelled_caught
        assert storage.have.count() == 3, "pieces checked before the cancel keep their state"
        assert seen == [1, 2, 3]
        fs.scope = None
        assert (await storage.check()).all(), "a later check completes"


async def test_resume_loads_without_rehashing() -> None:
    t = torrent()
    fs = CountingFileSystem()
    async with open_disk_manager() as dm:
        storage = await dm.add_torrent(t, fs)
        await write_pieces(storage, t, [0, 1, 4])
        await storage.write_block(2, *t.blocks(2)[1])  # one block of an unfinished piece
        await storage.flush()
        resume = await storage.save_resume_data()
        await dm.remove_torrent(storage)
        fs.bytes_read = 0
        again = await dm.add_torrent(t, fs, resume_data=resume)
        assert sorted(again.have) == [0, 1, 4]
        assert fs.bytes_read == 0, "valid resume data is trusted"
        assert again.blocks_present(2) == {1}
        # finish piece 2 with only the missing block: the flushed one is read back from disk
        await again.write_block(2, *t.blocks(2)[0])
        assert await again.events.receive() == PieceVerified(2, True, frozenset())


async def test_resume_rechecks_changed_files() -> None:
    t = torrent()
    fs = MemoryFileSystem()
    async with open_disk_manager() as dm:
        storage = await dm.add_torrent(t, fs)
        await write_pieces(storage, t, range(t.num_pieces))
        resume = await storage.save_resume_data()
        await dm.remove_torrent(storage)
        fs.write("t/d/y.bin", 0, [b"\x00"])  # changes mtime and corrupts piece of y's start
        again = await dm.add_torrent(t, fs, resume_data=resume)
        y_first = (5 * BLOCK + 3) // t.piece_length
        assert set(again.have.missing()) == {y_first}


@pytest.mark.parametrize(
    "resume", [b"", b"garbage", b"de", ResumeData(1, 2, b"\x00", {}, ()).to_bytes()]
)
async def test_bad_or_foreign_resume_data_falls_back_to_check(resume: bytes) -> None:
    t = torrent()
    fs = MemoryFileSystem()
    put_files(fs, t)
    async with open_disk_manager() as dm:
        storage = await dm.add_torrent(t, fs, resume_data=resume)
        assert storage.have.all()


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=300), st.integers(0, 299), st.binary(min_size=1, max_size=4))
def test_resume_decoder_raises_only_disk_error(junk: bytes, at: int, patch: bytes) -> None:
    good = ResumeData(
        10, 32768, b"\xff\xc0", {3: b"\x80"}, ((5, 6), None, (7, 8)), {1: ("a", "b")}
    ).to_bytes()
    assert ResumeData.from_bytes(good).renamed == {1: ("a", "b")}
    for data in (junk, good[:at] + patch + good[at + len(patch) :], good[:at]):
        with contextlib.suppress(DiskError):
            ResumeData.from_bytes(data)


async def test_seed_mode_hashes_on_first_read() -> None:
    t = torrent()
    fs = CountingFileSystem()
    put_files(fs, t)
    fs.write("t/x.bin", 2 * BLOCK + 1, [b"\x99"])  # corrupt piece 1
    async with open_disk_manager() as dm:
        storage = await dm.add_torrent(t, fs, seed_mode=True)
        assert storage.have.all() and fs.bytes_read == 0
        assert await storage.read_block(0, 0, BLOCK) == t.piece(0)[:BLOCK]
        with pytest.raises(DiskError):
            await storage.read_block(1, 0, BLOCK)
        assert await storage.events.receive() == PieceVerified(1, False)
        assert not storage.have[1]
        assert storage.statistics().unverified_pieces == t.num_pieces - 2
        # unverified pieces are not claimed in resume data
        rd = ResumeData.from_bytes(await storage.save_resume_data())
        assert rd.have[0] == 0x80


# -- kill and resume ----------------------------------------------------------------------------


class CrashableFileSystem(MemoryFileSystem):
    """Writes are volatile until ``sync``; ``crash()`` returns what a disk would hold afterwards."""

    def __init__(self) -> None:
        super().__init__()
        self.durable = MemoryFileSystem()
        self.pending: dict[str, list[tuple[int, bytes]]] = {}

    def open(self, path: str, *, create: bool = False) -> None:
        super().open(path, create=create)
        if create:
            self.durable.open(path, create=True)

    def write(self, path: str, offset: int, buffers: Sequence[Any]) -> int:
        n = super().write(path, offset, buffers)
        self.pending.setdefault(path, []).append((offset, b"".join(bytes(b) for b in buffers)))
        return n

    def truncate(self, path: str, length: int) -> None:
        super().truncate(path, length)
        self.pending.setdefault(path, []).append((-1, length.to_bytes(8, "big")))

    def _apply(self, path: str, ops: list[tuple[int, bytes]]) -> None:
        for off, data in ops:
            if off < 0:
                self.durable.truncate(path, int.from_bytes(data, "big"))
            else:
                self.durable.write(path, off, [data])

    def sync(self, path: str) -> None:
        super().sync(path)
        self._apply(path, self.pending.pop(path, []))

    def rename(self, src: str, dst: str) -> None:
        # the rename itself is durable (NativeFileSystem fsyncs the folder), the data is not
        super().rename(src, dst)
        self.durable.rename(src, dst)
        self.pending[dst] = self.pending.pop(src, [])

    def remove(self, path: str) -> None:
        super().remove(path)
        self.durable.remove(path)
        self.pending.pop(path, None)

    def crash(self, rng: random.Random) -> FileSystem:
        # metadata (sizes, mtimes) survives as it was at the crash; data only where synced, plus
        # a random part of the later writes: the worst case for resume-data validation
        live = {path: super(CrashableFileSystem, self).stat(path) for path in self.paths()}
        for path, ops in self.pending.items():
            self._apply(path, [op for op in ops if rng.random() < 0.2])
        after = MemoryFileSystem()
        for path in self.durable.paths():
            after.open(path, create=True)
            after.write(path, 0, [read_file(self.durable, path)])
        real_stat = after.stat

        def stat(path: str) -> FileStat:
            real = real_stat(path)
            old = live.get(path)
            return FileStat(real.size, old.mtime_ns) if old is not None else real

        after.stat = stat  # type: ignore[method-assign]
        return after


@pytest.mark.parametrize("seed", range(16))
async def test_kill_and_resume_never_claims_a_bad_piece(seed: int) -> None:
    rng = random.Random(seed)
    t = build_torrent(
        [("x.bin", rand(7 * BLOCK + 9, seed)), ("y.bin", rand(9 * BLOCK, seed + 1))],
        piece_length=2 * BLOCK,
        version=rng.choice(["v1", "v2", "hybrid"]),
    )
    fs = CrashableFileSystem()
    blocks = [(i, off, data) for i in range(t.num_pieces) for off, data in t.blocks(i)]
    rng.shuffle(blocks)
    cut = rng.randrange(len(blocks))
    resume: bytes | None = None
    async with open_disk_manager(write_cache_bytes=3 * BLOCK) as dm:
        storage = await dm.add_torrent(t, fs, event_buffer=1000)
        for n, (i, off, data) in enumerate(blocks[:cut]):
            if rng.random() < 0.1:  # a liar
                data = bytes(len(data))
            await storage.write_block(i, off, data)
            if n % 9 == 0:
                resume = await storage.save_resume_data()
        await storage.wait_idle()
        if rng.random() < 0.5:
            resume = await storage.save_resume_data()
        # the process dies here: nothing after the last save_resume_data() is guaranteed
        after = fs.crash(rng)
    async with open_disk_manager() as dm:
        again = await dm.add_torrent(t, after, resume_data=resume)
        for i in again.have:
            got = bytearray(t.piece_length)
            view = memoryview(got)[: len(t.piece(i))]
            again._read_piece_sync(i, view)
            assert bytes(view) == t.piece(i), f"piece {i} claimed but wrong on disk"
        # finish the download from there: liar blocks that survived the crash fail the hash and
        # the piece is simply downloaded again
        for _attempt in range(2):
            for i in list(again.have.missing()):
                present = again.blocks_present(i)
                for off, data in t.blocks(i):
                    if off // BLOCK not in present:
                        await again.write_block(i, off, data)
            await again.wait_idle()
            while True:
                try:
                    again.events.receive_nowait()
                except trio.WouldBlock:
                    break
        assert again.have.all(), (
            list(again.have.missing()),
            again._partials,
            again.error,
            t.version,
        )
        for f, data in zip(t.files, t.contents, strict=True):
            if not f.is_pad:
                assert read_file(after, "/".join(f.path)) == data


async def test_regression_complete_unfinished_piece_failing_check_is_dropped() -> None:
    # resume data says every block of piece 0 is on disk, but the data there is wrong: the
    # piece must become downloadable again instead of staying "complete" forever
    t = torrent()
    fs = MemoryFileSystem()
    put_files(fs, t)
    fs.write("t/x.bin", 0, [b"\xff" * 10])
    stats = [(fs.stat(p).size, fs.stat(p).mtime_ns) for p in ("t/x.bin", "t/d/y.bin")]
    rd = ResumeData(
        t.num_pieces, t.piece_length, bytes((t.num_pieces + 7) // 8), {0: b"\xc0"}, (*stats, None)
    )
    async with open_disk_manager() as dm:
        storage = await dm.add_torrent(t, fs, resume_data=rd.to_bytes())
        assert not storage.have[0] and storage.blocks_present(0) == frozenset()
        await write_pieces(storage, t, [0])


@pytest.mark.parametrize("seed", range(4))
async def test_resume_file_is_atomic_across_crashes(seed: int) -> None:
    rng = random.Random(seed)
    t = torrent()
    fs = CrashableFileSystem()
    state = CrashableFileSystem()
    saved: list[bytes] = []
    async with open_disk_manager() as dm:
        storage = await dm.add_torrent(t, fs)
        for i in range(t.num_pieces):
            await write_pieces(storage, t, [i])
            saved.append(await storage.save_resume_file(state, "resume/t.resume"))
            if rng.random() < 0.3:
                break
        after = state.crash(rng)
    got = read_disk_file(after, "resume/t.resume")
    assert got == saved[-1]
    async with open_disk_manager() as dm:
        again = await dm.add_torrent(t, fs, resume_data=got)
        assert again.have.count() == len(saved)
