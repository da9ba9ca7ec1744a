"""An in-process fake UDP network for trio tests: many addresses, loss, delay, duplication.

    async with open_fake_network(loss=0.2, delay=(0.01, 0.05), seed=1) as net:
        a = net.endpoint()                  # a fresh address such as ("10.0.0.1", 6881)
        b = net.endpoint(("10.9.9.9", 7000), handler=my_protocol)
        await a.sendto(b"hi", b.addr)       # my_protocol.datagram_received(b"hi", a.addr)

Endpoints satisfy :class:`torrio.core.DatagramEndpoint`. A datagram goes to the endpoint's
handler (a :class:`torrio.core.DatagramHandler`) or, without one, to a bounded queue read with
``await endpoint.receive()``. Time is trio's, so ``trio.testing.MockClock(autojump_threshold=0)``
runs hours of simulated traffic in seconds. Randomness comes from one seeded ``random.Random``.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import trio

from torrio.core import DatagramHandler, SocketAddress


@attrs.frozen
class FakeNetworkStatistics:
    """Counters of a :class:`FakeNetwork`."""

    sent: int
    delivered: int
    lost: int
    duplicated: int
    undeliverable: int
    queue_dropped: int


class FakeEndpoint:
    """One address on a :class:`FakeNetwork`."""

    def __init__(
        self,
        net: FakeNetwork,
        addr: SocketAddress,
        handler: DatagramHandler | None,
        queue_size: int,
    ) -> None:
        self._net = net
        self.addr = addr
        self.handler = handler
        self._send, self._recv = trio.open_memory_channel[tuple[bytes, SocketAddress]](queue_size)
        self.closed = False

    def set_handler(self, handler: DatagramHandler | None) -> None:
        """Route incoming datagrams to ``handler`` (None: to the receive queue)."""
        self.handler = handler

    async def sendto(self, data: bytes, addr: SocketAddress) -> None:
        """Send one datagram (never blocks beyond a checkpoint)."""
        await trio.lowlevel.checkpoint()
        if self.closed:
            raise trio.ClosedResourceError("endpoint closed")
        self._net._submit(bytes(data), self.addr, (addr[0], addr[1]))

    async def receive(self) -> tuple[bytes, SocketAddress]:
        """The next datagram and its source, when no handler is set."""
        return await self._recv.receive()

    def _deliver(self, data: bytes, src: SocketAddress) -> None:
        if self.handler is not None:
            self.handler.datagram_received(data, src)
            return
        try:
            self._send.send_nowait((data, src))
        except trio.WouldBlock:
            self._net._queue_dropped += 1

    def close(self) -> None:
        """Leave the network; datagrams to this address are then undeliverable."""
        self.closed = True
        self._net._endpoints.pop(self.addr, None)


class FakeNetwork:
    """A set of endpoints and the rules datagrams between them follow.

    ``loss`` and ``duplicate`` are probabilities; ``delay`` is seconds, a constant or a
    ``(low, high)`` range drawn uniformly per datagram (so datagrams may be reordered).
    """

    def __init__(
        self,
        *,
        loss: float = 0.0,
        delay: float | tuple[float, float] = 0.0,
        duplicate: float = 0.0,
        seed: int | None = None,
        queue_size: int = 1024,
    ) -> None:
        self.loss = loss
        self.delay = delay
        self.duplicate = duplicate
        self.random = random.Random(seed)
        self.queue_size = queue_size
        self._endpoints: dict[SocketAddress, FakeEndpoint] = {}
        self._heap: list[tuple[float, int, bytes, SocketAddress, SocketAddress]] = []
        self._seq = itertools.count()
        self._wake: trio.Event = trio.Event()
        self._next_host = 1
        self._sent = self._delivered = self._lost = self._duplicated = self._undeliverable = 0
        self._queue_dropped = 0

    def endpoint(
        self, addr: SocketAddress | None = None, *, handler: DatagramHandler | None = None
    ) -> FakeEndpoint:
        """A new endpoint at ``addr`` (default: the next free ``10.x.y.1:6881``, each in its own /24)."""
        if addr is None:
            while True:
                n = self._next_host
                self._next_host += 1
                # one host per /24, so per-subnet limits (as in DHT routing tables) do not bite
                addr = (f"10.{(n >> 8) & 255}.{n & 255}.{1 + ((n >> 16) & 127)}", 6881)
                if addr not in self._endpoints:
                    break
        if addr in self._endpoints:
            raise OSError(f"address in use: {addr}")
        ep = FakeEndpoint(self, addr, handler, self.queue_size)
        self._endpoints[addr] = ep
        return ep

    def _draw_delay(self) -> float:
        if isinstance(self.delay, tuple):
            return self.random.uniform(*self.delay)
        return self.delay

    def _submit(self, data: bytes, src: SocketAddress, dst: SocketAddress) -> None:
        self._sent += 1
        copies = 2 if self.duplicate and self.random.random() < self.duplicate else 1
        if copies == 2:
            self._duplicated += 1
        for _ in range(copies):
            if self.loss and self.random.random() < self.loss:
                self._lost += 1
                continue
            d = self._draw_delay()
            if d <= 0:
                self._deliver(data, src, dst)
            else:
                heapq.heappush(
                    self._heap, (trio.current_time() + d, next(self._seq), data, src, dst)
                )
                self._wake.set()

    def _deliver(self, data: bytes, src: SocketAddress, dst: SocketAddress) -> None:
        ep = self._endpoints.get(dst)
        if ep is None:
            self._undeliverable += 1
            return
        self._delivered += 1
        ep._deliver(data, src)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Deliver delayed datagrams when due (runs until cancelled)."""
        task_status.started()
        while True:
            now = trio.current_time()
            while self._heap and self._heap[0][0] <= now:
                _, _, data, src, dst = heapq.heappop(self._heap)
                self._deliver(data, src, dst)
            self._wake = trio.Event()
            if self._heap:
                with trio.move_on_at(self._heap[0][0]):
                    await self._wake.wait()
            else:
                await self._wake.wait()

    def statistics(self) -> FakeNetworkStatistics:
        """Counters so far."""
        return FakeNetworkStatistics(
            self._sent,
            self._delivered,
            self._lost,
            self._duplicated,
            self._undeliverable,
            self._queue_dropped,
        )


@asynccontextmanager
async def open_fake_network(
    *,
    loss: float = 0.0,
    delay: float | tuple[float, float] = 0.0,
    duplicate: float = 0.0,
    seed: int | None = None,
    queue_size: int = 1024,
) -> AsyncIterator[FakeNetwork]:
    """A :class:`FakeNetwork` whose delivery task runs for the duration of the block."""
    net = FakeNetwork(loss=loss, delay=delay, duplicate=duplicate, seed=seed, queue_size=queue_size)
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        try:
            yield net
        finally:
            nursery.cancel_scope.cancel()
