"""The client's view of a torrent's storage: a thin seam over torrio-disk's ``TorrentStorage``.

The session only calls the methods here, so storage details stay in torrio-disk: the
``DiskManager`` caches and coalesces blocks, hashes complete pieces on worker threads and reports
``PieceVerified`` / ``StorageFailed`` on the storage's event channel, which the torrent drains.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Sequence

import trio

from torrio.core import Bitfield
from torrio.disk import DiskEvent, DiskManager, FileSystem, TorrentStorage
from torrio.metainfo import Torrent

from ._errors import ClientError


class PieceStore:
    """Storage of one torrent (attached to the session's DiskManager by :meth:`check`)."""

    def __init__(
        self,
        disk: DiskManager,
        torrent: Torrent,
        fs: FileSystem,
        *,
        file_priorities: Sequence[int] | None = None,
        seed_mode: bool = False,
    ) -> None:
        self.disk = disk
        self.torrent = torrent
        self.fs = fs
        self.file_priorities = list(file_priorities or [4] * len(torrent.files))
        self.seed_mode = seed_mode
        self._storage: TorrentStorage | None = None

    @property
    def storage(self) -> TorrentStorage:
        """The attached torrio-disk storage."""
        if self._storage is None:
            raise ClientError("storage is not attached yet")
        return self._storage

    @property
    def attached(self) -> bool:
        """True once :meth:`check` attached the torrent to the DiskManager."""
        return self._storage is not None

    async def check(self, resume: bytes | None) -> Bitfield:
        """Attach to the DiskManager: trust valid resume data, hash what is not proven."""
        self._storage = await self.disk.add_torrent(
            self.torrent,
            self.fs,
            resume_data=resume,
            file_priorities=self.file_priorities,
            seed_mode=self.seed_mode,
            event_buffer=4096,
        )
        return self._storage.have.copy()

    async def write_block(
        self, piece: int, offset: int, data: bytes | memoryview, peer: Hashable
    ) -> None:
        """Hand a block to storage (waits only while the write cache is full).

        The common path does not yield: a batch of blocks from one socket read is stored without a
        scheduler round trip per block (the caller's next checkpoint starts any hashing).
        """
        storage = self.storage
        try:
            storage.write_block_nowait(piece, offset, data, peer)
        except trio.WouldBlock:
            await storage.write_block(piece, offset, data, peer)

    async def read_block(self, piece: int, offset: int, length: int) -> bytes:
        """Bytes of a verified piece, to upload."""
        return await self.storage.read_block(piece, offset, length)

    def events(self) -> trio.MemoryReceiveChannel[DiskEvent]:
        """PieceVerified / StorageFailed events (drain them)."""
        return self.storage.events

    async def resume_data(self) -> bytes:
        """Fast-resume data (only pieces synced to disk are claimed)."""
        return await self.storage.save_resume_data()

    async def retry(self) -> tuple[int, ...]:
        """After a storage error: retry writes; returns pieces found lost."""
        return await self.storage.resume()

    async def set_file_priorities(self, priorities: Sequence[int]) -> None:
        """New priorities (0 = skip file)."""
        self.file_priorities = list(priorities)
        if self._storage is not None:
            await self._storage.set_file_priorities(priorities)

    async def close(self, *, delete_files: bool = False) -> None:
        """Detach from the DiskManager."""
        if self._storage is not None:
            storage, self._storage = self._storage, None
            await self.disk.remove_torrent(storage, delete_files=delete_files)


def default_storage(save_path: str | os.PathLike[str]) -> FileSystem:
    """Native files under ``save_path``."""
    from torrio.disk import NativeFileSystem

    return NativeFileSystem(save_path)
