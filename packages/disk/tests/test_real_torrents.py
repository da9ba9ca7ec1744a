"""DiskManager with real torrio.metainfo Torrents (v1, v2, hybrid; ours and libtorrent's)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from torrio.disk import (
    BLOCK_SIZE,
    MemoryFileSystem,
    NativeFileSystem,
    PieceVerified,
    TorrentLike,
    TorrentStorage,
    open_disk_manager,
)
from torrio.metainfo import Torrent, TorrentBuilder
from torrio.testing import libtorrent as ltharness
from torrio.testing import make_random_tree

TREE = {
    "a.bin": 3 * 65536 + 17,
    "dir/b.bin": 1000,
    "dir/c.bin": 2 * 65536,
    "dir/deeper/d.bin": 65536 + 16384 + 1,
    "z.bin": 5,
}


def source(tmp_path: Path) -> Path:
    return make_random_tree(tmp_path / "src" / "payload", TREE, seed=3)


def _as_torrent_like(t: Torrent) -> TorrentLike:
    return t  # mypy proves that torrio.metainfo.Torrent satisfies TorrentLike


async def download(storage: TorrentStorage, seed: TorrentStorage, t: Torrent) -> None:
    """Copy every block from ``seed`` to ``storage`` and collect one PieceVerified per piece."""
    got: list[PieceVerified] = []
    async with trio.open_nursery() as nursery:

        async def drain() -> None:
            async for ev in storage.events:
                assert isinstance(ev, PieceVerified)
                got.append(ev)
                if len(got) == t.num_pieces:
                    return

        nursery.start_soon(drain)
        for i in reversed(range(t.num_pieces)):
            size = seed.pieces.piece_size(i)
            for off in range(0, size, BLOCK_SIZE):
                n = min(BLOCK_SIZE, size - off)
                await storage.write_block(i, off, await seed.read_block(i, off, n), peer=i % 3)
    assert all(e.ok for e in got) and storage.have.all()


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
async def test_torrio_built_torrents(tmp_path: Path, version: str) -> None:
    src = source(tmp_path)
    t = Torrent.from_bytes(
        TorrentBuilder(src, version=version, piece_length=65536).build().to_bytes()
    )
    assert t.version == version
    dest = MemoryFileSystem()
    async with open_disk_manager() as dm:
        seed = await dm.add_torrent(_as_torrent_like(t), NativeFileSystem(src.parent))
        assert seed.have.all(), "existing data is checked on add"
        leech = await dm.add_torrent(t, dest)
        await download(leech, seed, t)
    for rel in TREE:
        buf = bytearray(TREE[rel])
        assert dest.read(f"payload/{rel}", 0, buf) == TREE[rel]
        assert bytes(buf) == (src / rel).read_bytes()
    assert not [p for p in dest.paths() if ".pad" in p]


@pytest.mark.skipif(not ltharness.available(), reason="libtorrent not installed")
@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
async def test_libtorrent_built_torrents(tmp_path: Path, version: str) -> None:
    src = source(tmp_path)
    t = Torrent.from_bytes(ltharness.create_torrent(src, piece_size=32768, version=version))
    async with open_disk_manager() as dm:
        seed = await dm.add_torrent(t, NativeFileSystem(src.parent))
        assert seed.have.all()
        # corrupt one byte: exactly the pieces holding it fail the check
        with (src / "dir" / "c.bin").open("r+b") as f:
            f.seek(70000)
            f.write(b"\x00" if f.read(1) != b"\x00" else b"\x01")
        have = await seed.check()
        c = next(i for i, f in enumerate(t.files) if f.path[-1] == "c.bin")
        bad = (t.files[c].offset + 70000) // t.piece_length
        assert list(have.missing()) == [bad]
