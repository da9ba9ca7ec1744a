"""Web seeds (BEP 19): torrio's WebSeed and libtorrent against the same local HTTP server.

A multi-file hybrid torrent made by libtorrent (pad files, names with spaces and non-ASCII) gets a
``url-list`` pointing at a loopback HTTP server with Range support. libtorrent downloads it from
the web seed alone (no peers); so does torrio's :class:`WebSeed`. Both get the right bytes, and
torrio asks for the same file URLs libtorrent asks for.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trio

from torrio.bencode import decode, encode
from torrio.client._web_seed import WebSeed, web_seed_client
from torrio.metainfo import Torrent
from torrio.testing import libtorrent as ltx
from torrio.testing import make_random_tree

pytestmark = pytest.mark.skipif(not ltx.available(), reason="libtorrent wheel not installed")

FILES = {"a dir/ä file.bin": 70_000, "b.bin": 5_000, "c/d/e f.bin": 150_000}


class _Handler(BaseHTTPRequestHandler):
    root: Path
    seen: list[tuple[str, str]]  # (client, path)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        who = "lt" if "libtorrent" in self.headers.get("User-Agent", "") else "torrio"
        path = self.path.split("?", 1)[0]
        self.seen.append((who, path))
        target = (self.root / urllib.parse.unquote(path).lstrip("/")).resolve()
        if not target.is_file() or self.root not in target.parents:
            self.send_error(404)
            return
        data = target.read_bytes()
        rng = self.headers.get("Range")
        status, first, last = 200, 0, len(data) - 1
        if rng is not None:
            a, _, b = rng.removeprefix("bytes=").partition("-")
            status, first, last = 206, int(a), min(int(b), len(data) - 1)
        self.send_response(status)
        self.send_header("Content-Length", str(last - first + 1))
        if status == 206:
            self.send_header("Content-Range", f"bytes {first}-{last}/{len(data)}")
        self.end_headers()
        self.wfile.write(data[first : last + 1])


def _serve(root: Path, seen: list[tuple[str, str]]) -> Iterator[int]:
    handler = type("H", (_Handler,), {"root": root.resolve(), "seen": seen})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    t.start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()
        t.join()


@pytest.fixture
def seen() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def served(tmp_path: Path, seen: list[tuple[str, str]]) -> Iterator[int]:
    yield from _serve(tmp_path / "www", seen)


def _with_url_list(data: bytes, url: str) -> bytes:
    top = decode(data)
    assert isinstance(top, dict)
    top[b"url-list"] = [url.encode()]
    return encode(top)


async def test_web_seed_only_download_matches_libtorrent(
    tmp_path: Path, served: int, seen: list[tuple[str, str]]
) -> None:
    root = make_random_tree(tmp_path / "www" / "my torrent", FILES, seed=11)
    base = f"http://127.0.0.1:{served}/"
    data = _with_url_list(ltx.create_torrent(root, piece_size=32768, version="hybrid"), base)
    t = Torrent.from_bytes(data)
    assert t.web_seeds == (base,) and any(f.is_pad for f in t.files)

    # libtorrent: web seed only
    async with ltx.open_session() as ses:
        h = ses.add_torrent(data, tmp_path / "lt")
        await ses.wait_finished(h, timeout=60)
    for rel in FILES:
        assert (tmp_path / "lt" / "my torrent" / rel).read_bytes() == (root / rel).read_bytes()

    # torrio: the same
    async with web_seed_client() as client:
        ws = WebSeed(t.web_seeds[0], t, client)
        with trio.fail_after(60):
            pieces = [await ws.fetch_piece(i) for i in range(t.num_pieces)]
    space = b"".join(pieces)
    for f in t.files:
        if not f.is_pad:
            assert (
                space[f.offset : f.offset + f.length]
                == (tmp_path / "www" / Path(*f.path)).read_bytes()
            )
    assert ws.statistics().pieces_ok == t.num_pieces

    # the same URLs (libtorrent writes percent-escapes in lower case, we in upper case: RFC 3986
    # says they are equivalent, so compare them decoded)
    lt_paths = {urllib.parse.unquote(p) for who, p in seen if who == "lt"}
    our_paths = {urllib.parse.unquote(p) for who, p in seen if who == "torrio"}
    assert lt_paths and our_paths == lt_paths
    assert "/my torrent/a dir/ä file.bin" in our_paths
