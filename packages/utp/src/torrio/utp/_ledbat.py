"""LEDBAT (RFC 6817) congestion control and RTT/RTO estimation for one uTP connection.

Pure arithmetic on numbers passed in: bytes acked, one-way delay samples (the peer's
``timestamp_difference`` field, in wrapping microseconds), round-trip samples, and ``now``.
"""

from __future__ import annotations

from collections import deque

import attrs

from ._packet import TS_MASK

_HALF = 1 << 31


@attrs.define
class DelayHistory:
    """Base one-way delay: the minimum sample over a window (2 minutes) kept in 1-minute buckets.

    Samples are 32-bit wrapping values with an arbitrary clock offset, so "smaller" is decided by
    the wrapping difference, never by plain comparison.
    """

    window: float = 120.0
    bucket: float = 60.0
    _buckets: deque[tuple[float, int]] = attrs.field(factory=deque)
    _recent: deque[int] = attrs.field(factory=lambda: deque(maxlen=3))

    def add(self, sample: int, now: float) -> int:
        """Record ``sample`` at ``now``; return the queuing delay in µs (sample above base)."""
        b = self._buckets
        if not b or now - b[-1][0] >= self.bucket:
            b.append((now, sample))
            while b and now - b[0][0] > self.window:
                b.popleft()
        elif (b[-1][1] - sample) & TS_MASK < _HALF and b[-1][1] != sample:
            b[-1] = (b[-1][0], sample)
        base = self.base()
        queuing = (sample - base) & TS_MASK
        if queuing >= _HALF:  # sample below the base (clock wrap or a better path)
            queuing = 0
        self._recent.append(queuing)
        return min(self._recent)

    def base(self) -> int:
        """The current base delay (µs, in the peer's wrapping clock)."""
        best = self._buckets[0][1]
        for _, v in self._buckets:
            if (best - v) & TS_MASK < _HALF:
                best = v
        return best


@attrs.define
class RttEstimator:
    """Smoothed RTT and variance (RFC 6298) with a floor, exponential backoff and Karn's rule.

    Callers feed only samples from packets sent once (Karn); :meth:`backoff` doubles the timeout
    after a retransmission timer fires, and a fresh sample clears the backoff.
    """

    min_rto: float = 0.5
    max_rto: float = 60.0
    initial_rto: float = 1.0
    srtt: float | None = None
    rttvar: float = 0.0
    min_rtt: float | None = None
    _backoff: int = 0

    def sample(self, rtt: float) -> None:
        """A round-trip sample in seconds."""
        rtt = max(rtt, 0.0)
        if self.srtt is None:
            self.srtt = rtt
            self.rttvar = rtt / 2
        else:
            self.rttvar += (abs(self.srtt - rtt) - self.rttvar) / 4
            self.srtt += (rtt - self.srtt) / 8
        if self.min_rtt is None or rtt < self.min_rtt:
            self.min_rtt = rtt
        self._backoff = 0

    def backoff(self) -> None:
        """The retransmission timer fired: double the timeout (until ``max_rto``)."""
        self._backoff = min(self._backoff + 1, 16)

    @property
    def rto(self) -> float:
        """The current retransmission timeout in seconds."""
        base = self.initial_rto if self.srtt is None else self.srtt + 4 * self.rttvar
        return float(min(self.max_rto, max(self.min_rto, base) * (1 << self._backoff)))


@attrs.define
class Ledbat:
    """The congestion window in bytes, driven by queuing delay against a target.

    Slow start (window grows by the bytes acked) lasts until the first delay signal (queuing delay
    above half the target) or the first loss. After that, below the target each ACK grows the
    window by ``gain * max_ramp_up * off_target * acked / cwnd`` bytes (at most ``max_ramp_up``
    bytes per round trip); above it the window shrinks in proportion to itself (LEDBAT++'s
    multiplicative decrease, at most half per round trip). A loss halves the window.

    A flow that arrives while others keep a standing queue mistakes that queue for base delay
    and would starve them (RFC 6817's latecomer problem). As LEDBAT++ proposes, the window
    periodically drops to two packets for two round trips so the queue drains and every flow
    re-learns the true base delay; it happens only while a queue is measured, so an idle or
    uncongested path (loopback) never pays for it.
    """

    min_cwnd: int
    max_cwnd: int
    cwnd: float
    target_us: int = 100_000
    gain: float = 1.0
    max_ramp_up: int = 3000
    slow_start: bool = True
    ssthresh: float = float("inf")
    history: DelayHistory = attrs.field(factory=DelayHistory)
    last_delay_us: int = 0
    slowdowns: int = 0
    _next_slowdown: float | None = None
    _slowdown_until: float | None = None
    _slowdown_len: float = 0.0

    def on_ack(
        self,
        acked: int,
        delay_sample: int | None,
        now: float,
        window_full: bool,
        rtt: float | None = None,
    ) -> None:
        """``acked`` new bytes were acknowledged; ``delay_sample`` is the peer's timestamp diff."""
        if acked <= 0:
            return
        off_target = 1.0
        qd = 0
        if delay_sample is not None:
            qd = self.history.add(delay_sample, now)
            self.last_delay_us = qd
            off_target = (self.target_us - qd) / self.target_us
        if self._slowdown_until is not None:
            if now < self._slowdown_until:
                return
            self._slowdown_until = None
            self.slow_start = True
            self._next_slowdown = now + 9 * self._slowdown_len
        rtt = rtt or 0.0
        if (
            self._next_slowdown is not None
            and now >= self._next_slowdown
            and qd * 4 > self.target_us
            and not self.slow_start
        ):
            self.slowdowns += 1
            self.ssthresh = self.cwnd
            self.cwnd = float(2 * self.min_cwnd)
            self._slowdown_len = max(2 * rtt, 0.01)
            self._slowdown_until = now + self._slowdown_len
            self._next_slowdown = None
            return
        if self.slow_start and qd > self.target_us // 2:
            self.slow_start = False
            if self._next_slowdown is None:
                self._next_slowdown = now + 2 * rtt
        if off_target >= 0:
            if not window_full:
                return  # not limited by the window: growing it would only build a burst
            if self.slow_start:
                self.cwnd += acked
                if self.cwnd >= self.ssthresh:
                    self.slow_start = False
            else:
                self.cwnd += self.gain * self.max_ramp_up * off_target * acked / self.cwnd
        else:
            self.slow_start = False
            self.cwnd -= min(0.5, -off_target) * acked
        self.cwnd = min(max(self.cwnd, self.min_cwnd), self.max_cwnd)

    def on_loss(self) -> None:
        """A packet was lost (fast retransmit): halve the window and leave slow start."""
        self.cwnd = max(self.cwnd / 2, self.min_cwnd)
        self.ssthresh = self.cwnd
        self.slow_start = False
        if self._next_slowdown is None:
            self._next_slowdown = 0.0

    def on_timeout(self) -> None:
        """The retransmission timer fired: back to one packet, slow start up to half the old."""
        self.ssthresh = max(self.cwnd / 2, self.min_cwnd)
        self.cwnd = self.min_cwnd
        self.slow_start = True
        self._slowdown_until = None
