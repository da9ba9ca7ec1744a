"""LSD (BEP 14) between libtorrent and torrio's open_lsd on the loopback interface.

libtorrent (enable_lsd, listening on 127.0.0.1) announces on the real group
239.192.152.143:6771 through ``lo``; torrio's service on the same group and interface hears it,
and libtorrent hears torrio's announce (it reports an lsd_peer_alert for our port).
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import trio

from torrio.client._lsd import LSD_GROUP_V4, open_lsd
from torrio.core import PeerAddr
from torrio.metainfo import Torrent
from torrio.testing import libtorrent as ltx
from torrio.testing import make_random_file

pytestmark = pytest.mark.skipif(not ltx.available(), reason="libtorrent wheel not installed")


async def test_lsd_both_ways_with_libtorrent(tmp_path: Path) -> None:
    path = make_random_file(tmp_path / "payload.bin", 100_000, seed=2)
    data = ltx.create_torrent(path, piece_size=16384, version="v1")
    t = Torrent.from_bytes(data)
    ih = t.info_hash.wire
    # a port of ours that nobody listens on: libtorrent only needs to hear about it
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        our_port = s.getsockname()[1]
    async with (
        open_lsd(our_port, group=LSD_GROUP_V4, interface="127.0.0.1", group_v6=None) as lsd,
        ltx.open_session({"enable_lsd": True}) as ses,
    ):
        ses.add_torrent(data, tmp_path, seed_mode=True)
        lsd.announce(ih)
        heard = None
        with trio.fail_after(30):
            async for peer in lsd:
                if peer.info_hash == ih and peer.addr == PeerAddr("127.0.0.1", ses.port):
                    heard = peer
                    break
        assert heard is not None

        def lt_heard_us(alert: Any) -> bool:
            # lsd_peer_alert: "<torrent> peer 127.0.0.1:PORT: received peer from local
            # service discovery"
            m = str(alert.message())
            return "local service discovery" in m and f"127.0.0.1:{our_port}" in m

        await ses.wait_alert(lt_heard_us, timeout=30)
        # our own datagram comes back too (multicast on lo) and is ignored by its cookie
        with trio.fail_after(10):
            while lsd.statistics().receiver.own < 1:  # noqa: ASYNC110 (kernel delivery)
                await trio.sleep(0.01)
