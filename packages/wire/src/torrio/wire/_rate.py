"""Transfer-rate estimation over a sliding window, with time passed in (no clock here)."""

from __future__ import annotations

import collections


class RateMeter:
    """Bytes per second over the last ``window`` seconds, in ``resolution``-second buckets.

    Also keeps the lifetime :attr:`total`. Until ``window`` seconds have passed since the first
    byte, :meth:`rate` divides by the time elapsed so far (at least one ``resolution``), so a
    new connection's rate is not understated while the window fills.
    """

    __slots__ = ("_buckets", "_in_window", "_res", "_start", "_window", "total")

    def __init__(self, window: float = 5.0, resolution: float = 0.5) -> None:
        if window <= 0 or resolution <= 0 or resolution > window:
            raise ValueError("need 0 < resolution <= window")
        self._window = window
        self._res = resolution
        self._buckets: collections.deque[list[float]] = collections.deque()
        self._in_window = 0.0
        self._start: float | None = None
        self.total = 0
        """Bytes recorded since the meter was created."""

    def add(self, nbytes: int, now: float) -> None:
        """Record ``nbytes`` transferred at time ``now``."""
        slot = now - (now % self._res)
        b = self._buckets
        if b and b[-1][0] == slot:
            b[-1][1] += nbytes
        else:
            b.append([slot, float(nbytes)])
            if self._start is None:
                self._start = slot
        self._in_window += nbytes
        self.total += nbytes
        self._expire(now)

    def _expire(self, now: float) -> None:
        b = self._buckets
        horizon = now - self._window
        while b and b[0][0] + self._res <= horizon:
            self._in_window -= b.popleft()[1]

    def rate(self, now: float) -> float:
        """The average rate over the window ending at ``now`` (bytes per second)."""
        self._expire(now)
        if self._start is None:
            return 0.0
        span = min(self._window, max(self._res, now - self._start))
        return max(self._in_window, 0.0) / span
