"""BEP 54 lt_donthave between torrio and libtorrent, triggered the real way: a seed's file is
truncated or deleted under it, and reads of the pieces it held fail.

libtorrent -> torrio: when libtorrent cannot read a requested block it sends DONT_HAVE for the
piece (and rejects the request) to that peer (``peer_connection::on_disk_read_complete``), while
still calling itself a seed. The torrio downloader must clear those bits of that peer, stop asking
it for them, and finish from another seed.

torrio -> libtorrent: torrio does the same. A read failing because a file is now missing or
shorter than the torrent says loses that file's pieces (storage re-examines the files): every peer
that supports BEP 54 gets lt_donthave for each, the torrent keeps running (it is not paused as for
other storage errors) and keeps serving the pieces it still has. libtorrent's
``get_peer_info()`` entry for the torrio seed stops listing those pieces.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

import torrio.client._donthave as donthave_module
import torrio.client._peer as peer_module
from torrio.client import AddTorrent, StorageError, TorrentHandle, TorrentState, open_session
from torrio.core import PeerAddr
from torrio.testing import libtorrent as ltx
from torrio.testing.client_swarm import LOOP, make_torrent
from torrio.wire import LtDontHave

pytestmark = pytest.mark.skipif(not ltx.available(), reason="libtorrent wheel not installed")

PIECE = 16384
NUM_PIECES = 16
KEEP = 6  # pieces still readable after truncation


async def _poll(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    # peer-wire state changes fire no event a test can wait on: poll, bounded
    with trio.fail_after(seconds):
        while not condition():  # noqa: ASYNC110
            await trio.sleep(0.02)


@pytest.mark.parametrize("damage", ["truncated", "deleted"])
async def test_libtorrent_seed_losing_its_file_sends_donthave(
    tmp_path: Path, damage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = make_torrent(tmp_path / "lt", NUM_PIECES * PIECE, piece_length=PIECE)
    shutil.copytree(tmp_path / "lt", tmp_path / "good")
    readable = KEEP if damage == "truncated" else 0
    lost = set(range(readable, NUM_PIECES))

    received: list[int] = []  # every LT_DONTHAVE the torrio peer loop handled
    real_peer_lost = donthave_module.peer_lost

    def recording_peer_lost(peer: peer_module.Peer, msg: LtDontHave) -> None:
        received.append(msg.index)
        real_peer_lost(peer, msg)

    monkeypatch.setattr(peer_module, "peer_lost", recording_peer_lost)

    async with (
        ltx.open_session() as lt_seed,
        open_session(**LOOP) as ours,
        open_session(**LOOP) as other_seed,
    ):
        # a real seed: libtorrent checked every piece against the complete file first
        sh = lt_seed.add_torrent(t.to_bytes(), tmp_path / "lt")
        await lt_seed.wait_for(lambda: bool(sh.status().is_seeding), timeout=60)
        path = tmp_path / "lt" / "payload"
        if damage == "truncated":
            os.truncate(path, KEEP * PIECE)
        else:
            path.unlink()

        lt_addr = PeerAddr("127.0.0.1", lt_seed.port)
        h: TorrentHandle = await ours.add_torrent(
            AddTorrent(source=t, save_path=tmp_path / "dl", peers=[lt_addr])
        )

        def lt_peer() -> peer_module.Peer | None:
            return next((p for p in h._rt.peers if p.addr.port == lt_seed.port), None)

        def settled() -> bool:
            # every readable piece fetched; every unreadable one withdrawn by a DONT_HAVE, so the
            # libtorrent seed has nothing left we want: no longer interesting, no requests open
            p = lt_peer()
            st = h.peers()
            return (
                p is not None
                and set(received) >= lost
                and len(h.have_pieces()) == readable
                and not p.am_interested
                and all(s.requests == 0 for s in st)
            )

        await _poll(settled, 60)
        p = lt_peer()
        assert p is not None
        assert {i for i in range(NUM_PIECES) if not p.bits[i]} == lost
        assert set(received) == lost  # a DONT_HAVE only for the pieces it could not read
        (status,) = h.peers()
        assert status.progress == pytest.approx(readable / NUM_PIECES)
        assert not status.am_interested
        assert sh.status().is_seeding  # libtorrent itself still claims to be a seed

        # a second seed (torrio, with the intact data) lets the download finish
        osh = await other_seed.add_torrent(AddTorrent(source=t, save_path=tmp_path / "good"))
        await osh.wait_finished()
        h.connect_peer(PeerAddr("127.0.0.1", other_seed.port))
        with trio.fail_after(60):
            await h.wait_finished()
        # the libtorrent seed's view never regained the lost pieces
        p = lt_peer()
        assert p is not None and not any(p.bits[i] for i in lost)
    got = (tmp_path / "dl" / "payload").read_bytes()
    assert got == (tmp_path / "good" / "payload").read_bytes()


async def test_torrio_seed_whose_file_shrinks_sends_donthave_to_libtorrent(tmp_path: Path) -> None:
    # (a deleted file is not a torrio read failure while its descriptor is cached: Linux keeps
    # an unlinked file readable through an open descriptor, and the data is still served)
    half = NUM_PIECES // 2
    files = {"a.bin": half * PIECE, "b.bin": half * PIECE}  # b.bin is pieces half..NUM_PIECES-1
    t = make_torrent(tmp_path / "seed", files, piece_length=PIECE)
    kept = set(range(half))
    async with open_session(**LOOP) as ours, ltx.open_session() as lt_dl:
        events = ours.events()
        sh = await ours.add_torrent(AddTorrent(source=t, save_path=tmp_path / "seed"))
        await sh.wait_finished()
        # b.bin's first three pieces still read fine
        os.truncate(tmp_path / "seed" / "payload" / "b.bin", 3 * PIECE)

        h = lt_dl.add_torrent(t.to_bytes(), tmp_path / "dl", peers=[("127.0.0.1", ours.port)])

        def torrio_view() -> set[int] | None:
            """The pieces libtorrent believes the torrio seed has (None: not connected)."""
            for p in h.get_peer_info():
                if p.ip[1] == ours.port or p.client.startswith("torrio"):
                    return {i for i, bit in enumerate(p.pieces) if bit}
            return None

        # libtorrent fetches what torrio can read; the first failed read makes torrio drop all of
        # b.bin's pieces and say so with lt_donthave, over the same connection. (libtorrent may
        # have fetched b.bin's three readable pieces first; torrio, a downloader again, may then
        # fetch those back from it and announce them anew. The last five exist nowhere now.)
        readable = kept | {half, half + 1, half + 2}

        def settled() -> bool:
            view = torrio_view()
            return (
                view is not None
                and kept <= view <= readable
                and view == set(sh.have_pieces())
                and kept <= set(_lt_have(h))
            )

        await lt_dl.wait_for(settled, timeout=60)
        assert set(_lt_have(h)) <= readable
        st = sh.status()
        assert st.state is not TorrentState.PAUSED  # not paused: a lost file is not fatal
        assert kept <= set(sh.have_pieces()) <= readable
        assert st.peers == 1  # still connected to libtorrent
        seen = []
        while True:
            try:
                seen.append(events.receive_nowait())
            except trio.WouldBlock:
                break
        assert any(isinstance(e, StorageError) and "b.bin" in (e.path or "") for e in seen)


def _lt_have(h: object) -> list[int]:
    st = h.status()  # type: ignore[attr-defined]
    return [i for i, bit in enumerate(st.pieces) if bit]
