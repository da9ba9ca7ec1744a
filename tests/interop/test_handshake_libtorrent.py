"""The reverse direction: a libtorrent session dials our listener (``handle.connect_peer``),
completes its handshake with our Handshaker (MSE offered by libtorrent; forced RC4 too), and then
downloads the whole torrent from our PeerConnection acting as a tiny seed. libtorrent hash-checks
every piece, so finishing proves our framing and encryption byte-exact."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import trio

from torrio.bencode import raw_value
from torrio.core import Bitfield, InfoHash, PeerId
from torrio.handshake import EncryptionPolicy, HandshakeError, Handshaker, HandshakeResult, Reserved
from torrio.testing import libtorrent as ltx
from torrio.testing import make_random_file
from torrio.wire import (
    BitfieldMessage,
    ExtendedHandshake,
    HaveAll,
    Interested,
    Piece,
    Request,
    Unchoke,
    open_peer_connection,
)

pytestmark = pytest.mark.skipif(not ltx.available(), reason="libtorrent wheel not installed")

PIECE_LEN = 32768
SIZE = 4 * PIECE_LEN + 777


@pytest.mark.parametrize(
    ("forced", "policy"),
    [
        (False, EncryptionPolicy.PREFER),
        (False, EncryptionPolicy.DISABLE),
        (True, EncryptionPolicy.REQUIRE),
    ],
)
async def test_libtorrent_dials_us_and_downloads_from_us(
    tmp_path: Path, forced: bool, policy: EncryptionPolicy
) -> None:
    path = make_random_file(tmp_path / "src" / "payload.bin", SIZE, seed=11)
    payload = path.read_bytes()
    data = ltx.create_torrent(path, piece_size=PIECE_LEN, version="v1")
    info = raw_value(data, b"info")
    assert info is not None
    ih = InfoHash(v1=hashlib.sha1(info).digest())
    num_pieces = -(-SIZE // PIECE_LEN)

    hs = Handshaker(PeerId.generate(), policy=policy, timeout=30)
    hs.add_torrent(InfoHash(v1=b"\x01" * 20))  # another torrent: the lookup must pick ours
    hs.add_torrent(ih)
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    results: list[HandshakeResult] = []
    seen: list[Any] = []
    refused: list[str] = []

    async def seed(stream: trio.SocketStream) -> None:
        try:
            result = await hs.accept(stream)
        except HandshakeError as exc:
            refused.append(exc.reason)  # e.g. libtorrent's MSE attempt while we DISABLE
            return
        results.append(result)
        async with open_peer_connection(result.stream, num_pieces=num_pieces) as conn:
            await conn.send(conn.registry.handshake(v="torrio-test"))
            if result.reserved.supports(Reserved.FAST):
                await conn.send(HaveAll())
            else:
                await conn.send(BitfieldMessage.from_bitfield(Bitfield.full(num_pieces)))
            async for ev in conn:
                seen.append(type(ev).__name__)
                if isinstance(ev, Interested):
                    await conn.send(Unchoke())
                elif isinstance(ev, Request):
                    start = ev.index * PIECE_LEN + ev.begin
                    await conn.send(Piece(ev.index, ev.begin, payload[start : start + ev.length]))

    lt = ltx._require()
    settings: dict[str, Any] = {}
    if forced:
        settings = {"out_enc_policy": lt.enc_policy.forced, "in_enc_policy": lt.enc_policy.forced}
    dl = tmp_path / "dl"
    dl.mkdir()
    async with ltx.open_session(settings) as ses, trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, seed, listeners)
        handle = ses.add_torrent(data, dl, peers=[("127.0.0.1", port)])
        await ses.wait_finished(handle, timeout=60)
        nursery.cancel_scope.cancel()
    assert (dl / "payload.bin").read_bytes() == payload
    result = results[0]
    assert result.info_hash == ih
    assert result.handshake.peer_id.value.startswith(b"-LT")
    assert result.reserved.supports(Reserved.EXTENSION_PROTOCOL)
    if policy is EncryptionPolicy.DISABLE:
        assert not result.used_mse  # libtorrent (enabled, not forced) retries in plaintext
        assert refused and set(refused) == {"policy"}
    elif policy is EncryptionPolicy.PREFER:
        # offered RC4 and plaintext, we select plaintext after the MSE handshake (prefer_rc4 off)
        assert result.used_mse and not result.encrypted
    else:
        assert result.used_mse and result.encrypted
    assert ExtendedHandshake.__name__ in seen and Request.__name__ in seen
