"""Magnet-style metadata fetch (BEP 9) from libtorrent seeds through torrio's MetadataFetcher.

Two libtorrent sessions seed a multi-file torrent whose info dict spans several 16 KiB metadata
pieces; we connect to both with torrio.handshake + torrio.wire, knowing only the info-hash, and
``fetch_metadata`` assembles and hash-checks the info dict from both in parallel. v1, hybrid and
v2-only info-hashes.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Any

import pytest
import trio

from torrio.client._metadata_fetch import MetadataFetcher, fetch_metadata
from torrio.core import InfoHash, PeerId
from torrio.handshake import EncryptionPolicy, Handshaker
from torrio.metainfo import Torrent
from torrio.testing import libtorrent as ltx
from torrio.testing import make_random_tree
from torrio.wire import ExtensionRegistry, PeerConnection, open_peer_connection

pytestmark = pytest.mark.skipif(not ltx.available(), reason="libtorrent wheel not installed")

FILES = {f"folder_{i % 7}/a_rather_long_file_name_number_{i:04d}.bin": 300 + i for i in range(500)}


def _seeding(handle: Any) -> bool:
    return ltx.seeding(handle)


@pytest.mark.parametrize("version", ["v1", "hybrid", "v2"])
async def test_fetch_info_dict_from_two_libtorrent_seeds(tmp_path: Path, version: str) -> None:
    root = make_random_tree(tmp_path / "payload", FILES, seed=3)
    data = ltx.create_torrent(root, piece_size=16384, version=version)
    ref = Torrent.from_bytes(data)
    assert len(ref.info_bytes) > 2 * 16384  # several metadata pieces
    # only the info-hash is known, as with a magnet link
    info_hash = InfoHash(v1=ref.info_hash.v1, v2=ref.info_hash.v2)
    fetcher: MetadataFetcher[int] = MetadataFetcher(info_hash, per_peer=2)
    async with (
        ltx.open_session() as s1,
        ltx.open_session() as s2,
        contextlib.AsyncExitStack() as stack,
    ):
        for ses in (s1, s2):
            h = ses.add_torrent(data, tmp_path, seed_mode=True)
            await ses.wait_for(functools.partial(_seeding, h), timeout=30)
        conns: dict[int, PeerConnection] = {}
        for i, ses in enumerate((s1, s2)):
            hs = Handshaker(PeerId.generate(), policy=EncryptionPolicy.DISABLE, timeout=15)
            stream = await trio.open_tcp_stream("127.0.0.1", ses.port)
            result = await hs.initiate(stream, info_hash)
            conn = await stack.enter_async_context(
                open_peer_connection(result.stream, registry=ExtensionRegistry())
            )
            await conn.send(conn.registry.handshake(v="torrio-test"))
            conns[i] = conn
        with trio.fail_after(30):
            info = await fetch_metadata(fetcher, conns)
    assert info == ref.info_bytes
    got = fetcher.torrent()
    assert got.info_hash == ref.info_hash and got.files == ref.files
    stats = fetcher.statistics()
    assert stats.hash_failures == 0 and stats.banned == 0
    assert stats.pieces_received == stats.pieces_total >= 3
