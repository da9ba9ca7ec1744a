"""Events the DiskManager reports, and its statistics snapshots."""

from __future__ import annotations

from collections.abc import Hashable

import attrs

from ._errors import StorageError


@attrs.frozen
class PieceVerified:
    """Piece ``index`` was hashed: ``ok`` means it matched and is now on disk (a "have").

    ``contributors`` are the peer keys passed to ``write_block`` for the blocks that made up the
    piece, so a client can ban peers that keep sending bad data.
    """

    index: int
    ok: bool
    contributors: frozenset[Hashable] = frozenset()


@attrs.frozen
class StorageFailed:
    """A file operation failed. The torrent is paused (writes raise) until ``resume()``.

    ``pieces_lost`` are pieces that were "have" and no longer are (their data was found missing
    or truncated). Verified pieces that could not be written stay in memory and are retried by
    ``resume()``; they are never reported as have before they are on disk.
    """

    file: str
    operation: str
    errno: int | None
    message: str
    pieces_lost: tuple[int, ...] = ()

    @classmethod
    def from_error(cls, error: StorageError, pieces_lost: tuple[int, ...] = ()) -> StorageFailed:
        """The event for ``error``."""
        return cls(error.file, error.operation, error.errno, error.message, pieces_lost)

    def to_error(self) -> StorageError:
        """The matching exception."""
        return StorageError(self.file, self.operation, self.errno, self.message)


DiskEvent = PieceVerified | StorageFailed
"""What ``TorrentStorage.events`` yields."""


@attrs.frozen
class DiskStatistics:
    """A snapshot of a DiskManager's caches and counters."""

    write_cache_bytes: int
    write_cache_limit: int
    read_cache_bytes: int
    read_cache_limit: int
    read_cache_hits: int
    read_cache_misses: int
    pieces_in_flight: int
    pieces_passed: int
    pieces_failed: int
    pressure_flushes: int
    writers_waiting: int
    torrents: int


@attrs.frozen
class StorageStatistics:
    """A snapshot of one torrent's storage."""

    have: int
    num_pieces: int
    partial_pieces: int
    cached_bytes: int
    unwritten_pieces: int
    unverified_pieces: int
    error: StorageError | None
