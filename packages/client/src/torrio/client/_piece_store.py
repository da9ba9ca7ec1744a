"""The client's view of a torrent's storage: blocks in, verified pieces out, blocks served.

This is the seam between the session and torrio-disk: the session only calls the methods here.
(Interim backend: piece buffers assembled in memory, hashed on a worker thread, written through a
``torrio.disk.FileSystem``.)
"""

from __future__ import annotations

import errno as _errno
import hashlib
import os
from collections.abc import Callable, Sequence

import trio

from torrio.bencode import BencodeError, decode, encode
from torrio.core import Bitfield
from torrio.disk import FileSystem, StorageError
from torrio.metainfo import Extent, Torrent

_RESUME_FORMAT = b"torrio-client resume"


def _file_path(torrent: Torrent, index: int) -> str:
    return "/".join(torrent.files[index].path)


class PieceStore:
    """Blocks of one torrent, on ``fs`` (rooted at the save path)."""

    def __init__(
        self,
        torrent: Torrent,
        fs: FileSystem,
        *,
        file_priorities: Sequence[int] | None = None,
        max_buffered_pieces: int = 512,
    ) -> None:
        self.torrent = torrent
        self.layout = torrent.layout
        self.fs = fs
        self.priorities = list(file_priorities or [4] * len(torrent.files))
        self._pending: dict[int, bytearray] = {}
        self._max_pending = max_buffered_pieces
        self._limiter = trio.CapacityLimiter(2)
        self._opened: set[int] = set()

    # -- errors -----------------------------------------------------------------------------

    def _wrap(self, exc: OSError, file_index: int | None, op: str) -> StorageError:
        path = _file_path(self.torrent, file_index) if file_index is not None else ""
        return StorageError(path, op, exc.errno, exc.strerror or str(exc))

    # -- files ------------------------------------------------------------------------------

    def _ensure_open(self, file_index: int) -> None:
        if file_index in self._opened:
            return
        f = self.torrent.files[file_index]
        path = _file_path(self.torrent, file_index)
        self.fs.open(path, create=True)
        try:
            size = self.fs.stat(path).size
        except FileNotFoundError:
            size = 0
        if size != f.length:
            self.fs.truncate(path, f.length)
        self._opened.add(file_index)

    def _extents(self, piece: int, offset: int, length: int) -> list[Extent]:
        return self.layout.extents(self.layout.piece_offset(piece) + offset, length)

    def _write_piece_sync(self, piece: int, data: bytes | bytearray) -> None:
        pos = 0
        view = memoryview(data)
        for ext in self._extents(piece, 0, len(data)):
            f = self.torrent.files[ext.file_index]
            if not f.is_pad:
                try:
                    self._ensure_open(ext.file_index)
                    self.fs.write(
                        _file_path(self.torrent, ext.file_index),
                        ext.file_offset,
                        [view[pos : pos + ext.length]],
                    )
                except OSError as exc:
                    raise self._wrap(exc, ext.file_index, "write") from exc
            pos += ext.length

    def _read_sync(self, piece: int, offset: int, length: int) -> bytes:
        out = bytearray(length)
        view = memoryview(out)
        pos = 0
        for ext in self._extents(piece, offset, length):
            f = self.torrent.files[ext.file_index]
            if not f.is_pad:
                path = _file_path(self.torrent, ext.file_index)
                try:
                    n = self.fs.read(path, ext.file_offset, view[pos : pos + ext.length])
                except FileNotFoundError:
                    n = 0
                except OSError as exc:
                    raise self._wrap(exc, ext.file_index, "read") from exc
                if n < ext.length:
                    view[pos + n : pos + ext.length] = bytes(ext.length - n)
            pos += ext.length
        return bytes(out)

    def _hash_ok(self, piece: int, data: bytes | bytearray) -> bool:
        return hashlib.sha1(data).digest() == self.torrent.piece_hash_v1(piece)

    # -- the interface the session uses ----------------------------------------------------

    async def check(
        self, resume: bytes | None, progress: Callable[[int, int], None] | None = None
    ) -> Bitfield:
        """Pieces verified on disk.

        With valid ``resume`` data its pieces are trusted (unless their file's size changed); the
        other pieces are hashed only in files modified since the snapshot (a crash after more
        pieces were written). Without resume data every piece of an existing file is hashed.
        """
        n = self.layout.num_pieces
        loaded = self._load_resume(resume) if resume else None
        if loaded is not None:
            have, to_check = loaded
        else:
            have = Bitfield(n)
            to_check = set()
            for i in range(len(self.torrent.files)):
                if not self.torrent.files[i].is_pad and self._file_exists(i):
                    to_check.update(self.layout.file_piece_range(i))
        pieces = sorted(p for p in to_check if not have[p])
        for k, piece in enumerate(pieces):
            size = self.layout.piece_size(piece)
            data = await trio.to_thread.run_sync(
                self._read_sync, piece, 0, size, limiter=self._limiter
            )
            ok = await trio.to_thread.run_sync(self._hash_ok, piece, data, limiter=self._limiter)
            if ok:
                have.set(piece)
            if progress is not None:
                progress(k + 1, len(pieces))
        await trio.lowlevel.checkpoint()
        return have

    def _file_exists(self, index: int) -> bool:
        try:
            self.fs.stat(_file_path(self.torrent, index))
        except OSError:
            return False
        return True

    async def write_block(self, piece: int, offset: int, data: bytes | memoryview) -> None:
        """Accept a block (held until the piece is complete and verified)."""
        buf = self._pending.get(piece)
        if buf is None:
            buf = self._pending[piece] = bytearray(self.layout.piece_size(piece))
        buf[offset : offset + len(data)] = data
        await trio.lowlevel.checkpoint()

    async def verify(self, piece: int) -> bool:
        """Hash the complete ``piece``; if good, write it to disk. A bad piece is discarded."""
        buf = self._pending.pop(piece, None)
        if buf is None:
            return False
        ok = await trio.to_thread.run_sync(self._hash_ok, piece, buf, limiter=self._limiter)
        if ok:
            try:
                await trio.to_thread.run_sync(
                    self._write_piece_sync, piece, buf, limiter=self._limiter
                )
            except StorageError:
                raise
        return ok

    async def verify_existing(self, piece: int) -> bool:
        """Hash ``piece`` as it is on disk (seed mode: checked the first time it is served)."""
        size = self.layout.piece_size(piece)
        data = await trio.to_thread.run_sync(self._read_sync, piece, 0, size, limiter=self._limiter)
        return await trio.to_thread.run_sync(self._hash_ok, piece, data, limiter=self._limiter)

    def discard(self, piece: int) -> None:
        """Forget buffered blocks of ``piece``."""
        self._pending.pop(piece, None)

    async def read_block(self, piece: int, offset: int, length: int) -> bytes:
        """Bytes of a verified piece, to upload."""
        return await trio.to_thread.run_sync(
            self._read_sync, piece, offset, length, limiter=self._limiter
        )

    def resume_data(self, have: Bitfield) -> bytes:
        """Fast-resume data: the verified pieces and the file sizes/mtimes they were seen with."""
        files: list[list[int]] = []
        for i, f in enumerate(self.torrent.files):
            if f.is_pad:
                files.append([])
                continue
            try:
                st = self.fs.stat(_file_path(self.torrent, i))
                files.append([st.size, st.mtime_ns])
            except OSError:
                files.append([])
        return encode(
            {
                b"format": _RESUME_FORMAT,
                b"info-hash": self.torrent.info_hash.wire,
                b"pieces": have.to_bytes(),
                b"files": files,
            }
        )

    def _load_resume(self, data: bytes) -> tuple[Bitfield, set[int]] | None:
        try:
            d = decode(data)
        except BencodeError:
            return None
        if not isinstance(d, dict) or d.get(b"format") != _RESUME_FORMAT:
            return None
        if d.get(b"info-hash") != self.torrent.info_hash.wire:
            return None
        try:
            have = Bitfield.from_bytes(d.get(b"pieces", b""), self.layout.num_pieces)
        except Exception:
            return None
        files = d.get(b"files")
        if not isinstance(files, list) or len(files) != len(self.torrent.files):
            return None
        to_check: set[int] = set()
        for i, rec in enumerate(files):
            if self.torrent.files[i].is_pad:
                continue
            try:
                st = self.fs.stat(_file_path(self.torrent, i))
                now = [st.size, st.mtime_ns]
            except OSError:
                now = []
            if rec == now:
                continue
            rng = self.layout.file_piece_range(i)
            if not now or not rec or rec[0] != now[0]:
                # missing or resized: nothing in it is proven any more
                for p in rng:
                    have.clear(p)
            if now:
                to_check.update(rng)
        return have, to_check

    async def sync(self) -> None:
        """Make written data durable (before saving resume data)."""

        def _sync() -> None:
            for i in list(self._opened):
                try:
                    self.fs.sync(_file_path(self.torrent, i))
                except OSError as exc:
                    if exc.errno != _errno.ENOENT:
                        raise self._wrap(exc, i, "sync") from exc

        await trio.to_thread.run_sync(_sync, limiter=self._limiter)

    async def close(self) -> None:
        """Release open files."""
        await trio.to_thread.run_sync(self.fs.close_all)
        self._opened.clear()


def default_storage(save_path: str | os.PathLike[str]) -> FileSystem:
    """Native files under ``save_path``."""
    from torrio.disk import NativeFileSystem

    return NativeFileSystem(save_path)
