"""Web seeds (BEP 19) wired into the session: web-seed-only downloads through the session and the
CLI, and a lying web seed banned while a peer completes the download."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trio

from torrio.client import AddTorrent, HashFailed, WebSeed, open_session
from torrio.core import PeerAddr
from torrio.metainfo import TorrentBuilder
from torrio.testing import make_random_tree

from ._helpers import make_torrent, tree_digest
from .test_web_seed import Behaviour, Handler, Server

LOOP: dict[str, Any] = {"listen_host": "127.0.0.1", "listen_port": 0, "reraise_errors": True}
FILES = {"a.bin": 70_000, "sub dir/b.bin": 33_333, "c/d/e.bin": 50_001, "empty": 0}


@pytest.fixture
def http(tmp_path: Path) -> Iterator[Server]:
    """An HTTP server with Range support serving ``tmp_path/seed``."""
    root = tmp_path / "seed"
    root.mkdir()
    behaviour = Behaviour()
    handler = type("H", (Handler,), {"root": root.resolve(), "behaviour": behaviour})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    t.start()
    try:
        yield Server(f"http://127.0.0.1:{srv.server_address[1]}/", behaviour)
    finally:
        srv.shutdown()
        srv.server_close()
        t.join()


async def test_web_seed_only_download_multi_file(tmp_path: Path, http: Server) -> None:
    t = make_torrent(tmp_path / "seed", FILES, piece_length=16384)
    with trio.fail_after(30):
        async with open_session(**LOOP) as ses:
            h = await ses.add_torrent(
                AddTorrent(source=t, save_path=tmp_path / "dl", web_seeds=[http.base])
            )
            await h.wait_finished()
            st = h.status()
            assert st.finished and st.done == t.total_length
            assert st.peers == 0 and st.downloaded >= t.total_length
            (ws,) = h._rt.web_seeds
            assert isinstance(ws, WebSeed) and not ws.banned
            assert ws.statistics().pieces_bad == 0
    assert tree_digest(tmp_path / "dl" / "payload") == tree_digest(tmp_path / "seed" / "payload")
    assert any(r.startswith("/payload/sub%20dir/b.bin") for r in http.behaviour.requests)


async def test_lying_web_seed_is_banned_and_a_peer_completes(tmp_path: Path, http: Server) -> None:
    t = make_torrent(tmp_path / "seed", FILES, piece_length=16384)
    http.behaviour.mode = "corrupt"
    with trio.fail_after(30):
        async with open_session(**LOOP) as seed, open_session(**LOOP) as leech:
            sh = await seed.add_torrent(AddTorrent(source=t, save_path=tmp_path / "seed"))
            await sh.wait_finished()
            events = leech.events()
            lh = await leech.add_torrent(
                AddTorrent(source=t, save_path=tmp_path / "dl", web_seeds=[http.base])
            )
            failed = 0
            async for e in events:
                if isinstance(e, HashFailed):
                    failed += 1
                    if failed == 3:  # DEFAULT_MAX_BAD_PIECES
                        break
            (ws,) = lh.web_seeds()
            assert ws.banned and ws.pieces_bad >= 3 and ws.pieces_ok == 0
            asked = ws.requests
            lh.connect_peer(PeerAddr("127.0.0.1", seed.port))
            await lh.wait_finished()
            (ws,) = lh.web_seeds()
            assert ws.requests == asked  # never asked again once banned
    assert tree_digest(tmp_path / "dl" / "payload") == tree_digest(tmp_path / "seed" / "payload")


def test_cli_download_from_url_list(tmp_path: Path, http: Server) -> None:
    path = make_random_tree(tmp_path / "seed" / "payload", FILES, seed=3)
    t = TorrentBuilder(path, version="v1", piece_length=16384, web_seeds=[http.base]).build(
        threads=1
    )
    assert t.web_seeds == (http.base,)
    tf = tmp_path / "t.torrent"
    tf.write_bytes(t.to_bytes())
    out = subprocess.run(
        [sys.executable, "-m", "torrio.client", "download", str(tf), "-o", str(tmp_path / "dl"),
         "--port", "0", "--listen-host", "127.0.0.1", "--no-dht", "--json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["finished"] and doc["done"] == t.total_length
    assert tree_digest(tmp_path / "dl" / "payload") == tree_digest(path)


async def test_bep17_http_seed_only_download(tmp_path: Path) -> None:
    import attrs

    from .test_web_seed import SeedScript, payload

    base = make_torrent(tmp_path / "seed", FILES, piece_length=16384)
    space = payload(tmp_path / "seed", base)
    handler = type("S", (SeedScript,), {"torrent": base, "space": space, "mode": ["ok"]})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    th = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    th.start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/seed.php"
        t = attrs.evolve(base, http_seeds=(url,))
        with trio.fail_after(30):
            async with open_session(**LOOP) as ses:
                h = await ses.add_torrent(AddTorrent(source=t, save_path=tmp_path / "dl"))
                await h.wait_finished()
                (hs,) = h.web_seeds()
                assert hs.url == url and hs.pieces_ok == t.num_pieces and hs.pieces_bad == 0
    finally:
        srv.shutdown()
        srv.server_close()
        th.join()
    assert tree_digest(tmp_path / "dl" / "payload") == tree_digest(tmp_path / "seed" / "payload")
