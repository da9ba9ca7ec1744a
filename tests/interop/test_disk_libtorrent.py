"""torrio-disk and libtorrent agree on what is on disk (v1, v2 and hybrid, with pad files).

Data that torrio-disk assembled from blocks passes libtorrent's recheck, and data libtorrent
downloaded passes ours.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import trio

from torrio.disk import BLOCK_SIZE, NativeFileSystem, PieceVerified, open_disk_manager
from torrio.metainfo import Torrent
from torrio.testing import libtorrent as ltharness
from torrio.testing import make_random_tree

pytestmark = pytest.mark.skipif(not ltharness.available(), reason="libtorrent not installed")

TREE = {"a.bin": 100_000, "sub/b.bin": 40_000, "sub/c.bin": 300_001, "tiny": 3}


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
async def test_libtorrent_accepts_data_written_by_torrio_disk(tmp_path: Path, version: str) -> None:
    src = make_random_tree(tmp_path / "src" / "payload", TREE, seed=8)
    data = ltharness.create_torrent(src, piece_size=32768, version=version)
    t = Torrent.from_bytes(data)
    linear = bytearray(t.total_length)
    for f in t.files:
        if not f.is_pad:
            linear[f.offset : f.offset + f.length] = (src.parent.joinpath(*f.path)).read_bytes()
    dest = tmp_path / "dest"
    blocks = [
        (i, off)
        for i in range(t.num_pieces)
        for off in range(0, min(t.piece_length, t.total_length - i * t.piece_length), BLOCK_SIZE)
    ]
    random.Random(1).shuffle(blocks)
    async with open_disk_manager() as dm:
        storage = await dm.add_torrent(t, NativeFileSystem(dest))
        async with trio.open_nursery() as nursery:

            async def drain() -> None:
                n = 0
                async for ev in storage.events:
                    assert isinstance(ev, PieceVerified) and ev.ok
                    n += 1
                    if n == t.num_pieces:
                        return

            nursery.start_soon(drain)
            for i, off in blocks:
                start = i * t.piece_length + off
                end = min(start + BLOCK_SIZE, (i + 1) * t.piece_length, t.total_length)
                await storage.write_block(i, off, bytes(linear[start:end]))
        await dm.remove_torrent(storage)
    async with ltharness.open_session() as ses:
        handle = ses.add_torrent(data, dest)
        await ses.wait_finished(handle, timeout=30)
        assert handle.status().num_pieces == t.num_pieces


@pytest.mark.parametrize("version", ["v1", "hybrid"])
async def test_torrio_disk_accepts_data_downloaded_by_libtorrent(
    tmp_path: Path, version: str
) -> None:
    src = make_random_tree(tmp_path / "seed" / "payload", TREE, seed=9)
    data = ltharness.create_torrent(src, piece_size=16384, version=version)
    async with ltharness.open_session() as seed_ses, ltharness.open_session() as leech_ses:
        seed_ses.add_torrent(data, src.parent, seed_mode=True)
        handle = leech_ses.add_torrent(
            data, tmp_path / "leech", peers=[("127.0.0.1", seed_ses.port)]
        )
        await leech_ses.wait_finished(handle, timeout=60)
    # the sessions are closed: libtorrent has written everything out
    t = Torrent.from_bytes(data)
    async with open_disk_manager() as dm:
        storage = await dm.add_torrent(t, NativeFileSystem(tmp_path / "leech"))
        assert storage.have.all()
