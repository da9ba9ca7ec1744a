"""The trio shell over real loopback UDP: streams, many connections, hostile datagrams."""

from __future__ import annotations

import random
import socket
from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing

from torrio.testing import random_bytes
from torrio.utp import (
    PacketType,
    UtpConfig,
    UtpError,
    UtpSocket,
    UtpStream,
    encode_packet,
    open_utp_socket,
)


@pytest.fixture
async def sockets() -> AsyncIterator[tuple[UtpSocket, UtpSocket]]:
    async with open_utp_socket() as a, open_utp_socket() as b:
        yield a, b


async def _pair(a: UtpSocket, b: UtpSocket) -> tuple[UtpStream, UtpStream]:
    addr = b.local_address
    assert addr is not None
    client = await a.connect(addr)
    async for server in b.accept():
        return client, server
    raise AssertionError("no incoming stream")


async def _read_all(stream: UtpStream) -> bytes:
    buf = bytearray()
    while chunk := await stream.receive_some():
        buf += chunk
    return bytes(buf)


async def test_trio_half_closeable_stream_conformance(
    sockets: tuple[UtpSocket, UtpSocket],
) -> None:
    a, b = sockets

    async def maker() -> tuple[UtpStream, UtpStream]:
        return await _pair(a, b)

    await trio.testing.check_half_closeable_stream(maker, None)


async def test_bulk_both_directions_with_half_close(sockets: tuple[UtpSocket, UtpSocket]) -> None:
    a, b = sockets
    client, server = await _pair(a, b)
    up = random_bytes(3_000_000, seed=11)
    down = random_bytes(1_000_000, seed=12)
    got: dict[str, bytes] = {}

    async def side(stream: UtpStream, data: bytes, key: str) -> None:
        async with trio.open_nursery() as n:

            async def send() -> None:
                await stream.send_all(data)
                await stream.send_eof()

            n.start_soon(send)
            got[key] = await _read_all(stream)

    with trio.fail_after(60):
        async with trio.open_nursery() as n:
            n.start_soon(side, client, up, "client")
            n.start_soon(side, server, down, "server")
    assert got["server"] == up
    assert got["client"] == down
    assert client.remote_address == b.local_address


async def test_many_concurrent_streams(sockets: tuple[UtpSocket, UtpSocket]) -> None:
    a, b = sockets
    addr = b.local_address
    assert addr is not None

    async def echo(stream: UtpStream) -> None:
        data = await _read_all(stream)
        await stream.send_all(data[::-1])
        await stream.send_eof()

    async def client(i: int) -> None:
        stream = await a.connect(addr)
        data = random_bytes(50_000 + i, seed=i)
        await stream.send_all(data)
        await stream.send_eof()
        assert await _read_all(stream) == data[::-1]
        await stream.aclose()

    with trio.fail_after(60):
        async with trio.open_nursery() as n:
            await n.start(b.serve, echo)
            async with trio.open_nursery() as clients:
                for i in range(20):
                    clients.start_soon(client, i)
            n.cancel_scope.cancel()
    assert a.statistics().datagrams_received > 0


async def test_reset_by_peer_breaks_the_stream(sockets: tuple[UtpSocket, UtpSocket]) -> None:
    a, b = sockets
    client, server = await _pair(a, b)
    server.connection.abort()
    b._touch(server._entry)
    with trio.fail_after(5), pytest.raises(trio.BrokenResourceError):
        await client.receive_some()


async def test_connect_to_nobody_times_out(autojump_clock: trio.testing.MockClock) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # a bound socket that never answers
        async with open_utp_socket() as a:
            with pytest.raises(UtpError):
                await a.connect(silent.getsockname())


async def _drained(sock: UtpSocket, sent: int) -> None:
    """Wait until ``sock`` has read ``sent`` datagrams.

    Sent in batches of 100 with a wait after each, a flood never overflows the kernel's receive
    buffer: with a stock ``net.core.rmem_max`` (212992) a socket holds only ~500 small
    datagrams, so an unpaced burst of 600 lost some and the counts asserted here came up short.
    Loopback does not drop otherwise, so every datagram arrives.
    """
    with trio.fail_after(30):
        while sock.statistics().datagrams_received < sent:  # noqa: ASYNC110
            await trio.sleep(0.005)


async def test_syn_flood_is_bounded() -> None:
    async with open_utp_socket(max_connections=50, backlog=8) as victim:
        addr = victim.local_address
        assert addr is not None
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
            attacker.bind(("127.0.0.1", 0))
            for conn_id in range(2000):
                syn = encode_packet(PacketType.SYN, conn_id, 0, 0, 65536, 1, 0)
                attacker.sendto(syn, addr)
                if conn_id % 100 == 99:
                    await _drained(victim, conn_id + 1)
        stats = victim.statistics()
        assert stats.connections <= 50
        assert stats.incoming_pending <= 8
        assert stats.syns_refused > 1000


async def test_garbage_datagrams_are_dropped(sockets: tuple[UtpSocket, UtpSocket]) -> None:
    a, b = sockets
    addr = b.local_address
    assert addr is not None
    rng = random.Random(4)
    before = b.statistics().datagrams_received
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
        attacker.bind(("127.0.0.1", 0))
        for i in range(500):
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 80)))
            attacker.sendto(junk, addr)
            if i % 100 == 99:
                await _drained(b, before + i + 1)
        # valid-looking packets for connections that do not exist
        for i in range(100):
            attacker.sendto(encode_packet(PacketType.DATA, i, 0, 0, 0, i, 0, b"x"), addr)
        await _drained(b, before + 600)
    # the socket still works
    client, server = await _pair(a, b)
    await client.send_all(b"still alive")
    await client.send_eof()
    assert await _read_all(server) == b"still alive"
    assert b.statistics().invalid_datagrams > 0
    assert b.statistics().unknown_connection >= 90


async def test_default_socket_buffers_cap_the_receive_window() -> None:
    async with open_utp_socket(recv_buffer=None, send_buffer=None) as s:
        stats = s.statistics()
        assert stats.recv_buffer is not None
        assert s.config.recv_buffer_size < UtpConfig().recv_buffer_size
        assert s.config.recv_buffer_size < stats.recv_buffer


async def test_regression_reader_wakes_on_a_bare_fin(sockets: tuple[UtpSocket, UtpSocket]) -> None:
    # a FIN with no data before it used to leave a blocked receive_some asleep forever
    a, b = sockets
    client, server = await _pair(a, b)
    async with trio.open_nursery() as n:
        got: list[bytes] = []

        async def reader() -> None:
            got.append(await server.receive_some())

        n.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()
        await client.send_eof()
    assert got == [b""]


async def test_connect_by_hostname(sockets: tuple[UtpSocket, UtpSocket]) -> None:
    a, b = sockets
    addr = b.local_address
    assert addr is not None
    stream = await a.connect(("localhost", addr[1]))
    assert stream.remote_address[0] in ("127.0.0.1", "::1")


async def test_socket_is_a_datagram_handler() -> None:
    from torrio.core import DatagramHandler

    async with open_utp_socket() as s:
        assert isinstance(s, DatagramHandler)


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6")
async def test_ipv6_loopback() -> None:
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("::1 not configured")
    async with open_utp_socket(("::1", 0)) as a, open_utp_socket(("::1", 0)) as b:
        client, server = await _pair(a, b)
        await client.send_all(b"over v6")
        await client.send_eof()
        assert await _read_all(server) == b"over v6"
        assert server.remote_address[0] == "::1"


class _ScriptedIds:
    """A stand-in for a socket's ``random.Random`` that returns chosen values in order."""

    def __init__(self, values: list[int]) -> None:
        self._values = iter(values)

    def randrange(self, stop: int) -> int:
        return next(self._values) % stop


async def test_regression_syn_with_the_recv_id_of_an_accepted_connection(
    sockets: tuple[UtpSocket, UtpSocket],
) -> None:
    # A SYN with id X used to be handed to the accepted connection whose recv id is X (opened by
    # an earlier SYN with id X - 1) instead of opening a new one: the dialer never got its STATE
    # and timed out ("retransmissions exhausted"). With 48 random ids the memory-budget test hit
    # it about once in fifty runs.
    a, b = sockets
    a._rng = _ScriptedIds([1000, 7, 1001, 9])  # type: ignore[assignment]  # conn id, seq nr
    with trio.fail_after(10):
        first, first_srv = await _pair(a, b)
        second, second_srv = await _pair(a, b)
    assert first.connection.recv_id == 1000 and second.connection.recv_id == 1001
    await first.send_all(b"one")
    await second.send_all(b"two")
    await first.send_eof()
    await second.send_eof()
    assert await _read_all(first_srv) == b"one"
    assert await _read_all(second_srv) == b"two"
