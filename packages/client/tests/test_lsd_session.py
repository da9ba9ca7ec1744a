"""Local service discovery through the session on loopback (IPv4 multicast on lo, a private
group port, a short gap between datagrams): a downloader that knows no peer finds the seed."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import trio

from torrio.client import AddTorrent, open_session

from ._helpers import make_torrent


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _settings() -> dict[str, Any]:
    return {
        "listen_host": "127.0.0.1",
        "listen_port": 0,
        "reraise_errors": True,
        "lsd": True,
        "lsd_group": ("239.192.152.143", _free_udp_port()),
        "lsd_min_gap": 0.2,
    }


async def _download(tmp_path: Path, private: bool, seconds: float) -> bool:
    t = make_torrent(tmp_path / "seed", 120_000, piece_length=16384, private=private)
    settings = _settings()
    async with open_session(**settings) as seed, open_session(**settings) as leech:
        assert seed.lsd is not None and leech.lsd is not None
        sh = await seed.add_torrent(AddTorrent(t, save_path=tmp_path / "seed"))
        await sh.wait_finished()
        lh = await leech.add_torrent(AddTorrent(t, save_path=tmp_path / "dl"))
        with trio.move_on_after(seconds):
            await lh.wait_finished()
            return True
        return False


async def test_lsd_finds_the_seed(tmp_path: Path) -> None:
    assert await _download(tmp_path, private=False, seconds=20)
    got = (tmp_path / "dl" / "payload").read_bytes()
    assert got == (tmp_path / "seed" / "payload").read_bytes()


async def test_private_torrent_never_uses_lsd(tmp_path: Path) -> None:
    assert not await _download(tmp_path, private=True, seconds=3)


async def test_lsd_off_by_default(tmp_path: Path) -> None:
    async with open_session(listen_host="127.0.0.1") as ses:
        assert ses.lsd is None


async def test_private_torrent_never_uses_the_session_dht(tmp_path: Path) -> None:
    """BEP 27 through the session: a public torrent looks itself up in the DHT, a private one not."""
    from torrio.client import DhtReply

    pub = make_torrent(tmp_path / "a", 20_000, name="pub", piece_length=16384)
    priv = make_torrent(tmp_path / "b", 20_000, name="priv", piece_length=16384, private=True)
    async with open_session(listen_host="127.0.0.1", dht=True, dht_bootstrap=()) as ses:
        events = ses.events()
        await ses.add_torrent(AddTorrent(priv, save_path=tmp_path / "b"))
        await ses.add_torrent(AddTorrent(pub, save_path=tmp_path / "a"))
        seen: set[object] = set()
        with trio.move_on_after(5):
            async for ev in events:
                if isinstance(ev, DhtReply):
                    seen.add(ev.info_hash)
                    if pub.info_hash in seen:
                        break
        assert pub.info_hash in seen
        assert priv.info_hash not in seen
