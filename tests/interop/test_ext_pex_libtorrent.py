"""PEX (BEP 11) between libtorrent and torrio's ut_pex policy over real connections.

* libtorrent -> torrio: a libtorrent peer already connected to another libtorrent peer tells us
  (a third peer that only knew the first) about the other; :class:`TorrentPex` accepts it.
* torrio -> libtorrent: two libtorrent downloaders that know nobody are each connected to torrio;
  the ut_pex message torrio's policy builds for the first names the second, and the two find
  each other (a direct connection appears between them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from torrio.client._pex import TorrentPex
from torrio.core import InfoHash, PeerAddr, PeerId
from torrio.handshake import EncryptionPolicy, Handshaker
from torrio.metainfo import Torrent
from torrio.testing import libtorrent as ltx
from torrio.testing import make_random_file
from torrio.wire import (
    ExtensionRegistry,
    PeerConnection,
    PexFlags,
    UtPex,
    open_peer_connection,
    pex_flags_for,
)

pytestmark = pytest.mark.skipif(not ltx.available(), reason="libtorrent wheel not installed")


def _peer_ports(handle: Any) -> set[int]:
    return {int(p.ip[1]) for p in handle.get_peer_info()}


def _downloading(ses: ltx.LtSession, handle: Any) -> bool:
    return bool(handle.status().state == ses.lt.torrent_status.downloading)


async def _wait(cond: Callable[[], bool], seconds: float) -> None:
    with trio.fail_after(seconds):
        while not cond():  # noqa: ASYNC110 (libtorrent state has no trio event)
            await trio.sleep(0.1)


async def _connect(
    stack: contextlib.AsyncExitStack, port: int, info_hash: InfoHash
) -> PeerConnection:
    hs = Handshaker(PeerId.generate(), policy=EncryptionPolicy.DISABLE, timeout=15)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    result = await hs.initiate(stream, info_hash)
    conn = await stack.enter_async_context(
        open_peer_connection(result.stream, registry=ExtensionRegistry())
    )
    # a made-up listen port: libtorrent must not try to reach us through it
    await conn.send(conn.registry.handshake(v="torrio-test", p=1))
    return conn


def _torrent(tmp_path: Path) -> tuple[bytes, Torrent]:
    path = make_random_file(tmp_path / "seed" / "payload.bin", 300_000, seed=5)
    data = ltx.create_torrent(path, piece_size=32768, version="v1")
    return data, Torrent.from_bytes(data)


async def test_libtorrent_tells_torrio_about_its_other_peer(tmp_path: Path) -> None:
    data, t = _torrent(tmp_path)
    pex: TorrentPex[str] = TorrentPex()
    # two libtorrent downloaders with nothing yet (a seed would drop an uninterested or finished
    # peer before its first ut_pex message): "other" connects to "hub", then torrio joins "hub"
    async with (
        ltx.open_session() as hub,
        ltx.open_session() as other,
        contextlib.AsyncExitStack() as stack,
    ):
        hh = hub.add_torrent(data, tmp_path / "hub")
        await _wait(lambda: _downloading(hub, hh), 20)
        ho = other.add_torrent(data, tmp_path / "other", peers=[("127.0.0.1", hub.port)])
        await _wait(lambda: hub.port in _peer_ports(ho) and bool(hh.get_peer_info()), 20)
        conn = await _connect(stack, hub.port, t.info_hash)
        pex.connection_opened("hub")
        found: set[PeerAddr] = set()
        with trio.fail_after(30):
            async for ev in conn:
                if isinstance(ev, UtPex):
                    found |= {p.addr for p in pex.receive("hub", ev, trio.current_time())}
                    if found:
                        break
        # listed under its listen port (learnt from its extended handshake), not its source port
        assert PeerAddr("127.0.0.1", other.port) in found
        assert pex.statistics().peers_accepted >= 1


async def test_torrio_introduces_two_libtorrent_downloaders(tmp_path: Path) -> None:
    data, t = _torrent(tmp_path)
    pex: TorrentPex[str] = TorrentPex()
    async with (
        ltx.open_session() as d1,
        ltx.open_session() as d2,
        contextlib.AsyncExitStack() as stack,
    ):
        h1 = d1.add_torrent(data, tmp_path / "d1")
        h2 = d2.add_torrent(data, tmp_path / "d2")
        # a torrent still checking its (missing) files refuses handshakes: wait until it runs
        await _wait(lambda: _downloading(d1, h1) and _downloading(d2, h2), 20)
        c1 = await _connect(stack, d1.port, t.info_hash)
        await _connect(stack, d2.port, t.info_hash)
        # wait for d1's extended handshake: only then do we know it speaks ut_pex
        with trio.fail_after(15):
            while c1.wire.peer_extended_handshake is None:
                await c1.receive()
        assert c1.registry.supports("ut_pex")
        pex.connection_opened("d1")
        flags = pex_flags_for(prefers_encryption=False, seed=False, utp=False, reachable=True)
        connected = {PeerAddr("127.0.0.1", d2.port): flags, PeerAddr("127.0.0.1", d1.port): flags}
        msg = pex.build(
            "d1", connected, trio.current_time(), recipient=PeerAddr("127.0.0.1", d1.port)
        )
        assert msg is not None and [p.addr.port for p in msg.added] == [d2.port]
        assert msg.added[0].flags & PexFlags.REACHABLE
        await c1.send(msg)
        # d1 dials d2 (the port shows up as d2's listen port on d1's side)
        await _wait(lambda: d2.port in _peer_ports(h1), 30)
        assert h2.get_peer_info()  # and d2 sees the connection too
