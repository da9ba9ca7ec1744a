"""torrio-disk: pluggable BitTorrent storage.

A :class:`FileSystem` protocol of synchronous positional file operations with two backends -
:class:`NativeFileSystem` (real files confined to a root folder, descriptor cache, sparse files,
``preadv``/``pwritev``) and :class:`MemoryFileSystem` - and, on top, the trio :class:`DiskManager`:
a write-coalescing block cache with a hard memory cap, piece hashing (v1 SHA-1, v2 SHA-256 merkle)
on worker threads, a read cache, full checks, fast resume, file priorities with a part file, and
typed storage-error events.
"""

from ._errors import DiskError, PathEscapeError, StorageError
from ._events import DiskEvent, DiskStatistics, PieceVerified, StorageFailed, StorageStatistics
from ._filesystem import Buffer, FileStat, FileSystem, split_path
from ._manager import (
    DiskManager,
    TorrentStorage,
    open_disk_manager,
    read_file,
    write_file_atomic,
)
from ._memory import MemoryFileSystem
from ._native import NativeFileSystem
from ._pieces import BLOCK_SIZE, PieceMap, Span, merkle_root, piece_ok
from ._resume import ResumeData
from ._torrent import FileLike, TorrentLike

__version__ = "0.1.0"

__all__ = [
    "BLOCK_SIZE",
    "Buffer",
    "DiskError",
    "DiskEvent",
    "DiskManager",
    "DiskStatistics",
    "FileLike",
    "FileStat",
    "FileSystem",
    "MemoryFileSystem",
    "NativeFileSystem",
    "PathEscapeError",
    "PieceMap",
    "PieceVerified",
    "ResumeData",
    "Span",
    "StorageError",
    "StorageFailed",
    "StorageStatistics",
    "TorrentLike",
    "TorrentStorage",
    "merkle_root",
    "open_disk_manager",
    "piece_ok",
    "read_file",
    "split_path",
    "write_file_atomic",
]
