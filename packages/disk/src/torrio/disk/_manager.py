"""DiskManager: the trio shell that turns blocks from peers into verified pieces on disk.

Blocks wait in a write cache (a hard cap on bytes, shared by all torrents) until their piece is
complete; then one worker-thread call hashes the piece and, if it matches, writes it with one
vectored write per file. When the cache is full, the writer itself flushes the partial piece
holding the most memory (and waits if nothing can be flushed): that is the backpressure. Reads
load a whole piece into an LRU read cache, so the following block requests of a peer hit memory.

Every disk call runs on ``trio.to_thread`` under one ``CapacityLimiter``. There are no hidden
tasks: piece hashing runs in the nursery of :func:`open_disk_manager`, which waits for it on exit.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import os
import threading
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar

import attrs
import trio

from torrio.core import Bitfield, CoreError

from ._errors import DiskError, StorageError
from ._events import (
    DiskEvent,
    DiskStatistics,
    PieceVerified,
    StorageFailed,
    StorageStatistics,
)
from ._filesystem import Buffer, FileSystem, split_path
from ._native import NativeFileSystem
from ._pieces import BLOCK_SIZE, PieceMap, Span, piece_ok
from ._resume import ResumeData
from ._torrent import TorrentLike

T = TypeVar("T")

_COPY_CHUNK = 1 << 20
_HASH_BATCH_BYTES = 16 << 20
_NO_LINK = frozenset(
    {_errno.EXDEV, _errno.EPERM, _errno.EMLINK, _errno.ENOTSUP, _errno.EOPNOTSUPP, _errno.EACCES}
)


@attrs.define(eq=False)
class _Partial:
    """A piece being downloaded: blocks in memory, blocks already flushed, who sent them."""

    index: int
    size: int
    nblocks: int
    blocks: dict[int, bytes] = attrs.Factory(dict)
    on_disk: set[int] = attrs.Factory(set)
    contributors: set[Hashable] = attrs.Factory(set)
    cached: int = 0
    busy: bool = False  # hashing/writing the complete piece
    flushing: bool = False  # writing blocks out under memory pressure
    complete_pending: bool = False

    def complete(self) -> bool:
        return len(self.blocks) + len(self.on_disk) == self.nblocks


@attrs.define(eq=False)
class _Unwritten:
    """A verified piece whose write failed: kept in memory until ``resume()`` writes it."""

    blocks: dict[int, bytes]
    contributors: frozenset[Hashable]
    cached: int


def write_file_atomic(fs: FileSystem, path: str, data: bytes) -> None:
    """Replace ``path`` in ``fs`` with ``data`` atomically (temp file, sync, rename).

    Synchronous (run it on a worker thread); raises :class:`StorageError`.
    """
    tmp = path + ".tmp"
    try:
        fs.open(tmp, create=True)
        fs.truncate(tmp, 0)
        fs.write(tmp, 0, [data])
        fs.sync(tmp)
        fs.close(tmp)
        fs.rename(tmp, path)
    except OSError as exc:
        raise StorageError.from_os_error(path, "write", exc) from exc


def read_file(fs: FileSystem, path: str) -> bytes | None:
    """The whole content of ``path`` in ``fs``, or ``None`` if it does not exist.

    Synchronous (run it on a worker thread); raises :class:`StorageError` on other failures.
    """
    try:
        size = fs.stat(path).size
        buf = bytearray(size)
        got = fs.read(path, 0, buf)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError.from_os_error(path, "read", exc) from exc
    return bytes(buf[:got])


_thread_buffers = threading.local()


def _piece_buffer(size: int) -> memoryview:
    """A per-thread scratch buffer of ``size`` bytes (grown as needed, never shrunk)."""
    buf: bytearray | None = getattr(_thread_buffers, "buf", None)
    if buf is None or len(buf) < size:
        buf = _thread_buffers.buf = bytearray(size)
    return memoryview(buf)[:size]


class TorrentStorage:
    """One torrent's storage inside a :class:`DiskManager` (get it from ``add_torrent``).

    ``have`` is the bitfield of pieces verified and on disk. ``events`` yields
    :class:`PieceVerified` and :class:`StorageFailed`; its buffer is bounded, and piece hashing
    waits while it is full, so keep draining it.
    """

    def __init__(
        self,
        manager: DiskManager,
        torrent: TorrentLike,
        pieces: PieceMap,
        fs: FileSystem,
        priorities: list[int],
        event_buffer: float,
        part_file: str,
    ) -> None:
        self.manager = manager
        self.torrent = torrent
        self.pieces = pieces
        self.fs = fs
        self.have = Bitfield(pieces.num_pieces)
        self.error: StorageError | None = None
        self.part_file = part_file
        self._priorities = priorities
        self._paths = list(pieces.paths)
        self._renamed: dict[int, tuple[str, ...]] = {}
        self._created: set[int] = set()
        self._partials: dict[int, _Partial] = {}
        self._pads_cache: dict[int, tuple[tuple[int, int], ...]] = {}
        self._unwritten: dict[int, _Unwritten] = {}
        self._unverified: set[int] = set()
        # paths written since the last sync; worker threads add to it, so it has a lock (a path
        # lost between "take" and "add" would let resume data claim unsynced pieces)
        self._dirty: set[str] = set()
        self._dirty_lock = threading.Lock()
        self._send, self.events = trio.open_memory_channel[DiskEvent](event_buffer)
        self._removed = False
        self._finishing = 0
        self._finished = trio.Event()
        # exclusive operations (check, rename, move, delete) wait for in-flight I/O to drain
        self._in_flight = 0
        self._idle = trio.Event()
        self._exclusive_lock = trio.Lock()
        self._gate: trio.Event | None = None

    def __repr__(self) -> str:
        return f"<TorrentStorage {self.torrent.name!r} {self.have.count()}/{self.have.length}>"

    # -- public API -----------------------------------------------------------------------------

    @property
    def file_paths(self) -> tuple[str, ...]:
        """Each file's current path in the FileSystem (after renames)."""
        return tuple(self._paths)

    @property
    def file_priorities(self) -> tuple[int, ...]:
        """Each file's priority (0 = do not download; the file is not created)."""
        return tuple(self._priorities)

    def statistics(self) -> StorageStatistics:
        """A snapshot of this torrent's storage."""
        return StorageStatistics(
            have=self.have.count(),
            num_pieces=self.have.length,
            partial_pieces=len(self._partials),
            cached_bytes=sum(p.cached for p in self._partials.values())
            + sum(u.cached for u in self._unwritten.values()),
            unwritten_pieces=len(self._unwritten),
            unverified_pieces=len(self._unverified),
            error=self.error,
        )

    def blocks_present(self, piece: int) -> frozenset[int]:
        """Block indices of an unfinished ``piece`` already received (cached or on disk)."""
        p = self._partials.get(piece)
        if p is None:
            return frozenset()
        return frozenset(p.blocks) | frozenset(p.on_disk)

    async def write_block(
        self, piece: int, offset: int, data: Buffer, peer: Hashable | None = None
    ) -> None:
        """Store a block received from ``peer``; waits while the write cache is full.

        ``offset`` must be a multiple of 16 KiB and ``data`` the whole block. Blocks of pieces
        already had, being hashed, or already received are ignored. When the block completes its
        piece, the piece is hashed in the background and a :class:`PieceVerified` follows on
        ``events``. Raises :class:`StorageError` while the storage is paused after a failure.
        """
        await trio.lowlevel.checkpoint()
        while True:
            try:
                self.write_block_nowait(piece, offset, data, peer)
            except trio.WouldBlock:
                await self.manager._make_room(len(data))
            else:
                return

    def write_block_nowait(
        self, piece: int, offset: int, data: Buffer, peer: Hashable | None = None
    ) -> None:
        """Like :meth:`write_block`, but raise ``trio.WouldBlock`` instead of waiting for room.

        For callers that handle many blocks per wake-up (a batch of messages from one socket
        read): no scheduler round trip per block. Hashing starts at the caller's next checkpoint.
        """
        if self.error is not None:
            raise self.error
        if self._removed:
            raise DiskError("torrent was removed from the DiskManager")
        p = self._partials.get(piece)
        if p is None:
            size = self.pieces.piece_size(piece)
            if self.have[piece] or piece in self._unwritten:
                return
            nblocks = -(-size // BLOCK_SIZE)
        else:
            size, nblocks = p.size, p.nblocks
        b, rem = divmod(offset, BLOCK_SIZE)
        n = len(data)
        if rem or not 0 <= b < nblocks or n != min(BLOCK_SIZE, size - offset):
            raise DiskError(f"bad block: piece {piece} offset {offset} length {n}")
        if p is not None and (p.busy or b in p.blocks or b in p.on_disk):
            return
        mgr = self.manager
        if mgr._cached + n > mgr.write_cache_limit:
            raise trio.WouldBlock
        if p is None:
            p = self._partials[piece] = _Partial(piece, size, nblocks)
        block = data if type(data) is bytes else bytes(data)
        pads = self._pad_ranges(piece)
        if pads:
            block = _zero_pad_bytes(block, offset, pads)
        p.blocks[b] = block
        p.cached += n
        mgr._cached += n
        if peer is not None:
            p.contributors.add(peer)
        if len(p.blocks) + len(p.on_disk) == nblocks:
            if p.flushing:
                p.complete_pending = True
            else:
                self._start_finish(p)

    def _pad_ranges(self, piece: int) -> tuple[tuple[int, int], ...]:
        """Piece-relative ``(start, end)`` of the pad-file parts of ``piece`` (cached)."""
        cache = self._pads_cache
        ranges = cache.get(piece)
        if ranges is None:
            ranges = tuple(
                (s.piece_offset, s.piece_offset + s.length)
                for s in self.pieces.spans(piece)
                if s.is_pad
            )
            if len(cache) >= 4096:
                cache.clear()
            cache[piece] = ranges
        return ranges

    async def read_block(self, piece: int, offset: int, length: int) -> bytes:
        """Read ``length`` bytes at ``offset`` of a piece we have (the whole piece is cached).

        In seed mode the piece is hashed the first time it is read; a mismatch clears it from
        ``have``, reports ``PieceVerified(ok=False)`` and raises :class:`DiskError`. Missing or
        truncated files raise :class:`StorageError` (and report ``StorageFailed``).
        """
        size = self.pieces.piece_size(piece)
        if offset < 0 or length <= 0 or offset + length > size:
            raise DiskError(f"bad read: piece {piece} offset {offset} length {length}")
        if not self.have[piece]:
            raise DiskError(f"piece {piece} is not available")
        data = await self.manager._cached_piece(self, piece)
        return data[offset : offset + length]

    async def check(
        self,
        *,
        pieces: Iterable[int] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Bitfield:
        """Hash existing data (all pieces, or ``pieces``) in parallel; update and return ``have``.

        ``progress(done, total)`` is called after each piece. Cancel it like any trio call: the
        pieces checked so far keep their new state, the rest their old one.
        """
        async with self._exclusive():
            todo = list(range(self.pieces.num_pieces) if pieces is None else pieces)
            total = len(todo)
            done = 0
            it = iter(todo)
            mgr = self.manager

            # up to 64 MiB per thread call (every call costs two cross-thread wake-ups, which
            # are slow on a busy machine) but at least 4 calls per worker so all workers get a
            # share; the thread stops early when the check is cancelled
            workers = max(1, min(int(mgr._limiter.total_tokens), total))
            batch_size = max(
                1, min(256, (64 << 20) // self.pieces.piece_length, -(-total // (4 * workers)))
            )

            async def worker() -> None:
                nonlocal done
                buf = bytearray(self.pieces.piece_length)
                while True:
                    batch: list[int] = []
                    for i in it:
                        p = self._partials.get(i)
                        if (p is not None and (p.busy or p.flushing)) or i in self._unwritten:
                            done += 1
                            continue
                        batch.append(i)
                        if len(batch) == batch_size:
                            break
                    if not batch:
                        return
                    results = await mgr._run_sync(self._check_pieces_sync, batch, buf)
                    for i, ok in zip(batch, results, strict=False):
                        if ok:
                            self.have.set(i)
                            self._unverified.discard(i)
                            p = self._partials.pop(i, None)
                            if p is not None:
                                mgr._release(p.cached)
                        else:
                            self.have.clear(i)
                            p = self._partials.get(i)
                            if p is not None and p.complete() and not p.busy:
                                # every block was there (resume data) and the hash failed
                                del self._partials[i]
                                mgr._release(p.cached)
                        done += 1
                        if progress is not None:
                            progress(done, total)
                    if len(results) < len(batch):
                        await trio.lowlevel.checkpoint()  # the thread saw a cancel: raise it

            async with trio.open_nursery() as nursery:
                for _ in range(workers):
                    nursery.start_soon(worker)
            mgr._drop_read_cache(self)
            return self.have.copy()

    async def save_resume_data(self) -> bytes:
        """Sync what was written and return bencoded fast-resume data.

        Only pieces verified and written before the sync are claimed, so the data never claims a
        piece that is not durable on disk. Pieces trusted in seed mode but not yet hashed are
        not claimed. Raises :class:`StorageError` if a sync fails.
        """
        async with self._op():
            have = self.have.copy()
            for i in self._unverified:
                have.clear(i)
            unfinished: dict[int, bytes] = {}
            for i, p in self._partials.items():
                if p.on_disk:
                    bits = Bitfield(p.nblocks)
                    for b in p.on_disk:
                        bits.set(b)
                    unfinished[i] = bits.to_bytes()
            with self._dirty_lock:
                dirty = sorted(self._dirty)
                self._dirty.clear()
            try:
                stats = await self.manager._run_sync(self._sync_and_stat_sync, dirty)
            except StorageError:
                with self._dirty_lock:
                    self._dirty.update(dirty)
                raise
            return ResumeData(
                num_pieces=self.pieces.num_pieces,
                piece_length=self.pieces.piece_length,
                have=have.to_bytes(),
                unfinished=unfinished,
                files=stats,
                renamed=dict(self._renamed),
            ).to_bytes()

    async def wait_idle(self) -> None:
        """Wait until no piece of this torrent is being hashed, written or flushed.

        Events of those pieces may still be in the ``events`` buffer when this returns.
        """
        while self._finishing or self._in_flight:
            if self._finishing:
                if self._finished.is_set():  # several tasks may wait on the same event
                    self._finished = trio.Event()
                await self._finished.wait()
            else:
                if self._idle.is_set():  # several tasks may wait on the same event
                    self._idle = trio.Event()
                await self._idle.wait()
        await trio.lowlevel.checkpoint()

    async def save_resume_file(self, fs: FileSystem, path: str) -> bytes:
        """:meth:`save_resume_data`, then store it atomically at ``path`` in ``fs``.

        Written to ``path + ".tmp"``, synced, then renamed over ``path``: after a crash ``path``
        holds either the previous resume data or this one, never a torn mix. Returns the data.
        """
        data = await self.save_resume_data()
        await self.manager._run_sync(write_file_atomic, fs, path, data)
        return data

    async def flush(self) -> None:
        """Write every cached block of unfinished pieces to disk (they stay unverified)."""
        for p in list(self._partials.values()):
            if p.blocks and not p.busy and not p.flushing:
                await self._flush_partial(p)

    async def resume(self) -> tuple[int, ...]:
        """Clear a storage error: re-examine files, retry verified pieces that failed to write.

        Returns the pieces no longer had because their files were found missing or truncated.
        Raises :class:`StorageError` (and stays paused) if the retry fails again.
        """
        async with self._exclusive():
            lost = await self.manager._run_sync(self._revalidate_sync)
            for i in lost:
                self.have.clear(i)
                self._unverified.discard(i)
            self.manager._drop_read_cache(self)
            for i, u in list(self._unwritten.items()):
                try:
                    await self.manager._run_sync(
                        self._write_blocks_sync, i, sorted(u.blocks.items())
                    )
                except StorageError as exc:
                    self.error = exc
                    raise
                del self._unwritten[i]
                self.manager._release(u.cached)
                self.have.set(i)
                self.manager._passed += 1
                await self._emit(PieceVerified(i, True, u.contributors))
            self.error = None
            return tuple(lost)

    async def set_file_priorities(self, priorities: Sequence[int]) -> None:
        """Set every file's priority. A file going from 0 to more is created, and its bytes of
        edge pieces are moved out of the part file."""
        if len(priorities) != len(self._priorities) or any(p < 0 for p in priorities):
            raise DiskError("need one non-negative priority per file")
        async with self._exclusive():
            for fi, new in enumerate(priorities):
                if new > 0 and self._priorities[fi] == 0 and not self.pieces.is_pad[fi]:
                    await self.manager._run_sync(self._promote_sync, fi)
            self._priorities = list(priorities)

    async def rename_file(self, index: int, new_path: str | Sequence[str]) -> None:
        """Rename file ``index`` (``"dir/name"`` or components) inside the FileSystem."""
        path = new_path if isinstance(new_path, str) else "/".join(new_path)
        parts = split_path(path)
        async with self._exclusive():
            old = self._paths[index]
            if index in self._created:
                try:
                    await self.manager._run_sync(self.fs.rename, old, path)
                except OSError as exc:
                    raise StorageError.from_os_error(old, "rename", exc) from exc
            self._paths[index] = path
            self._renamed[index] = parts
            with self._dirty_lock:
                self._dirty.discard(old)
                self._dirty.add(path)
            self.manager._drop_read_cache(self)

    async def move_storage(self, new_fs: FileSystem) -> None:
        """Copy every file into ``new_fs``, then switch to it and delete the old files.

        Crash-safe: each file is copied to a temporary name and synced; only when all are copied
        are they renamed into place, and only then are the originals removed. Until the switch
        the old storage is untouched, after it the new one is complete.
        """
        async with self._exclusive():
            await self.manager._run_sync(self._move_sync, new_fs)
            self.manager._drop_read_cache(self)

    async def delete_files(self) -> None:
        """Delete every file of this torrent (and its part file); forget all pieces."""
        async with self._exclusive():
            await self.manager._run_sync(self._delete_sync)
            for p in self._partials.values():
                self.manager._release(p.cached)
            for u in self._unwritten.values():
                self.manager._release(u.cached)
            self._partials.clear()
            self._unwritten.clear()
            self._unverified.clear()
            for i in list(self.have):  # in place: callers may hold this Bitfield
                self.have.clear(i)
            with self._dirty_lock:
                self._dirty.clear()
            self.manager._drop_read_cache(self)

    # -- coordination ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _op(self) -> AsyncIterator[None]:
        while self._gate is not None:
            await self._gate.wait()
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    @contextlib.asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[None]:
        async with self._exclusive_lock:
            gate = self._gate = trio.Event()
            try:
                while self._in_flight:
                    if self._idle.is_set():  # several tasks may wait on the same event
                        self._idle = trio.Event()
                    await self._idle.wait()
                yield
            finally:
                self._gate = None
                gate.set()

    async def _emit(self, event: DiskEvent) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self._send.send(event)

    def _fail(self, error: StorageError) -> None:
        if self.error is None:
            self.error = error

    # -- piece completion -----------------------------------------------------------------------

    def _start_finish(self, p: _Partial) -> None:
        p.busy = True
        self._finishing += 1
        self.manager._queue_finish(self, p)

    async def _finish_batch(self, batch: list[_Partial]) -> None:
        """Hash and write complete pieces in one worker-thread call, then report each."""
        mgr = self.manager
        live: list[_Partial] = []
        results: list[tuple[str, StorageError | None]] = []
        try:
            try:
                async with self._op():
                    # pieces discarded (delete_files/remove) while queued are simply dropped
                    live = [p for p in batch if self._partials.get(p.index) is p]
                    if live:
                        jobs = [(p.index, sorted(p.blocks.items()), bool(p.on_disk)) for p in live]
                        results = await trio.to_thread.run_sync(
                            self._finish_many_sync, jobs, limiter=mgr._hash_limiter
                        )
            finally:
                mgr._pieces_in_flight -= len(batch)
            for p, (outcome, error) in zip(live, results, strict=True):
                await self._finish_result(p, outcome, error)
        finally:
            self._finishing -= len(batch)
            if not self._finishing:
                self._finished.set()

    async def _finish_result(self, p: _Partial, outcome: str, error: StorageError | None) -> None:
        mgr = self.manager
        contributors = frozenset(p.contributors)
        if self._partials.get(p.index) is p:
            del self._partials[p.index]
        if outcome == "ok":
            mgr._release(p.cached)
            self.have.set(p.index)
            mgr._passed += 1
            await self._emit(PieceVerified(p.index, True, contributors))
        elif outcome == "bad":
            mgr._release(p.cached)
            mgr._failed += 1
            await self._emit(PieceVerified(p.index, False, contributors))
        elif outcome == "write" and error is not None:
            # verified but not on disk: keep the data, pause, retry on resume()
            self._unwritten[p.index] = _Unwritten(dict(p.blocks), contributors, p.cached)
            self._fail(error)
            await self._emit(StorageFailed.from_error(error))
        else:
            assert error is not None
            mgr._release(p.cached)
            self._fail(error)
            await self._emit(StorageFailed.from_error(error))

    def _finish_many_sync(
        self, jobs: list[tuple[int, list[tuple[int, bytes]], bool]]
    ) -> list[tuple[str, StorageError | None]]:
        return [self._finish_sync(index, blocks, need_disk) for index, blocks, need_disk in jobs]

    def _finish_sync(
        self, index: int, blocks: list[tuple[int, bytes]], need_disk: bool
    ) -> tuple[str, StorageError | None]:
        pieces = self.pieces
        size = pieces.piece_size(index)
        # one contiguous buffer: one GIL release for the hash and one pwritev per file, instead
        # of a GIL round trip per 16 KiB block; reused per thread, so no fresh memory per piece
        whole = _piece_buffer(size)
        for b, data in blocks:
            whole[b * BLOCK_SIZE : b * BLOCK_SIZE + len(data)] = data
        to_write: Sequence[tuple[int, Buffer]] = [(0, whole)]
        if need_disk:
            # blocks flushed under memory pressure: read them back, write only the others
            mem = {b for b, _ in blocks}
            try:
                for b in range(-(-size // BLOCK_SIZE)):
                    if b not in mem:
                        lo, hi = b * BLOCK_SIZE, min(size, (b + 1) * BLOCK_SIZE)
                        self._read_range_sync(index, lo, whole[lo:hi])
            except StorageError as exc:
                return "read", exc
            to_write = blocks
        bufs = [whole]
        if not piece_ok(pieces, self.torrent, index, bufs):
            return "bad", None
        try:
            self._write_blocks_sync(index, to_write)
        except StorageError as exc:
            return "write", exc
        return "ok", None

    async def _flush_partial(self, p: _Partial) -> None:
        """Write ``p``'s cached blocks to disk to free memory (they stay unverified)."""
        mgr = self.manager
        p.flushing = True
        snapshot = sorted(p.blocks.items())
        error: StorageError | None = None
        try:
            async with self._op():
                if self._partials.get(p.index) is not p:
                    return  # discarded while waiting; its memory was released then
                try:
                    await mgr._run_sync(self._write_blocks_sync, p.index, snapshot)
                except StorageError as exc:
                    error = exc
        finally:
            p.flushing = False
        freed = 0
        for b, data in snapshot:
            if p.blocks.pop(b, None) is not None:
                freed += len(data)
                if error is None:
                    p.on_disk.add(b)
        p.cached -= freed
        mgr._release(freed)
        mgr._pressure_flushes += 1
        if error is not None:
            # unverified blocks are simply dropped: they will be downloaded again
            p.complete_pending = False
            if not p.blocks and not p.on_disk and self._partials.get(p.index) is p:
                del self._partials[p.index]
            self._fail(error)
            await self._emit(StorageFailed.from_error(error))
        elif p.complete_pending or (p.complete() and not p.busy):
            p.complete_pending = False
            if self._partials.get(p.index) is p and not p.busy:
                self._start_finish(p)

    # -- synchronous helpers (worker threads) ---------------------------------------------------

    def _location(self, span: Span) -> tuple[str, int]:
        """Where a span's bytes live: the file, or the part file at the linear offset."""
        fi = span.file_index
        if self._priorities[fi] == 0 and fi not in self._created:
            return self.part_file, self.pieces.offsets[fi] + span.file_offset
        return self._paths[fi], span.file_offset

    def _ensure_file(self, fi: int) -> None:
        path = self._paths[fi]
        self.fs.open(path, create=True)
        if self.fs.stat(path).size < self.pieces.lengths[fi]:
            self.fs.truncate(path, self.pieces.lengths[fi])  # sparse allocation
        self._created.add(fi)

    def _write_blocks_sync(self, index: int, blocks: Sequence[tuple[int, Buffer]]) -> None:
        """Write cached blocks of piece ``index``: one vectored write per contiguous run."""
        spans = self.pieces.spans(index)
        for span in spans:
            if span.is_pad:
                continue
            lo, hi = span.piece_offset, span.piece_offset + span.length
            runs: list[tuple[int, list[memoryview]]] = []
            run_end = -1
            for b, data in blocks:
                start = b * BLOCK_SIZE
                end = start + len(data)
                if end <= lo or start >= hi:
                    continue
                a, z = max(start, lo), min(end, hi)
                view = memoryview(data)[a - start : z - start]
                if a == run_end:
                    runs[-1][1].append(view)
                else:
                    runs.append((a, [view]))
                run_end = z
            if not runs:
                continue
            fi = span.file_index
            if self._priorities[fi] > 0 and fi not in self._created:
                try:
                    self._ensure_file(fi)
                except OSError as exc:
                    raise StorageError.from_os_error(self._paths[fi], "open", exc) from exc
            path, base = self._location(span)
            if path == self.part_file:
                try:
                    self.fs.open(path, create=True)
                except OSError as exc:
                    raise StorageError.from_os_error(path, "open", exc) from exc
            for a, views in runs:
                try:
                    self.fs.write(path, base + (a - lo), views)
                except OSError as exc:
                    raise StorageError.from_os_error(path, "write", exc) from exc
            with self._dirty_lock:
                self._dirty.add(path)

    def _read_piece_sync(self, index: int, out: memoryview) -> None:
        """Read the whole piece into ``out`` (pads as zeros); StorageError if anything is short."""
        self._read_range_sync(index, 0, out)

    def _read_range_sync(self, index: int, start: int, out: memoryview) -> None:
        """Read piece bytes ``[start, start + len(out))`` into ``out``."""
        end = start + len(out)
        for span in self.pieces.spans(index):
            lo = max(start, span.piece_offset)
            hi = min(end, span.piece_offset + span.length)
            if hi <= lo:
                continue
            dest = out[lo - start : hi - start]
            if span.is_pad:
                dest[:] = bytes(hi - lo)
                continue
            path, off = self._location(span)
            try:
                got = self.fs.read(path, off + (lo - span.piece_offset), dest)
            except OSError as exc:
                raise StorageError.from_os_error(path, "read", exc) from exc
            if got != hi - lo:
                raise StorageError(path, "read", _errno.EIO, "file is shorter than expected")

    def _check_pieces_sync(self, indices: list[int], buf: bytearray) -> list[bool]:
        """Check ``indices`` in order; stop early (shorter result) if the check is cancelled."""
        out: list[bool] = []
        for i in indices:
            try:
                trio.from_thread.check_cancelled()
            except trio.Cancelled:
                break  # the caller applies what is done, then its next checkpoint raises
            out.append(self._check_piece_sync(i, buf))
        return out

    def _check_piece_sync(self, index: int, buf: bytearray) -> bool:
        size = self.pieces.piece_size(index)
        view = memoryview(buf)[:size]
        try:
            self._read_piece_sync(index, view)
        except StorageError:
            return False
        return piece_ok(self.pieces, self.torrent, index, [view])

    def _load_piece_sync(self, index: int, verify: bool) -> bytes | None:
        """The piece's bytes for the read cache; ``None`` if ``verify`` and the hash fails."""
        buf = bytearray(self.pieces.piece_size(index))
        self._read_piece_sync(index, memoryview(buf))
        if verify and not piece_ok(self.pieces, self.torrent, index, [buf]):
            return None
        return bytes(buf)

    def _sync_and_stat_sync(self, dirty: list[str]) -> tuple[tuple[int, int] | None, ...]:
        for path in dirty:
            try:
                self.fs.sync(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise StorageError.from_os_error(path, "sync", exc) from exc
        return tuple(self._stat_all_sync())

    def _stat_all_sync(self) -> list[tuple[int, int] | None]:
        """(size, mtime) of every file and, last, the part file; ``None`` where missing."""
        out: list[tuple[int, int] | None] = []
        for path in [*self._paths, self.part_file]:
            try:
                st = self.fs.stat(path)
            except OSError:
                out.append(None)
            else:
                out.append((st.size, st.mtime_ns))
        return out

    def _revalidate_sync(self) -> list[int]:
        """Pieces whose files went missing or shrank; those files are forgotten as created."""
        lost: set[int] = set()
        for fi in sorted(self._created):
            path = self._paths[fi]
            try:
                ok = self.fs.stat(path).size >= self.pieces.lengths[fi]
            except OSError:
                ok = False
            if not ok:
                self._created.discard(fi)
                self.fs.close(path)
                lost.update(i for i in self.pieces.file_pieces(fi) if self.have[i])
        return sorted(lost)

    def _promote_sync(self, fi: int) -> None:
        """File ``fi`` is wanted now: create it and move its bytes out of the part file."""
        if fi in self._created:
            return
        pieces = self.pieces
        moves: list[tuple[int, int]] = []  # (part offset, length) == (linear offset, length)
        for i in pieces.file_pieces(fi):
            p = self._partials.get(i)
            if self.have[i] or (p is not None and p.on_disk):
                moves.extend(
                    (pieces.offsets[fi] + s.file_offset, s.length)
                    for s in pieces.spans(i)
                    if s.file_index == fi
                )
        try:
            self._ensure_file(fi)
        except OSError as exc:
            raise StorageError.from_os_error(self._paths[fi], "open", exc) from exc
        path = self._paths[fi]
        for linear, length in moves:
            buf = bytearray(length)
            try:
                got = self.fs.read(self.part_file, linear, buf)
            except FileNotFoundError:
                got = 0
            except OSError as exc:
                raise StorageError.from_os_error(self.part_file, "read", exc) from exc
            try:
                self.fs.write(path, linear - pieces.offsets[fi], [memoryview(buf)[:got]])
            except OSError as exc:
                raise StorageError.from_os_error(path, "write", exc) from exc
        with self._dirty_lock:
            self._dirty.add(path)

    def _existing_paths_sync(self) -> list[str]:
        out = [self._paths[fi] for fi in sorted(self._created)]
        try:
            self.fs.stat(self.part_file)
        except OSError:
            pass
        else:
            out.append(self.part_file)
        return out

    def _move_sync(self, new_fs: FileSystem) -> None:
        old_fs = self.fs
        paths = self._existing_paths_sync()
        tmp = {p: p + ".torrio-move" for p in paths}
        try:
            for path in paths:
                if isinstance(old_fs, NativeFileSystem) and isinstance(new_fs, NativeFileSystem):
                    try:
                        # same file system: a hard link moves no data and keeps holes
                        old_fs.link_into(new_fs, path, tmp[path])
                        continue
                    except OSError as exc:
                        if exc.errno not in _NO_LINK:
                            raise
                self._copy_file_sync(old_fs, new_fs, path, tmp[path])
            for path in paths:
                new_fs.rename(tmp[path], path)
        except OSError as exc:
            for t in tmp.values():
                with contextlib.suppress(OSError):
                    new_fs.remove(t)
            name = getattr(exc, "filename", None) or ""
            raise StorageError.from_os_error(name, "move", exc) from exc
        self.fs = new_fs
        with self._dirty_lock:
            self._dirty.clear()
        for path in paths:
            with contextlib.suppress(OSError):
                old_fs.remove(path)

    @staticmethod
    def _copy_file_sync(old_fs: FileSystem, new_fs: FileSystem, src: str, dst: str) -> None:
        """Copy ``src`` to ``dst`` and sync it; all-zero chunks are skipped (holes stay holes)."""
        new_fs.open(dst, create=True)
        new_fs.truncate(dst, 0)
        size = old_fs.stat(src).size
        buf = bytearray(_COPY_CHUNK)
        zeros = bytes(_COPY_CHUNK)
        pos = 0
        while pos < size:
            got = old_fs.read(src, pos, buf)
            if got == 0:
                break
            view = memoryview(buf)[:got]
            if view != zeros[:got]:
                new_fs.write(dst, pos, [view])
            pos += got
        new_fs.truncate(dst, size)
        new_fs.sync(dst)

    def _delete_sync(self) -> None:
        for path in self._existing_paths_sync():
            try:
                self.fs.remove(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise StorageError.from_os_error(path, "remove", exc) from exc
        self._created.clear()

    def _apply_resume(
        self, resume: ResumeData, stats: Sequence[tuple[int, int] | None]
    ) -> set[int]:
        """Trust resume data where files are unchanged; return the pieces that need hashing."""
        pieces = self.pieces
        nfiles = len(pieces.paths)
        valid = [pieces.is_pad[fi] or resume.files[fi] == stats[fi] for fi in range(nfiles)]
        part_valid = resume.files[nfiles] == stats[nfiles]

        def trusted(index: int) -> bool:
            for span in pieces.spans(index):
                if span.is_pad:
                    continue
                if self._location(span)[0] == self.part_file:
                    if not part_valid:
                        return False
                elif not valid[span.file_index]:
                    return False
            return True

        try:
            have = Bitfield.from_bytes(resume.have, pieces.num_pieces)
        except CoreError:
            return set(range(pieces.num_pieces))
        to_check: set[int] = set()
        for i in have:
            if trusted(i):
                self.have.set(i)
            else:
                to_check.add(i)
        for i, bits in resume.unfinished.items():
            if self.have[i] or not trusted(i):
                continue
            nblocks = pieces.num_blocks(i)
            try:
                blocks = Bitfield.from_bytes(bits, nblocks)
            except CoreError:
                continue
            if blocks.none():
                continue
            size = pieces.piece_size(i)
            p = _Partial(i, size, nblocks, on_disk=set(blocks))
            self._partials[i] = p
            if p.complete():
                to_check.add(i)
        return to_check


class DiskManager:
    """Storage for many torrents: block cache, hashing, reads, checks. Use :func:`open_disk_manager`."""

    def __init__(
        self,
        nursery: trio.Nursery,
        *,
        write_cache_bytes: int,
        read_cache_bytes: int,
        threads: int,
        hash_threads: int | None = None,
    ) -> None:
        if write_cache_bytes < BLOCK_SIZE:
            raise DiskError("write_cache_bytes must hold at least one block")
        self._nursery = nursery
        self._limiter = trio.CapacityLimiter(threads)
        if hash_threads is None:
            hash_threads = max(1, min(threads, (os.cpu_count() or 2) - 1))
        self._hash_limiter = trio.CapacityLimiter(hash_threads)
        self._hash_slots = hash_threads
        self._hashers = 0
        self._hash_queue: deque[tuple[TorrentStorage, _Partial]] = deque()
        self.write_cache_limit = write_cache_bytes
        self.read_cache_limit = read_cache_bytes
        self._cached = 0
        self._space = trio.Event()
        self._waiting = 0
        self._read_cache: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._read_cached = 0
        self._reading: dict[tuple[int, int], trio.Event] = {}
        self._hits = self._misses = 0
        self._pieces_in_flight = 0
        self._passed = self._failed = self._pressure_flushes = 0
        self._storages: list[TorrentStorage] = []

    def statistics(self) -> DiskStatistics:
        """A snapshot of caches and counters."""
        return DiskStatistics(
            write_cache_bytes=self._cached,
            write_cache_limit=self.write_cache_limit,
            read_cache_bytes=self._read_cached,
            read_cache_limit=self.read_cache_limit,
            read_cache_hits=self._hits,
            read_cache_misses=self._misses,
            pieces_in_flight=self._pieces_in_flight,
            pieces_passed=self._passed,
            pieces_failed=self._failed,
            pressure_flushes=self._pressure_flushes,
            writers_waiting=self._waiting,
            torrents=len(self._storages),
        )

    async def add_torrent(
        self,
        torrent: TorrentLike,
        fs: FileSystem,
        *,
        resume_data: bytes | None = None,
        file_priorities: Sequence[int] | None = None,
        seed_mode: bool = False,
        check: bool = True,
        event_buffer: float = 256,
        part_file: str | None = None,
    ) -> TorrentStorage:
        """Attach a torrent stored in ``fs`` and find out what it already has.

        With valid ``resume_data`` nothing is hashed except pieces in files that changed since
        it was saved (size or mtime). Without it, pieces in files that already exist are checked
        (unless ``check=False``). ``seed_mode`` trusts that everything is there and hashes each
        piece the first time it is read. Priority-0 files are never created; their bytes in
        pieces shared with wanted files go to ``part_file`` (default ``.<name>.parts``).
        """
        pieces = PieceMap(torrent)
        nfiles = len(pieces.paths)
        prios = [1] * nfiles if file_priorities is None else list(file_priorities)
        if len(prios) != nfiles or any(p < 0 for p in prios):
            raise DiskError("need one non-negative priority per file")
        part = part_file if part_file is not None else f".{torrent.name}.parts"
        split_path(part)
        storage = TorrentStorage(self, torrent, pieces, fs, prios, event_buffer, part)
        resume: ResumeData | None = None
        if resume_data is not None:
            with contextlib.suppress(DiskError):
                resume = ResumeData.from_bytes(resume_data)
            if resume is not None and (
                resume.num_pieces != pieces.num_pieces
                or resume.piece_length != pieces.piece_length
                or len(resume.files) != nfiles + 1
                or any(not 0 <= i < nfiles for i in resume.renamed)
            ):
                resume = None
        if resume is not None:
            for i, path in resume.renamed.items():
                storage._paths[i] = "/".join(path)
                storage._renamed[i] = path
        stats = await self._run_sync(storage._stat_all_sync)
        for fi, st in enumerate(stats[:nfiles]):
            if st is not None and not pieces.is_pad[fi]:
                storage._created.add(fi)
        to_check: set[int] = set()
        if seed_mode:
            storage.have = Bitfield.full(pieces.num_pieces)
            storage._unverified = set(range(pieces.num_pieces))
        elif resume is not None:
            to_check = storage._apply_resume(resume, stats)
        elif check:
            for fi in storage._created:
                to_check.update(pieces.file_pieces(fi))
            if stats[nfiles] is not None:
                to_check.update(
                    i
                    for fi in range(nfiles)
                    if prios[fi] == 0 and fi not in storage._created
                    for i in pieces.file_pieces(fi)
                )
        # wanted empty files exist from the start
        for fi in range(nfiles):
            if pieces.lengths[fi] == 0 and prios[fi] > 0 and fi not in storage._created:
                try:
                    await self._run_sync(storage._ensure_file, fi)
                except OSError as exc:
                    raise StorageError.from_os_error(pieces.paths[fi], "open", exc) from exc
        self._storages.append(storage)
        if to_check:
            await storage.check(pieces=sorted(to_check))
        return storage

    async def remove_torrent(self, storage: TorrentStorage, *, delete_files: bool = False) -> None:
        """Detach a torrent: wait for its pieces in flight, flush (or delete) its files."""
        if storage not in self._storages or storage._removed:
            raise DiskError("torrent is not in this DiskManager")
        storage._removed = True  # no new blocks from now on
        while storage._finishing:
            if storage._finished.is_set():  # several tasks may wait on the same event
                storage._finished = trio.Event()
            await storage._finished.wait()
        if delete_files:
            await storage.delete_files()
        else:
            with contextlib.suppress(StorageError):
                await storage.flush()
        async with storage._exclusive():
            for p in storage._partials.values():
                self._release(p.cached)
            for u in storage._unwritten.values():
                self._release(u.cached)
            storage._partials.clear()
            storage._unwritten.clear()
            paths = [*storage._paths, storage.part_file]

            def close_all() -> None:
                for path in paths:
                    with contextlib.suppress(OSError):
                        storage.fs.close(path)

            await self._run_sync(close_all)
        self._drop_read_cache(storage)
        self._storages.remove(storage)
        storage._send.close()

    # -- internals ------------------------------------------------------------------------------

    def _queue_finish(self, storage: TorrentStorage, p: _Partial) -> None:
        """Queue a complete piece; start a hasher task if fewer than ``hash_threads`` run."""
        self._pieces_in_flight += 1
        self._hash_queue.append((storage, p))
        if self._hashers < self._hash_slots:
            self._hashers += 1
            self._nursery.start_soon(self._hasher)

    async def _hasher(self) -> None:
        """Drain the queue of complete pieces. When pieces complete faster than they hash, each
        thread call takes several (of one torrent): fewer cross-thread wake-ups per piece."""
        try:
            while self._hash_queue:
                storage, first = self._hash_queue.popleft()
                batch = [first]
                size = first.size
                while (
                    self._hash_queue
                    and self._hash_queue[0][0] is storage
                    and size < _HASH_BATCH_BYTES
                ):
                    p = self._hash_queue.popleft()[1]
                    batch.append(p)
                    size += p.size
                await storage._finish_batch(batch)
        finally:
            self._hashers -= 1

    async def _run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    def _release(self, n: int) -> None:
        if n:
            self._cached -= n
            self._space.set()

    async def _make_room(self, n: int) -> None:
        """Wait until ``n`` more bytes fit: for complete pieces being hashed to free memory, or,
        when none are, by flushing the partial piece holding the most (it is read back later,
        so flushing a piece that is about to complete would only add work)."""
        self._waiting += 1
        try:
            while self._cached + n > self.write_cache_limit:
                victim: tuple[TorrentStorage, _Partial] | None = None
                best = 0
                if not self._pieces_in_flight:
                    for s in self._storages:
                        for p in s._partials.values():
                            if p.cached > best and not p.busy and not p.flushing:
                                victim, best = (s, p), p.cached
                if victim is not None:
                    await victim[0]._flush_partial(victim[1])
                else:
                    if self._space.is_set():  # several tasks may wait on the same event
                        self._space = trio.Event()
                    await self._space.wait()
        finally:
            self._waiting -= 1

    def _drop_read_cache(self, storage: TorrentStorage) -> None:
        key = id(storage)
        for k in [k for k in self._read_cache if k[0] == key]:
            self._read_cached -= len(self._read_cache.pop(k))

    async def _cached_piece(self, storage: TorrentStorage, index: int) -> bytes:
        key = (id(storage), index)
        while True:
            data = self._read_cache.get(key)
            if data is not None:
                self._read_cache.move_to_end(key)
                self._hits += 1
                await trio.lowlevel.checkpoint()
                return data
            pending = self._reading.get(key)
            if pending is None:
                break
            await pending.wait()
            if not storage.have[index]:
                raise DiskError(f"piece {index} is not available")
        self._misses += 1
        done = self._reading[key] = trio.Event()
        try:
            verify = index in storage._unverified
            try:
                async with storage._op():
                    loaded = await self._run_sync(storage._load_piece_sync, index, verify)
            except StorageError as exc:
                lost = (index,) if storage.have.clear(index) else ()
                storage._unverified.discard(index)
                storage._fail(exc)
                await storage._emit(StorageFailed.from_error(exc, lost))
                raise
            if loaded is None:
                storage.have.clear(index)
                storage._unverified.discard(index)
                self._failed += 1
                await storage._emit(PieceVerified(index, False))
                raise DiskError(f"piece {index} failed verification in seed mode")
            if verify:
                storage._unverified.discard(index)
                self._passed += 1
            if len(loaded) <= self.read_cache_limit:
                self._read_cache[key] = loaded
                self._read_cached += len(loaded)
                while self._read_cached > self.read_cache_limit:
                    _, old = self._read_cache.popitem(last=False)
                    self._read_cached -= len(old)
            return loaded
        finally:
            del self._reading[key]
            done.set()


@contextlib.asynccontextmanager
async def open_disk_manager(
    *,
    write_cache_bytes: int = 64 << 20,
    read_cache_bytes: int = 32 << 20,
    threads: int = 4,
    hash_threads: int | None = None,
) -> AsyncIterator[DiskManager]:
    """Run a :class:`DiskManager`; on exit, wait for pieces being hashed/written to finish.

    ``write_cache_bytes`` is the hard cap on received-but-unwritten bytes (writers wait beyond
    it), ``read_cache_bytes`` bounds the piece read cache, ``threads`` the worker threads for
    reads, flushes and checks, ``hash_threads`` how many completed pieces are hashed and written
    at once (default: one less than the CPU count, at least 1 - the event loop needs a core).
    """
    async with trio.open_nursery() as nursery:
        manager = DiskManager(
            nursery,
            write_cache_bytes=write_cache_bytes,
            read_cache_bytes=read_cache_bytes,
            threads=threads,
            hash_threads=hash_threads,
        )
        try:
            yield manager
        finally:
            # nobody reads events any more: let in-flight pieces finish without blocking on them
            for storage in manager._storages:
                storage.events.close()


def _zero_pad_bytes(block: bytes, offset: int, pads: tuple[tuple[int, int], ...]) -> bytes:
    """``block`` (at piece ``offset``) with every byte inside a pad range set to zero.

    Pad files are zeros by definition and never stored, so whatever a peer sent there is
    discarded here: the piece's verdict then cannot depend on whether the block was hashed from
    the cache or after a flush (regression: a liar's pad bytes failed the piece only in-cache).
    """
    end = offset + len(block)
    out: bytearray | None = None
    for lo, hi in pads:
        a, z = max(lo, offset), min(hi, end)
        if a >= z:
            continue
        if out is None:
            out = bytearray(block)
        out[a - offset : z - offset] = bytes(z - a)
    return block if out is None else bytes(out)
