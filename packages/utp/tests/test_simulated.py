"""Two uTP sockets over a simulated link (loss, reordering, duplication, delay, a bottleneck),
with trio's MockClock so minutes of simulated traffic run in moments."""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator
from typing import Any

import trio
import trio.testing
from utp_simlink import SimLink  # type: ignore[import-not-found]  # tests/ is on sys.path

from torrio.core import SocketAddress
from torrio.testing import random_bytes
from torrio.utp import UtpConfig, UtpSocket, UtpStream, open_utp_socket

A: SocketAddress = ("10.0.0.1", 1001)
B: SocketAddress = ("10.0.0.2", 1002)


class _FixedRng(random.Random):
    """Hands out the same "random" value every time: ids and sequence numbers at the wrap."""

    def __init__(self, value: int) -> None:
        super().__init__(0)
        self.value = value

    def randrange(self, *args: Any, **kwargs: Any) -> int:
        return self.value


@contextlib.asynccontextmanager
async def _socket(link: SimLink, addr: SocketAddress, **kwargs: Any) -> AsyncIterator[UtpSocket]:
    async with open_utp_socket(endpoint=link.endpoint(addr), **kwargs) as sock:
        link.attach(addr, sock.datagram_received)
        yield sock


async def _read_all(stream: UtpStream) -> bytes:
    buf = bytearray()
    while chunk := await stream.receive_some(65536):
        buf += chunk
    return bytes(buf)


async def _exchange(link: SimLink, size: int, **kwargs: Any) -> tuple[UtpStream, UtpStream]:
    """Both sides send ``size`` bytes at once, half-close, and read the other's bytes."""
    to_b = random_bytes(size, seed=1)
    to_a = random_bytes(size, seed=2)
    result: dict[str, Any] = {}
    server_done = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(link.run)
        async with (
            _socket(link, A, rng=kwargs.get("rng_a")) as a,
            _socket(link, B, rng=kwargs.get("rng_b")) as b,
        ):

            async def server(stream: UtpStream) -> None:
                async with trio.open_nursery() as n:

                    async def send() -> None:
                        await stream.send_all(to_a)
                        await stream.send_eof()

                    n.start_soon(send)
                    result["at_b"] = await _read_all(stream)
                    await stream.wait_all_sent()
                result["b"] = stream
                server_done.set()

            async with trio.open_nursery() as n2:
                await n2.start(b.serve, server)
                with trio.fail_after(600):
                    stream = await a.connect(B)

                    async def send_a() -> None:
                        await stream.send_all(to_b)
                        await stream.send_eof()

                    n2.start_soon(send_a)
                    result["at_a"] = await _read_all(stream)
                    await stream.wait_all_sent()
                    await server_done.wait()
                n2.cancel_scope.cancel()
        nursery.cancel_scope.cancel()
    assert result["at_b"] == to_b
    assert result["at_a"] == to_a
    return stream, result["b"]


async def test_exact_delivery_over_lossy_reordering_duplicating_link(
    autojump_clock: trio.testing.MockClock,
) -> None:
    link = SimLink(delay=0.2, jitter=0.05, loss=0.05, duplicate=0.05, seed=7)
    sa, sb = await _exchange(link, 300_000)
    assert link.stats.lost > 20
    assert link.stats.duplicated > 20
    stats = [sa.statistics(), sb.statistics()]
    assert sum(s.retransmits for s in stats) > 0
    assert sum(s.duplicates_received for s in stats) > 0
    # the 200 ms one-way delay shows in the RTT estimate
    assert all(s.rtt is not None and s.rtt >= 0.4 for s in stats)


async def test_sequence_numbers_and_ids_wrap_at_65535(
    autojump_clock: trio.testing.MockClock,
) -> None:
    link = SimLink(delay=0.01, jitter=0.005, loss=0.02, seed=3)
    # connection id 65535 (send id wraps to 0), sequence numbers start at 65535 on both sides
    sa, sb = await _exchange(link, 200_000, rng_a=_FixedRng(65535), rng_b=_FixedRng(65530))
    assert sa.connection.recv_id == 65535 and sa.connection.send_id == 0
    assert sa.connection.seq_nr < 1000 and sb.connection.seq_nr < 1000


async def _bulk_sender(stream: UtpStream) -> None:
    chunk = bytes(65536)
    while True:
        await stream.send_all(chunk)


async def test_two_flows_share_the_bottleneck_fairly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rate = 200_000.0
    link = SimLink(delay=0.03, rate=rate, queue_limit=0.5, seed=5)
    received: dict[SocketAddress, int] = {}
    cfg = UtpConfig(payload_size=1000)
    measuring = False

    async def sink(stream: UtpStream) -> None:
        while chunk := await stream.receive_some(65536):
            if measuring:
                received[stream.remote_address] = received.get(stream.remote_address, 0) + len(
                    chunk
                )

    c1: SocketAddress = ("10.0.0.11", 1)
    c2: SocketAddress = ("10.0.0.12", 2)
    async with trio.open_nursery() as nursery:
        await nursery.start(link.run)
        async with (
            _socket(link, B, config=cfg) as server,
            _socket(link, c1, config=cfg) as one,
            _socket(link, c2, config=cfg) as two,
            trio.open_nursery() as n,
        ):
            await n.start(server.serve, sink)
            n.start_soon(_bulk_sender, await one.connect(B))
            await trio.sleep(5)  # the second flow joins a link the first already fills
            n.start_soon(_bulk_sender, await two.connect(B))
            await trio.sleep(15)
            measuring = True
            await trio.sleep(30)
            measuring = False
            n.cancel_scope.cancel()
        nursery.cancel_scope.cancel()
    r1, r2 = received.get(c1, 0), received.get(c2, 0)
    total = r1 + r2
    assert total > 0.6 * rate * 30, (r1, r2)
    assert 0.3 < r1 / total < 0.7, (r1, r2)


async def test_ledbat_yields_to_a_delay_insensitive_flow(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rate = 200_000.0
    link = SimLink(delay=0.02, rate=rate, queue_limit=1.0, seed=9)
    cfg = UtpConfig(payload_size=1000)
    counted = 0
    counting = False
    delays: list[float] = []

    async def sink(stream: UtpStream) -> None:
        nonlocal counted
        while chunk := await stream.receive_some(65536):
            if counting:
                counted += len(chunk)

    async def blaster() -> None:
        # 120% of the bottleneck towards B, deaf to delay and loss: the queue stays full
        # (B's socket counts its datagrams as invalid and drops them)
        src = link.endpoint(("10.0.0.99", 9))
        while True:
            await src.sendto(bytes(1000), B)
            await trio.sleep(1000 / (rate * 1.2))

    async with trio.open_nursery() as nursery:
        await nursery.start(link.run)
        async with (
            _socket(link, B, config=cfg) as server,
            _socket(link, A, config=cfg) as client,
            trio.open_nursery() as n,
        ):
            await n.start(server.serve, sink)
            stream = await client.connect(B)
            n.start_soon(_bulk_sender, stream)
            await trio.sleep(15)
            counting = True
            for _ in range(30):
                await trio.sleep(0.5)
                delays.append(link.queue_delay(B))
            alone = counted
            counted = 0
            n.start_soon(blaster)
            await trio.sleep(5)
            counted = 0
            await trio.sleep(15)
            shared = counted
            cwnd_under_pressure = stream.statistics().cwnd
            n.cancel_scope.cancel()
        nursery.cancel_scope.cancel()
    # alone, LEDBAT fills the link while keeping the queue near its 100 ms target
    assert alone > 0.7 * rate * 15
    assert max(delays) < 0.3, delays
    # against a flow that keeps the queue full, it backs off to almost nothing
    assert shared < 0.1 * alone, (shared, alone)
    assert cwnd_under_pressure <= 4 * 1020
