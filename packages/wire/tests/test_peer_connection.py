"""The trio PeerConnection over in-memory streams and loopback TCP."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from torrio.wire import (
    ExtendedHandshake,
    Have,
    Interested,
    KeepAlive,
    PeerConnectionClosed,
    Piece,
    RateMeter,
    Request,
    UtPex,
    WireError,
    encode,
    open_peer_connection,
)


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_exchange_over_memory_streams_and_clean_close() -> None:
    s1, s2 = trio.testing.memory_stream_pair()
    async with (
        open_peer_connection(s1, num_pieces=10) as a,
        open_peer_connection(s2, num_pieces=10) as b,
    ):
        await a.send(a.registry.handshake(v="a"))
        await a.send(Interested())
        await a.send(Piece(1, 0, b"z" * 16384))
        assert isinstance(await b.receive(), ExtendedHandshake)
        assert await b.receive() == Interested()
        assert await b.receive() == Piece(1, 0, b"z" * 16384)
        await b.send(b.registry.handshake())
        assert isinstance(await a.receive(), ExtendedHandshake)
        assert a.registry.supports("ut_pex")
        await a.send(UtPex())
        await a.send(Have(2))
        await a.aclose()  # flushes what is queued, then closes
        seen = [ev async for ev in b]
        assert seen == [UtPex(), Have(2)]
        st = b.statistics()
        assert st.payload_received == 16384 and st.messages_received == 5
        assert a.statistics().payload_sent == 16384
        with pytest.raises(PeerConnectionClosed):
            await a.send(Have(1))


async def test_extension_without_peer_support_raises_in_caller() -> None:
    s1, _s2 = trio.testing.memory_stream_pair()
    async with open_peer_connection(s1) as a:
        with pytest.raises(WireError, match="does not support"):
            await a.send(UtPex())


async def test_keepalive_after_two_minutes_of_silence(
    autojump_clock: trio.testing.MockClock,
) -> None:
    s1, s2 = trio.testing.memory_stream_pair()
    async with open_peer_connection(s1) as a, open_peer_connection(s2) as b:
        start = trio.current_time()
        await a.send(Have(1))
        assert await b.receive() == Have(1)
        assert await b.receive() == KeepAlive()
        assert trio.current_time() - start == pytest.approx(120, abs=1)
        assert a.statistics().messages_sent == 2


async def test_idle_timeout(autojump_clock: trio.testing.MockClock) -> None:
    s1, _s2 = trio.testing.memory_stream_pair()
    async with open_peer_connection(s1, idle_timeout=30, keepalive_interval=1000) as a:
        start = trio.current_time()
        with pytest.raises(PeerConnectionClosed, match="idle timeout"):
            await a.receive()
        assert trio.current_time() - start == pytest.approx(30)


async def test_backpressure_bounded_queue() -> None:
    s1, s2 = trio.testing.lockstep_stream_pair()  # send_all blocks until the peer reads
    async with open_peer_connection(s1, send_queue_size=4) as a:
        queued = 0
        blocked = False
        for _ in range(100):
            try:
                a.send_nowait(Have(queued))
            except trio.WouldBlock:
                blocked = True
                break
            queued += 1
            await trio.lowlevel.checkpoint()
        assert blocked
        assert 4 <= queued <= 10  # the queue, plus the batch the writer is stuck sending
        assert a.statistics().send_queue_length == 4
        with trio.move_on_after(0.05) as cs:
            await a.send(Have(999))
        assert cs.cancelled_caught  # still full: send waits
        got = 0
        with trio.fail_after(5):
            while got < 9 * queued:
                got += len(await s2.receive_some(1000))
        a.close_timeout = 0.1


async def test_peer_closed_ends_iteration_and_receive_raises() -> None:
    s1, s2 = trio.testing.memory_stream_pair()
    async with open_peer_connection(s1) as a:
        await s2.send_all(encode(Have(3)))
        await s2.aclose()
        assert [ev async for ev in a] == [Have(3)]
        with pytest.raises(PeerConnectionClosed, match="peer closed"):
            await a.receive()


async def test_protocol_violation_raises_wire_error() -> None:
    s1, s2 = trio.testing.memory_stream_pair()
    async with open_peer_connection(s1, num_pieces=4) as a:
        await s2.send_all(encode(Have(10)))
        with pytest.raises(WireError, match="out of range"):
            await a.receive()


async def test_loopback_tcp_many_blocks_and_batches() -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    n = 300
    got: list[Piece] = []

    async def serve(stream: trio.SocketStream) -> None:
        async with open_peer_connection(stream) as conn:
            while len(got) < n:
                for ev in await conn.receive_batch():
                    assert isinstance(ev, Piece)
                    got.append(ev)
            await conn.send(Request(0, 0, 1))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, serve, listeners)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with open_peer_connection(stream) as conn:
            for i in range(n):
                await conn.send(Piece(i, 0, bytes([i % 256]) * 16384))
            with trio.fail_after(10):
                assert await conn.receive() == Request(0, 0, 1)
            assert conn.statistics().payload_sent == n * 16384
        nursery.cancel_scope.cancel()
    assert [p.index for p in got] == list(range(n))
    assert all(p.block == bytes([p.index % 256]) * 16384 for p in got)


def test_rate_meter_window() -> None:
    m = RateMeter(window=5.0, resolution=0.5)
    for t in range(10):
        m.add(1000, float(t))
    assert m.rate(9.0) == pytest.approx(1000, rel=0.25)
    assert m.rate(100.0) == 0.0
    assert m.total == 10_000
    with pytest.raises(ValueError):
        RateMeter(window=1, resolution=2)


def test_rate_meter_is_not_understated_while_the_window_fills() -> None:
    m = RateMeter(window=5.0, resolution=0.5)
    assert m.rate(0.0) == 0.0
    m.add(1000, 10.0)
    m.add(1000, 11.0)
    # two seconds of data at ~1000 B/s: not 2000 / 5
    assert m.rate(12.0) == pytest.approx(1000)
    fresh = RateMeter(window=5.0, resolution=0.5)
    fresh.add(1000, 10.0)
    assert fresh.rate(10.0) == pytest.approx(2000)  # divided by one resolution step at least


async def test_receive_batch_hands_out_good_messages_before_the_error() -> None:
    s1, s2 = trio.testing.memory_stream_pair()
    async with open_peer_connection(s1, num_pieces=4) as a:
        await s2.send_all(encode(Have(1)) + encode(Have(2)) + encode(Have(10)))
        assert await a.receive_batch() == [Have(1), Have(2)]
        with pytest.raises(WireError, match="out of range"):
            await a.receive_batch()
        with pytest.raises(WireError, match="out of range"):
            await a.receive()


async def test_regression_cancelled_receive_loses_no_message() -> None:
    s1, s2 = trio.testing.memory_stream_pair()
    async with open_peer_connection(s1) as a:
        await s2.send_all(encode(Have(1)) + encode(Have(2)))
        assert await a.receive() == Have(1)  # Have(2) is now buffered in the decoder
        with trio.CancelScope() as cs:
            cs.cancel()
            await a.receive()  # cancelled before consuming anything
        assert cs.cancelled_caught
        assert await a.receive() == Have(2)


def test_hash_request_rejected_mirrors_its_fields() -> None:
    from torrio.wire import HashReject, HashRequest

    req = HashRequest(b"\x07" * 32, 2, 512, 512, 9)
    assert req.rejected() == HashReject(b"\x07" * 32, 2, 512, 512, 9)
