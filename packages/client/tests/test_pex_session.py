"""Peer exchange through the session on loopback: two downloaders that only know the seed meet.

``pex_interval`` is lowered from BEP 11's 60 s so the tests run in seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from torrio.client import AddTorrent, TorrentHandle, open_session
from torrio.core import PeerAddr

from ._helpers import make_torrent

LOOP: dict[str, Any] = {
    "listen_host": "127.0.0.1",
    "listen_port": 0,
    "reraise_errors": True,
    "pex_interval": 0.5,
}


def _peer_ports(h: TorrentHandle) -> set[int]:
    return {p.addr.port for p in h.peers()}


async def _meet(tmp_path: Path, private: bool, **settings: Any) -> tuple[bool, Any]:
    t = make_torrent(tmp_path / "seed", 400_000, piece_length=16384, private=private)
    async with (
        open_session(**{**LOOP, **settings}) as s,
        open_session(**{**LOOP, **settings}) as a,
        open_session(**{**LOOP, **settings}) as b,
    ):
        sh = await s.add_torrent(AddTorrent(t, save_path=tmp_path / "seed"))
        await sh.wait_finished()
        seed = [PeerAddr("127.0.0.1", s.port)]
        # tiny rate limits keep both downloaders busy (and interested in each other) for a while
        kw: dict[str, Any] = {"peers": seed, "max_download_rate": 20_000}
        ah = await a.add_torrent(AddTorrent(t, save_path=tmp_path / "a", **kw))
        bh = await b.add_torrent(AddTorrent(t, save_path=tmp_path / "b", **kw))
        met = False
        with trio.move_on_after(6):
            while not met:
                met = b.port in _peer_ports(ah) or a.port in _peer_ports(bh)
                await trio.sleep(0.1)
        return met, sh._rt.pex_driver.pex.statistics()


async def test_pex_introduces_two_downloaders(tmp_path: Path) -> None:
    met, stats = await _meet(tmp_path, private=False)
    assert met
    assert stats.enabled and stats.added_sent >= 1


async def test_private_torrent_never_uses_pex(tmp_path: Path) -> None:
    met, stats = await _meet(tmp_path, private=True)
    assert not met
    assert not stats.enabled and stats.messages_sent == 0


async def test_pex_setting_off(tmp_path: Path) -> None:
    met, stats = await _meet(tmp_path, private=False, pex=False)
    assert not met and stats.messages_sent == 0
