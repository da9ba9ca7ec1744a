"""Token buckets for rate limits (sans-I/O: time is passed in as ``now``).

A transfer of ``n`` bytes *consumes* ``n`` tokens first and is told how long to wait before the
balance is non-negative again, so big blocks are never starved by a small bucket and the long-run
rate equals the configured one. A rate of 0 means unlimited. Limits chain (per-torrent and global):
the caller consumes from every bucket and waits for the longest delay.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs


@attrs.define
class TokenBucket:
    """A token bucket of ``rate`` bytes per second holding at most ``burst`` bytes of credit.

    ``burst`` defaults to one second of ``rate`` (at least 16 KiB, one block).
    """

    rate: int = 0
    burst: int = 0
    _tokens: float = attrs.field(default=0.0, alias="_tokens")
    _stamp: float | None = attrs.field(default=None, alias="_stamp")

    def __attrs_post_init__(self) -> None:
        if self.rate < 0 or self.burst < 0:
            raise ValueError("rate and burst must be >= 0")
        if not self.burst:
            self.burst = max(self.rate, 16384)
        self._tokens = float(self.burst)

    @property
    def unlimited(self) -> bool:
        """True when the rate is 0 (no limit)."""
        return self.rate == 0

    def set_rate(self, rate: int, now: float, burst: int = 0) -> None:
        """Change the rate (0 = unlimited); credit above the new burst is dropped."""
        if rate < 0:
            raise ValueError("rate must be >= 0")
        self._refill(now)
        self.rate = rate
        self.burst = burst or max(rate, 16384)
        self._tokens = min(self._tokens, float(self.burst))

    def _refill(self, now: float) -> None:
        if self._stamp is not None and now > self._stamp and self.rate:
            self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
        if self._stamp is None or now > self._stamp:
            self._stamp = now

    def available(self, now: float) -> float:
        """Tokens (bytes) available now; negative while in debt."""
        if self.unlimited:
            return float("inf")
        self._refill(now)
        return self._tokens

    def consume(self, n: int, now: float) -> float:
        """Take ``n`` bytes and return the seconds to wait until the bucket is out of debt."""
        if self.unlimited or n <= 0:
            return 0.0
        self._refill(now)
        self._tokens -= n
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def delay_for(self, n: int, now: float) -> float:
        """Seconds until ``n`` bytes could be taken without debt (nothing is consumed)."""
        if self.unlimited:
            return 0.0
        missing = n - self.available(now)
        return 0.0 if missing <= 0 else missing / self.rate


def consume_all(buckets: Iterable[TokenBucket], n: int, now: float) -> float:
    """Consume ``n`` from every bucket (e.g. torrent then global); the longest wait wins."""
    delay = 0.0
    for b in buckets:
        delay = max(delay, b.consume(n, now))
    return delay
