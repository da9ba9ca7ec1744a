"""torrio-utp against libtorrent restricted to uTP, on loopback, both directions, byte-exact.

The BitTorrent side is the minimum a transfer needs (handshake, bitfield, interested/unchoke,
request/piece), spoken with torrio-handshake and torrio-wire over our :class:`UtpStream`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import trio

from torrio.core import PeerId
from torrio.handshake import HANDSHAKE_LEN, Handshake
from torrio.testing import libtorrent as ltx
from torrio.testing import make_random_file
from torrio.utp import UtpStream, open_utp_socket
from torrio.wire import (
    NEED_DATA,
    BitfieldMessage,
    Interested,
    Piece,
    Request,
    Unchoke,
    WireDecoder,
    encode,
)

pytestmark = pytest.mark.skipif(not ltx.available(), reason="libtorrent wheel not installed")

UTP_ONLY = {
    "enable_outgoing_tcp": False,
    "enable_incoming_tcp": False,
    "enable_outgoing_utp": True,
    "enable_incoming_utp": True,
    "recv_socket_buffer_size": 4 << 20,
    "send_socket_buffer_size": 4 << 20,
    # plaintext BitTorrent (MSE/PE is torrio-handshake's business, not this test's)
    "out_enc_policy": 2,
    "in_enc_policy": 2,
}
PIECE = 65536
BLOCK = 16384
SIZE = 3 * 1024 * 1024 + 12345


def _payload(tmp_path: Path) -> tuple[Path, bytes, bytes, int]:
    seed_dir = tmp_path / "seed"
    seed_dir.mkdir()
    path = seed_dir / "payload.bin"
    make_random_file(path, SIZE, seed=29)
    torrent = ltx.create_torrent(path, piece_size=PIECE, version="v1")
    lt = ltx._require()
    ti = lt.torrent_info(torrent)
    return path, torrent, ti.info_hashes().v1.to_bytes(), ti.num_pieces()


async def _read_exact(stream: UtpStream, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = await stream.receive_some(n - len(buf))
        if not chunk:
            raise EOFError(f"stream ended after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


async def _messages(stream: UtpStream, decoder: WireDecoder) -> Any:
    while True:
        while (msg := decoder.next_event()) is not NEED_DATA:
            yield msg
        chunk = await stream.receive_some(65536)
        if not chunk:
            return
        decoder.receive_data(chunk)


async def test_libtorrent_downloads_from_our_utp_listener(tmp_path: Path) -> None:
    path, torrent, info_hash, num_pieces = _payload(tmp_path)
    payload = path.read_bytes()
    bits = bytearray((num_pieces + 7) // 8)
    for i in range(num_pieces):
        bits[i // 8] |= 0x80 >> (i % 8)
    served = 0

    async def seed(stream: UtpStream) -> None:
        nonlocal served
        theirs = Handshake.from_bytes(await _read_exact(stream, HANDSHAKE_LEN))
        assert theirs.info_hash == info_hash
        await stream.send_all(Handshake(info_hash, PeerId.generate()).to_bytes())
        await stream.send_all(encode(BitfieldMessage(bytes(bits))) + encode(Unchoke()))
        decoder = WireDecoder(num_pieces=num_pieces)
        try:
            async for msg in _messages(stream, decoder):
                if isinstance(msg, Request):
                    start = msg.index * PIECE + msg.begin
                    block = payload[start : start + msg.length]
                    await stream.send_all(encode(Piece(msg.index, msg.begin, block)))
                    served += len(block)
        except trio.BrokenResourceError:
            pass  # libtorrent may reset the connection once it is a seed too
        await stream.aclose()

    async with (
        open_utp_socket() as sock,
        ltx.open_session(UTP_ONLY) as ses,
        trio.open_nursery() as nursery,
    ):
        await nursery.start(sock.serve, seed)
        port = sock.local_address[1] if sock.local_address else 0
        dl = tmp_path / "dl"
        dl.mkdir()
        handle = ses.add_torrent(torrent, dl, peers=[("127.0.0.1", port)])
        try:
            await ses.wait_finished(handle, timeout=60)
        except TimeoutError:
            pytest.fail("libtorrent did not finish:\n" + ses.alerts_text()[-4000:])
        nursery.cancel_scope.cancel()
    assert (dl / path.name).read_bytes() == payload
    assert served >= SIZE


async def test_we_download_from_libtorrent_seed_over_utp(tmp_path: Path) -> None:
    path, torrent, info_hash, num_pieces = _payload(tmp_path)
    payload = path.read_bytes()
    lt = ltx._require()
    ti = lt.torrent_info(torrent)
    hashes = [bytes(ti.hash_for_piece(i)) for i in range(num_pieces)]

    async with ltx.open_session(UTP_ONLY) as ses, open_utp_socket() as sock:
        handle = ses.add_torrent(torrent, path.parent, seed_mode=True)
        # listen_port() is 0 until libtorrent has bound its uTP socket: wait for it and for the
        # torrent to be seeding, not for a fixed 0.2 s
        await ses.wait_for(lambda: ses.port != 0 and ltx.seeding(handle), timeout=30)
        with trio.fail_after(60):
            stream = await sock.connect(("127.0.0.1", ses.port))
            await stream.send_all(Handshake(info_hash, PeerId.generate()).to_bytes())
            theirs = Handshake.from_bytes(await _read_exact(stream, HANDSHAKE_LEN))
            assert theirs.info_hash == info_hash
            await stream.send_all(encode(Interested()))
            blocks = [
                (i, b, min(BLOCK, min(PIECE, SIZE - i * PIECE) - b))
                for i in range(num_pieces)
                for b in range(0, min(PIECE, SIZE - i * PIECE), BLOCK)
            ]
            got = bytearray(SIZE)
            outstanding = 0
            pending = iter(blocks)
            received = 0
            decoder = WireDecoder(num_pieces=num_pieces)
            async for msg in _messages(stream, decoder):
                if isinstance(msg, Unchoke | Piece):
                    if isinstance(msg, Piece):
                        start = msg.index * PIECE + msg.begin
                        got[start : start + len(msg.block)] = msg.block
                        received += len(msg.block)
                        outstanding -= 1
                    batch = []
                    while outstanding < 32:
                        nxt = next(pending, None)
                        if nxt is None:
                            break
                        batch.append(encode(Request(*nxt)))
                        outstanding += 1
                    if batch:
                        await stream.send_all(b"".join(batch))
                    if received == SIZE:
                        break
            await stream.aclose()
    assert bytes(got) == payload
    for i in range(num_pieces):
        assert hashlib.sha1(got[i * PIECE : (i + 1) * PIECE]).digest() == hashes[i]
