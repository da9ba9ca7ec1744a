"""torrio-handshake + torrio-wire against a libtorrent seed on loopback.

Our handshake (plaintext, and MSE with ``require``) completes; we get libtorrent's extended
handshake and its bitfield (or have-all); requested blocks hash-check against the torrent's piece
hashes; the info dict fetched by ut_metadata hashes to the info-hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from torrio.bencode import decode, raw_value
from torrio.core import Bitfield, InfoHash, PeerId
from torrio.handshake import EncryptionPolicy, Handshaker, Reserved
from torrio.testing import libtorrent as ltx
from torrio.testing import make_random_file
from torrio.wire import (
    BLOCK_SIZE,
    BitfieldMessage,
    ExtendedHandshake,
    HaveAll,
    Interested,
    MetadataAssembler,
    PeerConnection,
    Piece,
    Request,
    Unchoke,
    UtMetadataData,
    UtMetadataRequest,
    metadata_piece_count,
    open_peer_connection,
)

pytestmark = pytest.mark.skipif(not ltx.available(), reason="libtorrent wheel not installed")

PIECE_LEN = 32768
SIZE = 5 * PIECE_LEN + 1000  # a short last piece


class Seed:
    def __init__(self, ses: ltx.LtSession, data: bytes, payload: bytes) -> None:
        self.ses = ses
        self.data = data
        self.payload = payload
        info = raw_value(data, b"info")
        assert info is not None
        self.info_bytes = info
        meta: Any = decode(info)
        self.piece_length: int = meta[b"piece length"]
        hashes: bytes = meta[b"pieces"]
        self.piece_hashes = [hashes[i : i + 20] for i in range(0, len(hashes), 20)]
        self.length: int = meta[b"length"]
        self.info_hash = InfoHash(v1=hashlib.sha1(info).digest())

    @property
    def num_pieces(self) -> int:
        return len(self.piece_hashes)

    def piece_size(self, index: int) -> int:
        return min(self.piece_length, self.length - index * self.piece_length)


async def _seed(tmp_path: Path, settings: dict[str, Any] | None = None) -> AsyncIterator[Seed]:
    path = make_random_file(tmp_path / "payload.bin", SIZE, seed=7)
    data = ltx.create_torrent(path, piece_size=PIECE_LEN, version="v1")
    async with ltx.open_session(settings) as ses:
        handle = ses.add_torrent(data, tmp_path, seed_mode=True)
        await ses.wait_for(lambda: ltx.seeding(handle), timeout=30)
        yield Seed(ses, data, path.read_bytes())


@pytest.fixture
async def seed(tmp_path: Path) -> AsyncIterator[Seed]:
    async for s in _seed(tmp_path):
        yield s


@pytest.fixture
async def forced_seed(tmp_path: Path) -> AsyncIterator[Seed]:
    lt = ltx._require()
    settings = {
        "out_enc_policy": lt.enc_policy.forced,
        "in_enc_policy": lt.enc_policy.forced,
        "allowed_enc_level": lt.enc_level.rc4,
    }
    async for s in _seed(tmp_path, settings):
        yield s


async def _connect(seed: Seed, policy: EncryptionPolicy) -> tuple[Any, bool, Reserved, bool]:
    hs = Handshaker(PeerId.generate(), policy=policy, timeout=30)
    stream = await trio.open_tcp_stream("127.0.0.1", seed.ses.port)
    result = await hs.initiate(stream, seed.info_hash)
    assert result.handshake.info_hash == seed.info_hash.v1
    return result.stream, result.encrypted, result.reserved, result.used_mse


async def _greeting(conn: PeerConnection, seed: Seed) -> tuple[ExtendedHandshake, Bitfield]:
    await conn.send(conn.registry.handshake(v="torrio-test", reqq=64))
    ext: ExtendedHandshake | None = None
    have: Bitfield | None = None
    with trio.fail_after(60):
        while ext is None or have is None:
            ev = await conn.receive()
            if isinstance(ev, ExtendedHandshake):
                ext = ev
            elif isinstance(ev, BitfieldMessage):
                have = ev.to_bitfield(seed.num_pieces)
            elif isinstance(ev, HaveAll):
                have = Bitfield.full(seed.num_pieces)
    return ext, have


async def _download_and_check(conn: PeerConnection, seed: Seed) -> None:
    await conn.send(Interested())
    with trio.fail_after(60):
        while not isinstance(await conn.receive(), Unchoke):
            pass
    for index in range(seed.num_pieces):
        size = seed.piece_size(index)
        for begin in range(0, size, BLOCK_SIZE):
            await conn.send(Request(index, begin, min(BLOCK_SIZE, size - begin)))
    blocks: dict[tuple[int, int], bytes] = {}
    want = sum(-(-seed.piece_size(i) // BLOCK_SIZE) for i in range(seed.num_pieces))
    with trio.fail_after(60):
        while len(blocks) < want:
            ev = await conn.receive()
            if isinstance(ev, Piece):
                blocks[(ev.index, ev.begin)] = bytes(ev.block)
    for index in range(seed.num_pieces):
        size = seed.piece_size(index)
        piece = b"".join(blocks[(index, b)] for b in range(0, size, BLOCK_SIZE))
        assert hashlib.sha1(piece).digest() == seed.piece_hashes[index], f"piece {index}"
    assert b"".join(blocks[k] for k in sorted(blocks)) == seed.payload


@pytest.mark.parametrize("policy", [EncryptionPolicy.DISABLE, EncryptionPolicy.PREFER])
async def test_plaintext_and_prefer_handshake_then_download(
    seed: Seed, policy: EncryptionPolicy
) -> None:
    stream, encrypted, reserved, used_mse = await _connect(seed, policy)
    # offered both, libtorrent (prefer_rc4 off) selects plaintext inside MSE
    assert used_mse is (policy is EncryptionPolicy.PREFER)
    assert not encrypted
    assert reserved.supports(Reserved.EXTENSION_PROTOCOL)
    async with open_peer_connection(stream, num_pieces=seed.num_pieces) as conn:
        ext, have = await _greeting(conn, seed)
        assert ext.metadata_size == len(seed.info_bytes)
        assert "ut_metadata" in ext.m
        assert have.all()
        await _download_and_check(conn, seed)
        st = conn.statistics()
        assert st.payload_received == seed.length


async def test_encrypted_require_against_forced_libtorrent(forced_seed: Seed) -> None:
    stream, encrypted, _, _ = await _connect(forced_seed, EncryptionPolicy.REQUIRE)
    assert encrypted
    async with open_peer_connection(stream, num_pieces=forced_seed.num_pieces) as conn:
        _, have = await _greeting(conn, forced_seed)
        assert have.all()
        await _download_and_check(conn, forced_seed)


async def test_plaintext_refused_by_forced_libtorrent(forced_seed: Seed) -> None:
    from torrio.handshake import HandshakeError

    with pytest.raises(HandshakeError):
        await _connect(forced_seed, EncryptionPolicy.DISABLE)


async def test_ut_metadata_fetch_hashes_to_info_hash(seed: Seed) -> None:
    stream, _, _, _ = await _connect(seed, EncryptionPolicy.DISABLE)
    async with open_peer_connection(stream) as conn:  # a magnet download: piece count unknown
        ext, _ = await _greeting(conn, seed)
        assert ext.metadata_size is not None
        assembler = MetadataAssembler(ext.metadata_size, seed.info_hash.v1 or b"")
        for piece in range(metadata_piece_count(ext.metadata_size)):
            await conn.send(UtMetadataRequest(piece))
        info: bytes | None = None
        with trio.fail_after(60):
            while info is None:
                ev = await conn.receive()
                if isinstance(ev, UtMetadataData):
                    info = assembler.add(ev)
        assert info == seed.info_bytes
        assert hashlib.sha1(info).digest() == seed.info_hash.v1
