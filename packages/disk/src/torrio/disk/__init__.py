"""torrio-disk: pluggable BitTorrent storage.

A :class:`FileSystem` protocol of synchronous positional file operations with two backends -
:class:`NativeFileSystem` (real files confined to a root folder, descriptor cache, sparse files,
``preadv``/``pwritev``) and :class:`MemoryFileSystem` - and, on top, the trio :class:`DiskManager`:
a write-coalescing block cache with a hard memory cap, piece hashing (v1 SHA-1, v2 SHA-256 merkle)
on worker threads, a read cache, full checks, fast resume, file priorities with a part file, and
typed storage-error events.
"""

from ._errors import DiskError, PathEscapeError, StorageError
from ._filesystem import Buffer, FileStat, FileSystem, split_path
from ._memory import MemoryFileSystem
from ._native import NativeFileSystem

__version__ = "0.1.0"

__all__ = [
    "Buffer",
    "DiskError",
    "FileStat",
    "FileSystem",
    "MemoryFileSystem",
    "NativeFileSystem",
    "PathEscapeError",
    "StorageError",
    "split_path",
]
