"""Magnet links through the session on loopback: metadata via ut_metadata, BEP 53 ``so=``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from torrio.client import (
    AddTorrent,
    ClientError,
    MetadataReceived,
    StatsEvent,
    TorrentState,
    open_session,
)
from torrio.core import PeerAddr
from torrio.metainfo import Magnet, Torrent

from ._helpers import make_torrent, tree_digest

LOOP: dict[str, Any] = {"listen_host": "127.0.0.1", "listen_port": 0, "reraise_errors": True}


def _magnet(t: Torrent, port: int, **changes: Any) -> Magnet:
    return attrs.evolve(Magnet.from_torrent(t), peers=(("127.0.0.1", port),), **changes)


async def test_magnet_uri_downloads_from_our_seed(tmp_path: Path) -> None:
    t = make_torrent(tmp_path / "seed", {"a.bin": 200_000, "b/c.bin": 70_001}, piece_length=16384)
    with trio.fail_after(30):
        async with open_session(**LOOP) as seed, open_session(**LOOP) as leech:
            await (
                await seed.add_torrent(AddTorrent(t, save_path=tmp_path / "seed"))
            ).wait_finished()
            events = leech.events()
            uri = _magnet(t, seed.port).to_uri()
            lh = await leech.add_torrent(AddTorrent(source=uri, save_path=tmp_path / "dl"))
            # the handle comes back before the metadata
            assert not lh.has_metadata
            assert lh.status().state is TorrentState.DOWNLOADING_METADATA
            assert lh.status().progress == 0.0
            with pytest.raises(ClientError, match="metadata not received"):
                _ = lh.torrent
            await lh.wait_metadata()
            assert lh.status().has_metadata
            assert lh.torrent.info_bytes == t.info_bytes
            await lh.wait_finished()
            got = None
            async for ev in events:
                if isinstance(ev, MetadataReceived):
                    got = ev
                    break
            assert got is not None
            assert got.info_hash == t.info_hash and got.total_length == t.total_length
    assert tree_digest(tmp_path / "dl" / "payload") == tree_digest(tmp_path / "seed" / "payload")


async def test_magnet_select_only_downloads_the_selected_file(tmp_path: Path) -> None:
    t = make_torrent(
        tmp_path / "seed", {"a.bin": 100_000, "b.bin": 90_000, "c.bin": 80_000}, piece_length=16384
    )
    chosen = next(i for i, f in enumerate(t.files) if f.path[-1] == "b.bin")
    with trio.fail_after(30):
        async with open_session(**LOOP) as seed, open_session(**LOOP) as leech:
            await (
                await seed.add_torrent(AddTorrent(t, save_path=tmp_path / "seed"))
            ).wait_finished()
            m = _magnet(t, seed.port, select_only=(chosen,))
            lh = await leech.add_torrent(AddTorrent(source=m, save_path=tmp_path / "dl"))
            await lh.wait_finished()
            prios = [fs.priority for fs in lh.file_status()]
            assert [p > 0 for p in prios] == [i == chosen for i in range(len(t.files))]
    got = (tmp_path / "dl" / "payload" / "b.bin").read_bytes()
    assert got == (tmp_path / "seed" / "payload" / "b.bin").read_bytes()


async def test_magnet_without_reachable_peers_waits_and_is_removable(tmp_path: Path) -> None:
    t = make_torrent(tmp_path / "seed", 50_000, piece_length=16384)
    async with open_session(**LOOP) as leech:
        dead = PeerAddr("127.0.0.1", 1)
        m = attrs.evolve(Magnet.from_torrent(t), peers=((str(dead.ip), dead.port),))
        events = leech.events()
        lh = await leech.add_torrent(AddTorrent(source=m, save_path=tmp_path / "dl"))
        assert leech.torrents() == [lh]
        assert leech.find_torrent(t.info_hash) == lh  # found by the v1 digest
        assert leech.status().torrents == 1
        with pytest.raises(ClientError, match="already in the session"):
            await leech.add_torrent(AddTorrent(source=t, save_path=tmp_path / "dl"))
        with trio.move_on_after(1) as scope:
            await lh.wait_metadata()
        assert scope.cancelled_caught
        await lh.pause()
        assert lh.status().state is TorrentState.PAUSED
        await lh.resume()
        assert lh.status().state is TorrentState.DOWNLOADING_METADATA
        await leech.remove_torrent(lh)
        assert not lh.is_valid and leech.torrents() == []
        with pytest.raises(ClientError, match="removed"):
            await lh.wait_metadata()
        kinds = []
        while True:
            try:
                e = events.receive_nowait()
                if not isinstance(e, StatsEvent):
                    kinds.append(type(e).__name__)
            except trio.WouldBlock:
                break
        assert kinds[:4] == ["TorrentAdded", "TorrentPaused", "TorrentResumed", "TorrentRemoved"]
        # the info-hash is free again: a .torrent add works
        await leech.add_torrent(AddTorrent(source=t, save_path=tmp_path / "dl"))


async def test_magnet_metadata_from_an_incoming_connection(tmp_path: Path) -> None:
    """A magnet with no peer to dial gets its metadata from a peer that connects to us."""
    t = make_torrent(tmp_path / "seed", {"a.bin": 100_000}, piece_length=16384)
    with trio.fail_after(40):
        async with open_session(**LOOP) as seed, open_session(**LOOP) as leech:
            sh = await seed.add_torrent(AddTorrent(t, save_path=tmp_path / "seed"))
            await sh.wait_finished()
            m = Magnet.from_torrent(t)
            assert m.peers == ()
            lh = await leech.add_torrent(AddTorrent(source=m, save_path=tmp_path / "dl"))
            sh.connect_peer(PeerAddr("127.0.0.1", leech.port))
            await lh.wait_metadata()
            assert lh.torrent.info_bytes == t.info_bytes
            await lh.wait_finished()
    assert tree_digest(tmp_path / "dl" / "payload") == tree_digest(tmp_path / "seed" / "payload")


async def test_v2_only_magnet_fetches_piece_layers_and_downloads(tmp_path: Path) -> None:
    # several files: one of 1 piece (no layer), one of 3 pieces, one of > 512 pieces (2 chunks)
    files = {"one.bin": 10_000, "three.bin": 40_000, "big.bin": 600 * 16384 + 5}
    t = make_torrent(tmp_path / "seed", files, piece_length=16384, version="v2")
    assert t.has_all_piece_layers
    with trio.fail_after(60):
        async with open_session(**LOOP) as seed, open_session(**LOOP) as leech:
            await (
                await seed.add_torrent(AddTorrent(t, save_path=tmp_path / "seed"))
            ).wait_finished()
            m = _magnet(t, seed.port)
            assert m.info_hash.v1 is None
            lh = await leech.add_torrent(AddTorrent(source=m, save_path=tmp_path / "dl"))
            await lh.wait_metadata()
            got = lh.torrent
            assert got.version == "v2" and got.info_hash == t.info_hash
            assert got.piece_layers == t.piece_layers
            await lh.wait_finished()
    assert tree_digest(tmp_path / "dl" / "payload") == tree_digest(tmp_path / "seed" / "payload")


async def test_bad_magnet_uri_is_a_client_error(tmp_path: Path) -> None:
    async with open_session(**LOOP) as leech:
        with pytest.raises(ClientError):
            await leech.add_torrent(AddTorrent(source="magnet:?xt=urn:btih:zz", save_path=tmp_path))


def test_cli_magnet_download_saves_torrent(tmp_path: Path) -> None:
    t = make_torrent(tmp_path / "seed", {"x.bin": 120_000, "y.bin": 5}, piece_length=16384)
    saved = tmp_path / "saved.torrent"

    async def main() -> int:
        async with open_session(**LOOP) as seed:
            await (
                await seed.add_torrent(AddTorrent(t, save_path=tmp_path / "seed"))
            ).wait_finished()
            uri = Magnet.from_torrent(t).to_uri()
            cmd = [
                sys.executable, "-m", "torrio.client", "download", uri,
                "--peer", f"127.0.0.1:{seed.port}", "-o", str(tmp_path / "dl"),
                "--port", "0", "--listen-host", "127.0.0.1", "--no-dht", "--no-lsd",
                "--save-torrent", str(saved),
            ]  # fmt: skip
            with trio.fail_after(60):
                proc = await trio.run_process(cmd, check=False, capture_stderr=True)
            assert proc.returncode == 0, proc.stderr.decode()
            return proc.returncode

    assert trio.run(main) == 0
    assert tree_digest(tmp_path / "dl" / "payload") == tree_digest(tmp_path / "seed" / "payload")
    assert Torrent.from_bytes(saved.read_bytes()).info_bytes == t.info_bytes


async def test_hybrid_magnet_downloads_verified_by_v1_hashes(tmp_path: Path) -> None:
    t = make_torrent(tmp_path / "seed", {"a.bin": 90_000, "b.bin": 40_000}, version="hybrid")
    with trio.fail_after(30):
        async with open_session(**LOOP) as seed, open_session(**LOOP) as leech:
            await (
                await seed.add_torrent(AddTorrent(t, save_path=tmp_path / "seed"))
            ).wait_finished()
            m = _magnet(t, seed.port)
            assert m.info_hash.v1 is not None and m.info_hash.v2 is not None
            lh = await leech.add_torrent(AddTorrent(source=m, save_path=tmp_path / "dl"))
            assert lh.info_hash == t.info_hash
            await lh.wait_finished()
    assert tree_digest(tmp_path / "dl" / "payload") == tree_digest(tmp_path / "seed" / "payload")
