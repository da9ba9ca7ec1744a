"""Web-seed-only downloads (no peers at all) from a local HTTP server with Range support: torrio and
libtorrent (the reference) each fetch the same multi-file torrent from its ``url-list``."""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trio

from torrio.client import AddTorrent, open_session
from torrio.metainfo import TorrentBuilder
from torrio.testing import libtorrent as ltx
from torrio.testing import make_random_tree
from torrio.testing.client_swarm import LOOP, tree_digest

pytestmark = pytest.mark.skipif(not ltx.available(), reason="libtorrent wheel not installed")

FILES = {"a.bin": 300_000, "dir/b c.bin": 45_679, "dir/d.bin": 70_000}


class RangeHandler(BaseHTTPRequestHandler):
    root: Path
    hits: list[str]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.hits.append(self.path)
        rel = urllib.parse.unquote(self.path.split("?", 1)[0]).lstrip("/")
        target = (self.root / rel).resolve()
        if self.root not in target.parents or not target.is_file():
            self.send_error(404)
            return
        data = target.read_bytes()
        rng = self.headers.get("Range")
        if rng is None:
            status, body, cr = 200, data, None
        else:
            first_s, _, last_s = rng.removeprefix("bytes=").partition("-")
            first = int(first_s)
            last = min(int(last_s) if last_s else len(data) - 1, len(data) - 1)
            status, body, cr = 206, data[first : last + 1], f"bytes {first}-{last}/{len(data)}"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if cr:
            self.send_header("Content-Range", cr)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def http(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    root = tmp_path / "www"
    root.mkdir()
    hits: list[str] = []
    handler = type("H", (RangeHandler,), {"root": root.resolve(), "hits": hits})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/", hits
    finally:
        srv.shutdown()
        srv.server_close()
        t.join()


@pytest.mark.parametrize("version", ["v1", "hybrid"])
async def test_web_seed_only_download_torrio_and_libtorrent(
    tmp_path: Path, http: tuple[str, list[str]], version: str
) -> None:
    base, hits = http
    src = make_random_tree(tmp_path / "www" / "payload", FILES, seed=5)
    t = TorrentBuilder(src, version=version, piece_length=32768, web_seeds=[base]).build(threads=1)
    with trio.fail_after(60):
        async with open_session(**LOOP) as ses:
            h = await ses.add_torrent(AddTorrent(source=t, save_path=tmp_path / "torrio"))
            await h.wait_finished()
            assert h.status().peers == 0
        async with ltx.open_session() as lt:
            lh = lt.add_torrent(t.to_bytes(), tmp_path / "lt")
            await lt.wait_finished(lh, timeout=50)
    assert hits
    want = tree_digest(src)
    assert tree_digest(tmp_path / "torrio" / "payload") == want
    assert tree_digest(tmp_path / "lt" / "payload") == want
