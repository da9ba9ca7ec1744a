"""The session API on loopback: pause/resume, remove, queueing, sources, limits, events."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path
from typing import Any

import pytest
import trio

from torrio.client import (
    AddTorrent,
    ClientError,
    PeerConnected,
    PieceFinished,
    ResumeDataSaved,
    StatsEvent,
    TorrentPaused,
    TorrentRemoved,
    TorrentState,
    open_session,
)
from torrio.client._source import load_torrent
from torrio.core import PeerAddr

from ._helpers import make_torrent, tree_digest

LOOP: dict[str, Any] = {"listen_host": "127.0.0.1", "listen_port": 0, "reraise_errors": True}


def drain(stream: Any) -> list[Any]:
    out = []
    while True:
        try:
            out.append(stream.receive_nowait())
        except trio.WouldBlock:
            return out


async def test_pause_saves_resume_and_resume_completes(tmp_path: Path) -> None:
    t = make_torrent(tmp_path / "seed", 500_000, piece_length=16384)
    with trio.fail_after(30):
        async with (
            open_session(**LOOP) as seed,
            open_session(**LOOP, resume_dir=str(tmp_path / "r")) as dl,
        ):
            await (
                await seed.add_torrent(AddTorrent(source=t, save_path=tmp_path / "seed"))
            ).wait_finished()
            events = dl.events()
            h = await dl.add_torrent(
                AddTorrent(
                    source=t,
                    save_path=tmp_path / "dl",
                    peers=[PeerAddr("127.0.0.1", seed.port)],
                    max_download_rate=200_000,
                )
            )
            finished = 0
            async for e in events:
                finished += isinstance(e, PieceFinished)
                if finished >= 3:
                    break
            await h.pause()
            assert h.status().state is TorrentState.PAUSED
            with trio.fail_after(5):
                async for e in events:
                    if isinstance(e, ResumeDataSaved):
                        break
            assert (tmp_path / "r" / f"{t.info_hash.hex()}.resume").exists()
            assert h.status().peers == 0
            h.set_rate_limits(download=0)
            await h.resume()
            await h.wait_finished()
    assert tree_digest(tmp_path / "dl" / "payload") == tree_digest(tmp_path / "seed" / "payload")


async def test_remove_with_files_and_duplicates(tmp_path: Path) -> None:
    t = make_torrent(tmp_path / "seed", 100_000, piece_length=16384)
    async with open_session(**LOOP) as s:
        events = s.events()
        h = await s.add_torrent(AddTorrent(source=t.to_bytes(), save_path=tmp_path / "seed"))
        await h.wait_finished()
        with pytest.raises(ClientError):
            await s.add_torrent(AddTorrent(source=t, save_path=tmp_path / "seed"))
        assert s.find_torrent(t.info_hash) is not None
        await s.remove_torrent(h, delete_files=True)
        assert not h.is_valid and s.torrents() == []
        assert any(isinstance(e, TorrentRemoved) for e in drain(events))
        with pytest.raises(ClientError):
            h.connect_peer("127.0.0.1:1")
    assert not (tmp_path / "seed" / "payload").exists()


async def test_active_download_limit_queues(tmp_path: Path) -> None:
    t1 = make_torrent(tmp_path / "s1", 200_000, piece_length=16384, name="one", seed=1)
    t2 = make_torrent(tmp_path / "s2", 200_000, piece_length=16384, name="two", seed=2)
    with trio.fail_after(30):
        async with open_session(**LOOP) as seed, open_session(**LOOP, active_downloads=1) as dl:
            for t, d in ((t1, "s1"), (t2, "s2")):
                await (
                    await seed.add_torrent(AddTorrent(source=t, save_path=tmp_path / d))
                ).wait_finished()
            peer = [PeerAddr("127.0.0.1", seed.port)]
            h1 = await dl.add_torrent(AddTorrent(source=t1, save_path=tmp_path / "d", peers=peer))
            await h1.wait_checked()
            h2 = await dl.add_torrent(AddTorrent(source=t2, save_path=tmp_path / "d", peers=peer))
            await h2.wait_checked()
            assert h2.status().state is TorrentState.QUEUED
            await h1.wait_finished()
            await h2.wait_finished()  # dequeued once the first one seeds


async def test_add_from_file_and_url_and_bad_sources(tmp_path: Path) -> None:
    t = make_torrent(tmp_path, 50_000, piece_length=16384)
    path = tmp_path / "x.torrent"
    path.write_bytes(t.to_bytes())
    assert (await load_torrent(str(path))).info_hash == t.info_hash

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: Any) -> None:
            super().__init__(*a, directory=str(tmp_path))

        def log_message(self, *a: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/x.torrent"
        assert (await load_torrent(url)).info_hash == t.info_hash
        with pytest.raises(ClientError):
            await load_torrent(url + ".missing")
    finally:
        server.shutdown()
    for bad in (
        b"not bencode",
        str(tmp_path / "nope.torrent"),
        42,
        "magnet:?xt=urn:btih:" + "0" * 40,
    ):
        with pytest.raises(ClientError):
            await load_torrent(bad)


async def test_stats_events_and_peer_status(tmp_path: Path) -> None:
    t = make_torrent(tmp_path / "seed", 300_000, piece_length=16384)
    with trio.fail_after(30):
        async with (
            open_session(**LOOP) as seed,
            open_session(**LOOP, stats_interval=0.2) as dl,
        ):
            await (
                await seed.add_torrent(AddTorrent(source=t, save_path=tmp_path / "seed"))
            ).wait_finished()
            events = dl.events()
            h = await dl.add_torrent(
                AddTorrent(
                    source=t,
                    save_path=tmp_path / "dl",
                    peers=[PeerAddr("127.0.0.1", seed.port)],
                    max_download_rate=100_000,
                )
            )
            async for e in events:
                if isinstance(e, PeerConnected):
                    break
            ps = h.peers()[0]
            assert ps.addr.port == seed.port and not ps.incoming
            await h.wait_finished()
            stats = [e for e in drain(events) if isinstance(e, StatsEvent)]
            assert stats and stats[-1].torrents[0].info_hash == t.info_hash
            st = dl.status()
            assert st.torrents == 1 and st.downloaded >= t.total_length


async def test_seed_time_limit_pauses(tmp_path: Path) -> None:
    t = make_torrent(tmp_path / "seed", 40_000, piece_length=16384)
    with trio.fail_after(10):
        async with open_session(**LOOP) as s:
            events = s.events()
            h = await s.add_torrent(
                AddTorrent(source=t, save_path=tmp_path / "seed", seed_time_limit=0.2)
            )
            await h.wait_finished()
            async for e in events:
                if isinstance(e, TorrentPaused):
                    break
            assert h.status().paused


async def test_private_torrent_uses_only_its_trackers(tmp_path: Path) -> None:
    own = ("http://127.0.0.1:9/announce",)
    extra = ["http://127.0.0.1:10/announce"]
    pub = make_torrent(tmp_path / "a", 20_000, name="pub", trackers=own)
    priv = make_torrent(tmp_path / "b", 20_000, name="priv", trackers=own, private=True)
    async with open_session(**LOOP, tracker_allow_local=True) as s:
        hp = await s.add_torrent(AddTorrent(source=pub, save_path=tmp_path / "a", trackers=extra))
        hv = await s.add_torrent(AddTorrent(source=priv, save_path=tmp_path / "b", trackers=extra))
        assert hv.torrent.private
        assert hp._rt._tracker_tiers() == [list(own), extra]
        assert hv._rt._tracker_tiers() == [list(own)]


async def test_download_rate_limit_is_respected(tmp_path: Path) -> None:
    """300 kB at 100 kB/s (one second of burst) takes about two seconds, not a few ms."""
    t = make_torrent(tmp_path / "seed", 300_000, piece_length=16384)
    with trio.fail_after(30):
        async with open_session(**LOOP) as seed, open_session(**LOOP) as dl:
            await (
                await seed.add_torrent(AddTorrent(source=t, save_path=tmp_path / "seed"))
            ).wait_finished()
            start = trio.current_time()
            h = await dl.add_torrent(
                AddTorrent(
                    source=t,
                    save_path=tmp_path / "dl",
                    peers=[PeerAddr("127.0.0.1", seed.port)],
                    max_download_rate=100_000,
                )
            )
            await h.wait_finished()
            elapsed = trio.current_time() - start
    assert elapsed >= 1.5
