"""BEP 54 lt_donthave and BEP 21 upload-only through the session on loopback."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import trio

from torrio.client import AddTorrent, PeerDisconnected, TorrentState, open_session
from torrio.core import PeerAddr
from torrio.disk import NativeFileSystem

from ._helpers import make_torrent

LOOP: dict[str, Any] = {"listen_host": "127.0.0.1", "listen_port": 0, "reraise_errors": True}


async def _wait(cond: Any, seconds: float = 10) -> None:
    with trio.fail_after(seconds):
        while not cond():  # noqa: ASYNC110 (state changes in other tasks of this run)
            await trio.sleep(0.05)


async def test_lost_piece_is_announced_and_honoured(tmp_path: Path) -> None:
    t = make_torrent(tmp_path / "seed", 400_000, piece_length=16384)
    async with open_session(**LOOP) as seed, open_session(**LOOP) as leech:
        sh = await seed.add_torrent(AddTorrent(t, save_path=tmp_path / "seed"))
        await sh.wait_finished()
        lh = await leech.add_torrent(
            AddTorrent(
                t,
                save_path=tmp_path / "dl",
                peers=[PeerAddr("127.0.0.1", seed.port)],
                max_download_rate=30_000,
            )
        )
        lrt = lh._rt
        await _wait(lambda: any(p.bits.all() for p in lrt.peers))
        # the seed loses piece 5 (what a storage failure does)
        sh._rt._piece_lost(5)
        await _wait(
            lambda: any(not p.bits[5] and p.bits.count() == t.num_pieces - 1 for p in lrt.peers)
        )
        assert sh.status().pieces == t.num_pieces - 1
        assert [p.progress < 1.0 for p in lh.peers()] == [True]


async def test_upload_only_both_ways(tmp_path: Path) -> None:
    """A finished torrent says upload_only; a peer's upload_only keeps us from serving it as a
    downloader (two upload-only sides drop the useless connection)."""
    t = make_torrent(tmp_path / "seed", 100_000, piece_length=16384)
    async with open_session(**LOOP) as a, open_session(**LOOP) as b:
        ah = await a.add_torrent(AddTorrent(t, save_path=tmp_path / "seed"))
        await ah.wait_finished()
        events = a.events()
        bh = await b.add_torrent(
            AddTorrent(
                t, save_path=tmp_path / "b", upload_only=True, peers=[PeerAddr("127.0.0.1", a.port)]
            )
        )
        reason = None
        with trio.fail_after(10):
            async for ev in events:
                if isinstance(ev, PeerDisconnected):
                    reason = ev.reason
                    break
        # the seed learnt from the extended handshake that the other side only uploads
        assert reason == "both are seeds"
        assert bh.status().done == 0  # nothing was downloaded by the upload-only side


PIECE = 16384


async def test_seed_whose_file_shrinks_sends_donthave_and_keeps_running(tmp_path: Path) -> None:
    # two files of 8 pieces each; b.bin (pieces 8..15) is damaged after the seed checked it
    t = make_torrent(
        tmp_path / "seed", {"a.bin": 8 * PIECE, "b.bin": 8 * PIECE}, piece_length=PIECE
    )
    async with open_session(**LOOP) as seed, open_session(**LOOP) as leech:
        sh = await seed.add_torrent(AddTorrent(t, save_path=tmp_path / "seed"))
        await sh.wait_finished()
        os.truncate(tmp_path / "seed" / "payload" / "b.bin", 3 * PIECE)
        lh = await leech.add_torrent(
            AddTorrent(t, save_path=tmp_path / "dl", peers=[PeerAddr("127.0.0.1", seed.port)])
        )
        lrt = lh._rt
        a_pieces = set(range(8))

        def seed_bits() -> set[int] | None:
            return next((set(p.bits) for p in lrt.peers), None)

        # the first failed read loses all of b.bin's pieces: lt_donthave for each, on the same
        # connection, and the leech gets every piece of a.bin
        await _wait(lambda: seed_bits() == a_pieces and a_pieces <= set(lh.have_pieces()), 20)
        assert set(sh.have_pieces()) == a_pieces
        st = sh.status()
        assert st.state is TorrentState.DOWNLOADING  # not paused, and no longer finished
        assert not st.finished and st.peers == 1
        assert not lh.status().finished


async def test_lost_pieces_are_downloaded_again(tmp_path: Path) -> None:
    """A seed whose file shrank is a downloader again: it fetches the lost pieces from another
    seed and ends up seeding the whole torrent."""
    import shutil

    from ._helpers import tree_digest

    t = make_torrent(
        tmp_path / "seed", {"a.bin": 4 * PIECE, "b.bin": 6 * PIECE}, piece_length=PIECE
    )
    shutil.copytree(tmp_path / "seed", tmp_path / "other")
    with trio.fail_after(30):
        async with open_session(**LOOP) as seed, open_session(**LOOP) as other:
            sh = await seed.add_torrent(AddTorrent(t, save_path=tmp_path / "seed"))
            await sh.wait_finished()
            os.truncate(tmp_path / "seed" / "payload" / "b.bin", 2 * PIECE)
            # the seed notices on its next read of b.bin (as when a peer asks for a block)
            rt = sh._rt
            assert await rt.read_block(7, 0, 1) is None  # b.bin is short: the read fails
            await _wait(lambda: set(sh.have_pieces()) == set(range(4)))
            assert sh.status().state is TorrentState.DOWNLOADING
            oh = await other.add_torrent(AddTorrent(t, save_path=tmp_path / "other"))
            await oh.wait_finished()
            sh.connect_peer(PeerAddr("127.0.0.1", other.port))
            await sh.wait_finished()
            assert set(sh.have_pieces()) == set(range(10))
    assert tree_digest(tmp_path / "seed") == tree_digest(tmp_path / "other")


class _FlakyReads(NativeFileSystem):
    """Native files whose reads fail with EIO while ``failing`` is set (the files stay intact)."""

    failing = False

    def read(self, path: str, offset: int, buffer: bytearray | memoryview) -> int:
        if self.failing:
            raise OSError(errno.EIO, "injected I/O error")
        return super().read(path, offset, buffer)


async def test_read_error_with_intact_files_still_pauses(tmp_path: Path) -> None:
    # only a lost file is handled like libtorrent; an I/O error on intact files stays a storage
    # error that pauses the torrent (its pieces are re-checked when it resumes)
    t = make_torrent(tmp_path / "seed", 8 * PIECE, piece_length=PIECE)
    fs: list[_FlakyReads] = []

    def storage(path: str) -> _FlakyReads:
        fs.append(_FlakyReads(path))
        return fs[-1]

    async with open_session(**LOOP) as seed, open_session(**LOOP) as leech:
        sh = await seed.add_torrent(AddTorrent(t, save_path=tmp_path / "seed", storage=storage))
        await sh.wait_finished()
        fs[0].failing = True
        await leech.add_torrent(
            AddTorrent(t, save_path=tmp_path / "dl", peers=[PeerAddr("127.0.0.1", seed.port)])
        )
        await _wait(lambda: sh.status().state is TorrentState.PAUSED, 20)
