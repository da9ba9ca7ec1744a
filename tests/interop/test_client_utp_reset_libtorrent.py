"""A libtorrent peer dialing uTP at a torrio session that runs no uTP is told so at once.

The session's shared UDP port answers the SYN with ST_RESET (BEP 29); libtorrent reports the
connection as reset by the peer instead of waiting out its uTP connect timeout (~3 s), which is
what happened while such SYNs were dropped silently.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import trio

from torrio.client import AddTorrent, open_session
from torrio.testing import libtorrent as ltx
from torrio.testing.client_swarm import LOOP, make_torrent

pytestmark = pytest.mark.skipif(not ltx.available(), reason="libtorrent wheel not installed")

UTP_ONLY = {
    "enable_outgoing_tcp": False,
    "enable_incoming_tcp": False,
    "enable_outgoing_utp": True,
    "enable_incoming_utp": True,
}


async def test_libtorrent_utp_dial_to_a_tcp_only_session_is_reset_not_timed_out(
    tmp_path: Path,
) -> None:
    t = make_torrent(tmp_path / "seed", {"a.bin": 100_000}, piece_length=32768)
    async with (
        open_session(**LOOP, transport="tcp") as ours,
        ltx.open_session(UTP_ONLY) as lt,
    ):
        await ours.add_torrent(AddTorrent(source=t, save_path=tmp_path / "seed"))
        start = trio.current_time()
        lt.add_torrent(t.to_bytes(), tmp_path / "dl", peers=[("127.0.0.1", ours.port)])
        alert = await lt.wait_alert(
            lambda a: type(a).__name__ == "peer_disconnected_alert", timeout=20
        )
        code = alert.error.value()
        elapsed = trio.current_time() - start
        assert code == errno.ECONNRESET, lt.alerts_text()
        assert elapsed < 2.5  # libtorrent's own uTP connect timeout is 3 s and more
        udp = ours.udp_statistics()
        assert udp is not None and udp.resets_sent >= 1
