"""Transfer-rate estimation over a sliding window, with time passed in (no clock here)."""

from __future__ import annotations

import collections


class RateMeter:
    """Bytes per second over the last ``window`` seconds, in ``resolution``-second buckets."""

    __slots__ = ("_buckets", "_res", "_total", "_window")

    def __init__(self, window: float = 5.0, resolution: float = 0.5) -> None:
        if window <= 0 or resolution <= 0 or resolution > window:
            raise ValueError("need 0 < resolution <= window")
        self._window = window
        self._res = resolution
        self._buckets: collections.deque[list[float]] = collections.deque()
        self._total = 0.0

    def add(self, nbytes: int, now: float) -> None:
        """Record ``nbytes`` transferred at time ``now``."""
        slot = now - (now % self._res)
        b = self._buckets
        if b and b[-1][0] == slot:
            b[-1][1] += nbytes
        else:
            b.append([slot, float(nbytes)])
        self._total += nbytes
        self._expire(now)

    def _expire(self, now: float) -> None:
        b = self._buckets
        horizon = now - self._window
        while b and b[0][0] + self._res <= horizon:
            self._total -= b.popleft()[1]

    def rate(self, now: float) -> float:
        """The average rate over the window ending at ``now`` (bytes per second)."""
        self._expire(now)
        return max(self._total, 0.0) / self._window
