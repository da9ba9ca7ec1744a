"""Web seeds (BEP 19) against a local HTTP server with Range support, honest and lying."""

from __future__ import annotations

import os
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import attrs
import pytest
import trio

from torrio.client._web_seed import (
    HttpSeed,
    HttpSeedBusy,
    WebSeed,
    WebSeedError,
    coalesce_requests,
    file_url,
    http_seed_url,
    piece_hash_ok,
    plan_range,
    run_web_seed,
    web_seed_client,
)
from torrio.core import Bitfield
from torrio.metainfo import Torrent
from torrio.select import BlockRequest, Picker, PieceLayout

from ._helpers import make_torrent


@attrs.define
class Behaviour:
    mode: str = "honest"  # honest | corrupt | ignore-range | wrong-range | too-long | loop | 404
    requests: list[str] = attrs.field(factory=list)


class Handler(BaseHTTPRequestHandler):
    root: Path
    behaviour: Behaviour

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        b = self.behaviour
        b.requests.append(self.path)
        path = urllib.parse.unquote(self.path.split("?", 1)[0])
        if path.startswith("/redirect/"):
            self.send_response(302)
            self.send_header("Location", path[len("/redirect") :])
            self.end_headers()
            return
        if b.mode == "loop":
            self.send_response(302)
            self.send_header("Location", self.path)
            self.end_headers()
            return
        target = (self.root / path.lstrip("/")).resolve()
        if b.mode == "404" or not target.is_file() or self.root not in target.parents:
            self.send_error(404)
            return
        data = target.read_bytes()
        rng = self.headers.get("Range")
        if rng is None or b.mode == "ignore-range":
            self._send(200, data, None)
            return
        first_s, _, last_s = rng.removeprefix("bytes=").partition("-")
        first, last = int(first_s), int(last_s)
        body = data[first : last + 1]
        if b.mode == "corrupt":
            body = bytes(len(body))
        elif b.mode == "too-long":
            body = body + b"extra"
        cr = f"bytes {first}-{last}/{len(data)}"
        if b.mode == "wrong-range":
            cr = f"bytes {first + 1}-{last + 1}/{len(data)}"
        self._send(206, body, cr)

    def _send(self, status: int, body: bytes, content_range: str | None) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if content_range:
            self.send_header("Content-Range", content_range)
        self.end_headers()
        self.wfile.write(body)


@attrs.define
class Server:
    base: str
    behaviour: Behaviour


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    behaviour = Behaviour()
    handler = type("H", (Handler,), {"root": tmp_path.resolve(), "behaviour": behaviour})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    t.start()
    try:
        yield Server(f"http://127.0.0.1:{srv.server_address[1]}/", behaviour)
    finally:
        srv.shutdown()
        srv.server_close()
        t.join()


def payload(root: Path, t: Torrent) -> bytes:
    """The linear piece space of ``t`` built from the files on disk (pads as zeros)."""
    out = bytearray()
    for f in t.files:
        out += bytes(f.length) if f.is_pad else (root / Path(*f.path)).read_bytes()
    return bytes(out)


FILES = {"dir one/ä b.bin": 20000, "b.bin": 5000, "c/d/e.bin": 45000, "empty": 0}


def test_urls_follow_bep19(tmp_path: Path) -> None:
    multi = make_torrent(tmp_path / "m", FILES, name="my torrent", piece_length=16384)
    i = next(i for i, f in enumerate(multi.files) if f.path[-1] == "ä b.bin")
    assert (
        file_url("http://h/seed", multi, i) == "http://h/seed/my%20torrent/dir%20one/%C3%A4%20b.bin"
    )
    assert file_url("http://h/seed/", multi, i) == file_url("http://h/seed", multi, i)
    single = make_torrent(tmp_path / "s", 1000, name="x y.iso")
    assert file_url("http://h/files/x.iso", single, 0) == "http://h/files/x.iso"
    assert file_url("http://h/files/", single, 0) == "http://h/files/x%20y.iso"


def test_plan_splits_at_file_boundaries_and_marks_pads(tmp_path: Path) -> None:
    t = make_torrent(tmp_path, FILES, piece_length=16384, version="hybrid")
    parts = plan_range("http://h/", t, 0, t.total_length)
    assert sum(p.length for p in parts) == t.total_length
    pads = [p for p in parts if p.url is None]
    assert pads and all(t.files[p.file_index].is_pad for p in pads)


@pytest.mark.parametrize("version", ["v1", "hybrid", "v2"])
async def test_download_every_piece_multi_file(
    tmp_path: Path, server: Server, version: str
) -> None:
    t = make_torrent(tmp_path, FILES, piece_length=16384, version=version)
    want = payload(tmp_path, t)
    async with web_seed_client() as client:
        ws = WebSeed(server.base, t, client)
        got = b"".join([await ws.fetch_piece(i) for i in range(t.num_pieces)])
    assert got == want
    s = ws.statistics()
    assert s.pieces_ok == t.num_pieces and s.pieces_bad == 0 and not s.banned
    assert s.bytes_received == sum(f.length for f in t.files if not f.is_pad)
    # pad files are never requested
    assert not any(".pad" in r for r in server.behaviour.requests)


async def test_single_file_and_ranges(tmp_path: Path, server: Server) -> None:
    t = make_torrent(tmp_path, 100_000, name="single.bin", piece_length=32768)
    data = (tmp_path / "single.bin").read_bytes()
    async with web_seed_client() as client:
        ws = WebSeed(server.base + "single.bin", t, client)
        assert await ws.fetch_range(1000, 5000) == data[1000:6000]
        assert await ws.fetch_piece(t.num_pieces - 1) == data[3 * 32768 :]
        # a directory URL gets the file name appended
        ws2 = WebSeed(server.base, t, client)
        assert await ws2.fetch_piece(0) == data[:32768]


async def test_redirect_followed_and_loop_bounded(tmp_path: Path, server: Server) -> None:
    t = make_torrent(tmp_path, 40_000, name="f.bin", piece_length=16384)
    data = (tmp_path / "f.bin").read_bytes()
    async with web_seed_client(max_redirects=3) as client:
        ws = WebSeed(server.base + "redirect/f.bin", t, client)
        assert await ws.fetch_piece(1) == data[16384:32768]
        server.behaviour.mode = "loop"
        server.behaviour.requests.clear()
        with pytest.raises(WebSeedError, match="too many redirects"):
            await ws.fetch_piece(0)
        assert len(server.behaviour.requests) == 4  # first try + 3 redirects


@pytest.mark.parametrize(
    ("mode", "match"),
    [
        ("ignore-range", "ignored the Range"),
        ("wrong-range", "Content-Range"),
        ("too-long", "longer than requested"),
        ("404", "HTTP 404"),
    ],
)
async def test_lying_or_broken_server(
    tmp_path: Path, server: Server, mode: str, match: str
) -> None:
    t = make_torrent(tmp_path, FILES, piece_length=16384)
    server.behaviour.mode = mode
    async with web_seed_client() as client:
        ws = WebSeed(server.base, t, client)
        with pytest.raises(WebSeedError, match=match) as exc:
            await ws.fetch_piece(1)
    assert exc.value.url == server.base
    assert ws.statistics().errors == 1


async def test_bad_pieces_ban_the_seed(tmp_path: Path, server: Server) -> None:
    t = make_torrent(tmp_path, FILES, piece_length=16384)
    server.behaviour.mode = "corrupt"
    async with web_seed_client() as client:
        ws = WebSeed(server.base, t, client, max_bad_pieces=2)
        for i in range(2):
            with pytest.raises(WebSeedError, match="hash check"):
                await ws.fetch_piece(i)
        assert ws.banned
        n = len(server.behaviour.requests)
        with pytest.raises(WebSeedError, match="banned"):
            await ws.fetch_piece(3)
        assert len(server.behaviour.requests) == n  # no more requests once banned


async def test_whole_file_200_is_accepted_when_whole_file_asked(
    tmp_path: Path, server: Server
) -> None:
    t = make_torrent(tmp_path, {"a": 100, "b": 30000}, piece_length=16384)
    server.behaviour.mode = "ignore-range"
    async with web_seed_client() as client:
        ws = WebSeed(server.base, t, client)
        # piece 0 covers all of "a" (a 200 is fine there) and the start of "b" (a 200 is not)
        with pytest.raises(WebSeedError, match="ignored the Range"):
            await ws.fetch_piece(0)
        assert ws.statistics().bytes_received == 100


def test_piece_hash_ok_detects_corruption(tmp_path: Path) -> None:
    for version in ("v1", "v2"):
        t = make_torrent(tmp_path / version, FILES, piece_length=16384, version=version)
        data = payload(tmp_path / version, t)
        size = t.layout.piece_size(0)
        assert piece_hash_ok(t, 0, data[:size])
        assert not piece_hash_ok(t, 0, os.urandom(size))


# -- BEP 17 --------------------------------------------------------------------------------------


class SeedScript(BaseHTTPRequestHandler):
    """A BEP 17 seed script: ?info_hash=&piece= -> the piece; busy -> 503 with a delay."""

    torrent: Torrent
    space: bytes
    mode: list[str]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        ih = urllib.parse.unquote_to_bytes(self.path.split("info_hash=")[1].split("&")[0])
        assert ih == self.torrent.info_hash.v1
        piece = int(q["piece"][0])
        if self.mode[0] == "busy":
            body = b"42"
            self.send_response(503)
        else:
            pl = self.torrent.piece_length
            body = self.space[piece * pl : (piece + 1) * pl]
            if self.mode[0] == "corrupt":
                body = bytes(len(body))
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


async def test_bep17_http_seed(tmp_path: Path) -> None:
    t = make_torrent(tmp_path, FILES, piece_length=16384)
    space = payload(tmp_path, t)
    mode = ["ok"]
    handler = type("S", (SeedScript,), {"torrent": t, "space": space, "mode": mode})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    th = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    th.start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/seed.php"
        assert http_seed_url(url, b"\x9c" * 20, 3) == url + "?info_hash=" + "%9C" * 20 + "&piece=3"
        async with web_seed_client() as client:
            hs = HttpSeed(url, t, client, max_bad_pieces=1)
            got = b"".join([await hs.fetch_piece(i) for i in range(t.num_pieces)])
            assert got == space
            mode[0] = "busy"
            with pytest.raises(HttpSeedBusy) as exc:
                await hs.fetch_piece(0)
            assert exc.value.retry_after == 42
            mode[0] = "corrupt"
            with pytest.raises(WebSeedError, match="hash check"):
                await hs.fetch_piece(0)
            assert hs.banned
            with pytest.raises(WebSeedError, match="whole pieces"):
                await hs.fetch_range(0, 10)
    finally:
        srv.shutdown()
        srv.server_close()
        th.join()


# -- driven by a Picker (a web seed as a peer) ---------------------------------------------------


def make_picker(t: Torrent) -> Picker:
    return Picker(
        PieceLayout.from_sizes(t.layout.piece_size(i) for i in range(t.num_pieces)),
        have=Bitfield(t.num_pieces),
    )


def test_coalesce_requests_joins_contiguous_blocks() -> None:
    reqs = [BlockRequest(1, 0, 16384), BlockRequest(0, 16384, 16384), BlockRequest(0, 0, 16384),
            BlockRequest(3, 0, 100)]  # fmt: skip
    runs = coalesce_requests(reqs, 32768)
    assert [(o, len(g)) for o, g in runs] == [(0, 3), (3 * 32768, 1)]
    assert len(coalesce_requests(reqs, 32768, max_bytes=16384)) == 4


async def download_with_picker(ws: WebSeed, t: Torrent) -> tuple[bytes, Picker]:
    picker = make_picker(t)
    space = bytearray(t.total_length)

    async def deliver(req: BlockRequest, data: bytes) -> None:
        res = picker.block_received(ws, req, trio.current_time())
        if not res.accepted:
            return
        start = t.layout.piece_offset(req.piece) + req.offset
        space[start : start + len(data)] = data
        if res.piece_complete:
            piece = bytes(
                space[t.layout.piece_offset(req.piece) :][: t.layout.piece_size(req.piece)]
            )
            ok = piece_hash_ok(t, req.piece, piece)
            ws.report_piece(ok=ok)
            if ok:
                picker.piece_passed(req.piece)
            else:
                picker.piece_failed(req.piece)

    with trio.fail_after(30):
        await run_web_seed(ws, picker, deliver, retry=0.01, idle=0.01)
    return bytes(space), picker


async def test_picker_driven_web_seed_download(tmp_path: Path, server: Server) -> None:
    t = make_torrent(tmp_path, FILES, piece_length=16384, version="hybrid")
    async with web_seed_client() as client:
        ws = WebSeed(server.base, t, client)
        space, picker = await download_with_picker(ws, t)
    assert picker.is_finished() and space == payload(tmp_path, t)
    assert picker.peers() == []  # the web seed left the picker
    # far fewer HTTP requests than blocks: contiguous blocks were fetched together
    assert ws.statistics().requests < t.num_pieces


async def test_picker_driven_web_seed_is_banned_by_bad_pieces(
    tmp_path: Path, server: Server
) -> None:
    t = make_torrent(tmp_path, FILES, piece_length=16384)
    server.behaviour.mode = "corrupt"
    async with web_seed_client() as client:
        ws = WebSeed(server.base, t, client, max_bad_pieces=2)
        _, picker = await download_with_picker(ws, t)
    assert ws.banned and not picker.is_finished() and picker.peers() == []


async def test_picker_driven_web_seed_backs_off_on_errors(tmp_path: Path, server: Server) -> None:
    t = make_torrent(tmp_path, FILES, piece_length=16384)
    server.behaviour.mode = "404"
    async with web_seed_client() as client:
        ws = WebSeed(server.base, t, client)
        picker = make_picker(t)

        async def deliver(req: BlockRequest, data: bytes) -> None:
            raise AssertionError("nothing is delivered from a 404")

        with trio.move_on_after(0.5):
            await run_web_seed(ws, picker, deliver, retry=0.1, max_retry=0.2)
    # 0.1 + 0.2 + 0.2 ... seconds apart: a handful of attempts, not a busy loop
    assert 1 <= ws.statistics().errors <= 6
    assert picker.peers() == []
