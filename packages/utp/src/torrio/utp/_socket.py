"""The trio shell: a UDP endpoint multiplexing many uTP connections, and the stream they expose.

:class:`UtpSocket` owns a table of :class:`~torrio.utp.UtpConnection` cores keyed by
(remote address, receive connection id), feeds them datagrams, runs their timers and sends what
they produce. One service task (started by :func:`open_utp_socket`) does every send, so the
socket is never written from two tasks at once. :class:`UtpStream` is a
``trio.abc.HalfCloseableStream`` over one connection.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import ipaddress
import itertools
import operator
import random
import socket as stdsocket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

import attrs
import trio

from torrio.core import DatagramEndpoint, SocketAddress

from ._budget import DEFAULT_MEMORY_FLOOR, DEFAULT_MEMORY_LIMIT, MemoryBudget
from ._connection import (
    NEED_DATA,
    Closed,
    Connected,
    ConnectionReset,
    ConnectionStatistics,
    ConnectionTimedOut,
    EndOfData,
    State,
    UtpConfig,
    UtpConnection,
)
from ._errors import PacketError, UtpConnectionReset, UtpError, UtpTimeout
from ._packet import (
    _HEADER,
    HEADER_SIZE,
    SEQ_MASK,
    VERSION,
    PacketType,
    decode_packet,
    encode_packet,
)

DEFAULT_SOCKET_BUFFER: Final = 4 << 20
"""Requested SO_RCVBUF/SO_SNDBUF for a socket of our own (the kernel caps it at rmem_max)."""

_RECV_BATCH: Final = 512
_ORPHAN_TIMEOUT: Final = 30.0
_MAX_PENDING_RESETS: Final = 64
_FAST_TYPES: Final = frozenset(
    (t << 4) | VERSION for t in (PacketType.DATA, PacketType.FIN, PacketType.STATE)
)


@attrs.frozen
class SocketStatistics:
    """A snapshot of a :class:`UtpSocket`'s counters."""

    connections: int
    incoming_pending: int
    datagrams_received: int
    datagrams_sent: int
    invalid_datagrams: int
    unknown_connection: int
    syns_refused: int
    send_errors: int
    recv_buffer: int | None
    send_buffer: int | None
    memory_used: int = 0
    """Bytes buffered by all connections (send + unacknowledged + receive + out of order)."""
    memory_peak: int = 0
    memory_limit: int | None = None
    """The socket-wide cap (None: only per-connection limits)."""


class _UdpEndpoint:
    """A non-blocking UDP socket of our own, as a :class:`torrio.core.DatagramEndpoint`."""

    def __init__(self, sock: stdsocket.socket) -> None:
        self.sock = sock

    async def sendto(self, data: bytes, addr: SocketAddress) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            try:
                self.sock.sendto(data, addr)
                break
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self.sock)
        await trio.lowlevel.cancel_shielded_checkpoint()


@attrs.define(eq=False)
class _Entry:
    key: tuple[SocketAddress, int]
    addr: SocketAddress
    conn: UtpConnection
    stream: UtpStream | None = None
    connected: trio.Event = attrs.field(factory=trio.Event)
    error: UtpError | None = None
    orphan_deadline: float | None = None
    pushed_deadline: float | None = None
    read_waiter: trio.Event | None = None
    write_waiter: trio.Event | None = None


class UtpSocket:
    """Many uTP connections over one datagram endpoint. Open with :func:`open_utp_socket`.

    ``datagram_received`` is the :class:`torrio.core.DatagramHandler` entry a session's shared UDP
    socket calls with every datagram whose shape is uTP (see :func:`torrio.utp.is_utp_datagram`).
    Such a receive loop should yield (checkpoint) when :attr:`ack_due` turns true, so the service
    task sends that acknowledgement before more datagrams are read.

    An endpoint with a ``sendto_nowait(data, addr) -> bool`` method besides ``sendto`` (True:
    sent; False: the send buffer is full, nothing sent) has bursts sent through it without an
    await per datagram; ``await sendto`` is used only when it returns False.
    """

    def __init__(
        self,
        endpoint: DatagramEndpoint,
        *,
        config: UtpConfig | None = None,
        accept_incoming: bool = True,
        backlog: int = 64,
        max_connections: int = 1024,
        rng: random.Random | None = None,
        memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
        memory_floor: int = DEFAULT_MEMORY_FLOOR,
    ) -> None:
        self._endpoint = endpoint
        #: Shared by every connection: bounds what they buffer together (None: no cap).
        self.memory_budget: MemoryBudget | None = (
            None if memory_limit is None else MemoryBudget(limit=memory_limit, floor=memory_floor)
        )
        self._blocked_writers: dict[int, _Entry] = {}
        self._raw: stdsocket.socket | None = (
            endpoint.sock if isinstance(endpoint, _UdpEndpoint) else None
        )
        nowait = getattr(endpoint, "sendto_nowait", None)
        self._sendto_nowait: Callable[[bytes, SocketAddress], bool] | None = (
            nowait if callable(nowait) else None
        )
        self.config = config or UtpConfig()
        self._accept_incoming = accept_incoming
        self._max_connections = max_connections
        self._rng = rng or random.Random()
        self._conns: dict[tuple[SocketAddress, int], _Entry] = {}
        self._incoming_send, self._incoming_recv = trio.open_memory_channel[UtpStream](backlog)
        self._dirty: dict[int, _Entry] = {}
        self._heap: list[tuple[float, int, _Entry]] = []
        self._counter = itertools.count()
        self._wake = trio.Event()
        self._resets: list[tuple[bytes, SocketAddress]] = []
        self._ack_urgent = False
        self._clock: trio.abc.Clock | None = None  # the run's clock, fetched on first use
        self._closed = False
        self.datagrams_received = 0
        self.datagrams_sent = 0
        self.invalid_datagrams = 0
        self.unknown_connection = 0
        self.syns_refused = 0
        self.send_errors = 0

    # -- public API ------------------------------------------------------------------------------

    @property
    def ack_due(self) -> bool:
        """A datagram taken since the last send round asked for an immediate answer (an ack a
        sender is waiting for): whoever feeds :meth:`datagram_received` in a loop should yield
        now. Cleared when the service task sends."""
        return self._ack_urgent

    @property
    def local_address(self) -> SocketAddress | None:
        """The bound ``(host, port)`` when the socket is our own, else None."""
        if self._raw is None:
            return None
        host, port = self._raw.getsockname()[:2]
        return (host, port)

    async def connect(self, addr: SocketAddress) -> UtpStream:
        """Open a connection to ``addr``; raises :class:`UtpError` if it is refused or times out."""
        if self._closed:
            raise UtpError("the socket is closed", addr=addr)
        addr = await _resolve(addr, self._raw.family if self._raw is not None else 0)
        if len(self._conns) >= self._max_connections:
            raise UtpError("too many uTP connections", addr=addr)
        while True:
            conn_id = self._rng.randrange(0x10000)
            if (addr, conn_id) not in self._conns and (
                addr,
                (conn_id + 1) & SEQ_MASK,
            ) not in self._conns:
                break
        now = trio.current_time()
        conn = UtpConnection.connect(conn_id, self._rng.randrange(0x10000), now, self.config)
        conn.set_budget(self.memory_budget)
        entry = _Entry((addr, conn_id), addr, conn)
        stream = UtpStream(self, entry)
        entry.stream = stream
        self._conns[entry.key] = entry
        self._touch(entry)
        try:
            await entry.connected.wait()
        except BaseException:
            conn.abort()
            self._touch(entry)
            raise
        if entry.error is not None:
            raise entry.error
        return stream

    async def accept(self) -> AsyncIterator[UtpStream]:
        """Incoming streams, as they connect (an async generator)."""
        async for stream in self._incoming_recv:
            yield stream

    async def serve(
        self,
        handler: Callable[[UtpStream], Awaitable[Any]],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run ``handler(stream)`` in a new task for every incoming stream, until cancelled."""
        async with trio.open_nursery() as nursery:
            task_status.started()
            async for stream in self._incoming_recv:
                nursery.start_soon(handler, stream)

    def datagram_received(self, data: bytes | memoryview, addr: SocketAddress) -> None:
        """Take one datagram (never blocks): decode it, route it to its connection."""
        self.datagrams_received += 1
        if len(addr) != 2:  # IPv6 sockets report (host, port, flowinfo, scope_id)
            addr = (addr[0], addr[1])  # type: ignore[unreachable]
        # fast path: DATA/FIN/STATE without extensions for a known connection
        if len(data) >= HEADER_SIZE and data[1] == 0 and data[0] in _FAST_TYPES:
            b0, _, cid, ts, tsd, wnd, seq, ack = _HEADER.unpack_from(data)
            fast = self._conns.get((addr, cid))
            if fast is not None:
                conn = fast.conn
                clock = self._clock
                if clock is None:
                    clock = self._clock = trio.lowlevel.current_clock()
                # the payload is passed as a view: the core copies what it keeps
                conn.receive_fields(
                    b0 >> 4,
                    cid,
                    ts,
                    tsd,
                    wnd,
                    seq,
                    ack,
                    None,
                    memoryview(data)[HEADER_SIZE:],
                    clock.current_time(),
                )
                if conn._ack_now:
                    self._ack_urgent = True
                # readers, writers and events are notified by the service task's flush
                self._dirty[id(fast)] = fast
                wake = self._wake
                if not wake.is_set():
                    wake.set()
                return
        try:
            pkt = decode_packet(data)
        except PacketError:
            self.invalid_datagrams += 1
            return
        ptype = pkt.type
        if ptype == PacketType.SYN:
            # A SYN with id X belongs to the connection we would receive on as X + 1 (a duplicate
            # SYN) or is a new one; an accepted connection keyed X (opened by a SYN with id X - 1)
            # is someone else.
            entry = self._conns.get((addr, (pkt.connection_id + 1) & SEQ_MASK))
            if entry is None:
                self._incoming_syn(pkt, addr)
                return
        else:
            entry = self._conns.get((addr, pkt.connection_id))
        if entry is None:
            if ptype == PacketType.RESET:
                entry = self._find_for_reset(addr, pkt.connection_id)
                if entry is None:
                    return
            else:
                self.unknown_connection += 1
                self._send_raw_reset(pkt.connection_id, pkt.seq_nr, addr)
                return
        conn = entry.conn
        conn.receive_packet(pkt, trio.current_time())
        if conn._ack_now:
            self._ack_urgent = True
        self._after_input(entry)

    def statistics(self) -> SocketStatistics:
        """A snapshot of this socket's counters."""
        rcv = snd = None
        if self._raw is not None:
            rcv = self._raw.getsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF)
            snd = self._raw.getsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_SNDBUF)
        return SocketStatistics(
            connections=len(self._conns),
            incoming_pending=self._incoming_send.statistics().current_buffer_used,
            datagrams_received=self.datagrams_received,
            datagrams_sent=self.datagrams_sent,
            invalid_datagrams=self.invalid_datagrams,
            unknown_connection=self.unknown_connection,
            syns_refused=self.syns_refused,
            send_errors=self.send_errors,
            recv_buffer=rcv,
            send_buffer=snd,
            memory_used=self.memory_budget.used if self.memory_budget is not None else 0,
            memory_peak=self.memory_budget.peak if self.memory_budget is not None else 0,
            memory_limit=self.memory_budget.limit if self.memory_budget is not None else None,
        )

    # -- internals -------------------------------------------------------------------------------

    def _find_for_reset(self, addr: SocketAddress, conn_id: int) -> _Entry | None:
        # peers disagree on which id a RESET carries: accept our send id too
        for rid in ((conn_id + 1) & SEQ_MASK, (conn_id - 1) & SEQ_MASK):
            e = self._conns.get((addr, rid))
            if e is not None and e.conn.send_id == conn_id:
                return e
        return None

    def _incoming_syn(self, pkt: Any, addr: SocketAddress) -> None:
        if (
            not self._accept_incoming
            or self._closed
            or len(self._conns) >= self._max_connections
            or self._incoming_send.statistics().current_buffer_used
            >= self._incoming_send.statistics().max_buffer_size
        ):
            self.syns_refused += 1
            return
        now = trio.current_time()
        conn = UtpConnection.accept(pkt, self._rng.randrange(0x10000), now, self.config)
        conn.set_budget(self.memory_budget)
        entry = _Entry((addr, conn.recv_id), addr, conn)
        stream = UtpStream(self, entry)
        entry.stream = stream
        entry.connected.set()
        self._conns[entry.key] = entry
        self._incoming_send.send_nowait(stream)
        self._touch(entry)

    def _send_raw_reset(self, conn_id: int, seq: int, addr: SocketAddress) -> None:
        if len(self._resets) >= _MAX_PENDING_RESETS:
            return  # a flood of strays: the rest will time out on their own
        data = encode_packet(
            PacketType.RESET, conn_id, int(trio.current_time() * 1e6), 0, 0, 0, seq
        )
        self._resets.append((data, addr))
        self._wake.set()

    def _touch(self, entry: _Entry) -> None:
        self._dirty[id(entry)] = entry
        self._wake.set()

    def _after_input(self, entry: _Entry) -> None:
        self._dirty[id(entry)] = entry
        self._wake.set()
        self._notify(entry)
        if self._blocked_writers:
            self._wake_blocked_writers()

    def _wake_blocked_writers(self) -> None:
        """Memory was freed somewhere: writers held back by the socket's budget may go on.

        Woken only once a useful amount is free (hysteresis), so a socket at its cap does not
        wake every waiting writer for each acknowledged packet."""
        budget = self.memory_budget
        if budget is not None and budget.available() < max(budget.floor, budget.limit >> 4):
            return
        for entry in list(self._blocked_writers.values()):
            self._notify(entry)

    def _notify(self, entry: _Entry) -> None:
        conn = entry.conn
        if entry.orphan_deadline is not None and conn.readable:
            # data for a stream nobody will read again: reset, as TCP does after close()
            conn.read()
            conn.abort()
            entry.orphan_deadline = None
            self._dirty[id(entry)] = entry
            self._wake.set()
        if conn._events:
            self._pump_events(entry)
        if entry.read_waiter is not None and (
            conn.readable or conn.at_eof or conn.state is not State.CONNECTED
        ):
            entry.read_waiter.set()
            entry.read_waiter = None
        if entry.write_waiter is not None and (
            conn.send_buffer_space or not conn.can_write or conn.all_sent_acked
        ):
            entry.write_waiter.set()
            entry.write_waiter = None
            self._blocked_writers.pop(id(entry), None)
        elif entry.write_waiter is not None and conn.budget_blocked:
            self._blocked_writers[id(entry)] = entry  # now waiting on other connections

    def _pump_events(self, entry: _Entry) -> None:
        conn = entry.conn
        while True:
            ev = conn.next_event()
            if ev is NEED_DATA:
                break
            if isinstance(ev, Connected):
                entry.connected.set()
            elif isinstance(ev, ConnectionReset):
                entry.error = UtpConnectionReset("connection reset by peer", addr=entry.addr)
            elif isinstance(ev, ConnectionTimedOut):
                entry.error = UtpTimeout(f"uTP connection lost: {ev.reason}", addr=entry.addr)
            elif isinstance(ev, EndOfData | Closed):
                pass
        if entry.error is not None:
            entry.connected.set()
            self._wake_all(entry)

    def _wake_all(self, entry: _Entry) -> None:
        for ev in (entry.read_waiter, entry.write_waiter):
            if ev is not None:
                ev.set()
        entry.read_waiter = entry.write_waiter = None
        self._blocked_writers.pop(id(entry), None)

    def _drop(self, entry: _Entry) -> None:
        self._conns.pop(entry.key, None)
        self._dirty.pop(id(entry), None)
        entry.conn.release_budget()
        if self._blocked_writers:
            self._wake_blocked_writers()
        if entry.error is None and not entry.conn.at_eof:
            entry.error = UtpError("uTP connection closed", addr=entry.addr)
        entry.connected.set()
        self._wake_all(entry)

    async def _send_many(self, datagrams: list[bytes], addr: SocketAddress) -> None:
        raw = self._raw
        if raw is not None:
            sendto = raw.sendto
            for d in datagrams:
                while True:
                    try:
                        sendto(d, addr)
                        break
                    except BlockingIOError:
                        await trio.lowlevel.wait_writable(raw)
                    except OSError as exc:
                        # ICMP errors reported on a later send (ECONNREFUSED...) are not ours
                        if exc.errno not in (
                            errno.ECONNREFUSED,
                            errno.EHOSTUNREACH,
                            errno.ENETUNREACH,
                        ):
                            self.send_errors += 1
                        break
        else:
            nowait = self._sendto_nowait
            for d in datagrams:
                try:
                    if nowait is not None and nowait(d, addr):
                        continue
                    await self._endpoint.sendto(d, addr)
                except OSError:
                    self.send_errors += 1
        self.datagrams_sent += len(datagrams)

    async def _flush(self) -> None:
        self._ack_urgent = False  # whatever asked for an answer gets it in this round
        while self._resets:
            resets, self._resets = self._resets, []
            for data, addr in resets:
                await self._send_many([data], addr)
        while self._dirty:
            dirty = list(self._dirty.values())
            self._dirty.clear()
            now = trio.current_time()
            for entry in dirty:
                conn = entry.conn
                out = conn.datagrams_to_send(now)
                self._notify(entry)
                if out:
                    await self._send_many(out, entry.addr)
                self._schedule(entry)

    def _schedule(self, entry: _Entry) -> None:
        conn = entry.conn
        if conn.expired:
            self._drop(entry)
            return
        d = conn.next_deadline()
        if entry.orphan_deadline is not None:
            d = entry.orphan_deadline if d is None else min(d, entry.orphan_deadline)
        if d is not None and d != entry.pushed_deadline:
            entry.pushed_deadline = d
            heapq.heappush(self._heap, (d, next(self._counter), entry))
            if len(self._heap) > 4 * len(self._conns) + 1024:
                self._rebuild_heap()

    def _rebuild_heap(self) -> None:
        heap = [
            (e.pushed_deadline, next(self._counter), e)
            for e in self._conns.values()
            if e.pushed_deadline is not None
        ]
        heapq.heapify(heap)
        self._heap = heap

    def _run_timers(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            d, _, entry = heapq.heappop(heap)
            if d != entry.pushed_deadline or entry.key not in self._conns:
                continue
            entry.pushed_deadline = None
            conn = entry.conn
            if entry.orphan_deadline is not None and now >= entry.orphan_deadline:
                entry.orphan_deadline = None
                conn.abort()
            conn.handle_timeout(now)
            self._after_input(entry)

    async def _service(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        while True:
            deadline = self._heap[0][0] if self._heap else float("inf")
            if not self._dirty and not self._resets:
                with trio.move_on_at(deadline):
                    await self._wake.wait()
            else:
                await trio.lowlevel.checkpoint()
            self._wake = trio.Event()
            self._run_timers(trio.current_time())
            await self._flush()

    async def _recv_loop(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        raw = self._raw
        assert raw is not None
        buf = bytearray(65536)
        view = memoryview(buf)
        recv = raw.recvfrom_into
        handle = self.datagram_received
        task_status.started()
        while True:
            await trio.lowlevel.wait_readable(raw)
            for _ in range(_RECV_BATCH):
                try:
                    n, addr = recv(buf)
                except BlockingIOError:
                    break
                except OSError:
                    continue  # ICMP errors surfaced on a UDP socket
                handle(view[:n], addr)
                if self._ack_urgent:
                    # let the service task send that ack before we read on
                    self._ack_urgent = False
                    break

    def _stream_closed(self, entry: _Entry) -> None:
        conn = entry.conn
        if conn.state in (State.RESET, State.CLOSED) or entry.key not in self._conns:
            return
        if conn.readable:
            conn.abort()  # unread data is lost: tell the sender, as TCP does
            self._touch(entry)
            return
        conn.close()
        entry.orphan_deadline = trio.current_time() + _ORPHAN_TIMEOUT
        entry.pushed_deadline = None
        self._touch(entry)

    async def _shutdown(self) -> None:
        self._closed = True
        self._incoming_send.close()
        for entry in list(self._conns.values()):
            if entry.conn.state not in (State.RESET, State.CLOSED):
                entry.conn.abort()
                out = entry.conn.datagrams_to_send(trio.current_time())
                if self._raw is not None:
                    for d in out:
                        with contextlib.suppress(OSError):
                            self._raw.sendto(d, entry.addr)
                else:
                    with trio.move_on_after(0.5), contextlib.suppress(OSError):
                        for d in out:
                            await self._endpoint.sendto(d, entry.addr)
            if entry.error is None:
                entry.error = UtpError("the uTP socket was closed", addr=entry.addr)
            entry.connected.set()
            self._wake_all(entry)
        self._conns.clear()
        await trio.lowlevel.checkpoint()


class UtpStream(trio.abc.HalfCloseableStream):
    """One uTP connection as a trio stream (``send_all``, ``receive_some``, ``send_eof``)."""

    def __init__(self, sock: UtpSocket, entry: _Entry) -> None:
        self._sock = sock
        self._entry = entry
        self._closed = False
        self._sending = False
        self._receiving = False

    @property
    def remote_address(self) -> SocketAddress:
        """The peer's ``(host, port)``."""
        return self._entry.addr

    @property
    def connection(self) -> UtpConnection:
        """The sans-I/O core (for inspection; do not drive it directly)."""
        return self._entry.conn

    def statistics(self) -> ConnectionStatistics:
        """A snapshot of the connection's counters and congestion state."""
        return self._entry.conn.statistics()

    def _check_error(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("this uTP stream was closed")
        if self._entry.error is not None:
            raise trio.BrokenResourceError(str(self._entry.error)) from self._entry.error

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Queue every byte of ``data`` for sending, waiting while the send buffer is full."""
        if self._sending:
            raise trio.BusyResourceError("another task is sending on this stream")
        self._sending = True
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            self._check_error()
            conn = self._entry.conn
            view = memoryview(data).cast("B")
            while view:
                self._check_error()
                if not conn.can_write:
                    raise trio.ClosedResourceError("send_eof() was already called")
                n = conn.write(view)
                if n:
                    view = view[n:]
                    self._sock._touch(self._entry)
                if view:
                    ev = trio.Event()
                    self._entry.write_waiter = ev
                    if conn.budget_blocked:  # other connections' progress must wake us
                        self._sock._blocked_writers[id(self._entry)] = self._entry
                    await ev.wait()
            await trio.lowlevel.cancel_shielded_checkpoint()
        finally:
            self._sending = False

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until the send buffer has room."""
        if self._sending:
            raise trio.BusyResourceError("another task is sending on this stream")
        self._sending = True
        try:
            await trio.lowlevel.checkpoint()
            self._check_error()
            while (
                not self._entry.conn.send_buffer_space
                and self._entry.error is None
                and not self._closed
            ):
                ev = trio.Event()
                self._entry.write_waiter = ev
                if self._entry.conn.budget_blocked:
                    self._sock._blocked_writers[id(self._entry)] = self._entry
                await ev.wait()
            self._check_error()
        finally:
            self._sending = False

    async def send_eof(self) -> None:
        """Send FIN after every queued byte; receiving continues until the peer's FIN."""
        if self._sending:
            raise trio.BusyResourceError("another task is sending on this stream")
        await trio.lowlevel.checkpoint()
        self._check_error()
        self._entry.conn.close()
        self._sock._touch(self._entry)

    async def wait_all_sent(self) -> None:
        """Wait until every byte written so far (and a FIN, if sent) has been acknowledged."""
        conn = self._entry.conn
        while not conn.all_sent_acked:
            self._check_error()
            ev = trio.Event()
            self._entry.write_waiter = ev
            await ev.wait()
        await trio.lowlevel.checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Up to ``max_bytes`` bytes; b"" once the peer's FIN is reached."""
        if self._receiving:
            raise trio.BusyResourceError("another task is receiving on this stream")
        if max_bytes is not None:
            max_bytes = operator.index(max_bytes)
            if max_bytes < 1:
                raise ValueError("max_bytes must be >= 1")
        self._receiving = True
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            conn = self._entry.conn
            while True:
                if self._closed:
                    raise trio.ClosedResourceError("this uTP stream was closed")
                if conn.readable:
                    data = conn.read(max_bytes if max_bytes is not None else 65536)
                    if conn.wants_ack:
                        self._sock._touch(self._entry)
                    if self._sock._blocked_writers:
                        self._sock._wake_blocked_writers()
                    await trio.lowlevel.cancel_shielded_checkpoint()
                    return data
                if conn.at_eof:
                    await trio.lowlevel.cancel_shielded_checkpoint()
                    return b""
                self._check_error()
                if conn.state is State.CLOSED:
                    return b""
                ev = trio.Event()
                self._entry.read_waiter = ev
                await ev.wait()
        finally:
            self._receiving = False

    async def aclose(self) -> None:
        """Close the stream: queued bytes and a FIN still go out; unread incoming bytes are dropped."""
        if not self._closed:
            self._closed = True
            self._sock._stream_closed(self._entry)
            self._sock._wake_all(self._entry)
        await trio.lowlevel.checkpoint()


async def _resolve(addr: SocketAddress, family: int = 0) -> SocketAddress:
    """``(host, port)`` with the host as the IP literal that ``recvfrom`` will report."""
    host, port = addr[0], int(addr[1])
    try:
        return (str(ipaddress.ip_address(host)), port)
    except ValueError:
        pass
    infos = await trio.socket.getaddrinfo(host, port, family, stdsocket.SOCK_DGRAM)
    if not infos:
        raise UtpError(f"cannot resolve {host!r}", addr=addr)
    sockaddr = infos[0][4]
    return (str(sockaddr[0]), int(sockaddr[1]))


def _make_udp_socket(
    local: SocketAddress, recv_buffer: int | None, send_buffer: int | None
) -> stdsocket.socket:
    family = stdsocket.AF_INET6 if ":" in local[0] else stdsocket.AF_INET
    sock = stdsocket.socket(family, stdsocket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        if recv_buffer:
            with contextlib.suppress(OSError):
                sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF, recv_buffer)
        if send_buffer:
            with contextlib.suppress(OSError):
                sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_SNDBUF, send_buffer)
        sock.bind(local)
    except BaseException:
        sock.close()
        raise
    return sock


def window_for_socket_buffer(rcvbuf: int, payload_size: int) -> int:
    """The receive window a UDP socket buffer of ``rcvbuf`` bytes (as getsockopt reports it) can
    absorb without drops.

    The kernel charges each queued datagram its whole allocation ("truesize"), not its length:
    on Linux a 1.4 kB datagram costs about 2.3 kB, so the default 208 KiB buffer holds only ~92
    of them. Advertising more than that lets a fast sender overrun the socket, which is how
    libtorrent's own uTP collapses on loopback with default buffers.
    """
    per_packet = max(2315, (payload_size + 48) * 8 // 5)
    packets = rcvbuf // per_packet
    # Linux releases a UDP socket's receive memory lazily (in quarters of the buffer) while a
    # reader drains it, so only ~3/4 is usable under load; keep a margin below that
    return max(4 * payload_size, packets * 3 // 5 * payload_size)


@contextlib.asynccontextmanager
async def open_utp_socket(
    local_address: SocketAddress = ("127.0.0.1", 0),
    *,
    endpoint: DatagramEndpoint | None = None,
    config: UtpConfig | None = None,
    accept_incoming: bool = True,
    backlog: int = 64,
    max_connections: int = 1024,
    recv_buffer: int | None = DEFAULT_SOCKET_BUFFER,
    send_buffer: int | None = DEFAULT_SOCKET_BUFFER,
    rng: random.Random | None = None,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
    memory_floor: int = DEFAULT_MEMORY_FLOOR,
) -> AsyncIterator[UtpSocket]:
    """A running :class:`UtpSocket`; every connection is reset and the socket closed on exit.

    Without ``endpoint`` it binds its own UDP socket at ``local_address`` with SO_RCVBUF and
    SO_SNDBUF raised to ``recv_buffer``/``send_buffer`` (None: leave the OS default) and caps
    the receive window at what that buffer holds, so a fast sender cannot overrun it. With
    ``endpoint`` (a session's shared UDP socket) the caller routes uTP datagrams to
    :meth:`UtpSocket.datagram_received`.

    ``memory_limit`` caps the bytes all connections buffer together (send queue, unacknowledged
    packets, unread and out-of-order data; see :class:`MemoryBudget`): over it, writers wait
    and receive windows shrink. Each connection keeps ``memory_floor`` bytes per direction so
    none starves. None disables the cap (per-connection limits only).
    """
    cfg = config or UtpConfig()
    raw: stdsocket.socket | None = None
    if endpoint is None:
        raw = _make_udp_socket(local_address, recv_buffer, send_buffer)
        actual = raw.getsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF)
        cap = window_for_socket_buffer(actual, cfg.payload_size)
        if cap < cfg.recv_buffer_size:
            cfg = attrs.evolve(cfg, recv_buffer_size=cap)
        endpoint = _UdpEndpoint(raw)
    sock = UtpSocket(
        endpoint,
        config=cfg,
        accept_incoming=accept_incoming,
        backlog=backlog,
        max_connections=max_connections,
        rng=rng,
        memory_limit=memory_limit,
        memory_floor=memory_floor,
    )
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(sock._service)
            if raw is not None:
                await nursery.start(sock._recv_loop)
            try:
                yield sock
            finally:
                with trio.CancelScope(shield=True):
                    await sock._shutdown()
                nursery.cancel_scope.cancel()
    finally:
        if raw is not None:
            raw.close()
