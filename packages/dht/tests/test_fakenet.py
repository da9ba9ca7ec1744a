"""torrio.testing.fakenet: the fake UDP network the DHT simulation runs on."""

from __future__ import annotations

import pytest
import trio

from torrio.core import DatagramEndpoint
from torrio.testing.fakenet import open_fake_network


class Sink:
    def __init__(self) -> None:
        self.got: list[tuple[bytes, tuple[str, int]]] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.got.append((data, addr))


async def test_delivery_to_handler_and_queue(autojump_clock: trio.testing.MockClock) -> None:
    async with open_fake_network(delay=0.5) as net:
        sink = Sink()
        a = net.endpoint()
        b = net.endpoint(("10.200.0.1", 7000), handler=sink)
        c = net.endpoint()
        assert isinstance(a, DatagramEndpoint) and a.addr != c.addr
        start = trio.current_time()
        await a.sendto(b"one", b.addr)
        await a.sendto(b"two", c.addr)
        data, src = await c.receive()
        assert (data, src) == (b"two", a.addr) and trio.current_time() - start == pytest.approx(0.5)
        assert sink.got == [(b"one", a.addr)]
        await a.sendto(b"x", ("10.99.99.99", 1))
        await trio.sleep(1)
        assert net.statistics().undeliverable == 1
        with pytest.raises(OSError):
            net.endpoint(b.addr)
        b.close()
        with pytest.raises(trio.ClosedResourceError):
            await b.sendto(b"late", a.addr)


async def test_loss_and_duplication_rates(autojump_clock: trio.testing.MockClock) -> None:
    async with open_fake_network(loss=0.2, duplicate=0.1, seed=7) as net:
        sink = Sink()
        a, b = net.endpoint(), net.endpoint(handler=sink)
        for i in range(2000):
            await a.sendto(b"%d" % i, b.addr)
        s = net.statistics()
        assert s.sent == 2000
        assert 0.15 < s.lost / (s.sent + s.duplicated) < 0.25
        assert 0.07 < s.duplicated / s.sent < 0.13
        assert len(sink.got) == s.delivered


async def test_random_delay_reorders(autojump_clock: trio.testing.MockClock) -> None:
    async with open_fake_network(delay=(0.0, 1.0), seed=3) as net:
        a, b = net.endpoint(), net.endpoint()
        for i in range(20):
            await a.sendto(bytes([i]), b.addr)
        got = [(await b.receive())[0][0] for _ in range(20)]
        assert sorted(got) == list(range(20)) and got != list(range(20))


async def test_full_receive_queue_drops_and_counts(autojump_clock: trio.testing.MockClock) -> None:
    async with open_fake_network(queue_size=4) as net:
        a, b = net.endpoint(), net.endpoint()
        for _ in range(10):
            await a.sendto(b"x", b.addr)
        assert net.statistics().queue_dropped == 6
