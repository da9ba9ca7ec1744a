"""Both backends pass the conformance suite; NativeFileSystem's confinement and fd cache."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from torrio.disk import FileSystem, MemoryFileSystem, NativeFileSystem, PathEscapeError
from torrio.testing.filesystem_conformance import FaultInjectingFileSystem, check_filesystem


def test_native_conformance(tmp_path: Path) -> None:
    counter = iter(range(1000))
    check_filesystem(lambda: NativeFileSystem(tmp_path / f"root{next(counter)}", max_open_files=8))


def test_memory_conformance() -> None:
    check_filesystem(MemoryFileSystem)


def test_fault_wrapper_conformance() -> None:
    check_filesystem(lambda: FaultInjectingFileSystem(MemoryFileSystem()))


def test_backends_satisfy_protocol(tmp_path: Path) -> None:
    assert isinstance(NativeFileSystem(tmp_path), FileSystem)
    assert isinstance(MemoryFileSystem(), FileSystem)


def test_native_refuses_symlinked_folder(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside)
    fs = NativeFileSystem(root)
    with pytest.raises(PathEscapeError):
        fs.open("link/secret")
    with pytest.raises(PathEscapeError):
        fs.open("link/new", create=True)
    with pytest.raises(PathEscapeError):
        fs.stat("link/secret")
    assert not (outside / "new").exists()


def test_native_refuses_symlinked_file(tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.write_bytes(b"secret")
    root = tmp_path / "root"
    root.mkdir()
    (root / "f").symlink_to(outside)
    fs = NativeFileSystem(root)
    with pytest.raises(PathEscapeError):
        fs.open("f", create=True)
    with pytest.raises(PathEscapeError):
        fs.read("f", 0, bytearray(6))
    with pytest.raises(PathEscapeError):
        fs.stat("f")
    with pytest.raises(PathEscapeError):
        fs.rename("f", "g")


def test_native_symlink_planted_after_open_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    fs = NativeFileSystem(root, max_open_files=1)
    fs.open("d/f", create=True)
    fs.open("other", create=True)  # evicts d/f from the cache
    outside = tmp_path / "out"
    outside.mkdir()
    (outside / "f").write_bytes(b"x")
    os.rename(root / "d", tmp_path / "d-moved")
    (root / "d").symlink_to(outside)
    with pytest.raises(PathEscapeError):
        fs.write("d/f", 0, [b"pwned"])
    assert (outside / "f").read_bytes() == b"x"


def test_native_fd_cache_is_bounded(tmp_path: Path) -> None:
    fs = NativeFileSystem(tmp_path, max_open_files=4)
    for i in range(20):
        fs.open(f"f{i}", create=True)
        fs.write(f"f{i}", 0, [b"x"])
    assert fs.open_files == 4
    fs.close_all()
    assert fs.open_files == 0


def test_native_files_are_sparse(tmp_path: Path) -> None:
    fs = NativeFileSystem(tmp_path)
    fs.open("big", create=True)
    fs.truncate("big", 1 << 30)
    fs.write("big", (1 << 30) - 1, [b"z"])
    st = os.stat(tmp_path / "big")
    assert st.st_size == 1 << 30
    assert st.st_blocks * 512 < 1 << 20


def test_native_read_only_file_is_readable(tmp_path: Path) -> None:
    (tmp_path / "ro").write_bytes(b"data")
    os.chmod(tmp_path / "ro", 0o444)
    fs = NativeFileSystem(tmp_path)
    buf = bytearray(4)
    assert fs.read("ro", 0, buf) == 4 and buf == b"data"
    if os.geteuid() != 0:
        with pytest.raises(PermissionError):
            fs.write("ro", 0, [b"x"])


def test_memory_capacity_gives_enospc() -> None:
    fs = MemoryFileSystem(capacity=1 << 17)
    fs.open("a", create=True)
    fs.write("a", 0, [bytes(1 << 17)])
    with pytest.raises(OSError) as info:
        fs.write("a", 1 << 17, [b"x"])
    assert info.value.errno == errno.ENOSPC


def test_fault_wrapper_fails_nth_write() -> None:
    fs = FaultInjectingFileSystem(MemoryFileSystem())
    fs.open("a", create=True)
    fs.fail_write_at = 2
    fs.write("a", 0, [b"1"])
    with pytest.raises(OSError) as info:
        fs.write("a", 1, [b"2"])
    assert info.value.errno == errno.ENOSPC
    fs.write("a", 1, [b"3"])
    assert fs.failed_writes == 1
