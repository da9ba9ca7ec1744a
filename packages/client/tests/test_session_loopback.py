"""End-to-end on loopback: our seed -> our downloaders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from torrio.client import (
    AddTorrent,
    PeerConnected,
    PieceFinished,
    TorrentFinished,
    TorrentState,
    open_session,
)
from torrio.core import PeerAddr

from ._helpers import make_torrent, tree_digest

LOOP: dict[str, Any] = {"listen_host": "127.0.0.1", "listen_port": 0, "reraise_errors": True}


async def test_seed_to_one_downloader(tmp_path: Path) -> None:
    t = make_torrent(
        tmp_path / "seed", {"a.bin": 300_000, "sub/b.bin": 123_457}, piece_length=32768
    )
    with trio.fail_after(30):
        async with open_session(**LOOP) as seed, open_session(**LOOP) as leech:
            sh = await seed.add_torrent(AddTorrent(source=t, save_path=tmp_path / "seed"))
            await sh.wait_finished()
            assert sh.status().state is TorrentState.SEEDING
            events = leech.events()
            lh = await leech.add_torrent(
                AddTorrent(
                    source=t,
                    save_path=tmp_path / "dl",
                    peers=[PeerAddr("127.0.0.1", seed.port)],
                )
            )
            await lh.wait_finished()
            st = lh.status()
            assert st.finished and st.done == st.wanted_length == t.total_length
            kinds = set()
            while True:
                try:
                    kinds.add(type(events.receive_nowait()))
                except trio.WouldBlock:
                    break
            assert {PeerConnected, PieceFinished, TorrentFinished} <= kinds
    assert tree_digest(tmp_path / "dl" / "payload") == tree_digest(tmp_path / "seed" / "payload")


async def test_seed_to_downloader_over_utp(tmp_path: Path) -> None:
    t = make_torrent(tmp_path / "seed", {"a.bin": 400_000, "b.bin": 99_999}, piece_length=32768)
    with trio.fail_after(30):
        async with (
            open_session(**LOOP, transport="both") as seed,
            open_session(**LOOP, transport="utp") as leech,
        ):
            sh = await seed.add_torrent(AddTorrent(source=t, save_path=tmp_path / "seed"))
            await sh.wait_finished()
            lh = await leech.add_torrent(
                AddTorrent(
                    source=t, save_path=tmp_path / "dl", peers=[PeerAddr("127.0.0.1", seed.port)]
                )
            )
            await lh.wait_finished()
    assert tree_digest(tmp_path / "dl" / "payload") == tree_digest(tmp_path / "seed" / "payload")
