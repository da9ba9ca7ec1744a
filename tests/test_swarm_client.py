"""End-to-end swarms of torrio sessions on loopback (seed -> several downloaders)."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest
import trio

from torrio.client import (
    AddTorrent,
    PeerBanned,
    StorageError,
    TorrentPaused,
    open_session,
)
from torrio.core import PeerAddr
from torrio.disk import MemoryFileSystem
from torrio.metainfo import Magnet
from torrio.testing.client_swarm import (
    LOOP,
    drain,
    make_torrent,
    serve_corrupt_peer,
    tree_digest,
    wait_event,
)
from torrio.testing.filesystem_conformance import FaultInjectingFileSystem

pytestmark = pytest.mark.slow


async def test_downloaders_exchange_pieces_with_each_other(tmp_path: Path) -> None:
    """A rate-limited seed and three downloaders that all know each other: they share pieces."""
    t = make_torrent(tmp_path / "seed", {"a.bin": 700_000, "b/c.bin": 333_333}, piece_length=16384)
    with trio.fail_after(60):
        async with (
            open_session(**LOOP) as seed,
            open_session(**LOOP) as d1,
            open_session(**LOOP) as d2,
            open_session(**LOOP) as d3,
        ):
            sh = await seed.add_torrent(
                AddTorrent(source=t, save_path=tmp_path / "seed", max_upload_rate=400_000)
            )
            await sh.wait_finished()
            everyone = [seed, d1, d2, d3]
            handles = []
            for i, s in enumerate((d1, d2, d3)):
                others = [PeerAddr("127.0.0.1", o.port) for o in everyone if o is not s]
                handles.append(
                    await s.add_torrent(
                        AddTorrent(source=t, save_path=tmp_path / f"d{i}", peers=others)
                    )
                )
            for h in handles:
                await h.wait_finished()
            shared = sum(h.status().uploaded for h in handles)
            from_seed = sh.status().uploaded
    for i in range(3):
        assert tree_digest(tmp_path / f"d{i}" / "payload") == tree_digest(
            tmp_path / "seed" / "payload"
        )
    # the swarm got 3 copies; the seed sent well under that, the rest came from downloaders
    assert shared > 0
    assert from_seed < 3 * t.total_length


async def test_file_priorities_skip_and_finish(tmp_path: Path) -> None:
    files = {"skip.bin": 200_000, "want.bin": 150_000, "zz_high.bin": 90_001}
    t = make_torrent(tmp_path / "seed", files, piece_length=16384)
    order = [f.path[-1] for f in t.files if not f.is_pad]
    prios = [0 if name == "skip.bin" else (7 if name == "zz_high.bin" else 4) for name in order]
    with trio.fail_after(30):
        async with open_session(**LOOP) as seed, open_session(**LOOP) as dl:
            sh = await seed.add_torrent(AddTorrent(source=t, save_path=tmp_path / "seed"))
            await sh.wait_finished()
            h = await dl.add_torrent(
                AddTorrent(
                    source=t,
                    save_path=tmp_path / "dl",
                    file_priorities=prios,
                    peers=[PeerAddr("127.0.0.1", seed.port)],
                )
            )
            await h.wait_finished()
            st = h.status()
            assert st.finished and st.done == st.wanted_length < t.total_length
            fs = {f.path: f for f in h.file_status()}
            assert fs["payload/want.bin"].done == 150_000
            assert fs["payload/zz_high.bin"].done == 90_001
    seed_d = tree_digest(tmp_path / "seed" / "payload")
    got = tree_digest(tmp_path / "dl" / "payload")
    assert got["want.bin"] == seed_d["want.bin"]
    assert got["zz_high.bin"] == seed_d["zz_high.bin"]
    assert got.get("skip.bin") != seed_d["skip.bin"]


async def test_disk_full_pauses_then_completes(tmp_path: Path) -> None:
    t = make_torrent(tmp_path / "seed", 600_000, piece_length=32768)
    fault = FaultInjectingFileSystem(MemoryFileSystem())
    fault.fail_writes_from = 3  # the disk fills up after two writes
    with trio.fail_after(30):
        async with open_session(**LOOP) as seed, open_session(**LOOP) as dl:
            sh = await seed.add_torrent(AddTorrent(source=t, save_path=tmp_path / "seed"))
            await sh.wait_finished()
            events = dl.events()
            h = await dl.add_torrent(
                AddTorrent(
                    source=t,
                    save_path="mem",
                    storage=lambda _path: fault,
                    peers=[PeerAddr("127.0.0.1", seed.port)],
                )
            )
            err = await wait_event(events, StorageError)
            assert isinstance(err, StorageError) and err.errno == errno.ENOSPC
            await wait_event(events, TorrentPaused)
            assert h.status().paused and not h.status().finished
            fault.heal()  # space comes back
            await h.resume()
            await h.wait_finished()
            assert h.status().done == t.total_length
    data = bytearray(t.total_length)
    fault.inner.read("payload", 0, memoryview(data))
    assert bytes(data) == (tmp_path / "seed" / "payload").read_bytes()


async def test_hostile_peer_is_banned_and_download_completes(tmp_path: Path) -> None:

    t = make_torrent(tmp_path / "seed", 400_000, piece_length=16384)
    with trio.fail_after(45):
        async with (
            open_session(**LOOP) as seed,
            open_session(**LOOP) as dl,
            trio.open_nursery() as n,
        ):
            sh = await seed.add_torrent(
                AddTorrent(source=t, save_path=tmp_path / "seed", max_upload_rate=150_000)
            )
            await sh.wait_finished()
            hostile_port = await n.start(serve_corrupt_peer, t)
            events = dl.events()
            h = await dl.add_torrent(
                AddTorrent(
                    source=t,
                    save_path=tmp_path / "dl",
                    peers=[
                        PeerAddr("127.0.0.1", hostile_port),
                        PeerAddr("127.0.0.1", seed.port),
                    ],
                )
            )
            await h.wait_finished()
            banned = [e for e in drain(events) if isinstance(e, PeerBanned)]
            n.cancel_scope.cancel()
    assert [b.peer.port for b in banned] == [hostile_port]
    assert tree_digest(tmp_path / "dl" / "payload") == tree_digest(tmp_path / "seed" / "payload")


async def test_peers_found_through_our_tracker(tmp_path: Path) -> None:
    """Downloaders that know only the tracker (torrio-tracker-server) find the seed and each other."""
    from torrio.client import TrackerReply
    from torrio.tracker_server import TrackerConfig, open_tracker_server

    with trio.fail_after(60):
        async with open_tracker_server(
            config=TrackerConfig(interval=2, min_interval=1), http_port=0, udp_port=0
        ) as tracker:
            t = make_torrent(
                tmp_path / "seed", {"x.bin": 500_000, "y.bin": 200_000},
                piece_length=16384, trackers=(tracker.udp_url, tracker.http_url),
            )  # fmt: skip
            async with (
                open_session(**LOOP) as seed,
                open_session(**LOOP) as d1,
                open_session(**LOOP) as d2,
            ):
                sh = await seed.add_torrent(
                    AddTorrent(source=t, save_path=tmp_path / "seed", max_upload_rate=300_000)
                )
                await sh.wait_finished()
                events = d1.events()
                h1 = await d1.add_torrent(AddTorrent(source=t, save_path=tmp_path / "d1"))
                h2 = await d2.add_torrent(AddTorrent(source=t, save_path=tmp_path / "d2"))
                await h1.wait_finished()
                await h2.wait_finished()
                replies = [e for e in drain(events) if isinstance(e, TrackerReply)]
                assert replies and replies[0].peers >= 1
    for d in ("d1", "d2"):
        assert tree_digest(tmp_path / d / "payload") == tree_digest(tmp_path / "seed" / "payload")


async def test_peers_found_through_the_dht(tmp_path: Path) -> None:
    """No tracker, no peer list: the seed and the downloader meet through a loopback DHT."""
    from torrio.client import DhtReply
    from torrio.dht import open_node

    t = make_torrent(tmp_path / "seed", 300_000, piece_length=16384)
    with trio.fail_after(60):
        async with open_node(host="127.0.0.1", wait_joined=False) as boot:
            dht: dict[str, Any] = {
                "dht": True,
                "dht_bootstrap": (("127.0.0.1", boot.port),),
                "dht_interval": 1.0,
            }
            async with open_session(**LOOP, **dht) as seed, open_session(**LOOP, **dht) as dl:
                sh = await seed.add_torrent(AddTorrent(source=t, save_path=tmp_path / "seed"))
                await sh.wait_finished()
                events = dl.events()
                h = await dl.add_torrent(AddTorrent(source=t, save_path=tmp_path / "dl"))
                await h.wait_finished()
                reply = await wait_event(events, DhtReply)
                assert isinstance(reply, DhtReply) and reply.error is None
    assert tree_digest(tmp_path / "dl" / "payload") == tree_digest(tmp_path / "seed" / "payload")


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_magnet_found_through_the_dht(tmp_path: Path, version: str) -> None:
    """A magnet with no peers and no trackers: metadata (and v2 piece layers) from a peer the DHT
    names, then the download."""
    from torrio.dht import open_node

    t = make_torrent(tmp_path / "seed", 300_000, piece_length=16384, version=version)
    with trio.fail_after(60):
        async with open_node(host="127.0.0.1", wait_joined=False) as boot:
            dht: dict[str, Any] = {
                "dht": True,
                "dht_bootstrap": (("127.0.0.1", boot.port),),
                "dht_interval": 1.0,
            }
            async with open_session(**LOOP, **dht) as seed, open_session(**LOOP, **dht) as dl:
                sh = await seed.add_torrent(AddTorrent(source=t, save_path=tmp_path / "seed"))
                await sh.wait_finished()
                m = Magnet.from_torrent(t)
                assert m.peers == () and m.trackers == ()
                h = await dl.add_torrent(AddTorrent(source=m, save_path=tmp_path / "dl"))
                await h.wait_finished()
    assert tree_digest(tmp_path / "dl" / "payload") == tree_digest(tmp_path / "seed" / "payload")


async def test_hybrid_torrent_is_announced_in_both_swarms(tmp_path: Path) -> None:
    """A hybrid seed announces its v1 id and its truncated v2 id (libtorrent does the same), and a
    peer that knows only the v2 swarm downloads from it through the tracker."""
    from torrio.core import InfoHash
    from torrio.tracker_server import TrackerConfig, open_tracker_server

    with trio.fail_after(60):
        async with open_tracker_server(
            config=TrackerConfig(interval=2, min_interval=1), http_port=0, udp_port=0
        ) as tracker:
            t = make_torrent(
                tmp_path / "seed", {"x.bin": 300_000, "y.bin": 70_000}, piece_length=16384,
                trackers=(tracker.http_url,), version="hybrid",
            )  # fmt: skip
            ih = t.info_hash
            assert ih.v1 is not None and ih.v2_truncated is not None
            async with open_session(**LOOP) as seed, open_session(**LOOP) as dl:
                sh = await seed.add_torrent(AddTorrent(source=t, save_path=tmp_path / "seed"))
                await sh.wait_finished()
                store = tracker.tracker.store
                while True:
                    counts = await store.scrape([ih.v1, ih.v2_truncated], now=trio.current_time())
                    if all(c.complete == 1 for c in counts.values()) and len(counts) == 2:
                        break
                    await trio.sleep(0.05)
                # a downloader that only joins the v2 swarm (a v2-only magnet of the same torrent)
                m = Magnet(info_hash=InfoHash(v2=ih.v2), trackers=(tracker.http_url,))
                h = await dl.add_torrent(AddTorrent(source=m, save_path=tmp_path / "dl"))
                await h.wait_finished()
    assert tree_digest(tmp_path / "dl" / "payload") == tree_digest(tmp_path / "seed" / "payload")
