"""PEX between the torrio session and libtorrent: downloaders that only knew the seed meet.

* torrio seed -> two libtorrent downloaders: the session's ut_pex names each to the other.
* libtorrent seed -> a torrio and a libtorrent downloader: the torrio session takes the other
  downloader from the seed's ut_pex and dials it.
Upload limits keep the downloaders busy (and connected) long enough for PEX to happen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from torrio.client import AddTorrent, open_session
from torrio.core import PeerAddr
from torrio.testing import libtorrent as ltx
from torrio.testing.client_swarm import LOOP, make_torrent

pytestmark = pytest.mark.skipif(not ltx.available(), reason="libtorrent wheel not installed")


def _ports(handle: Any) -> set[int]:
    return {int(p.ip[1]) for p in handle.get_peer_info()}


async def _until(cond: Any, seconds: float) -> None:
    with trio.fail_after(seconds):
        while not cond():  # noqa: ASYNC110 (libtorrent changes state in its own threads)
            await trio.sleep(0.2)


async def test_torrio_seed_introduces_two_libtorrent_downloaders(tmp_path: Path) -> None:
    t = make_torrent(tmp_path / "seed", 2_000_000, piece_length=32768)
    async with (
        open_session(**LOOP, pex_interval=1.0, max_upload_rate=60_000) as ours,
        ltx.open_session() as d1,
        ltx.open_session() as d2,
    ):
        sh = await ours.add_torrent(AddTorrent(t, save_path=tmp_path / "seed"))
        await sh.wait_finished()
        h1 = d1.add_torrent(t.to_bytes(), tmp_path / "d1", peers=[("127.0.0.1", ours.port)])
        h2 = d2.add_torrent(t.to_bytes(), tmp_path / "d2", peers=[("127.0.0.1", ours.port)])
        await _until(lambda: d2.port in _ports(h1) or d1.port in _ports(h2), 40)
        assert sh._rt.pex_driver.pex.statistics().added_sent >= 2


async def test_torrio_downloader_finds_peer_through_libtorrent_pex(tmp_path: Path) -> None:
    t = make_torrent(tmp_path / "seed", 2_000_000, piece_length=32768)
    async with (
        ltx.open_session({"upload_rate_limit": 60_000}) as lt_seed,
        ltx.open_session() as other,
        open_session(**LOOP, pex_interval=1.0, max_download_rate=20_000) as ours,
    ):
        sh = lt_seed.add_torrent(t.to_bytes(), tmp_path / "seed", seed_mode=True)
        await lt_seed.wait_for(lambda: ltx.seeding(sh))
        ho = other.add_torrent(t.to_bytes(), tmp_path / "other")
        lt = other.lt
        await other.wait_for(lambda: ho.status().state == lt.torrent_status.downloading, 20)
        ho.set_download_limit(20_000)  # stays a downloader (and connected) for a while
        ho.connect_peer(("127.0.0.1", lt_seed.port))
        await other.wait_for(lambda: lt_seed.port in _ports(ho), 20)
        h = await ours.add_torrent(
            AddTorrent(t, save_path=tmp_path / "dl", peers=[PeerAddr("127.0.0.1", lt_seed.port)])
        )
        # libtorrent sends its first ut_pex about a minute after the connection opens
        await _until(lambda: other.port in {p.addr.port for p in h.peers()}, 100)
        pex = h._rt.pex_driver.pex.statistics()
        assert pex.peers_accepted >= 1
