"""Magnet downloads by the torrio session/CLI from a libtorrent seed (metadata via ut_metadata,
v2 piece layers via BEP 52 hash requests), and a libtorrent downloader fetching a magnet's
metadata from a torrio seed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trio

from torrio.client import AddTorrent, open_session
from torrio.metainfo import Magnet, Torrent
from torrio.testing import libtorrent as ltx
from torrio.testing.client_swarm import LOOP, make_torrent, tree_digest

pytestmark = pytest.mark.skipif(not ltx.available(), reason="libtorrent wheel not installed")

FILES = {"a.bin": 700_000, "dir/b.bin": 123_457, "dir/c.bin": 40_000}


@pytest.mark.parametrize("version", ["v1", "hybrid", "v2"])
async def test_cli_magnet_download_from_libtorrent_seed(tmp_path: Path, version: str) -> None:
    t = make_torrent(tmp_path / "seed", FILES, piece_length=32768, version=version)
    saved = tmp_path / "saved.torrent"
    async with ltx.open_session() as lt_seed:
        sh = lt_seed.add_torrent(t.to_bytes(), tmp_path / "seed", seed_mode=True)
        await lt_seed.wait_for(lambda: ltx.seeding(sh))
        cmd = [
            sys.executable, "-m", "torrio.client", "download", Magnet.from_torrent(t).to_uri(),
            "--peer", f"127.0.0.1:{lt_seed.port}", "-o", str(tmp_path / "dl"),
            "--port", "0", "--listen-host", "127.0.0.1", "--no-dht", "--no-lsd",
            "--save-torrent", str(saved),
        ]  # fmt: skip
        with trio.fail_after(90):
            proc = await trio.run_process(cmd, check=False, capture_stderr=True)
        assert proc.returncode == 0, proc.stderr.decode()
    assert tree_digest(tmp_path / "dl" / "payload") == tree_digest(tmp_path / "seed" / "payload")
    fetched = Torrent.from_bytes(saved.read_bytes())
    assert fetched.info_bytes == t.info_bytes
    if version == "v2":
        assert fetched.piece_layers == t.piece_layers


async def test_session_magnet_with_select_only_from_libtorrent(tmp_path: Path) -> None:
    t = make_torrent(tmp_path / "seed", FILES, piece_length=32768)
    idx = next(i for i, f in enumerate(t.files) if f.path[-1] == "b.bin")
    async with ltx.open_session() as lt_seed, open_session(**LOOP) as ours:
        sh = lt_seed.add_torrent(t.to_bytes(), tmp_path / "seed", seed_mode=True)
        await lt_seed.wait_for(lambda: ltx.seeding(sh))
        uri = Magnet.from_torrent(t).to_uri() + f"&x.pe=127.0.0.1:{lt_seed.port}&so={idx}"
        with trio.fail_after(60):
            h = await ours.add_torrent(AddTorrent(source=uri, save_path=tmp_path / "dl"))
            await h.wait_finished()
    want = (tmp_path / "seed" / "payload" / "dir" / "b.bin").read_bytes()
    assert (tmp_path / "dl" / "payload" / "dir" / "b.bin").read_bytes() == want
    assert not (tmp_path / "dl" / "payload" / "a.bin").exists() or (
        (tmp_path / "dl" / "payload" / "a.bin").read_bytes()
        != (tmp_path / "seed" / "payload" / "a.bin").read_bytes()
    )


async def test_libtorrent_magnet_fetches_metadata_from_torrio(tmp_path: Path) -> None:
    t = make_torrent(tmp_path / "seed", FILES, piece_length=32768)
    async with open_session(**LOOP) as ours, ltx.open_session() as lt_dl:
        sh = await ours.add_torrent(AddTorrent(source=t, save_path=tmp_path / "seed"))
        await sh.wait_finished()
        lt = lt_dl.lt
        atp = lt.parse_magnet_uri(Magnet.from_torrent(t).to_uri())
        atp.save_path = str(tmp_path / "dl")
        h = lt_dl.session.add_torrent(atp)
        h.connect_peer(("127.0.0.1", ours.port))
        await lt_dl.wait_finished(h, timeout=60)
        assert sh.status().uploaded > 0
    assert tree_digest(tmp_path / "dl" / "payload") == tree_digest(tmp_path / "seed" / "payload")
