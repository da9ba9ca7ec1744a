"""The errors torrio-disk raises: one base, :class:`DiskError`, and its precise subclasses."""

from __future__ import annotations

import errno as _errno

from torrio.core import TorrioError


class DiskError(TorrioError):
    """Base of every error torrio-disk raises (bad arguments, refused paths, failed storage)."""


class PathEscapeError(DiskError, PermissionError):
    """A path is absolute, has ``..``/empty components, or leads through a symlink: refused.

    Also a :class:`PermissionError`, so code that only knows ``OSError`` still treats it as one.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(_errno.EPERM, f"refused path {path!r}: {reason}")
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        return f"refused path {self.path!r}: {self.reason}"


class StorageError(DiskError):
    """A file operation failed (ENOSPC, EACCES, EIO, a file truncated or removed under us, ...).

    ``file`` is the torrent-relative path (``"name/dir/file"``), ``operation`` one of ``"open"``,
    ``"read"``, ``"write"``, ``"sync"``, ``"truncate"``, ``"rename"``, ``"remove"``, ``"stat"``,
    ``"check"``, ``"move"``; ``errno`` the OS error number when there is one.
    """

    def __init__(self, file: str, operation: str, errno: int | None, message: str) -> None:
        super().__init__(f"{operation} {file!r} failed: {message}")
        self.file = file
        self.operation = operation
        self.errno = errno
        self.message = message

    @classmethod
    def from_os_error(cls, file: str, operation: str, exc: OSError) -> StorageError:
        """Wrap an ``OSError`` raised by a :class:`~torrio.disk.FileSystem`."""
        return cls(file, operation, exc.errno, exc.strerror or str(exc))
