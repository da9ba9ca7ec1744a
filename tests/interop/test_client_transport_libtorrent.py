"""A torrio session with ``transport="both"`` against libtorrent seeds on loopback.

A libtorrent seed restricted to uTP is reached over uTP at once; one restricted to TCP is reached
over TCP after the uTP attempt goes unanswered. Which transport carried the download shows in
``Session.transport_statistics()``; both downloads are byte-exact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from torrio.client import AddTorrent, open_session
from torrio.core import PeerAddr
from torrio.testing import libtorrent as ltx
from torrio.testing.client_swarm import LOOP, make_torrent, tree_digest

pytestmark = pytest.mark.skipif(not ltx.available(), reason="libtorrent wheel not installed")

UTP_ONLY = {
    "enable_outgoing_tcp": False,
    "enable_incoming_tcp": False,
    "enable_outgoing_utp": True,
    "enable_incoming_utp": True,
}
TCP_ONLY = {
    "enable_outgoing_utp": False,
    "enable_incoming_utp": False,
    "enable_outgoing_tcp": True,
    "enable_incoming_tcp": True,
}
FILES = {"a.bin": 600_000, "b.bin": 77_777}


@pytest.mark.parametrize(("lt_settings", "kind"), [(UTP_ONLY, "utp"), (TCP_ONLY, "tcp")])
async def test_both_reaches_a_libtorrent_seed_that_has_one_transport(
    tmp_path: Path, lt_settings: dict[str, Any], kind: str
) -> None:
    t = make_torrent(tmp_path / "seed", FILES, piece_length=32768)
    async with (
        ltx.open_session(lt_settings) as lt_seed,
        open_session(**LOOP, transport="both", connect_timeout=2.0) as ours,
    ):
        sh = lt_seed.add_torrent(t.to_bytes(), tmp_path / "seed", seed_mode=True)
        await lt_seed.wait_for(lambda: bool(sh.status().is_seeding))
        h = await ours.add_torrent(
            AddTorrent(
                source=t, save_path=tmp_path / "dl", peers=[PeerAddr("127.0.0.1", lt_seed.port)]
            )
        )
        with trio.fail_after(60):
            await h.wait_finished()
        stats = ours.transport_statistics()
    if kind == "utp":
        assert stats.utp_connected >= 1 and stats.tcp_attempts == 0
    else:
        assert stats.utp_connected == 0 and stats.fallbacks >= 1 and stats.tcp_connected >= 1
        assert stats.no_utp_known == 1
    assert tree_digest(tmp_path / "dl" / "payload") == tree_digest(tmp_path / "seed" / "payload")
