"""torrio-client sessions and libtorrent sessions exchanging a torrent on loopback (TCP).

libtorrent seed -> torrio download; torrio seed -> libtorrent download; both with encryption
required; a mixed swarm (one libtorrent seed, two torrio and two libtorrent downloaders).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from torrio.client import AddTorrent, TorrentHandle, open_session
from torrio.core import PeerAddr
from torrio.metainfo import Torrent
from torrio.testing import libtorrent as ltx
from torrio.testing.client_swarm import LOOP, make_torrent, tree_digest

pytestmark = pytest.mark.skipif(not ltx.available(), reason="libtorrent wheel not installed")

FILES = {"a.bin": 1_200_000, "dir/b.bin": 345_679, "dir/c.bin": 70_000}


def _lt_require() -> dict[str, Any]:
    lt = ltx.lt
    return {
        "out_enc_policy": lt.enc_policy.forced,
        "in_enc_policy": lt.enc_policy.forced,
        "allowed_enc_level": lt.enc_level.rc4,
    }


async def _wait_ours(h: TorrentHandle, seconds: float = 60.0) -> None:
    with trio.fail_after(seconds):
        await h.wait_finished()


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
async def test_libtorrent_seed_to_torrio(tmp_path: Path, version: str) -> None:
    t = make_torrent(tmp_path / "seed", FILES, piece_length=32768, version=version)
    async with ltx.open_session() as lt_seed, open_session(**LOOP) as ours:
        sh = lt_seed.add_torrent(t.to_bytes(), tmp_path / "seed", seed_mode=True)
        await lt_seed.wait_for(lambda: ltx.seeding(sh))
        h = await ours.add_torrent(
            AddTorrent(
                source=t, save_path=tmp_path / "dl", peers=[PeerAddr("127.0.0.1", lt_seed.port)]
            )
        )
        await _wait_ours(h)
    assert tree_digest(tmp_path / "dl" / "payload") == tree_digest(tmp_path / "seed" / "payload")


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
async def test_torrio_seed_to_libtorrent(tmp_path: Path, version: str) -> None:
    t = make_torrent(tmp_path / "seed", FILES, piece_length=32768, version=version)
    async with open_session(**LOOP) as ours, ltx.open_session() as lt_dl:
        sh = await ours.add_torrent(AddTorrent(source=t, save_path=tmp_path / "seed"))
        await sh.wait_finished()
        h = lt_dl.add_torrent(t.to_bytes(), tmp_path / "dl", peers=[("127.0.0.1", ours.port)])
        await lt_dl.wait_finished(h, timeout=60)
        assert sh.status().uploaded >= t.total_length - 2 * t.piece_length
    assert tree_digest(tmp_path / "dl" / "payload") == tree_digest(tmp_path / "seed" / "payload")


async def test_encryption_required_both_ways(tmp_path: Path) -> None:
    t = make_torrent(tmp_path / "seed", FILES, piece_length=32768)
    req = _lt_require()
    async with (
        ltx.open_session(req) as lt_seed,
        ltx.open_session(req) as lt_dl,
        open_session(**LOOP, encryption="require") as ours,
    ):
        sh = lt_seed.add_torrent(t.to_bytes(), tmp_path / "seed", seed_mode=True)
        await lt_seed.wait_for(lambda: ltx.seeding(sh))
        # libtorrent (require) seed -> torrio (require)
        h = await ours.add_torrent(
            AddTorrent(
                source=t, save_path=tmp_path / "ours", peers=[PeerAddr("127.0.0.1", lt_seed.port)]
            )
        )
        await _wait_ours(h)
        assert all(p.encrypted for p in h.peers())
        # torrio (require) seed -> libtorrent (require)
        dh = lt_dl.add_torrent(t.to_bytes(), tmp_path / "lt", peers=[("127.0.0.1", ours.port)])
        await lt_dl.wait_finished(dh, timeout=60)
    want = tree_digest(tmp_path / "seed" / "payload")
    assert tree_digest(tmp_path / "ours" / "payload") == want
    assert tree_digest(tmp_path / "lt" / "payload") == want


async def test_mixed_swarm(tmp_path: Path) -> None:
    """One libtorrent seed, two torrio and two libtorrent downloaders, all told of each other."""
    t: Torrent = make_torrent(tmp_path / "seed", FILES, piece_length=16384)
    data = t.to_bytes()
    async with (
        ltx.open_session({"upload_rate_limit": 600_000}) as lt_seed,
        ltx.open_session() as lt1,
        ltx.open_session() as lt2,
        open_session(**LOOP) as o1,
        open_session(**LOOP) as o2,
    ):
        sh = lt_seed.add_torrent(data, tmp_path / "seed", seed_mode=True)
        await lt_seed.wait_for(lambda: ltx.seeding(sh))
        ports = [lt_seed.port, lt1.port, lt2.port, o1.port, o2.port]
        handles = []
        for i, s in enumerate((o1, o2)):
            peers = [PeerAddr("127.0.0.1", p) for p in ports if p != s.port]
            handles.append(
                await s.add_torrent(AddTorrent(source=t, save_path=tmp_path / f"o{i}", peers=peers))
            )
        lt_handles = []
        for i, lts in enumerate((lt1, lt2)):
            lt_peers = [("127.0.0.1", p) for p in ports if p != lts.port]
            lt_handles.append((lts, lts.add_torrent(data, tmp_path / f"l{i}", peers=lt_peers)))
        for h in handles:
            await _wait_ours(h, 90)
        for lts, lh in lt_handles:
            await lts.wait_finished(lh, timeout=90)
        assert sum(h.status().uploaded for h in handles) > 0  # torrio fed the swarm too
    want = tree_digest(tmp_path / "seed" / "payload")
    for d in ("o0", "o1", "l0", "l1"):
        assert tree_digest(tmp_path / d / "payload") == want, d


UTP_ONLY = {
    "enable_outgoing_tcp": False,
    "enable_incoming_tcp": False,
    "enable_outgoing_utp": True,
    "enable_incoming_utp": True,
}


async def test_utp_both_directions(tmp_path: Path) -> None:
    """libtorrent (uTP only) seed -> torrio over uTP, and torrio seed -> libtorrent (uTP only)."""
    t = make_torrent(tmp_path / "seed", FILES, piece_length=32768)
    async with (
        ltx.open_session(UTP_ONLY) as lt_seed,
        ltx.open_session(UTP_ONLY) as lt_dl,
        open_session(**LOOP, transport="utp") as ours,
    ):
        sh = lt_seed.add_torrent(t.to_bytes(), tmp_path / "seed", seed_mode=True)
        await lt_seed.wait_for(lambda: ltx.seeding(sh))
        h = await ours.add_torrent(
            AddTorrent(
                source=t, save_path=tmp_path / "ours", peers=[PeerAddr("127.0.0.1", lt_seed.port)]
            )
        )
        await _wait_ours(h)
        dh = lt_dl.add_torrent(t.to_bytes(), tmp_path / "lt", peers=[("127.0.0.1", ours.port)])
        await lt_dl.wait_finished(dh, timeout=60)
    want = tree_digest(tmp_path / "seed" / "payload")
    assert tree_digest(tmp_path / "ours" / "payload") == want
    assert tree_digest(tmp_path / "lt" / "payload") == want


async def test_libtorrent_seed_found_through_the_dht(tmp_path: Path) -> None:
    """libtorrent announces into a loopback DHT; a torrio session with no peers finds it there."""
    from torrio.dht import open_node

    t = make_torrent(tmp_path / "seed", FILES, piece_length=32768)
    async with open_node(host="127.0.0.1", wait_joined=False) as boot:
        lt_dht = {
            "enable_dht": True,
            "dht_bootstrap_nodes": f"127.0.0.1:{boot.port}",
            "dht_restrict_routing_ips": False,
            "dht_restrict_search_ips": False,
            "dht_enforce_node_id": False,
        }
        async with (
            ltx.open_session(lt_dht) as lt_seed,
            open_session(
                **LOOP, dht=True, dht_bootstrap=(("127.0.0.1", boot.port),), dht_interval=2.0
            ) as ours,
        ):
            sh = lt_seed.add_torrent(t.to_bytes(), tmp_path / "seed", seed_mode=True)
            await lt_seed.wait_for(lambda: ltx.seeding(sh))
            sh.force_dht_announce()
            h = await ours.add_torrent(AddTorrent(source=t, save_path=tmp_path / "dl"))
            await _wait_ours(h, 90)
    assert tree_digest(tmp_path / "dl" / "payload") == tree_digest(tmp_path / "seed" / "payload")
