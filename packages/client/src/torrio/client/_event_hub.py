"""Fan-out of session events to any number of subscribers, each with a bounded buffer.

A slow subscriber never stalls the session: when its buffer is full, the event is dropped for that
subscriber and counted (``EventStream.dropped``), as libtorrent drops alerts when its queue is full.
"""

from __future__ import annotations

from collections import deque
from types import TracebackType

import trio

from ._events import Event


class EventStream:
    """An async iterator of session events, from the moment it was created.

    Create it with :meth:`Session.events` *before* the actions whose events you want. Close it with
    :meth:`aclose` (or use ``async with``) to stop buffering.
    """

    def __init__(self, hub: EventHub, buffer: int) -> None:
        self._hub = hub
        self._buffer: deque[Event] = deque()
        self._max = buffer
        self._wakeup = trio.Event()
        self._closed = False
        self.dropped = 0
        """Events lost because the buffer was full."""

    def _push(self, event: Event) -> None:
        if len(self._buffer) >= self._max:
            self.dropped += 1
            return
        self._buffer.append(event)
        self._wakeup.set()

    def _close(self) -> None:
        self._closed = True
        self._wakeup.set()

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        while not self._buffer:
            if self._closed:
                raise StopAsyncIteration
            self._wakeup = trio.Event()
            await self._wakeup.wait()
        await trio.lowlevel.checkpoint()
        return self._buffer.popleft()

    def receive_nowait(self) -> Event:
        """The next buffered event; raises ``trio.WouldBlock`` when none is buffered."""
        if not self._buffer:
            raise trio.WouldBlock
        return self._buffer.popleft()

    async def aclose(self) -> None:
        """Stop receiving events (buffered ones are discarded)."""
        self._hub._subscribers.discard(self)
        self._buffer.clear()
        self._close()
        await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class EventHub:
    """The session's publisher."""

    def __init__(self, buffer: int = 1000) -> None:
        self._buffer = buffer
        self._subscribers: set[EventStream] = set()

    def subscribe(self) -> EventStream:
        """A new stream that sees every event published from now on."""
        stream = EventStream(self, self._buffer)
        self._subscribers.add(stream)
        return stream

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber (never blocks)."""
        for s in self._subscribers:
            s._push(event)

    def close(self) -> None:
        """End every stream (iteration stops after buffered events)."""
        for s in list(self._subscribers):
            s._close()
        self._subscribers.clear()
