"""BEP 52 hash requests between torrio-client and libtorrent 2.1.

a. torrio's PieceLayerFetcher fetches every piece layer from a libtorrent v2 (and hybrid) seed over
   a plain torrio.wire connection opened with the truncated v2 info-hash, and the layers equal
   the .torrent's (libtorrent only answers hash requests on a v2 connection).
b. libtorrent downloads a v2-only magnet (no piece layers) from a torrio session seeding it: it
   fetches the info dict with ut_metadata and the piece layers with hash requests that torrio's
   HashServer answers, then the data, which must match.

The payload has a file over 512 pieces whose count is not a power of two (two runs, the last one
padded), a mid-size file, and files of at most one piece (which have no piece layer).
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Any

import pytest
import trio

from torrio.client import AddTorrent, open_session
from torrio.client._piece_layer_fetch import PieceLayerFetcher, fetch_piece_layers
from torrio.core import PeerId
from torrio.handshake import EncryptionPolicy, Handshaker
from torrio.metainfo import Magnet, Torrent
from torrio.testing import libtorrent as ltx
from torrio.testing import make_random_tree
from torrio.wire import PeerConnection, open_peer_connection

pytestmark = pytest.mark.skipif(not ltx.available(), reason="libtorrent wheel not installed")

PIECE = 16384
FILES = {
    "big.bin": 700 * PIECE - 123,
    "dir/mid.bin": 37 * PIECE + 5,
    "dir/one.bin": PIECE,
    "tiny.txt": 10,
}
LOOP: dict[str, Any] = {"listen_host": "127.0.0.1", "listen_port": 0, "reraise_errors": True}


def _seeding(handle: Any) -> bool:
    # in seed mode is_seeding holds before the resume check ends, and until then libtorrent
    # drops incoming connections ("torrent is not ready to accept peers"): wait for the state
    st = handle.status()
    return bool(st.is_seeding) and st.state == st.states.seeding


def _payload(tmp_path: Path) -> Path:
    return make_random_tree(tmp_path / "seed" / "payload", FILES, seed=52)


@pytest.mark.parametrize(("version", "piece"), [("v2", PIECE), ("hybrid", PIECE), ("v2", 65536)])
async def test_fetch_piece_layers_from_libtorrent_seeds(
    tmp_path: Path, version: str, piece: int
) -> None:
    root = _payload(tmp_path)
    ref = Torrent.from_bytes(ltx.create_torrent(root, piece_size=piece, version=version))
    assert len(ref.piece_layers) == 2
    bare = Torrent.from_info_bytes(ref.info_bytes)  # what a magnet download has
    fetcher: PieceLayerFetcher[int] = PieceLayerFetcher(bare, per_peer=2)
    # 16 KiB pieces: big.bin's 700 hashes take two runs (512 + 256 padded), mid.bin one
    assert fetcher.statistics().chunks_total == (3 if piece == PIECE else 2)
    v2 = ref.info_hash.v2
    assert v2 is not None
    async with (
        ltx.open_session() as s1,
        ltx.open_session() as s2,
        contextlib.AsyncExitStack() as stack,
    ):
        conns: dict[int, PeerConnection] = {}
        for i, ses in enumerate((s1, s2)):
            h = ses.add_torrent(ref.to_bytes(), tmp_path / "seed", seed_mode=True)
            await ses.wait_for(functools.partial(_seeding, h), timeout=60)
            hs = Handshaker(PeerId.generate(), policy=EncryptionPolicy.DISABLE, timeout=30)
            stream = await trio.open_tcp_stream("127.0.0.1", ses.port)
            # the truncated v2 info-hash: libtorrent answers hash requests on v2 connections only
            result = await hs.initiate(stream, ref.info_hash, wire_id=v2[:20])
            conns[i] = await stack.enter_async_context(open_peer_connection(result.stream))
        with trio.fail_after(60):
            layers = await fetch_piece_layers(fetcher, conns)
    assert layers == ref.piece_layers
    assert fetcher.torrent().piece_layers == ref.piece_layers
    stats = fetcher.statistics()
    assert stats.banned == 0 and stats.bad_answers == 0 and stats.done


@pytest.mark.parametrize("piece", [PIECE, 65536])
async def test_libtorrent_downloads_v2_magnet_from_torrio_seed(tmp_path: Path, piece: int) -> None:
    root = _payload(tmp_path)
    t = Torrent.from_bytes(ltx.create_torrent(root, piece_size=piece, version="v2"))
    assert t.info_hash.v2 is not None and t.info_hash.v1 is None
    uri = f"magnet:?xt=urn:btmh:1220{t.info_hash.v2.hex()}&dn=payload"
    assert Magnet.parse(uri).info_hash == t.info_hash
    async with open_session(**LOOP) as ours, ltx.open_session() as lt_dl:
        sh = await ours.add_torrent(AddTorrent(t, save_path=tmp_path / "seed", seed_mode=True))
        await sh.wait_finished()
        lt = lt_dl.lt
        atp = lt.parse_magnet_uri(uri)
        atp.save_path = str(tmp_path / "dl")
        h = lt_dl.session.add_torrent(atp)
        h.connect_peer(("127.0.0.1", ours.port))
        try:
            await lt_dl.wait_finished(h, timeout=90)
        except TimeoutError:
            pytest.fail("libtorrent did not finish:\n" + lt_dl.alerts_text()[-4000:])
        # the seed's runtime (private, test-only access) counts what its HashServer answered
        served = ours._torrents[t.info_hash].hash_server.statistics()
    for name in FILES:
        got = (tmp_path / "dl" / "payload" / name).read_bytes()
        assert got == (root / name).read_bytes(), name
    # libtorrent could verify nothing without both layers: it fetched every run from us
    assert served.served >= (3 if piece == PIECE else 2) and served.rate_limited == 0
