"""The candidate peers of one torrent: bounded, de-duplicated, with connect backoff and bans.

Sans-I/O: time is passed in as ``now``. Peers come from trackers, the add parameters, ``--peer`` and
incoming connections; the session asks :meth:`PeerList.candidates` whom to dial next. A failed or
dropped connection is retried after a delay that doubles each time (``base_backoff`` ..
``max_backoff``); after ``max_failures`` consecutive failures the peer is forgotten. Bans are by IP,
except on loopback and private addresses where several peers share an IP (tests, LANs): there the
exact address and the peer id are banned.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from torrio.core import IPAddress, PeerAddr

SOURCE_TRACKER = "tracker"
SOURCE_MANUAL = "manual"
SOURCE_INCOMING = "incoming"
SOURCE_DHT = "dht"
SOURCE_PEX = "pex"


@attrs.define
class PeerEntry:
    """What we know about one candidate."""

    addr: PeerAddr
    source: str
    added: float
    failures: int = 0
    next_attempt: float = 0.0
    connected: bool = False
    connecting: bool = False
    seed: bool = False


@attrs.frozen
class PeerListStatistics:
    """A snapshot of a peer list."""

    known: int
    connected: int
    connecting: int
    banned: int
    dropped_full: int


def _shared_ip(ip: IPAddress) -> bool:
    return ip.is_loopback or ip.is_private or ip.is_link_local


@attrs.define
class PeerList:
    """Candidate peers of one torrent, at most ``max_size`` of them."""

    max_size: int = 1000
    base_backoff: float = 2.0
    max_backoff: float = 300.0
    max_failures: int = 6
    max_banned: int = 10_000
    _peers: dict[PeerAddr, PeerEntry] = attrs.field(factory=dict, alias="_peers")
    _banned_ips: set[IPAddress] = attrs.field(factory=set, alias="_banned_ips")
    _banned_addrs: set[PeerAddr] = attrs.field(factory=set, alias="_banned_addrs")
    _banned_ids: set[bytes] = attrs.field(factory=set, alias="_banned_ids")
    _dropped_full: int = attrs.field(default=0, alias="_dropped_full")

    def __len__(self) -> int:
        return len(self._peers)

    def __contains__(self, addr: object) -> bool:
        return addr in self._peers

    def __iter__(self) -> Iterator[PeerEntry]:
        return iter(list(self._peers.values()))

    def get(self, addr: PeerAddr) -> PeerEntry | None:
        """The entry for ``addr``, if known."""
        return self._peers.get(addr)

    def is_banned(self, addr: PeerAddr, peer_id: bytes | None = None) -> bool:
        """True if ``addr`` (or ``peer_id``) is banned."""
        if addr in self._banned_addrs or addr.ip in self._banned_ips:
            return True
        return peer_id is not None and peer_id in self._banned_ids

    def ban(self, addr: PeerAddr, peer_id: bytes | None = None) -> None:
        """Ban ``addr`` (its IP, unless the IP is shared) and ``peer_id``; it is forgotten too."""
        if (
            len(self._banned_addrs) + len(self._banned_ips) + len(self._banned_ids)
            >= self.max_banned
        ):
            return
        if _shared_ip(addr.ip):
            self._banned_addrs.add(addr)
        else:
            self._banned_ips.add(addr.ip)
            # every other port of that IP goes too
            for other in [a for a in self._peers if a.ip == addr.ip]:
                del self._peers[other]
        if peer_id is not None:
            self._banned_ids.add(peer_id)
        self._peers.pop(addr, None)

    def add(self, addr: PeerAddr, source: str, now: float) -> bool:
        """Remember a candidate; False if it was known, banned, or the list is full of better ones."""
        if addr.port == 0 or self.is_banned(addr):
            return False
        if addr in self._peers:
            return False
        if len(self._peers) >= self.max_size and not self._evict():
            self._dropped_full += 1
            return False
        self._peers[addr] = PeerEntry(addr, source, now)
        return True

    def _evict(self) -> bool:
        victim: PeerEntry | None = None
        for e in self._peers.values():
            if e.connected or e.connecting:
                continue
            if victim is None or (e.failures, -e.added) > (victim.failures, -victim.added):
                victim = e
        if victim is None:
            return False
        del self._peers[victim.addr]
        return True

    def candidates(self, now: float, limit: int) -> list[PeerAddr]:
        """Up to ``limit`` peers to dial now (marked connecting), fewest failures first."""
        ready = [
            e
            for e in self._peers.values()
            if not e.connected and not e.connecting and e.next_attempt <= now
        ]
        ready.sort(key=lambda e: (e.failures, e.seed, e.added))
        out = ready[: max(0, limit)]
        for e in out:
            e.connecting = True
        return [e.addr for e in out]

    def next_deadline(self) -> float | None:
        """The earliest time a backed-off peer becomes dialable, if any is waiting."""
        times = [
            e.next_attempt for e in self._peers.values() if not e.connected and not e.connecting
        ]
        return min(times) if times else None

    def connected(self, addr: PeerAddr, source: str, now: float) -> bool:
        """Record a connection (outgoing succeeded or incoming accepted); False if banned."""
        if self.is_banned(addr):
            return False
        e = self._peers.get(addr)
        if e is None:
            if len(self._peers) >= self.max_size and not self._evict():
                # still allow the connection; it just is not remembered as a candidate
                return True
            e = self._peers[addr] = PeerEntry(addr, source, now)
        e.connected = True
        e.connecting = False
        e.failures = 0
        return True

    def failed(self, addr: PeerAddr, now: float) -> None:
        """An outgoing attempt failed: back off, or forget after too many failures."""
        e = self._peers.get(addr)
        if e is None:
            return
        e.connecting = False
        e.connected = False
        e.failures += 1
        if e.failures >= self.max_failures:
            del self._peers[addr]
            return
        e.next_attempt = now + min(self.max_backoff, self.base_backoff * 2 ** (e.failures - 1))

    def disconnected(self, addr: PeerAddr, now: float, *, seed: bool = False) -> None:
        """A connection closed; it may be dialled again after a backoff."""
        e = self._peers.get(addr)
        if e is None:
            return
        was = e.connected
        e.connected = False
        e.connecting = False
        e.seed = seed
        if was:
            e.failures += 1
        if e.failures >= self.max_failures:
            del self._peers[addr]
            return
        e.next_attempt = now + min(
            self.max_backoff, self.base_backoff * 2 ** max(0, e.failures - 1)
        )

    def forget(self, addr: PeerAddr) -> None:
        """Drop ``addr`` (e.g. an incoming peer's ephemeral port, which cannot be dialled)."""
        self._peers.pop(addr, None)

    def statistics(self) -> PeerListStatistics:
        """A snapshot for status displays."""
        conn = sum(1 for e in self._peers.values() if e.connected)
        connecting = sum(1 for e in self._peers.values() if e.connecting)
        banned = len(self._banned_addrs) + len(self._banned_ips)
        return PeerListStatistics(len(self._peers), conn, connecting, banned, self._dropped_full)
