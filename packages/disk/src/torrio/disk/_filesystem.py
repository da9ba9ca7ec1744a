"""The FileSystem protocol: synchronous positional file operations a backend must provide.

Every path is a relative POSIX path inside the backend's root (``"name/dir/file.bin"``); backends
refuse absolute paths, ``..`` and empty components with :class:`PathEscapeError`. Operations report
failures as ``OSError`` (``FileNotFoundError`` for a missing file, ``errno.ENOSPC`` for a full disk,
...). The DiskManager calls these from worker threads, so backends must be thread-safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeAlias, runtime_checkable

import attrs

from ._errors import PathEscapeError

Buffer: TypeAlias = bytes | bytearray | memoryview
"""Anything :meth:`FileSystem.write` accepts as one buffer."""


@attrs.frozen
class FileStat:
    """Size and modification time of a file (what fast-resume data records)."""

    size: int
    mtime_ns: int


@runtime_checkable
class FileSystem(Protocol):
    """Synchronous positional file storage confined to one root. See the module docstring."""

    def open(self, path: str, *, create: bool = False) -> None:
        """Make ``path`` ready for I/O. With ``create``, create it (and parent folders) if missing;
        without, raise ``FileNotFoundError`` if it does not exist."""
        ...

    def close(self, path: str) -> None:
        """Release what the backend holds for ``path`` (an open descriptor); no-op if nothing."""
        ...

    def close_all(self) -> None:
        """Release everything held for every path."""
        ...

    def read(self, path: str, offset: int, buffer: bytearray | memoryview) -> int:
        """Read into ``buffer`` from ``offset``; returns the byte count (short only at end of file)."""
        ...

    def write(self, path: str, offset: int, buffers: Sequence[Buffer]) -> int:
        """Write ``buffers`` back to back at ``offset`` (holes read as zeros); returns the total.

        The file must exist (``open(path, create=True)`` first): writes never create files.
        """
        ...

    def stat(self, path: str) -> FileStat:
        """Size and mtime of ``path``; ``FileNotFoundError`` if missing."""
        ...

    def truncate(self, path: str, length: int) -> None:
        """Set the file's size to ``length`` (growing it leaves a sparse, zero-filled hole)."""
        ...

    def sync(self, path: str) -> None:
        """Make the file's data durable (``fsync``)."""
        ...

    def rename(self, src: str, dst: str) -> None:
        """Atomically move ``src`` to ``dst``, replacing ``dst`` and creating its parent folders."""
        ...

    def remove(self, path: str) -> None:
        """Delete ``path``; ``FileNotFoundError`` if missing."""
        ...


def split_path(path: str) -> tuple[str, ...]:
    """Validate a backend path and return its components; raises :class:`PathEscapeError`."""
    if not isinstance(path, str) or not path:
        raise PathEscapeError(str(path), "empty path")
    if "\x00" in path:
        raise PathEscapeError(path, "NUL in path")
    if path.startswith("/"):
        raise PathEscapeError(path, "absolute path")
    parts = tuple(path.split("/"))
    for part in parts:
        if part in ("", ".", ".."):
            raise PathEscapeError(path, f"component {part!r} not allowed")
    return parts
