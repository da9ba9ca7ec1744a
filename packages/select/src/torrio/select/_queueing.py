"""Request queueing: how many requests each peer gets, request timeouts, snubbed peers.

Pure bookkeeping with ``now`` passed in. The :class:`~torrio.select.Picker` drives a
:class:`QueueingStrategy`; :class:`RequestQueue` is the default one.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Hashable, Sequence
from typing import Protocol, runtime_checkable

import attrs

from ._layout import BLOCK_SIZE, BlockRequest


class ExpireReason(enum.Enum):
    """Why a request was taken back from a peer."""

    TIMEOUT = "timeout"
    """The request was outstanding longer than the request timeout."""
    SNUBBED = "snubbed"
    """The peer sent no block for the snub timeout: all its requests were released."""


@attrs.frozen
class Expired:
    """A request taken back from ``peer``: send it a CANCEL; the block may be picked again."""

    peer: Hashable
    request: BlockRequest
    reason: ExpireReason


@attrs.frozen
class QueueSettings:
    """Tuning of :class:`RequestQueue`.

    The queue depth of a peer is ``rate * target_seconds / BLOCK_SIZE`` requests, clamped to
    ``min_depth..max_depth`` (one request only while snubbed). The rate is a decaying sum over
    ``rate_window`` seconds. A peer that sends no block for ``snub_timeout`` seconds while it
    has requests outstanding is snubbed; a single request older than ``request_timeout``
    expires.
    """

    target_seconds: float = 3.0
    min_depth: int = 4
    max_depth: int = 250
    request_timeout: float = 30.0
    snub_timeout: float = 15.0
    rate_window: float = 5.0

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.min_depth <= self.max_depth:
            raise ValueError("need 1 <= min_depth <= max_depth")
        if min(self.target_seconds, self.request_timeout, self.snub_timeout, self.rate_window) <= 0:
            raise ValueError("times must be > 0")


@attrs.frozen
class QueueStatistics:
    """A snapshot of a :class:`RequestQueue`."""

    peers: int
    outstanding: int
    snubbed: int
    timeouts: int
    snubs: int


@runtime_checkable
class QueueingStrategy(Protocol):
    """Decides how many requests each peer may have outstanding and when they expire.

    The picker reports every request it hands out (``requests_sent``), every request that ends
    without data (``request_finished``: rejected, cancelled, released) and every block
    (``block_received``); ``expire(now)`` returns the requests to take back.
    """

    def add_peer(self, peer: Hashable, now: float) -> None:
        """Start tracking ``peer``."""

    def remove_peer(self, peer: Hashable) -> None:
        """Forget ``peer`` and its requests."""

    def requests_sent(self, peer: Hashable, requests: Sequence[BlockRequest], now: float) -> None:
        """``requests`` were handed to ``peer`` at ``now`` (in this order)."""

    def request_finished(self, peer: Hashable, request: BlockRequest) -> None:
        """``request`` to ``peer`` ended without data (rejected, cancelled, released); idempotent."""

    def block_received(self, peer: Hashable, request: BlockRequest, now: float) -> None:
        """``peer`` delivered ``request`` (or an unrequested block) at ``now``."""

    def queue_depth(self, peer: Hashable, now: float) -> int:
        """How many requests ``peer`` should have outstanding now (>= 1)."""

    def outstanding(self, peer: Hashable) -> int:
        """How many requests ``peer`` has outstanding."""

    def rate(self, peer: Hashable, now: float) -> float:
        """Estimated download rate from ``peer`` in bytes per second."""

    def is_snubbed(self, peer: Hashable) -> bool:
        """True while ``peer`` is snubbed."""

    def expire(self, now: float) -> list[Expired]:
        """Requests to take back at ``now`` (each reported once)."""

    def next_deadline(self) -> float | None:
        """The earliest time ``expire`` could return something, or None."""


class _QPeer:
    __slots__ = ("rate", "rate_time", "requests", "snubbed", "waiting_since")

    def __init__(self, now: float) -> None:
        self.requests: dict[BlockRequest, float] = {}
        self.rate = 0.0
        self.rate_time = now
        self.waiting_since = now
        self.snubbed = False


class RequestQueue:
    """The default :class:`QueueingStrategy`: rate-proportional depth, timeouts, snubbing."""

    def __init__(self, settings: QueueSettings | None = None) -> None:
        self.settings = settings or QueueSettings()
        self._peers: dict[Hashable, _QPeer] = {}
        self._timeouts = 0
        self._snubs = 0

    def add_peer(self, peer: Hashable, now: float) -> None:
        """Start tracking ``peer`` (no-op if known)."""
        if peer not in self._peers:
            self._peers[peer] = _QPeer(now)

    def remove_peer(self, peer: Hashable) -> None:
        """Forget ``peer``."""
        self._peers.pop(peer, None)

    def _get(self, peer: Hashable, now: float) -> _QPeer:
        q = self._peers.get(peer)
        if q is None:
            q = self._peers[peer] = _QPeer(now)
        return q

    def requests_sent(self, peer: Hashable, requests: Sequence[BlockRequest], now: float) -> None:
        """Record ``requests`` sent to ``peer`` at ``now``."""
        q = self._get(peer, now)
        if not q.requests:
            # The snub clock runs only while the peer owes us something.
            q.waiting_since = now
        q.requests.update(dict.fromkeys(requests, now))

    def request_finished(self, peer: Hashable, request: BlockRequest) -> None:
        """Drop ``request`` without data."""
        q = self._peers.get(peer)
        if q is not None:
            q.requests.pop(request, None)

    def _decayed(self, q: _QPeer, now: float) -> float:
        dt = now - q.rate_time
        if dt <= 0:
            return q.rate
        return q.rate * math.exp(-dt / self.settings.rate_window)

    def block_received(self, peer: Hashable, request: BlockRequest, now: float) -> None:
        """Count ``request.length`` bytes from ``peer``; unsnubs it."""
        q = self._get(peer, now)
        q.requests.pop(request, None)
        q.rate = self._decayed(q, now) + request.length / self.settings.rate_window
        q.rate_time = max(q.rate_time, now)
        q.waiting_since = now
        q.snubbed = False

    def queue_depth(self, peer: Hashable, now: float) -> int:
        """``rate * target_seconds / BLOCK_SIZE`` clamped to the settings; 1 when snubbed."""
        q = self._peers.get(peer)
        s = self.settings
        if q is None:
            return s.min_depth
        if q.snubbed:
            return 1
        want = int(self._decayed(q, now) * s.target_seconds / BLOCK_SIZE)
        return max(s.min_depth, min(s.max_depth, want))

    def outstanding(self, peer: Hashable) -> int:
        """Requests outstanding at ``peer``."""
        q = self._peers.get(peer)
        return len(q.requests) if q is not None else 0

    def rate(self, peer: Hashable, now: float) -> float:
        """Bytes per second from ``peer`` (decaying estimate)."""
        q = self._peers.get(peer)
        return self._decayed(q, now) if q is not None else 0.0

    def is_snubbed(self, peer: Hashable) -> bool:
        """True while ``peer`` is snubbed."""
        q = self._peers.get(peer)
        return q is not None and q.snubbed

    def expire(self, now: float) -> list[Expired]:
        """Snub silent peers (releasing all their requests) and expire old requests."""
        s = self.settings
        out: list[Expired] = []
        for peer, q in self._peers.items():
            reqs = q.requests
            if not reqs:
                continue
            if not q.snubbed and now - q.waiting_since >= s.snub_timeout:
                q.snubbed = True
                self._snubs += 1
                out.extend(Expired(peer, r, ExpireReason.SNUBBED) for r in reqs)
                reqs.clear()
                continue
            # Requests are kept in send order, so the expired ones are a prefix.
            old = []
            for r, t in reqs.items():
                if now - t < s.request_timeout:
                    break
                old.append(r)
            for r in old:
                del reqs[r]
                out.append(Expired(peer, r, ExpireReason.TIMEOUT))
            self._timeouts += len(old)
        return out

    def next_deadline(self) -> float | None:
        """When the next snub or timeout is due."""
        s = self.settings
        best: float | None = None
        for q in self._peers.values():
            if not q.requests:
                continue
            first = next(iter(q.requests.values()))
            t = first + s.request_timeout
            if not q.snubbed:
                t = min(t, q.waiting_since + s.snub_timeout)
            if best is None or t < best:
                best = t
        return best

    def statistics(self) -> QueueStatistics:
        """A snapshot."""
        return QueueStatistics(
            peers=len(self._peers),
            outstanding=sum(len(q.requests) for q in self._peers.values()),
            snubbed=sum(q.snubbed for q in self._peers.values()),
            timeouts=self._timeouts,
            snubs=self._snubs,
        )
