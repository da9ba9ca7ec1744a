"""A conformance suite for :class:`torrio.disk.FileSystem` backends (ours and anyone's).

In the style of trio's ``check_one_way_stream``: call :func:`check_filesystem` with a factory that
returns a fresh, empty backend; it raises ``AssertionError`` naming the first broken rule::

    from torrio.testing.filesystem_conformance import check_filesystem

    def test_my_backend(tmp_path):
        check_filesystem(lambda: MyFileSystem(tmp_path / "root"))

Also here: :class:`FaultInjectingFileSystem`, a wrapper that makes any backend fail the Nth write
with ``ENOSPC`` (or any errno), fail reads, or lets a test truncate/remove a file "under" the user.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torrio.disk import FileStat, FileSystem


@contextlib.contextmanager
def _raises(
    exc: type[BaseException] | tuple[type[BaseException], ...], what: str
) -> Iterator[None]:
    try:
        yield
    except exc:
        return
    raise AssertionError(f"{what}: expected {exc}, nothing raised")


def check_filesystem(make_fs: Callable[[], FileSystem]) -> None:
    """Run every check against fresh backends from ``make_fs``; raises ``AssertionError``."""
    for check in CHECKS:
        fs = make_fs()
        try:
            check(fs)
        except AssertionError as exc:
            raise AssertionError(f"{check.__name__}: {exc}") from exc
        finally:
            fs.close_all()


def _read(fs: FileSystem, path: str, offset: int, n: int) -> bytes:
    buf = bytearray(n)
    got = fs.read(path, offset, buf)
    return bytes(buf[:got])


def check_round_trip(fs: FileSystem) -> None:
    """Data written at an offset reads back; holes read as zeros; reads stop at end of file."""
    fs.open("a.bin", create=True)
    assert fs.stat("a.bin").size == 0, "a new file is empty"
    assert fs.write("a.bin", 10, [b"hello"]) == 5
    assert fs.stat("a.bin").size == 15
    assert _read(fs, "a.bin", 0, 100) == bytes(10) + b"hello", "hole then data, short at EOF"
    assert _read(fs, "a.bin", 12, 2) == b"ll"
    assert _read(fs, "a.bin", 15, 10) == b"", "read at EOF returns 0"
    assert _read(fs, "a.bin", 1000, 10) == b"", "read past EOF returns 0"
    buf = memoryview(bytearray(8))
    assert fs.read("a.bin", 10, buf[2:7]) == 5 and bytes(buf) == b"\0\0hello\0", "memoryview target"


def check_vectored_write(fs: FileSystem) -> None:
    """A list of bytes/bytearray/memoryview buffers is written back to back."""
    fs.open("v.bin", create=True)
    data = bytes(range(256)) * 300
    bufs: Sequence[bytes | bytearray | memoryview] = [
        b"",
        data[:1],
        bytearray(data[1:70000]),
        memoryview(data)[70000:],
    ]
    assert fs.write("v.bin", 3, bufs) == len(data)
    assert _read(fs, "v.bin", 3, len(data)) == data
    assert fs.write("v.bin", 0, [b"xyz", b"w"]) == 4
    assert _read(fs, "v.bin", 0, 6) == b"xyzw" + data[1:3], "overwrite keeps the rest"


def check_missing(fs: FileSystem) -> None:
    """Missing files raise FileNotFoundError; writes never create files."""
    with _raises(FileNotFoundError, "open without create"):
        fs.open("nope")
    with _raises(FileNotFoundError, "read"):
        _read(fs, "nope", 0, 1)
    with _raises(FileNotFoundError, "write without open(create=True)"):
        fs.write("nope", 0, [b"x"])
    with _raises(FileNotFoundError, "stat"):
        fs.stat("nope")
    with _raises(FileNotFoundError, "remove"):
        fs.remove("nope")
    with _raises(FileNotFoundError, "rename"):
        fs.rename("nope", "other")
    with _raises(FileNotFoundError, "missing parent"):
        fs.stat("no/such/dir")


def check_truncate(fs: FileSystem) -> None:
    """Truncate shrinks and grows; regrown bytes are zeros."""
    fs.open("t.bin", create=True)
    fs.write("t.bin", 0, [b"\xff" * 100_000])
    fs.truncate("t.bin", 70_000)
    assert fs.stat("t.bin").size == 70_000
    fs.truncate("t.bin", 200_000)
    assert fs.stat("t.bin").size == 200_000
    got = _read(fs, "t.bin", 0, 200_000)
    assert got == b"\xff" * 70_000 + bytes(130_000), "grown region must be zeros"
    fs.truncate("t.bin", 0)
    assert fs.stat("t.bin").size == 0


def check_mtime(fs: FileSystem) -> None:
    """Writes and truncates move mtime forward (fast-resume relies on it to notice changes)."""
    fs.open("m.bin", create=True)
    fs.write("m.bin", 0, [b"a"])
    before = fs.stat("m.bin").mtime_ns
    fs.write("m.bin", 0, [b"b"])
    fs.truncate("m.bin", 10)
    assert fs.stat("m.bin").mtime_ns >= before


def check_nested(fs: FileSystem) -> None:
    """Create makes parent folders; a folder is not a file and a file is not a folder."""
    fs.open("d1/d2/f.bin", create=True)
    fs.write("d1/d2/f.bin", 0, [b"x"])
    assert _read(fs, "d1/d2/f.bin", 0, 1) == b"x"
    with _raises(IsADirectoryError, "open a folder as a file"):
        fs.open("d1/d2", create=True)
    with _raises(IsADirectoryError, "stat of a folder"):
        fs.stat("d1")
    with _raises((NotADirectoryError, FileNotFoundError), "a file used as a folder"):
        fs.open("d1/d2/f.bin/g", create=True)


def check_rename_remove(fs: FileSystem) -> None:
    """Rename moves (creating parents, replacing the target); remove deletes."""
    fs.open("r1", create=True)
    fs.write("r1", 0, [b"one"])
    fs.open("r2", create=True)
    fs.write("r2", 0, [b"two!"])
    fs.rename("r1", "sub/dir/r1b")
    with _raises(FileNotFoundError, "old name gone"):
        fs.stat("r1")
    assert _read(fs, "sub/dir/r1b", 0, 10) == b"one"
    fs.rename("sub/dir/r1b", "r2")
    assert _read(fs, "r2", 0, 10) == b"one", "rename replaces the target"
    fs.remove("r2")
    with _raises(FileNotFoundError, "removed"):
        fs.stat("r2")
    fs.open("r2", create=True)
    assert fs.stat("r2").size == 0, "re-created file is empty (no stale cached handle)"


def check_refused_paths(fs: FileSystem) -> None:
    """Absolute paths, ``..``, ``.``, empty components and NUL raise PathEscapeError."""
    from torrio.disk import PathEscapeError

    for bad in ["", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a/.", "a\x00b", "a/"]:
        with _raises(PathEscapeError, f"open({bad!r})"):
            fs.open(bad, create=True)
        with _raises(PathEscapeError, f"stat({bad!r})"):
            fs.stat(bad)
        with _raises(PathEscapeError, f"read({bad!r})"):
            fs.read(bad, 0, bytearray(1))
        with _raises(PathEscapeError, f"rename(x, {bad!r})"):
            fs.rename("x", bad)
    assert issubclass(PathEscapeError, PermissionError)


def check_many_files(fs: FileSystem) -> None:
    """Interleaved I/O over more files than a descriptor cache holds stays correct."""
    names = [f"many/{i:03d}" for i in range(150)]
    for i, name in enumerate(names):
        fs.open(name, create=True)
        fs.write(name, 0, [i.to_bytes(2, "big")])
    for _ in range(2):
        for i, name in enumerate(names):
            fs.write(name, 2, [b"!"])
            assert _read(fs, name, 0, 3) == i.to_bytes(2, "big") + b"!"
    fs.close(names[0])
    assert _read(fs, names[0], 0, 2) == b"\0\0", "reads work after close"
    fs.sync(names[1])


def check_threads(fs: FileSystem) -> None:
    """Threads writing disjoint ranges of shared files concurrently lose nothing."""
    for k in range(3):
        fs.open(f"th{k}", create=True)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for j in range(40):
                for k in range(3):
                    fs.write(f"th{k}", (n * 40 + j) * 512, [bytes([n + 1]) * 512])
                    if j % 7 == 0:
                        fs.close(f"th{k}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, f"worker raised {errors[0]!r}"
    for k in range(3):
        got = _read(fs, f"th{k}", 0, 6 * 40 * 512)
        assert got == b"".join(bytes([n + 1]) * (40 * 512) for n in range(6)), f"th{k} content"


CHECKS: tuple[Callable[[FileSystem], None], ...] = (
    check_round_trip,
    check_vectored_write,
    check_missing,
    check_truncate,
    check_mtime,
    check_nested,
    check_rename_remove,
    check_refused_paths,
    check_many_files,
    check_threads,
)
"""Every check :func:`check_filesystem` runs, each taking a fresh backend."""


class FaultInjectingFileSystem:
    """Wraps a backend and injects faults, for testing what sits above a FileSystem.

    ``fail_write_at=N`` makes the Nth ``write`` call from now (1-based) raise ``OSError(fail_errno)``
    (default ``ENOSPC``); ``fail_writes_from=N`` fails that one and every later write until
    :meth:`heal`. ``fail_reads`` fails every read with ``EIO``. ``truncate_under`` and
    ``remove_under`` change a file behind the user's back. Other calls pass straight through.
    """

    def __init__(self, inner: FileSystem) -> None:
        self.inner = inner
        self.writes = 0
        self.fail_write_at: int | None = None
        self.fail_writes_from: int | None = None
        self.fail_errno = _errno.ENOSPC
        self.fail_reads = False
        self.failed_writes = 0
        self._lock = threading.Lock()

    def heal(self) -> None:
        """Stop injecting faults."""
        self.fail_write_at = self.fail_writes_from = None
        self.fail_reads = False

    def truncate_under(self, path: str, length: int) -> None:
        """Truncate ``path`` as another process would."""
        self.inner.truncate(path, length)

    def remove_under(self, path: str) -> None:
        """Delete ``path`` as another process would."""
        self.inner.remove(path)

    def open(self, path: str, *, create: bool = False) -> None:
        """Pass through."""
        self.inner.open(path, create=create)

    def close(self, path: str) -> None:
        """Pass through."""
        self.inner.close(path)

    def close_all(self) -> None:
        """Pass through."""
        self.inner.close_all()

    def read(self, path: str, offset: int, buffer: bytearray | memoryview) -> int:
        """Pass through, or ``EIO`` while ``fail_reads``."""
        if self.fail_reads:
            raise OSError(_errno.EIO, "injected I/O error", path)
        return self.inner.read(path, offset, buffer)

    def write(self, path: str, offset: int, buffers: Sequence[Any]) -> int:
        """Pass through, unless this is the write chosen to fail."""
        with self._lock:
            self.writes += 1
            n = self.writes
            fail = n == self.fail_write_at or (
                self.fail_writes_from is not None and n >= self.fail_writes_from
            )
            if fail:
                self.failed_writes += 1
        if fail:
            raise OSError(self.fail_errno, "injected fault", path)
        return self.inner.write(path, offset, buffers)

    def stat(self, path: str) -> FileStat:
        """Pass through."""
        return self.inner.stat(path)

    def truncate(self, path: str, length: int) -> None:
        """Pass through."""
        self.inner.truncate(path, length)

    def sync(self, path: str) -> None:
        """Pass through."""
        self.inner.sync(path)

    def rename(self, src: str, dst: str) -> None:
        """Pass through."""
        self.inner.rename(src, dst)

    def remove(self, path: str) -> None:
        """Pass through."""
        self.inner.remove(path)
