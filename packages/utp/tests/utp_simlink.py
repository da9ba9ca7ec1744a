"""A simulated network for uTP tests: one bottleneck shared by every flow, driven by trio time.

Packets pass a FIFO bottleneck of ``rate`` bytes/s in front of their destination (every flow
towards one host shares it; the reverse direction has its own) (tail-dropped once its queue holds more than
``queue_limit`` seconds of data), then a one-way ``delay`` plus uniform ``jitter`` (which reorders
them), with independent ``loss`` and ``duplicate`` probabilities. Run it under
``trio.testing.MockClock(autojump_threshold=0)`` and minutes of traffic pass in moments.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable

import attrs
import trio

from torrio.core import SocketAddress

Handler = Callable[[bytes, SocketAddress], None]


@attrs.define
class LinkStats:
    """What happened on the link."""

    sent: int = 0
    delivered: int = 0
    lost: int = 0
    queue_dropped: int = 0
    duplicated: int = 0
    bytes_delivered: dict[SocketAddress, int] = attrs.field(factory=dict)


class SimEndpoint:
    """One host on the link: a :class:`torrio.core.DatagramEndpoint` bound to ``addr``."""

    def __init__(self, link: SimLink, addr: SocketAddress) -> None:
        self.link = link
        self.addr = addr

    async def sendto(self, data: bytes, addr: SocketAddress) -> None:
        await trio.lowlevel.checkpoint()
        self.link.transmit(bytes(data), self.addr, addr)


class SimLink:
    """The simulated network (see the module docstring)."""

    def __init__(
        self,
        *,
        delay: float = 0.0,
        jitter: float = 0.0,
        loss: float = 0.0,
        duplicate: float = 0.0,
        rate: float | None = None,
        queue_limit: float = 1.0,
        seed: int = 0,
    ) -> None:
        self.delay = delay
        self.jitter = jitter
        self.loss = loss
        self.duplicate = duplicate
        self.rate = rate
        self.queue_limit = queue_limit
        self.rng = random.Random(seed)
        self.stats = LinkStats()
        self._handlers: dict[SocketAddress, Handler] = {}
        self._heap: list[tuple[float, int, bytes, SocketAddress, SocketAddress]] = []
        self._counter = itertools.count()
        self._busy_until: dict[SocketAddress, float] = {}
        self._wake = trio.Event()

    def endpoint(self, addr: SocketAddress) -> SimEndpoint:
        """A host at ``addr`` (attach its receiver with :meth:`attach`)."""
        return SimEndpoint(self, addr)

    def attach(self, addr: SocketAddress, handler: Handler) -> None:
        """Deliver datagrams for ``addr`` to ``handler(data, source)``."""
        self._handlers[addr] = handler

    def queue_delay(self, dst: SocketAddress) -> float:
        """Seconds of data waiting at the bottleneck towards ``dst`` right now."""
        return max(0.0, self._busy_until.get(dst, 0.0) - trio.current_time())

    def transmit(self, data: bytes, src: SocketAddress, dst: SocketAddress) -> None:
        """Put one datagram on the wire (no blocking: it is queued, lost or dropped)."""
        self.stats.sent += 1
        now = trio.current_time()
        depart = now
        if self.rate:
            start = max(now, self._busy_until.get(dst, 0.0))
            if start - now > self.queue_limit:
                self.stats.queue_dropped += 1
                return
            depart = start + len(data) / self.rate
            self._busy_until[dst] = depart
        if self.rng.random() < self.loss:
            self.stats.lost += 1
            return
        copies = 1
        if self.rng.random() < self.duplicate:
            copies = 2
            self.stats.duplicated += 1
        for _ in range(copies):
            at = depart + self.delay + self.rng.random() * self.jitter
            heapq.heappush(self._heap, (at, next(self._counter), data, src, dst))
        self._wake.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Deliver packets when their time comes, until cancelled."""
        task_status.started()
        while True:
            if self._heap:
                with trio.move_on_at(self._heap[0][0]):
                    await self._wake.wait()
            else:
                await self._wake.wait()
            self._wake = trio.Event()
            now = trio.current_time()
            while self._heap and self._heap[0][0] <= now:
                _, _, data, src, dst = heapq.heappop(self._heap)
                handler = self._handlers.get(dst)
                if handler is None:
                    continue
                self.stats.delivered += 1
                self.stats.bytes_delivered[dst] = self.stats.bytes_delivered.get(dst, 0) + len(data)
                handler(data, src)
