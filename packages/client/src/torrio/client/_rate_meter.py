"""Transfer rate estimates over a sliding window (sans-I/O: time passed in as ``now``)."""

from __future__ import annotations

import attrs


@attrs.define
class RateMeter:
    """Bytes per second over the last ``window`` seconds, in one-second buckets; plus a total."""

    window: int = 5
    total: int = 0
    _buckets: list[int] = attrs.field(factory=list, alias="_buckets")
    _head: int | None = attrs.field(default=None, alias="_head")
    _start: float | None = attrs.field(default=None, alias="_start")

    def __attrs_post_init__(self) -> None:
        self._buckets = [0] * self.window

    def _advance(self, now: float) -> int:
        sec = int(now)
        if self._head is None:
            self._head = sec
            self._start = now
        elif sec > self._head:
            steps = min(sec - self._head, self.window)
            for i in range(1, steps + 1):
                self._buckets[(self._head + i) % self.window] = 0
            self._head = sec
        return sec

    def add(self, n: int, now: float) -> None:
        """Count ``n`` bytes transferred at ``now``."""
        sec = self._advance(now)
        self._buckets[sec % self.window] += n
        self.total += n

    def rate(self, now: float) -> float:
        """Bytes per second over the window (shorter at the start)."""
        self._advance(now)
        assert self._start is not None
        span = min(float(self.window), max(1.0, now - self._start))
        return sum(self._buckets) / span
