"""NativeFileSystem: real files under one root folder, with an LRU cache of open descriptors.

Confinement does not trust string checks alone: every path is walked component by component with
``openat``-style calls (``dir_fd``) and ``O_NOFOLLOW``, so a symlink anywhere on the way - even one
planted after the torrent was added - is refused instead of followed out of the root.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat as _stat
import threading
from collections import OrderedDict
from collections.abc import Sequence

import attrs

from ._errors import PathEscapeError
from ._filesystem import Buffer, FileStat, split_path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC


@attrs.define
class _Fd:
    fd: int
    writable: bool
    refs: int = 0
    retired: bool = False


class NativeFileSystem:
    """Files under ``root`` (created if missing). ``max_open_files`` bounds the descriptor cache.

    Files are sparse: growing one with :meth:`truncate` or writing past its end allocates nothing
    for the hole. I/O uses ``os.preadv``/``os.pwritev`` on cached descriptors; a descriptor in use
    by one thread is never closed by another (eviction is deferred until it is released).
    """

    def __init__(self, root: str | os.PathLike[str], *, max_open_files: int = 64) -> None:
        if max_open_files < 1:
            raise ValueError("max_open_files must be >= 1")
        os.makedirs(root, exist_ok=True)
        self.root = os.path.realpath(root)
        self.max_open_files = max_open_files
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, _Fd] = OrderedDict()

    def __repr__(self) -> str:
        return f"NativeFileSystem({self.root!r})"

    # -- path walking -------------------------------------------------------------------------

    def _parent_fd(self, path: str, parts: tuple[str, ...], create: bool) -> int:
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for comp in parts[:-1]:
                try:
                    nfd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(comp, 0o777, dir_fd=fd)
                    nfd = self._open_dir(path, comp, fd)
                except OSError as exc:
                    self._refuse_symlink(path, comp, fd, exc)
                    raise
                os.close(fd)
                fd = nfd
            return fd
        except BaseException:
            os.close(fd)
            raise

    def _open_dir(self, path: str, comp: str, dir_fd: int) -> int:
        try:
            return os.open(comp, _DIR_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            self._refuse_symlink(path, comp, dir_fd, exc)
            raise

    @staticmethod
    def _refuse_symlink(path: str, comp: str, dir_fd: int, exc: OSError) -> None:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            try:
                st = os.stat(comp, dir_fd=dir_fd, follow_symlinks=False)
            except OSError:
                return
            if _stat.S_ISLNK(st.st_mode):
                raise PathEscapeError(path, f"{comp!r} is a symlink") from exc

    def _open_fd(self, path: str, create: bool, write: bool) -> tuple[int, bool]:
        parts = split_path(path)
        pfd = self._parent_fd(path, parts, create)
        try:
            name = parts[-1]
            flags = os.O_RDWR | _FILE_FLAGS | (os.O_CREAT if create else 0)
            try:
                return os.open(name, flags, 0o666, dir_fd=pfd), True
            except PermissionError:
                if write or create:
                    raise
            except OSError as exc:
                self._refuse_symlink(path, name, pfd, exc)
                if exc.errno != errno.EROFS or write or create:
                    raise
            try:
                return os.open(name, os.O_RDONLY | _FILE_FLAGS, dir_fd=pfd), False
            except OSError as exc:
                self._refuse_symlink(path, name, pfd, exc)
                raise
        finally:
            os.close(pfd)

    # -- descriptor cache ---------------------------------------------------------------------

    def _acquire(self, path: str, write: bool, create: bool = False) -> _Fd:
        with self._lock:
            entry = self._cache.get(path)
            if entry is not None and (entry.writable or not write):
                self._cache.move_to_end(path)
                entry.refs += 1
                return entry
        fd, writable = self._open_fd(path, create, write)
        with self._lock:
            old = self._cache.pop(path, None)
            if old is not None:
                self._retire(old)
            entry = _Fd(fd, writable, refs=1)
            self._cache[path] = entry
            while len(self._cache) > self.max_open_files:
                _, victim = self._cache.popitem(last=False)
                self._retire(victim)
        return entry

    def _release(self, entry: _Fd) -> None:
        with self._lock:
            entry.refs -= 1
            if entry.retired and entry.refs == 0:
                os.close(entry.fd)

    def _retire(self, entry: _Fd) -> None:
        # caller holds the lock
        entry.retired = True
        if entry.refs == 0:
            os.close(entry.fd)

    def _forget(self, path: str) -> None:
        with self._lock:
            entry = self._cache.pop(path, None)
            if entry is not None:
                self._retire(entry)

    @property
    def open_files(self) -> int:
        """How many descriptors the cache holds now."""
        with self._lock:
            return len(self._cache)

    # -- FileSystem ---------------------------------------------------------------------------

    def open(self, path: str, *, create: bool = False) -> None:
        """See :meth:`FileSystem.open`; the descriptor stays cached."""
        self._release(self._acquire(path, write=create, create=create))

    def close(self, path: str) -> None:
        """See :meth:`FileSystem.close`."""
        split_path(path)
        self._forget(path)

    def close_all(self) -> None:
        """See :meth:`FileSystem.close_all`."""
        with self._lock:
            entries = list(self._cache.values())
            self._cache.clear()
            for entry in entries:
                self._retire(entry)

    def read(self, path: str, offset: int, buffer: bytearray | memoryview) -> int:
        """See :meth:`FileSystem.read`."""
        if offset < 0:
            raise ValueError("negative offset")
        entry = self._acquire(path, write=False)
        try:
            view = memoryview(buffer).cast("B")
            total = 0
            end = len(view)
            while total < end:
                n = os.preadv(entry.fd, [view[total:]], offset + total)
                if n == 0:
                    break
                total += n
            return total
        finally:
            self._release(entry)

    def write(self, path: str, offset: int, buffers: Sequence[Buffer]) -> int:
        """See :meth:`FileSystem.write`."""
        if offset < 0:
            raise ValueError("negative offset")
        entry = self._acquire(path, write=True)
        try:
            views = [memoryview(b).cast("B") for b in buffers]
            want = sum(len(v) for v in views)
            done = 0
            while views:
                n = os.pwritev(entry.fd, views[:1024], offset + done)
                done += n
                while views and n >= len(views[0]):
                    n -= len(views[0])
                    views.pop(0)
                if views and n:
                    views[0] = views[0][n:]
            return want
        finally:
            self._release(entry)

    def stat(self, path: str) -> FileStat:
        """See :meth:`FileSystem.stat`."""
        parts = split_path(path)
        pfd = self._parent_fd(path, parts, False)
        try:
            st = os.stat(parts[-1], dir_fd=pfd, follow_symlinks=False)
        finally:
            os.close(pfd)
        if _stat.S_ISLNK(st.st_mode):
            raise PathEscapeError(path, "is a symlink")
        if _stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        return FileStat(st.st_size, st.st_mtime_ns)

    def truncate(self, path: str, length: int) -> None:
        """See :meth:`FileSystem.truncate`."""
        if length < 0:
            raise ValueError("negative length")
        entry = self._acquire(path, write=True)
        try:
            os.ftruncate(entry.fd, length)
        finally:
            self._release(entry)

    def sync(self, path: str) -> None:
        """See :meth:`FileSystem.sync`."""
        entry = self._acquire(path, write=False)
        try:
            os.fsync(entry.fd)
        finally:
            self._release(entry)

    def rename(self, src: str, dst: str) -> None:
        """See :meth:`FileSystem.rename`; the destination folder is fsynced so the rename is durable."""
        sparts = split_path(src)
        dparts = split_path(dst)
        spfd = self._parent_fd(src, sparts, False)
        try:
            st = os.stat(sparts[-1], dir_fd=spfd, follow_symlinks=False)
            if _stat.S_ISLNK(st.st_mode):
                raise PathEscapeError(src, "is a symlink")
            dpfd = self._parent_fd(dst, dparts, True)
            try:
                self._forget(src)
                self._forget(dst)
                os.rename(sparts[-1], dparts[-1], src_dir_fd=spfd, dst_dir_fd=dpfd)
                os.fsync(dpfd)
            finally:
                os.close(dpfd)
        finally:
            os.close(spfd)

    def link_into(self, other: NativeFileSystem, src: str, dst: str) -> None:
        """Hard-link ``src`` under this root as ``dst`` under ``other``'s root (replacing it).

        Only works within one file system (``OSError`` ``EXDEV`` otherwise); no data is copied.
        The destination folder is fsynced, so the new name is durable.
        """
        sparts = split_path(src)
        dparts = split_path(dst)
        spfd = self._parent_fd(src, sparts, False)
        try:
            st = os.stat(sparts[-1], dir_fd=spfd, follow_symlinks=False)
            if _stat.S_ISLNK(st.st_mode):
                raise PathEscapeError(src, "is a symlink")
            dpfd = other._parent_fd(dst, dparts, True)
            try:
                other._forget(dst)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(dparts[-1], dir_fd=dpfd)
                os.link(
                    sparts[-1],
                    dparts[-1],
                    src_dir_fd=spfd,
                    dst_dir_fd=dpfd,
                    follow_symlinks=False,
                )
                os.fsync(dpfd)
            finally:
                os.close(dpfd)
        finally:
            os.close(spfd)

    def remove(self, path: str) -> None:
        """See :meth:`FileSystem.remove`."""
        parts = split_path(path)
        pfd = self._parent_fd(path, parts, False)
        try:
            self._forget(path)
            os.unlink(parts[-1], dir_fd=pfd)
        finally:
            os.close(pfd)
