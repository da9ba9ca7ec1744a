"""The trio Handshaker: policies end to end, many torrents, filters, timeouts, fallback, TCP."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from torrio.core import InfoHash, PeerAddr, PeerId
from torrio.handshake import (
    EncryptionPolicy,
    HandshakeError,
    Handshaker,
    HandshakeResult,
    PeerStream,
    Reserved,
)

IH = InfoHash(v1=b"\x01" * 20)
V2 = InfoHash(v2=b"\x07" * 32)
OTHER = InfoHash(v1=b"\x02" * 20)


async def pair(
    a: Handshaker, b: Handshaker, info_hash: InfoHash = IH, **kw: Any
) -> tuple[HandshakeResult | HandshakeError, HandshakeResult | HandshakeError]:
    s1, s2 = trio.testing.memory_stream_pair()
    res: dict[str, Any] = {}

    async def accept() -> None:
        try:
            res["b"] = await b.accept(s2, peer=PeerAddr("127.0.0.1", 1))
        except HandshakeError as exc:
            res["b"] = exc

    async def initiate() -> None:
        try:
            res["a"] = await a.initiate(s1, info_hash, **kw)
        except HandshakeError as exc:
            res["a"] = exc

    async with trio.open_nursery() as nursery:
        nursery.start_soon(accept)
        nursery.start_soon(initiate)
    return res["a"], res["b"]


def make(policy: EncryptionPolicy, **kw: Any) -> Handshaker:
    hs = Handshaker(PeerId.generate(), policy=policy, **kw)
    hs.add_torrent(OTHER)
    hs.add_torrent(IH)
    hs.add_torrent(V2)
    return hs


EXPECT = {
    # (ours, theirs): encrypted, or None for refused
    ("disable", "disable"): False,
    ("disable", "prefer"): False,
    ("disable", "require"): None,
    ("prefer", "disable"): None,  # without a reconnect callback there is no fallback
    ("prefer", "prefer"): False,  # obfuscated MSE handshake, plaintext payload (prefer_rc4 off)
    ("prefer", "require"): True,
    ("require", "disable"): None,
    ("require", "prefer"): True,
    ("require", "require"): True,
}


@pytest.mark.parametrize("ours", list(EncryptionPolicy))
@pytest.mark.parametrize("theirs", list(EncryptionPolicy))
async def test_policy_pairs(ours: EncryptionPolicy, theirs: EncryptionPolicy) -> None:
    a, b = make(ours), make(theirs)
    ra, rb = await pair(a, b)
    want = EXPECT[(ours.value, theirs.value)]
    if want is None:
        assert isinstance(ra, HandshakeError) and isinstance(rb, HandshakeError)
        assert a.statistics().failed == 1
        return
    assert isinstance(ra, HandshakeResult) and isinstance(rb, HandshakeResult)
    assert ra.encrypted is want and rb.encrypted is want
    assert ra.peer_id == b.peer_id and rb.peer_id == a.peer_id
    assert rb.info_hash == IH and ra.info_hash == IH
    assert rb.reserved == a.reserved
    await ra.stream.send_all(b"ping")
    assert await rb.stream.receive_some() == b"ping"
    await rb.stream.send_all(b"pong")
    assert await ra.stream.receive_some() == b"pong"
    assert a.statistics().completed_outgoing == 1 and b.statistics().completed_incoming == 1


async def test_prefer_pair_uses_mse_and_rc4_only_with_prefer_rc4() -> None:
    for prefer_rc4 in (False, True):
        a = make(EncryptionPolicy.PREFER)
        b = make(EncryptionPolicy.PREFER, prefer_rc4=prefer_rc4)
        ra, rb = await pair(a, b)
        assert isinstance(ra, HandshakeResult) and isinstance(rb, HandshakeResult)
        assert ra.used_mse and rb.used_mse
        assert ra.encrypted is prefer_rc4 and rb.encrypted is prefer_rc4
        await ra.stream.send_all(b"ping")
        assert await rb.stream.receive_some() == b"ping"


@pytest.mark.parametrize("policy", [EncryptionPolicy.DISABLE, EncryptionPolicy.REQUIRE])
async def test_truncated_v2_wire_id_is_found(policy: EncryptionPolicy) -> None:
    ra, rb = await pair(make(policy), make(policy), V2)
    assert isinstance(ra, HandshakeResult) and isinstance(rb, HandshakeResult)
    assert rb.info_hash == V2 and rb.handshake.info_hash == V2.v2_truncated


@pytest.mark.parametrize("policy", [EncryptionPolicy.DISABLE, EncryptionPolicy.REQUIRE])
async def test_unknown_torrent_refused(policy: EncryptionPolicy) -> None:
    _ra, rb = await pair(make(policy), make(policy), InfoHash(v1=b"\x09" * 20))
    assert isinstance(rb, HandshakeError) and rb.reason == "unknown-info-hash"
    assert rb.peer == PeerAddr("127.0.0.1", 1)


async def test_remove_torrent() -> None:
    b = make(EncryptionPolicy.DISABLE)
    b.remove_torrent(IH)
    assert b.lookup(IH.wire) is None and b.lookup(OTHER.wire) == OTHER
    _ra, rb = await pair(make(EncryptionPolicy.DISABLE), b)
    assert isinstance(rb, HandshakeError)


async def test_filters() -> None:
    a = make(EncryptionPolicy.PREFER)
    _, rb = await pair(a, make(EncryptionPolicy.PREFER, allow_addr=lambda addr: addr.port != 1))
    assert isinstance(rb, HandshakeError) and rb.reason == "filtered"
    _, rb = await pair(a, make(EncryptionPolicy.PREFER, allow_info_hash=lambda ih: ih != IH))
    assert isinstance(rb, HandshakeError) and rb.reason == "filtered"
    _, rb = await pair(
        a,
        make(
            EncryptionPolicy.PREFER, allow_peer=lambda hs: hs.reserved.supports(Reserved.V2_UPGRADE)
        ),
    )
    assert isinstance(rb, HandshakeError) and rb.reason == "filtered"
    ra, _ = await pair(
        make(EncryptionPolicy.PREFER, allow_peer=lambda hs: False), make(EncryptionPolicy.PREFER)
    )
    assert isinstance(ra, HandshakeError) and ra.reason == "filtered"


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_timeout_when_peer_is_silent(autojump_clock: trio.testing.MockClock) -> None:
    b = make(EncryptionPolicy.PREFER, timeout=7)
    s1, s2 = trio.testing.memory_stream_pair()
    start = trio.current_time()
    with pytest.raises(HandshakeError) as info:
        await b.accept(s2)
    assert info.value.reason == "timeout"
    assert trio.current_time() - start == pytest.approx(7)
    with pytest.raises(trio.BrokenResourceError):
        await s1.send_all(b"x")  # the stream was closed on failure


async def test_prefer_falls_back_to_plaintext_with_reconnect() -> None:
    a = make(EncryptionPolicy.PREFER)
    b = make(EncryptionPolicy.DISABLE)
    results: list[Any] = []
    async with trio.open_nursery() as nursery:

        async def serve(stream: trio.abc.Stream) -> None:
            try:
                results.append(await b.accept(stream))
            except HandshakeError as exc:
                results.append(exc)

        s1, s2 = trio.testing.memory_stream_pair()
        nursery.start_soon(serve, s2)

        async def reconnect() -> trio.abc.Stream:
            c1, c2 = trio.testing.memory_stream_pair()
            nursery.start_soon(serve, c2)
            return c1

        ra = await a.initiate(s1, IH, reconnect=reconnect)
    assert not ra.encrypted and not ra.used_mse
    assert isinstance(results[0], HandshakeError) and isinstance(results[1], HandshakeResult)


async def test_encrypted_tcp_stream_bytes_exact() -> None:
    a, b = make(EncryptionPolicy.REQUIRE), make(EncryptionPolicy.REQUIRE)
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    payload = bytes(range(256)) * 4000
    received = bytearray()
    done = trio.Event()

    async def serve(stream: trio.SocketStream) -> None:
        result = await b.accept(stream)
        assert isinstance(result.stream, PeerStream)
        buf = bytearray(7000)
        while len(received) < len(payload):
            n = await result.stream.receive_into(memoryview(buf))
            received.extend(buf[:n])
        await result.stream.send_all(b"ok")
        done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, serve, listeners)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        ra = await a.initiate(stream, IH)
        await ra.stream.send_all(payload)
        with trio.fail_after(10):
            await done.wait()
            assert await ra.stream.receive_some() == b"ok"
        nursery.cancel_scope.cancel()
    assert received == payload


async def test_encrypted_stream_carries_the_wire_protocol_over_tcp() -> None:
    wire = pytest.importorskip("torrio.wire")  # not installed in the handshake-only tox env
    Have, Piece, open_peer_connection = wire.Have, wire.Piece, wire.open_peer_connection
    a, b = make(EncryptionPolicy.REQUIRE), make(EncryptionPolicy.REQUIRE)
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    got: list[Any] = []
    done = trio.Event()

    async def serve(stream: trio.SocketStream) -> None:
        result = await b.accept(stream)
        assert isinstance(result.stream, PeerStream) and result.stream.encrypted
        async with open_peer_connection(result.stream, num_pieces=200) as conn:
            async for ev in conn:
                got.append(ev)
                if len(got) == 101:
                    done.set()
                    return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, serve, listeners)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        ra = await a.initiate(stream, IH)
        assert ra.encrypted
        async with open_peer_connection(ra.stream) as conn:
            await conn.send(Have(5))
            for i in range(100):
                await conn.send(Piece(i, 0, bytes([i]) * 16384))
            with trio.fail_after(10):
                await done.wait()
        nursery.cancel_scope.cancel()
    assert got[0] == Have(5)
    assert all(p.block == bytes([p.index]) * 16384 for p in got[1:])


async def test_peer_stream_receive_into_and_prefix() -> None:
    s1, s2 = trio.testing.memory_stream_pair()
    ps = PeerStream(s2, prefix=b"abc")
    buf = bytearray(10)
    assert await ps.receive_into(memoryview(buf)[:2]) == 2 and buf[:2] == b"ab"
    assert await ps.receive_some() == b"c"
    await s1.send_all(b"hello")
    n = await ps.receive_into(memoryview(buf))
    assert buf[:n] == b"hello"[:n]
    await ps.aclose()


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\x13BitTorrent protocol" + bytes(10),
        b"\x13BitTorrent protocoX" + bytes(200),
        bytes(700),
    ],
)
async def test_garbage_from_a_peer_raises_only_handshake_error(blob: bytes) -> None:
    b = make(EncryptionPolicy.PREFER, timeout=5)
    s1, s2 = trio.testing.memory_stream_pair()
    await s1.send_all(blob)
    await s1.aclose()
    with pytest.raises(HandshakeError):
        await b.accept(s2)


async def test_serve_hands_successful_handshakes_to_the_handler() -> None:
    server = make(EncryptionPolicy.PREFER)
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    got: list[HandshakeResult] = []
    done = trio.Event()

    async def handler(result: HandshakeResult) -> None:
        got.append(result)
        await result.stream.send_all(b"hi")
        done.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve, listeners, handler)
        bad = await trio.open_tcp_stream("127.0.0.1", port)  # refused: unknown torrent
        with pytest.raises(HandshakeError):
            await make(EncryptionPolicy.DISABLE).initiate(bad, InfoHash(v1=b"\x0f" * 20))
        good = await trio.open_tcp_stream("127.0.0.1", port)
        result = await make(EncryptionPolicy.REQUIRE).initiate(good, IH)
        with trio.fail_after(10):
            await done.wait()
            assert await result.stream.receive_some() == b"hi"
        nursery.cancel_scope.cancel()
    assert got[0].peer is not None and str(got[0].peer.ip) == "127.0.0.1"
    assert got[0].encrypted
    assert server.statistics().failed == 1 and server.statistics().completed_incoming == 1


async def test_connect_prefer_falls_back_without_reconnect_callable() -> None:
    """PREFER through ``connect(factory)``: the refused encrypted attempt is retried in plaintext
    on a fresh connection from the same factory; the caller passes no ``reconnect``."""
    a = make(EncryptionPolicy.PREFER)
    b = make(EncryptionPolicy.DISABLE)
    results: list[Any] = []
    opened = 0
    async with trio.open_nursery() as nursery:

        async def serve(stream: trio.abc.Stream) -> None:
            try:
                results.append(await b.accept(stream))
            except HandshakeError as exc:
                results.append(exc)

        async def open_stream() -> trio.abc.Stream:
            nonlocal opened
            opened += 1
            c1, c2 = trio.testing.memory_stream_pair()
            nursery.start_soon(serve, c2)
            return c1

        ra = await a.connect(open_stream, IH)
    assert opened == 2
    assert not ra.encrypted and not ra.used_mse and ra.peer_id == b.peer_id
    assert isinstance(results[0], HandshakeError) and isinstance(results[1], HandshakeResult)


async def test_connect_prefer_stays_encrypted_when_peer_accepts() -> None:
    a, b = make(EncryptionPolicy.PREFER), make(EncryptionPolicy.PREFER, prefer_rc4=True)
    opened = 0
    async with trio.open_nursery() as nursery:

        async def open_stream() -> trio.abc.Stream:
            nonlocal opened
            opened += 1
            c1, c2 = trio.testing.memory_stream_pair()
            nursery.start_soon(b.accept, c2)
            return c1

        ra = await a.connect(open_stream, IH)
    assert opened == 1 and ra.encrypted


async def test_prefer_falls_back_when_peer_resets_during_mse() -> None:
    """Regression: a peer that reset the connection on our MSE bytes surfaced as a transport
    error (BrokenResourceError) and skipped the PREFER fallback; only a clean close fell back."""
    a = make(EncryptionPolicy.PREFER)
    b = make(EncryptionPolicy.DISABLE)
    opened = 0
    async with trio.open_nursery() as nursery:

        async def open_stream() -> trio.abc.Stream:
            nonlocal opened
            opened += 1
            c1, c2 = trio.testing.memory_stream_pair()
            if opened == 1:
                await c2.aclose()  # the first connection is already dead: sends break
            else:
                nursery.start_soon(b.accept, c2)
            return c1

        ra = await a.connect(open_stream, IH)
    assert opened == 2 and not ra.encrypted


async def test_connect_failure_is_a_handshake_error() -> None:
    a = make(EncryptionPolicy.PREFER)

    async def refuse() -> trio.abc.Stream:
        raise OSError("connection refused")

    with pytest.raises(HandshakeError) as info:
        await a.connect(refuse, IH)
    assert info.value.reason == "connect"
    assert a.statistics().failed == 1


async def test_connect_prefer_fallback_over_tcp() -> None:
    import functools

    a = make(EncryptionPolicy.PREFER)
    b = make(EncryptionPolicy.DISABLE)
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    accepted: list[Any] = []

    async def serve(stream: trio.SocketStream) -> None:
        try:
            accepted.append(await b.accept(stream))
        except HandshakeError as exc:
            accepted.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, serve, listeners)
        with trio.fail_after(10):
            ra = await a.connect(functools.partial(trio.open_tcp_stream, "127.0.0.1", port), IH)
        assert not ra.encrypted
        await ra.stream.aclose()
        nursery.cancel_scope.cancel()
    assert isinstance(accepted[-1], HandshakeResult)
