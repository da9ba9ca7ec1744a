"""MemoryFileSystem: a thread-safe, sparse, in-memory FileSystem for tests and ephemeral swarms."""

from __future__ import annotations

import errno
import threading
import time
from collections import Counter
from collections.abc import Sequence

import attrs

from ._filesystem import Buffer, FileStat, split_path

_PAGE = 1 << 16


@attrs.define
class _MemFile:
    pages: dict[int, bytearray] = attrs.Factory(dict)
    size: int = 0
    mtime_ns: int = 0


class MemoryFileSystem:
    """Files held in memory in 64 KiB pages; holes take no memory and read as zeros.

    ``capacity`` (bytes of allocated pages, ``None`` for unlimited) makes writes fail with
    ``ENOSPC`` once reached, like a full disk.
    """

    def __init__(self, *, capacity: int | None = None) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._files: dict[tuple[str, ...], _MemFile] = {}
        self._dirs: Counter[tuple[str, ...]] = Counter()
        self._clock = 0

    def __repr__(self) -> str:
        return f"MemoryFileSystem({len(self._files)} files)"

    # -- helpers (caller holds the lock) ------------------------------------------------------

    def _touch(self, f: _MemFile) -> None:
        self._clock = max(self._clock + 1, time.time_ns())
        f.mtime_ns = self._clock

    def _get(self, path: str) -> _MemFile:
        parts = split_path(path)
        f = self._files.get(parts)
        if f is None:
            if parts in self._dirs:
                raise IsADirectoryError(errno.EISDIR, "is a directory", path)
            raise FileNotFoundError(errno.ENOENT, "no such file", path)
        return f

    def _link(self, path: str, parts: tuple[str, ...], f: _MemFile) -> None:
        if parts in self._dirs:
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        for i in range(1, len(parts)):
            if parts[:i] in self._files:
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
        self._files[parts] = f
        for i in range(1, len(parts)):
            self._dirs[parts[:i]] += 1

    def _unlink(self, parts: tuple[str, ...]) -> _MemFile:
        f = self._files.pop(parts)
        for i in range(1, len(parts)):
            self._dirs[parts[:i]] -= 1
            if not self._dirs[parts[:i]]:
                del self._dirs[parts[:i]]
        return f

    def _allocated(self) -> int:
        return sum(len(f.pages) for f in self._files.values()) * _PAGE

    # -- FileSystem ---------------------------------------------------------------------------

    def open(self, path: str, *, create: bool = False) -> None:
        """See :meth:`FileSystem.open`."""
        parts = split_path(path)
        with self._lock:
            if parts in self._files:
                return
            if not create:
                self._get(path)
            f = _MemFile()
            self._link(path, parts, f)
            self._touch(f)

    def close(self, path: str) -> None:
        """See :meth:`FileSystem.close` (nothing to release)."""
        split_path(path)

    def close_all(self) -> None:
        """See :meth:`FileSystem.close_all` (nothing to release)."""

    def read(self, path: str, offset: int, buffer: bytearray | memoryview) -> int:
        """See :meth:`FileSystem.read`."""
        if offset < 0:
            raise ValueError("negative offset")
        view = memoryview(buffer).cast("B")
        with self._lock:
            f = self._get(path)
            n = max(0, min(len(view), f.size - offset))
            pos = 0
            while pos < n:
                at = offset + pos
                page, within = divmod(at, _PAGE)
                take = min(n - pos, _PAGE - within)
                data = f.pages.get(page)
                if data is None:
                    view[pos : pos + take] = bytes(take)
                else:
                    view[pos : pos + take] = data[within : within + take]
                pos += take
            return n

    def write(self, path: str, offset: int, buffers: Sequence[Buffer]) -> int:
        """See :meth:`FileSystem.write`; ``ENOSPC`` past ``capacity``."""
        if offset < 0:
            raise ValueError("negative offset")
        views = [memoryview(b).cast("B") for b in buffers]
        total = sum(len(v) for v in views)
        with self._lock:
            f = self._get(path)
            if self.capacity is not None and total:
                first, last = offset // _PAGE, (offset + total - 1) // _PAGE
                new = sum(1 for p in range(first, last + 1) if p not in f.pages)
                if self._allocated() + new * _PAGE > self.capacity:
                    raise OSError(errno.ENOSPC, "no space left on device", path)
            at = offset
            for v in views:
                pos = 0
                while pos < len(v):
                    page, within = divmod(at, _PAGE)
                    take = min(len(v) - pos, _PAGE - within)
                    data = f.pages.get(page)
                    if data is None:
                        data = f.pages[page] = bytearray(_PAGE)
                    data[within : within + take] = v[pos : pos + take]
                    pos += take
                    at += take
            f.size = max(f.size, offset + total)
            self._touch(f)
            return total

    def stat(self, path: str) -> FileStat:
        """See :meth:`FileSystem.stat`."""
        with self._lock:
            f = self._get(path)
            return FileStat(f.size, f.mtime_ns)

    def truncate(self, path: str, length: int) -> None:
        """See :meth:`FileSystem.truncate`."""
        if length < 0:
            raise ValueError("negative length")
        with self._lock:
            f = self._get(path)
            if length < f.size:
                page, within = divmod(length, _PAGE)
                for p in [p for p in f.pages if p > page or (p == page and within == 0)]:
                    del f.pages[p]
                if within and page in f.pages:
                    f.pages[page][within:] = bytes(_PAGE - within)
            f.size = length
            self._touch(f)

    def sync(self, path: str) -> None:
        """See :meth:`FileSystem.sync` (memory is as durable as it gets)."""
        with self._lock:
            self._get(path)

    def rename(self, src: str, dst: str) -> None:
        """See :meth:`FileSystem.rename`."""
        sparts = split_path(src)
        dparts = split_path(dst)
        with self._lock:
            self._get(src)
            if sparts == dparts:
                return
            f = self._unlink(sparts)
            old = self._files.get(dparts)
            if old is not None:
                self._unlink(dparts)
            try:
                self._link(dst, dparts, f)
            except OSError:
                if old is not None:
                    self._link(dst, dparts, old)
                self._link(src, sparts, f)
                raise

    def remove(self, path: str) -> None:
        """See :meth:`FileSystem.remove`."""
        with self._lock:
            self._get(path)
            self._unlink(split_path(path))

    def paths(self) -> list[str]:
        """Every file path, sorted (handy in tests)."""
        with self._lock:
            return sorted("/".join(p) for p in self._files)
