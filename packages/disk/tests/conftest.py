"""Backend fixtures; makes disk_helpers importable under --import-mode=importlib."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from torrio.disk import FileSystem, MemoryFileSystem, NativeFileSystem  # noqa: E402


@pytest.fixture(params=["memory", "native"])
def fs_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[str], FileSystem]]:
    """Makes backends by name (native: a folder per name under tmp_path)."""
    made: list[FileSystem] = []

    def make(name: str = "a") -> FileSystem:
        fs: FileSystem
        if request.param == "memory":
            fs = MemoryFileSystem()
        else:
            fs = NativeFileSystem(tmp_path / name)
        made.append(fs)
        return fs

    yield make
    for fs in made:
        fs.close_all()
