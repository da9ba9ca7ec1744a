"""One uTP connection as a sans-I/O state machine.

Packets in (:meth:`UtpConnection.receive_packet`), datagrams out
(:meth:`UtpConnection.datagrams_to_send`), application bytes through bounded buffers
(:meth:`UtpConnection.write` / :meth:`UtpConnection.read`), lifecycle changes as events
(:meth:`UtpConnection.next_event`), time passed in as ``now`` (seconds, any monotonic origin) with
:meth:`UtpConnection.next_deadline` telling the caller when to call
:meth:`UtpConnection.handle_timeout`.
"""

from __future__ import annotations

import enum
from collections import deque
from typing import Final

import attrs

from ._budget import MemoryBudget
from ._ledbat import Ledbat, RttEstimator
from ._packet import (
    _HEADER,
    HEADER_SIZE,
    SEQ_MASK,
    TS_MASK,
    Packet,
    PacketType,
    build_sack,
    encode_packet,
    sack_bits,
    seq_diff,
)

_DATA: Final = int(PacketType.DATA)
_FIN: Final = int(PacketType.FIN)
_STATE: Final = int(PacketType.STATE)
_RESET: Final = int(PacketType.RESET)
_SYN: Final = int(PacketType.SYN)
_DATA_B0: Final = (_DATA << 4) | 1
_ACK_FRACTION: Final = 4
"""Ack at the latest once a quarter of the receive window has arrived unacknowledged."""


class NeedData(enum.Enum):
    """The type of :data:`NEED_DATA`."""

    NEED_DATA = "NEED_DATA"


NEED_DATA: Final = NeedData.NEED_DATA
"""Returned by :meth:`UtpConnection.next_event` when nothing has happened."""


class State(enum.Enum):
    """Where a connection is in its life."""

    SYN_SENT = "SYN_SENT"
    CONNECTED = "CONNECTED"
    FIN_SENT = "FIN_SENT"
    CLOSED = "CLOSED"
    RESET = "RESET"


@attrs.frozen
class Connected:
    """The handshake finished (initiator: our SYN was acked)."""


@attrs.frozen
class EndOfData:
    """The peer sent FIN and every byte before it has been delivered to the read buffer."""


@attrs.frozen
class ConnectionReset:
    """The peer sent ST_RESET."""


@attrs.frozen
class ConnectionTimedOut:
    """We gave up: too many retransmissions, a SYN never answered, or the peer went silent."""

    reason: str


@attrs.frozen
class Closed:
    """Both directions finished cleanly (our FIN acked, the peer's FIN received)."""


Event = Connected | EndOfData | ConnectionReset | ConnectionTimedOut | Closed


@attrs.frozen
class UtpConfig:
    """Tunables of one connection. Defaults follow BEP 29 and libtorrent's uTP."""

    payload_size: int = 1400
    """Largest payload per packet (≈ MTU minus IP/UDP/uTP headers)."""
    recv_buffer_size: int = 1 << 20
    """Bytes we buffer for the reader (in order plus out of order); the advertised window."""
    send_buffer_size: int = 1 << 20
    """Bytes the writer may queue before :meth:`UtpConnection.write` accepts less."""
    target_delay: float = 0.100
    """LEDBAT target queuing delay in seconds."""
    gain: float = 1.0
    max_ramp_up: int = 3000
    """Largest window growth per round trip outside slow start, bytes."""
    initial_cwnd: int = 0
    """Initial congestion window in bytes (0: two packets)."""
    max_cwnd: int = 8 << 20
    min_rto: float = 0.5
    max_rto: float = 60.0
    max_retransmits: int = 6
    """Give up after this many timer expiries in a row without progress."""
    syn_retransmits: int = 3
    idle_timeout: float = 120.0
    keepalive_interval: float = 29.0
    linger: float = 5.0
    """How long a finished connection keeps answering retransmitted FINs before it expires."""
    nagle: bool = True
    max_out_of_order: int = 512
    """Out-of-order packets kept at most (also bounded by ``recv_buffer_size`` bytes)."""
    max_in_flight: int = 8192
    """Packets in flight at most (must stay well inside the 16-bit sequence space)."""
    sack_bytes: int = 32
    """Largest SACK mask we send."""


@attrs.frozen
class ConnectionStatistics:
    """A snapshot of one connection's counters."""

    state: State
    bytes_sent: int
    bytes_received: int
    packets_sent: int
    packets_received: int
    retransmits: int
    fast_retransmits: int
    timeouts: int
    duplicates_received: int
    dropped_out_of_window: int
    cwnd: int
    bytes_in_flight: int
    peer_window: int
    rtt: float | None
    rto: float
    queuing_delay: float
    slow_start: bool


@attrs.define(slots=True)
class _Out:
    seq: int
    type: int
    payload: bytes
    sent_at: float = 0.0
    transmissions: int = 0
    sacked: bool = False
    lost: bool = False  # counted out of bytes_in_flight, waiting for a resend
    fast_resent: bool = False

    @property
    def size(self) -> int:
        return len(self.payload) + HEADER_SIZE


@attrs.define(eq=False)
class UtpConnection:
    """The state machine of one uTP connection. Create with :meth:`connect` or :meth:`accept`."""

    recv_id: int
    send_id: int
    config: UtpConfig
    state: State
    seq_nr: int
    ack_nr: int
    _now: float
    rtt: RttEstimator
    cc: Ledbat

    acked_seq: int = 0
    peer_window: int = 1 << 20
    _inflight: deque[_Out] = attrs.field(factory=deque)
    _bytes_in_flight: int = 0
    _sbuf: bytearray = attrs.field(factory=bytearray)
    _soff: int = 0
    _rbuf: bytearray = attrs.field(factory=bytearray)
    _roff: int = 0
    _ooo: dict[int, tuple[int, bytes]] = attrs.field(factory=dict)
    _ooo_bytes: int = 0
    _events: deque[Event] = attrs.field(factory=deque)
    _ack_pending: bool = False
    _ack_now: bool = False
    _unacked: int = 0
    _reply_micro: int = 0
    _rto_deadline: float | None = None
    _rto_count: int = 0
    _dup_acks: int = 0
    _loss_seq: int = 0
    _zero_window_deadline: float | None = None
    _probe_allowed: bool = False
    _fin_requested: bool = False
    _fin_seq: int | None = None
    _fin_acked: bool = False
    _peer_fin_seq: int | None = None
    _eof_delivered: bool = False
    _last_recv: float = 0.0
    _last_send: float = 0.0
    _closed_at: float | None = None
    _reset_out: bool = False
    _window_full: bool = False
    _last_adv_wnd: int = 0
    _syn_seq: int | None = None
    expired: bool = False
    """True once a finished connection has lingered long enough to be forgotten."""
    budget: MemoryBudget | None = None
    """The socket-wide memory budget this connection draws on (None: only its own limits)."""
    _mem: int = 0  # bytes this connection has accounted in ``budget``

    # counters
    bytes_sent: int = 0
    bytes_received: int = 0
    packets_sent: int = 0
    packets_received: int = 0
    retransmits: int = 0
    fast_retransmits: int = 0
    timeouts: int = 0
    duplicates_received: int = 0
    dropped_out_of_window: int = 0

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def _make(
        cls, recv_id: int, send_id: int, seq_nr: int, now: float, config: UtpConfig, state: State
    ) -> UtpConnection:
        mss = config.payload_size + HEADER_SIZE
        cc = Ledbat(
            min_cwnd=mss,
            max_cwnd=config.max_cwnd,
            cwnd=float(config.initial_cwnd or 2 * mss),
            target_us=int(config.target_delay * 1e6),
            gain=config.gain,
            max_ramp_up=config.max_ramp_up,
        )
        rtt = RttEstimator(min_rto=config.min_rto, max_rto=config.max_rto)
        conn = cls(
            recv_id=recv_id & SEQ_MASK,
            send_id=send_id & SEQ_MASK,
            config=config,
            state=state,
            seq_nr=seq_nr & SEQ_MASK,
            ack_nr=0,
            now=now,
            rtt=rtt,
            cc=cc,
        )
        conn.acked_seq = (seq_nr - 1) & SEQ_MASK
        conn._loss_seq = conn.acked_seq
        conn._last_recv = now
        conn._last_send = now
        return conn

    @classmethod
    def connect(
        cls, conn_id: int, seq_nr: int, now: float, config: UtpConfig | None = None
    ) -> UtpConnection:
        """An outgoing connection: receive id ``conn_id``, send id ``conn_id + 1``; queues a SYN."""
        cfg = config or UtpConfig()
        conn = cls._make(conn_id, conn_id + 1, seq_nr, now, cfg, State.SYN_SENT)
        syn = _Out(conn.seq_nr, _SYN, b"")
        conn._syn_seq = conn.seq_nr
        conn.seq_nr = (conn.seq_nr + 1) & SEQ_MASK
        conn._inflight.append(syn)
        syn.lost = True  # "waiting to be sent"
        return conn

    @classmethod
    def accept(
        cls, syn: Packet, seq_nr: int, now: float, config: UtpConfig | None = None
    ) -> UtpConnection:
        """An incoming connection answering ``syn``; queues the ST_STATE reply."""
        cfg = config or UtpConfig()
        conn = cls._make(
            syn.connection_id + 1, syn.connection_id, seq_nr, now, cfg, State.CONNECTED
        )
        conn.ack_nr = syn.seq_nr
        conn.peer_window = syn.wnd_size
        conn._reply_micro = (int(now * 1e6) - syn.timestamp_us) & TS_MASK
        conn._syn_seq = syn.seq_nr
        conn._ack_pending = conn._ack_now = True
        conn.packets_received = 1
        return conn

    # -- application side --------------------------------------------------------------------

    # -- memory budget ---------------------------------------------------------------------

    def set_budget(self, budget: MemoryBudget | None) -> None:
        """Draw on ``budget`` from now on (what is buffered already is accounted at once)."""
        self.release_budget()
        self.budget = budget
        self._account()

    def release_budget(self) -> None:
        """Give back everything accounted in the budget (call when forgetting the connection)."""
        if self.budget is not None and self._mem:
            self.budget.add(-self._mem)
        self._mem = 0

    @property
    def memory_used(self) -> int:
        """Bytes this connection buffers: unsent + unacknowledged (counted as full packets) +
        unread + out of order."""
        return self._send_held() + (len(self._rbuf) - self._roff) + self._ooo_bytes

    def _send_held(self) -> int:
        return (len(self._sbuf) - self._soff) + len(self._inflight) * self.config.payload_size

    def _account(self) -> None:
        b = self.budget
        if b is None:
            return
        # memory_used, inlined (this runs for every packet)
        cur = (
            (len(self._sbuf) - self._soff)
            + len(self._inflight) * self.config.payload_size
            + (len(self._rbuf) - self._roff)
            + self._ooo_bytes
        )
        d = cur - self._mem
        if d:
            self._mem = cur
            b.add(d)

    @property
    def budget_blocked(self) -> bool:
        """True when the socket's budget, not this connection's own buffer, stops writes."""
        return (
            self.budget is not None
            and self.config.send_buffer_size > len(self._sbuf) - self._soff
            and self.send_buffer_space == 0
        )

    @property
    def send_buffer_space(self) -> int:
        """Bytes :meth:`write` would accept now (its own limit, and the socket's budget)."""
        own = max(0, self.config.send_buffer_size - (len(self._sbuf) - self._soff))
        b = self.budget
        if b is None or not own:
            return own
        room = max(b.available(), b.floor - self._send_held())
        return max(0, min(own, room))

    @property
    def can_write(self) -> bool:
        """Writes are possible (not closed for sending, not reset or timed out)."""
        return (
            self.state in (State.SYN_SENT, State.CONNECTED)
            and not self._fin_requested
            and not self._reset_out
        )

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Queue up to :attr:`send_buffer_space` bytes of ``data``; returns how many were taken."""
        if not self.can_write:
            return 0
        own = self.config.send_buffer_size - (len(self._sbuf) - self._soff)
        n = min(len(data), self.send_buffer_space)
        if n:
            self._sbuf += data[:n]
            self._account()
        if n < len(data) and n < own and self.budget is not None:
            self.budget.limited_writes += 1  # the socket's budget, not our own buffer, cut it
        return n

    @property
    def unsent_bytes(self) -> int:
        """Bytes written but not yet packetized."""
        return len(self._sbuf) - self._soff

    @property
    def all_sent_acked(self) -> bool:
        """Nothing is buffered or in flight."""
        return not self._inflight and self.unsent_bytes == 0

    @property
    def readable(self) -> int:
        """Bytes ready for :meth:`read`."""
        return len(self._rbuf) - self._roff

    @property
    def at_eof(self) -> bool:
        """The peer's FIN was reached and every byte before it has been read."""
        return self._eof_delivered and self.readable == 0

    def read(self, max_bytes: int | None = None) -> bytes:
        """Take up to ``max_bytes`` (default all) in-order bytes; b"" if none."""
        avail = len(self._rbuf) - self._roff
        if not avail:
            return b""
        n = avail if max_bytes is None else min(avail, max_bytes)
        start = self._roff
        if start == 0 and n == avail:
            data = bytes(self._rbuf)
            self._rbuf.clear()
        else:
            data = bytes(self._rbuf[start : start + n])
            self._roff += n
            if self._roff == len(self._rbuf):
                self._rbuf.clear()
                self._roff = 0
            elif self._roff > 65536 and self._roff * 2 > len(self._rbuf):
                del self._rbuf[: self._roff]
                self._roff = 0
        self._account()
        # a window that was (nearly) closed just opened: tell the peer
        if self._last_adv_wnd < self.config.payload_size + HEADER_SIZE and self._window() > 2 * (
            self.config.payload_size + HEADER_SIZE
        ):
            self._ack_pending = self._ack_now = True
        return data

    def close(self) -> None:
        """Half-close: send FIN after every queued byte. Reading continues until the peer's FIN."""
        if self.state in (State.CONNECTED, State.SYN_SENT) and not self._fin_requested:
            self._fin_requested = True

    def abort(self) -> None:
        """Drop the connection now, telling the peer with ST_RESET."""
        if self.state in (State.CLOSED, State.RESET):
            return
        self._reset_out = True
        self._enter_closed(self._now, State.RESET)
        self._account()

    @property
    def finished(self) -> bool:
        """Closed, reset or timed out: no more data moves (it may still linger to ack FINs)."""
        return self._closed_at is not None

    def next_event(self) -> Event | NeedData:
        """The next lifecycle event, or :data:`NEED_DATA`."""
        if self._events:
            return self._events.popleft()
        return NEED_DATA

    # -- time ------------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timeout` must next run (None: only when a packet arrives)."""
        if self.expired:
            return None
        if self._closed_at is not None:
            return self._closed_at + self.config.linger
        cands = [self._last_recv + self.config.idle_timeout]
        if self._rto_deadline is not None:
            cands.append(self._rto_deadline)
        if self._zero_window_deadline is not None:
            cands.append(self._zero_window_deadline)
        if self.state is State.CONNECTED or self.state is State.FIN_SENT:
            cands.append(self._last_send + self.config.keepalive_interval)
        return min(cands)

    def handle_timeout(self, now: float) -> None:
        """Run whatever timers have expired at ``now``."""
        self._handle_timeout(now)
        if self.budget is not None:
            self._account()

    def _handle_timeout(self, now: float) -> None:
        self._now = now
        if self.expired:
            return
        if self._closed_at is not None:
            if now >= self._closed_at + self.config.linger:
                self.expired = True
            return
        if now >= self._last_recv + self.config.idle_timeout:
            self._fail(now, "idle timeout")
            return
        if self._rto_deadline is not None and now >= self._rto_deadline:
            self._on_rto(now)
            if self.finished:
                return
        if self._zero_window_deadline is not None and now >= self._zero_window_deadline:
            self._zero_window_deadline = None
            self._probe_allowed = True
        if (
            self.state in (State.CONNECTED, State.FIN_SENT)
            and now >= self._last_send + self.config.keepalive_interval
        ):
            self._ack_pending = self._ack_now = True

    def _on_rto(self, now: float) -> None:
        if not self._inflight:
            self._rto_deadline = None
            return
        self._rto_count += 1
        self.timeouts += 1
        limit = (
            self.config.syn_retransmits
            if self.state is State.SYN_SENT
            else self.config.max_retransmits
        )
        if self._rto_count > limit:
            self._fail(now, "retransmissions exhausted")
            return
        self.rtt.backoff()
        self.cc.on_timeout()
        self._loss_seq = (self.seq_nr - 1) & SEQ_MASK
        for p in self._inflight:
            if not p.sacked and not p.lost:
                p.lost = True
                self._bytes_in_flight -= p.size
            p.fast_resent = False
        self._rto_deadline = now + self.rtt.rto

    def _fail(self, now: float, reason: str) -> None:
        self._events.append(ConnectionTimedOut(reason))
        self._reset_out = self.state is not State.SYN_SENT
        self._enter_closed(now, State.RESET)

    def _enter_closed(self, now: float, state: State) -> None:
        self.state = state
        self._closed_at = now
        self._rto_deadline = None
        self._zero_window_deadline = None
        self._inflight.clear()
        self._bytes_in_flight = 0
        self._sbuf.clear()
        self._soff = 0
        self._ooo.clear()
        self._ooo_bytes = 0

    # -- receiving -------------------------------------------------------------------------------

    def _window(self) -> int:
        held = (len(self._rbuf) - self._roff) + self._ooo_bytes
        own = max(0, self.config.recv_buffer_size - held)
        b = self.budget
        if b is None or not own:
            return own
        room = max(b.available(), b.floor - held)
        if room < own:
            b.limited_windows += 1
            return max(0, room)
        return own

    def receive_packet(self, pkt: Packet, now: float) -> None:
        """Feed one decoded packet addressed to this connection (the shell matched its id)."""
        self.receive_fields(
            pkt.type,
            pkt.connection_id,
            pkt.timestamp_us,
            pkt.timestamp_diff_us,
            pkt.wnd_size,
            pkt.seq_nr,
            pkt.ack_nr,
            pkt.sack,
            pkt.payload,
            now,
        )

    def receive_fields(
        self,
        ptype: int,
        connection_id: int,
        timestamp_us: int,
        timestamp_diff_us: int,
        wnd_size: int,
        seq_nr: int,
        ack_nr: int,
        sack: bytes | None,
        payload: bytes | memoryview,
        now: float,
    ) -> None:
        """:meth:`receive_packet` from already-decoded header fields (the shell's fast path).

        ``payload`` may be a view into a receive buffer the caller reuses: what is kept is copied.
        """
        try:
            self._now = now
            if self.state is State.RESET or self.expired:
                return
            self.packets_received += 1
            self._last_recv = now
            if ptype == _RESET:
                if self._closed_at is None or self.state is not State.CLOSED:
                    self._events.append(ConnectionReset())
                self._enter_closed(now, State.RESET)
                return
            if ptype == _SYN:
                # a retransmitted SYN for a connection we accepted: answer it again
                if (
                    self._syn_seq is not None
                    and seq_nr == self._syn_seq
                    and self.recv_id == ((connection_id + 1) & SEQ_MASK)
                ):
                    self._ack_pending = self._ack_now = True
                return
            self._reply_micro = (int(now * 1e6) - timestamp_us) & TS_MASK
            if self.state is State.SYN_SENT:
                if ack_nr != self._syn_seq:
                    return
                self.state = State.CONNECTED
                self.ack_nr = (seq_nr - 1) & SEQ_MASK
                self._events.append(Connected())
            prev_window = self.peer_window
            self.peer_window = wnd_size
            # nothing outstanding and nothing new acknowledged: the common case of a receiver
            if self._inflight or ack_nr != self.acked_seq:
                self._on_ack(ptype, ack_nr, sack, timestamp_diff_us, now, prev_window)
                if self.state is State.RESET:
                    return
            if ptype in (_DATA, _FIN):
                self._on_data(ptype, seq_nr, payload)
            if (
                self._peer_fin_seq is not None
                and self._eof_delivered
                and self._fin_acked
                and self._closed_at is None
            ):
                self._events.append(Closed())
                self._closed_at = now
                self.state = State.CLOSED
        finally:
            if self.budget is not None:
                self._account()

    def _on_data(self, ptype: int, seq: int, payload: bytes | memoryview) -> None:
        d = seq_diff(seq, self.ack_nr)
        self._ack_pending = True
        if d <= 0:
            self.duplicates_received += 1
            self._ack_now = True
            return
        if self._peer_fin_seq is not None and seq_diff(seq, self._peer_fin_seq) > 0:
            self.dropped_out_of_window += 1
            return
        if d == 1:
            if ptype == _FIN:
                self._peer_fin_seq = seq
                self.ack_nr = seq
                self._eof_delivered = True
                self._events.append(EndOfData())
                self._ack_now = True
                return
            n = len(payload)
            # the window check (_window), cheap when our buffer and the shared budget have room
            b = self.budget
            if (
                n
                and (
                    (len(self._rbuf) - self._roff) + self._ooo_bytes + n
                    > self.config.recv_buffer_size
                    or (b is not None and b.limit - b.used < n)
                )
                and n > self._window()
            ):
                self.dropped_out_of_window += 1
                self._ack_now = True
                return
            self._rbuf += payload
            self.bytes_received += n
            self.ack_nr = seq
            if self._ooo:
                self._drain_ooo()
            # acks are deferred to the end of a receive batch, but a long batch must not hold
            # them back: the sender's window would drain and the pipe go idle (stop-and-wait)
            self._unacked += n
            if self._unacked * _ACK_FRACTION >= self.config.recv_buffer_size:
                self._ack_now = True
            return
        # out of order
        self._ack_now = True
        if (
            d > self.config.max_out_of_order * 2
            or len(self._ooo) >= self.config.max_out_of_order
            or len(payload) > self._window()
        ):
            self.dropped_out_of_window += 1
            return
        if seq in self._ooo:
            self.duplicates_received += 1
            return
        if ptype == _FIN:
            self._peer_fin_seq = seq
        self._ooo[seq] = (ptype, bytes(payload))
        self._ooo_bytes += len(payload)

    def _drain_ooo(self) -> None:
        ooo = self._ooo
        while True:
            nxt = (self.ack_nr + 1) & SEQ_MASK
            item = ooo.pop(nxt, None)
            if item is None:
                return
            ptype, payload = item
            self._ooo_bytes -= len(payload)
            self.ack_nr = nxt
            if ptype == _FIN:
                self._eof_delivered = True
                self._events.append(EndOfData())
                # anything stored beyond the FIN is meaningless
                ooo.clear()
                self._ooo_bytes = 0
                return
            self._rbuf += payload
            self.bytes_received += len(payload)

    def _on_ack(
        self,
        ptype: int,
        ack: int,
        sack: bytes | None,
        delay: int,
        now: float,
        prev_window: int,
    ) -> None:
        infl = self._inflight
        if not infl and ack == self.acked_seq:
            return  # nothing outstanding, nothing new: the common case on a receiving side
        d = seq_diff(ack, self.acked_seq)
        if d > len(self._inflight) or d < -1000:
            return  # an ack of data we never sent (or ancient): ignore it
        acked = 0
        sample_rtt: float | None = None
        infl = self._inflight
        if d > 0:
            for _ in range(d):
                p = infl.popleft()
                if not p.sacked:
                    acked += len(p.payload)
                    if not p.lost:
                        self._bytes_in_flight -= p.size
                if p.transmissions == 1:
                    sample_rtt = now - p.sent_at
                if p.type == _FIN:
                    self._fin_acked = True
            self.acked_seq = ack
            self._dup_acks = 0
            self._rto_count = 0
            self._rto_deadline = (now + self.rtt.rto) if infl else None
        elif (
            d == 0
            and infl
            and ptype == _STATE
            and not infl[0].lost
            and infl[0].transmissions > 0
            # a window update or a keep-alive repeats the ack without meaning a loss (TCP's
            # rule); a SACK is evidence that later packets arrived
            and (sack is not None or self.peer_window == prev_window)
        ):
            self._dup_acks += 1
            if self._dup_acks == 3:
                self._mark_lost(infl[0], fast=True)
        if sack is not None and infl:
            acked += self._on_sack(ack, sack, now)
        if sample_rtt is not None:
            self.rtt.sample(sample_rtt)
        if acked:
            self.cc.on_ack(acked, delay if delay else None, now, self._window_full, self.rtt.srtt)

    def _on_sack(self, ack: int, mask: bytes, now: float) -> int:
        infl = self._inflight
        base = seq_diff((ack + 2) & SEQ_MASK, (self.acked_seq + 1) & SEQ_MASK)
        acked = 0
        highest = -1
        n = len(infl)
        for i in sack_bits(mask):
            idx = base + i
            if idx < 0:
                continue
            if idx >= n:
                break
            p = infl[idx]
            highest = idx
            if not p.sacked:
                p.sacked = True
                acked += len(p.payload)
                if not p.lost:
                    self._bytes_in_flight -= p.size
        if highest >= 0:
            # a packet with three or more sacked packets after it is lost
            count = 0
            for idx in range(highest, -1, -1):
                p = infl[idx]
                if p.sacked:
                    count += 1
                elif count >= 3 and not p.fast_resent and p.transmissions > 0:
                    self._mark_lost(p, fast=True)
        return acked

    def _mark_lost(self, p: _Out, *, fast: bool) -> None:
        if not p.lost:
            p.lost = True
            self._bytes_in_flight -= p.size
        p.fast_resent = True
        if fast:
            self.fast_retransmits += 1
        if seq_diff(p.seq, self._loss_seq) > 0:
            self.cc.on_loss()
            self._loss_seq = (self.seq_nr - 1) & SEQ_MASK

    # -- sending ---------------------------------------------------------------------------------

    def datagrams_to_send(self, now: float) -> list[bytes]:
        """Every datagram to transmit now: retransmissions, new data, FIN, or an ACK."""
        out = self._datagrams_to_send(now)
        if self.budget is not None:
            self._account()
        return out

    def _datagrams_to_send(self, now: float) -> list[bytes]:
        self._now = now
        out: list[bytes] = []
        if self.expired:
            return out
        if self._reset_out:
            self._reset_out = False
            out.append(
                encode_packet(
                    _RESET,
                    self.send_id,
                    int(now * 1e6),
                    self._reply_micro,
                    0,
                    self.seq_nr,
                    self.ack_nr,
                )
            )
            self.packets_sent += 1
            return out
        if self.state is State.RESET:
            return out
        now_us = int(now * 1e6) & TS_MASK
        cfg = self.config
        infl = self._inflight
        wnd = self._window()
        window = min(int(self.cc.cwnd), self.peer_window)
        if self.state is State.SYN_SENT:
            syn = infl[0] if infl else None
            if syn is not None and syn.lost:
                syn.lost = False
                syn.transmissions += 1
                syn.sent_at = now
                if syn.transmissions > 1:
                    self.retransmits += 1
                out.append(encode_packet(_SYN, self.recv_id, now_us, 0, wnd, syn.seq, 0))
                self._bytes_in_flight += syn.size
                self._arm(now)
            self._finish_send(out, now, wnd)
            return out
        # retransmissions first (in order), as the window allows
        probe = self._probe_allowed
        if self._bytes_in_flight < window or probe:
            for p in infl:
                if not p.lost or p.sacked:
                    continue
                if self._bytes_in_flight + p.size > window and self._bytes_in_flight > 0:
                    break
                p.lost = False
                p.transmissions += 1
                p.sent_at = now
                self.retransmits += 1
                self._bytes_in_flight += p.size
                out.append(self._encode(p, now_us, wnd))
                probe = False
        # new data (the hot path: locals, one header pack and one concatenation per packet)
        mss = cfg.payload_size
        window_full = False
        sbuf = self._sbuf
        soff = self._soff
        in_flight = self._bytes_in_flight
        seq = self.seq_nr
        max_in_flight = cfg.max_in_flight
        nagle = cfg.nagle and not self._fin_requested
        sack = self._current_sack()
        pack = _HEADER.pack
        send_id = self.send_id
        reply = self._reply_micro & TS_MASK
        ack_nr = self.ack_nr
        wnd32 = wnd & TS_MASK
        sent = 0
        while True:
            unsent = len(sbuf) - soff
            if not unsent or len(infl) >= max_in_flight:
                break
            size = mss if unsent > mss else unsent
            if size < mss and nagle and in_flight > 0:
                break
            if in_flight + size + HEADER_SIZE > window:
                window_full = True
                # only a zero-window probe may exceed the window, and only into an empty pipe
                if not (probe and in_flight == 0):
                    break
            probe = False
            payload = bytes(sbuf[soff : soff + size])
            soff += size
            infl.append(_Out(seq, _DATA, payload, now, 1))
            in_flight += size + HEADER_SIZE
            sent += size
            if sack is None:
                out.append(pack(_DATA_B0, 0, send_id, now_us, reply, wnd32, seq, ack_nr) + payload)
            else:
                out.append(
                    encode_packet(_DATA, send_id, now_us, reply, wnd, seq, ack_nr, payload, sack)
                )
            seq = (seq + 1) & SEQ_MASK
        self._soff = soff
        self._bytes_in_flight = in_flight
        self.seq_nr = seq
        self.bytes_sent += sent
        self._probe_allowed = False
        if self._soff and self._soff == len(self._sbuf):
            self._sbuf.clear()
            self._soff = 0
        elif self._soff > 262144 and self._soff * 2 > len(self._sbuf):
            del self._sbuf[: self._soff]
            self._soff = 0
        if (
            self._fin_requested
            and self._fin_seq is None
            and self.unsent_bytes == 0
            and len(infl) < cfg.max_in_flight
        ):
            p = _Out(self.seq_nr, _FIN, b"", now, 1)
            self._fin_seq = self.seq_nr
            self.seq_nr = (self.seq_nr + 1) & SEQ_MASK
            infl.append(p)
            self._bytes_in_flight += p.size
            out.append(self._encode(p, now_us, wnd))
            self.state = State.FIN_SENT
        self._window_full = window_full or self._bytes_in_flight + mss >= window
        # a closed window with data waiting: probe it later
        if (
            self.unsent_bytes
            and not infl
            and self.peer_window < mss + HEADER_SIZE
            and self._zero_window_deadline is None
        ):
            self._zero_window_deadline = now + self.rtt.rto
        if out:
            self._arm(now)
        self._finish_send(out, now, wnd)
        return out

    def _arm(self, now: float) -> None:
        if self._rto_deadline is None and self._inflight:
            self._rto_deadline = now + self.rtt.rto

    def _finish_send(self, out: list[bytes], now: float, wnd: int) -> None:
        if out:
            self._ack_pending = self._ack_now = False
            self._unacked = 0
        elif self._ack_pending and self.state is not State.SYN_SENT:
            self._ack_pending = self._ack_now = False
            self._unacked = 0
            out.append(self._state_packet(now, wnd))
        if out:
            self.packets_sent += len(out)
            self._last_send = now
            self._last_adv_wnd = wnd

    def _state_packet(self, now: float, wnd: int) -> bytes:
        sack = None
        if self._ooo:
            base = (self.ack_nr + 2) & SEQ_MASK
            offsets = [(s - base) & SEQ_MASK for s in self._ooo]
            sack = build_sack(offsets, self.config.sack_bytes)
        return encode_packet(
            _STATE,
            self.send_id,
            int(now * 1e6),
            self._reply_micro,
            wnd,
            self.seq_nr,
            self.ack_nr,
            b"",
            sack,
        )

    def _current_sack(self) -> bytes | None:
        if not self._ooo:
            return None
        base = (self.ack_nr + 2) & SEQ_MASK
        return build_sack([(s - base) & SEQ_MASK for s in self._ooo], self.config.sack_bytes)

    def _encode(self, p: _Out, now_us: int, wnd: int) -> bytes:
        sack = self._current_sack()
        return encode_packet(
            p.type,
            self.send_id,
            now_us,
            self._reply_micro,
            wnd,
            p.seq,
            self.ack_nr,
            p.payload,
            sack,
        )

    @property
    def wants_ack(self) -> bool:
        """An acknowledgement should go out without waiting for the end of the receive batch."""
        return self._ack_now

    def statistics(self) -> ConnectionStatistics:
        """A snapshot of this connection's counters and congestion state."""
        return ConnectionStatistics(
            state=self.state,
            bytes_sent=self.bytes_sent,
            bytes_received=self.bytes_received,
            packets_sent=self.packets_sent,
            packets_received=self.packets_received,
            retransmits=self.retransmits,
            fast_retransmits=self.fast_retransmits,
            timeouts=self.timeouts,
            duplicates_received=self.duplicates_received,
            dropped_out_of_window=self.dropped_out_of_window,
            cwnd=int(self.cc.cwnd),
            bytes_in_flight=self._bytes_in_flight,
            peer_window=self.peer_window,
            rtt=self.rtt.srtt,
            rto=self.rtt.rto,
            queuing_delay=self.cc.last_delay_us / 1e6,
            slow_start=self.cc.slow_start,
        )
