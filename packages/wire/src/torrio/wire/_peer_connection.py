"""The trio shell of the wire protocol: a framed, bounded, counted peer connection.

``async with open_peer_connection(stream) as conn:`` runs two tasks inside its own nursery (a
writer that batches queued messages into one reusable buffer, and the keep-alive timer) and
closes cleanly on exit: queued messages are flushed (for at most ``close_timeout`` seconds),
then the stream is closed. Receiving happens in the caller's task: ``await conn.receive()`` or
``async for event in conn``. The receive path reads straight into the decoder's reused buffer
(``recv_into`` on a socket, ``receive_into`` on a :class:`torrio.handshake.PeerStream`), so a
16 KiB block is copied once, into the ``bytes`` of the :class:`Piece` handed out.
"""

from __future__ import annotations

import collections
import contextlib
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import attrs
import trio

from ._connection import Event, WireConnection
from ._decoder import NEED_DATA, WireDecoder
from ._errors import WireError
from ._extensions import ExtensionRegistry
from ._messages import BLOCK_SIZE, Extended, KeepAlive, Message, Piece
from ._rate import RateMeter

#: BEP 3 practice: a keep-alive after two minutes of silence.
KEEPALIVE_INTERVAL = 120.0
#: Close a connection that sent nothing for this long.
IDLE_TIMEOUT = 180.0
_BATCH = 1 << 18
_READ = 1 << 18
_PIECE_HDR = struct.Struct(">IBII")


class PeerConnectionClosed(WireError):
    """The connection ended: ``reason`` is ``"peer closed"``, ``"idle timeout"``, ``"closed"``
    (we closed it) or ``"transport error"``."""


@attrs.frozen
class PeerConnectionStatistics:
    """A snapshot of one connection's counters and rates (bytes per second)."""

    bytes_sent: int
    bytes_received: int
    payload_sent: int
    payload_received: int
    messages_sent: int
    messages_received: int
    upload_rate: float
    download_rate: float
    payload_upload_rate: float
    payload_download_rate: float
    send_queue_length: int
    send_queue_capacity: int
    last_sent: float
    last_received: float


def _receiver(stream: trio.abc.Stream) -> Callable[[memoryview], Awaitable[int]]:
    """The fastest way to read from ``stream`` into a buffer."""
    if isinstance(stream, trio.SocketStream):
        sock = stream.socket

        async def recv_socket(view: memoryview) -> int:
            return await sock.recv_into(view, len(view))

        return recv_socket
    receive_into = getattr(stream, "receive_into", None)
    if receive_into is not None:
        return receive_into  # type: ignore[no-any-return]

    async def recv_generic(view: memoryview) -> int:
        data = await stream.receive_some(len(view))
        view[: len(data)] = data
        return len(data)

    return recv_generic


class PeerConnection:
    """Messages over a handshaken stream. Create with :func:`open_peer_connection`."""

    def __init__(
        self,
        stream: trio.abc.Stream,
        wire: WireConnection,
        *,
        send_queue_size: int = 256,
        keepalive_interval: float = KEEPALIVE_INTERVAL,
        idle_timeout: float = IDLE_TIMEOUT,
        close_timeout: float = 5.0,
    ) -> None:
        self.stream = stream
        self.wire = wire
        self.keepalive_interval = keepalive_interval
        self.idle_timeout = idle_timeout
        self.close_timeout = close_timeout
        if send_queue_size < 1:
            raise ValueError("send_queue_size must be >= 1")
        self._queue: collections.deque[Message] = collections.deque()
        self._capacity = send_queue_size
        self._work = trio.lowlevel.ParkingLot()  # the writer waits here for messages
        self._space = trio.lowlevel.ParkingLot()  # senders wait here for queue space
        self._closing = False
        self._recv_into = _receiver(stream)
        now = trio.current_time()
        self._last_sent = now
        self._last_received = now
        self._up = RateMeter()
        self._down = RateMeter()
        self._up_payload = RateMeter()
        self._down_payload = RateMeter()
        self._closed: PeerConnectionClosed | None = None
        self._writer_done = trio.Event()
        self._batch = bytearray(_BATCH)
        self._payload_mark = 0
        self._payload_in_mark = 0
        self._pending_error: WireError | None = None

    @property
    def registry(self) -> ExtensionRegistry:
        """The extension registry (remote ids appear after the peer's extended handshake)."""
        return self.wire.registry

    @property
    def decoder(self) -> WireDecoder:
        """The decoder (``set_num_pieces`` once a magnet's metadata arrives)."""
        return self.wire.decoder

    # -- sending -------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed is not None:
            raise PeerConnectionClosed(self._closed.reason)

    def _enqueue(self, msg: Message) -> None:
        self._queue.append(msg)
        if self._work:
            self._work.unpark()

    async def send(self, event: Event) -> None:
        """Queue ``event``; waits while the outgoing queue is full (backpressure)."""
        await trio.lowlevel.checkpoint_if_cancelled()
        self._check_open()
        msg = self.wire.to_wire(event)
        while len(self._queue) >= self._capacity:
            await self._space.park()
            self._check_open()
        self._enqueue(msg)
        await trio.lowlevel.cancel_shielded_checkpoint()

    def send_nowait(self, event: Event) -> None:
        """Queue ``event`` or raise :class:`trio.WouldBlock` if the queue is full."""
        self._check_open()
        if len(self._queue) >= self._capacity:
            raise trio.WouldBlock
        self._enqueue(self.wire.to_wire(event))

    async def _writer(self) -> None:
        queue = self._queue
        popleft = queue.popleft
        wire = self.wire
        try:
            while True:
                if not queue:
                    if self._closing:
                        return
                    await self._work.park()
                    continue
                batch = self._batch
                end = 0
                count = 0
                payload = 0
                limit = len(batch)
                while queue:
                    msg = queue[0]
                    if type(msg) is Piece:  # hot path, inlined write_into
                        block = msg.block
                        n = len(block)
                        if end + 13 + n > limit:
                            if end:
                                break
                            batch = bytearray(13 + n)
                            limit = len(batch)
                        popleft()
                        _PIECE_HDR.pack_into(batch, end, 9 + n, 7, msg.index, msg.begin)
                        batch[end + 13 : end + 13 + n] = block
                        end += 13 + n
                        payload += n
                        count += 1
                        continue
                    size = msg.wire_size()
                    if end + size > limit:
                        if end:
                            break
                        batch = bytearray(size)  # one oversized message
                        limit = size
                    popleft()
                    end = msg.write_into(batch, end)
                    count += 1
                wire.bytes_sent += end
                wire.messages_sent += count
                wire.payload_sent += payload
                if self._space:
                    self._space.unpark_all()
                await self._write(memoryview(batch)[:end])
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self._fail(PeerConnectionClosed(f"transport error: {exc}"))
        finally:
            self._closing = True
            queue.clear()
            self._space.unpark_all()
            self._writer_done.set()

    async def _write(self, view: memoryview) -> None:
        await self.stream.send_all(view)
        now = trio.current_time()
        self._last_sent = now
        self._up.add(len(view), now)
        payload = self.wire.payload_sent
        self._up_payload.add(payload - self._payload_mark, now)
        self._payload_mark = payload

    async def _keepalive(self) -> None:
        while self._closed is None:
            await trio.sleep_until(self._last_sent + self.keepalive_interval)
            if trio.current_time() >= self._last_sent + self.keepalive_interval:
                with contextlib.suppress(trio.WouldBlock, WireError):
                    self.send_nowait(KeepAlive())
                # nothing sent yet (queue full or stalled writer): don't spin
                await trio.sleep(min(1.0, self.keepalive_interval))

    # -- receiving -----------------------------------------------------------------------------

    async def receive(self) -> Event:
        """The next message from the peer. Raises :class:`PeerConnectionClosed` at the end,
        :class:`WireError` on a protocol violation. Always a checkpoint (like any trio receive);
        :meth:`receive_batch` amortizes that over every buffered message."""
        decoder = self.wire.decoder
        await trio.lowlevel.checkpoint_if_cancelled()  # cancel before consuming, never after
        self._raise_pending()
        ev = decoder.next_event()
        if ev is not NEED_DATA:
            await trio.lowlevel.cancel_shielded_checkpoint()
        while ev is NEED_DATA:
            await self._fill()
            ev = decoder.next_event()
        if type(ev) is Extended:
            return self.wire._extended(ev)
        return ev

    async def _fill(self) -> None:
        self._check_open()
        decoder = self.wire.decoder
        view = decoder.get_buffer(_READ)
        n = -1
        try:
            with trio.move_on_at(self._last_received + self.idle_timeout):
                n = await self._recv_into(view)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise self._fail(PeerConnectionClosed(f"transport error: {exc}")) from exc
        finally:
            view.release()
        if n < 0:
            raise self._fail(PeerConnectionClosed("idle timeout"))
        if n == 0:
            raise self._fail(PeerConnectionClosed("peer closed"))
        decoder.buffer_updated(n)
        now = trio.current_time()
        self._last_received = now
        self._down.add(n, now)
        # payload counted per read, not per message: the decoder has already parsed what it can
        # only after next_event, so attribute the delta since the previous read
        payload = decoder.payload_received
        self._down_payload.add(payload - self._payload_in_mark, now)
        self._payload_in_mark = payload

    async def receive_batch(self, max_events: int = 1024) -> list[Event]:
        """Every message already buffered (waiting for at least one): fewer awaits per message."""
        decoder = self.wire.decoder
        await trio.lowlevel.checkpoint_if_cancelled()  # cancel before consuming, never after
        self._raise_pending()
        out: list[Event] = []
        filled = False
        while True:
            try:
                while len(out) < max_events:
                    ev = decoder.next_event()
                    if ev is NEED_DATA:
                        break
                    if type(ev) is Extended:
                        out.append(self.wire._extended(ev))
                    else:
                        out.append(ev)
            except WireError as exc:
                if not out:
                    raise
                self._pending_error = exc  # hand out the good messages first
            if out:
                if not filled:
                    await trio.lowlevel.cancel_shielded_checkpoint()
                return out
            await self._fill()
            filled = True

    def _raise_pending(self) -> None:
        exc = self._pending_error
        if exc is not None:
            raise WireError(exc.reason, exc.message_id) from exc

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            try:
                ev = await self.receive()
            except PeerConnectionClosed as exc:
                if exc.reason in ("peer closed", "closed"):
                    return
                raise
            yield ev

    # -- lifecycle -----------------------------------------------------------------------------

    def _fail(self, exc: PeerConnectionClosed) -> PeerConnectionClosed:
        if self._closed is None:
            self._closed = exc
        self._close_queue()
        return PeerConnectionClosed(self._closed.reason)

    def _close_queue(self) -> None:
        self._closing = True
        self._work.unpark_all()
        self._space.unpark_all()

    async def aclose(self) -> None:
        """Flush what is queued (bounded by ``close_timeout``), then close the stream."""
        if self._closed is None:
            self._closed = PeerConnectionClosed("closed")
        self._close_queue()
        with trio.move_on_after(self.close_timeout) as cs:
            cs.shield = True
            await self._writer_done.wait()
        await trio.aclose_forcefully(self.stream)

    @property
    def closed(self) -> bool:
        """True once closed (by either side)."""
        return self._closed is not None

    def statistics(self) -> PeerConnectionStatistics:
        """A snapshot of counters and rates."""
        now = trio.current_time()
        s = self.wire.statistics()
        return PeerConnectionStatistics(
            bytes_sent=s.bytes_sent,
            bytes_received=s.bytes_received,
            payload_sent=s.payload_sent,
            payload_received=s.payload_received,
            messages_sent=s.messages_sent,
            messages_received=s.messages_received,
            upload_rate=self._up.rate(now),
            download_rate=self._down.rate(now),
            payload_upload_rate=self._up_payload.rate(now),
            payload_download_rate=self._down_payload.rate(now),
            send_queue_length=len(self._queue),
            send_queue_capacity=self._capacity,
            last_sent=self._last_sent,
            last_received=self._last_received,
        )


@contextlib.asynccontextmanager
async def open_peer_connection(
    stream: trio.abc.Stream,
    *,
    num_pieces: int | None = None,
    registry: ExtensionRegistry | None = None,
    max_block_size: int = BLOCK_SIZE,
    send_queue_size: int = 256,
    keepalive_interval: float = KEEPALIVE_INTERVAL,
    idle_timeout: float = IDLE_TIMEOUT,
    close_timeout: float = 5.0,
    **decoder_options: Any,
) -> AsyncIterator[PeerConnection]:
    """Run a :class:`PeerConnection` over a handshaken ``stream`` for the duration of the block."""
    wire = WireConnection(
        registry=registry,
        decoder=WireDecoder(
            num_pieces=num_pieces, max_block_size=max_block_size, **decoder_options
        ),
    )
    conn = PeerConnection(
        stream,
        wire,
        send_queue_size=send_queue_size,
        keepalive_interval=keepalive_interval,
        idle_timeout=idle_timeout,
        close_timeout=close_timeout,
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(conn._writer)
        nursery.start_soon(conn._keepalive)
        try:
            yield conn
        finally:
            await conn.aclose()
            nursery.cancel_scope.cancel()
