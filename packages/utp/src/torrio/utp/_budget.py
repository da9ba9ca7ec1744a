"""A memory budget shared by every connection of one uTP socket (sans-I/O, no clock).

Each connection holds bytes in three places: its send buffer (written, not yet packetized) plus
its retransmission queue (sent, not yet acknowledged), its receive buffer (in order, not yet
read), and its out-of-order buffer. Per-connection limits alone let 1024 connections pin
gigabytes, so a socket gives all of its connections one :class:`MemoryBudget`:

* a writer may queue bytes only while the socket is under ``limit`` (``write`` takes less, so
  the trio stream's ``send_all`` waits: backpressure), and
* a receiver advertises, and accepts, no more than what is left under ``limit`` (its window
  shrinks; the sender's packets beyond it are dropped and sent again later).

So no connection starves, each may always hold ``floor`` bytes per direction whatever the
others hold. Hence the bound the tests check: ``used <= limit + connections * 2 * floor``
(plus one packet of slack per connection, since a packet is accepted or refused whole).
"""

from __future__ import annotations

import attrs

#: Default socket-wide cap on buffered bytes (send + in flight + receive + out of order).
DEFAULT_MEMORY_LIMIT = 256 << 20
#: Default bytes each connection may hold per direction whatever the budget says.
DEFAULT_MEMORY_FLOOR = 16 << 10


@attrs.define
class MemoryBudget:
    """Bytes buffered by all connections of a socket, against ``limit``.

    Connections update ``used`` themselves (see :meth:`UtpConnection.set_budget`); the socket
    reads :meth:`available` and :attr:`peak`. ``limited_writes`` / ``limited_windows`` count how
    often the budget (not the connection's own limit) cut a write or a receive window.
    """

    limit: int = DEFAULT_MEMORY_LIMIT
    floor: int = DEFAULT_MEMORY_FLOOR
    used: int = 0
    peak: int = 0
    limited_writes: int = 0
    limited_windows: int = 0

    def __attrs_post_init__(self) -> None:
        if self.limit < 0 or self.floor < 0:
            raise ValueError("memory limit and floor must be >= 0")

    def available(self) -> int:
        """Bytes left under the limit (negative when connections hold their floors above it)."""
        return self.limit - self.used

    def add(self, delta: int) -> None:
        """Account ``delta`` bytes (negative to release)."""
        self.used += delta
        if self.used > self.peak:
            self.peak = self.used
