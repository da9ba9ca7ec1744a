"""Peer exchange (BEP 11, ut_pex) policy for one torrent: what to send and what to believe.

Sans-I/O, time as ``now``. Built on :class:`torrio.wire.PexState` (per-connection diff of what we
told the peer, at most one message per ``min_interval``, ``send_limit`` added entries a message)
and :class:`torrio.wire.UtPex` (the codec).

Sending: the session keeps the set of peers it is connected to with their BEP 11 flags
(:func:`torrio.wire.pex_flags_for`: encryption, seed, uTP, reachable) and calls
:meth:`TorrentPex.build` for each connection when :meth:`TorrentPex.next_deadline` passes. The
recipient itself is never listed to itself, and the advertised set is capped at ``max_advertised``.

Receiving: :meth:`TorrentPex.receive` filters a peer's ut_pex message into new candidates. A
source sending faster than BEP 11 allows (one message a minute, 10% jitter grace) gets a strike and
its message is ignored; after ``max_violations`` strikes the source is ignored for good (a flooding
peer). Each message contributes at most ``max_taken_per_message`` peers and each source at most
``max_per_source`` over the connection's life; unusable addresses (port 0, unspecified, multicast,
our own) are dropped, and so are further ports of a public IP already listed in the message
(BEP 11's advice against being used to flood a victim).

Private torrents (BEP 27): ``TorrentPex(private=True)`` never builds nor accepts anything; the
session must also leave ``ut_pex`` out of the extended handshake (:func:`pex_extension_ids`).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Generic, TypeVar

import attrs

from torrio.core import PeerAddr
from torrio.wire import (
    DEFAULT_LOCAL_IDS,
    PEX_MIN_INTERVAL,
    PEX_SEND_LIMIT,
    UT_PEX,
    PexFlags,
    PexPeer,
    PexState,
    UtPex,
)

K = TypeVar("K", bound=Hashable)

#: Most peers we put in our advertised set (libtorrent keeps a few hundred per torrent).
DEFAULT_MAX_ADVERTISED = 200
#: Most candidates taken from one received message.
DEFAULT_MAX_TAKEN_PER_MESSAGE = 50
#: Most candidates taken from one source over a connection's life.
DEFAULT_MAX_PER_SOURCE = 500
#: Early messages tolerated before a source is ignored for good.
DEFAULT_MAX_VIOLATIONS = 3


def pex_extension_ids(private: bool) -> dict[str, int]:
    """The extension ids to advertise: the defaults, minus ut_pex for a private torrent."""
    ids = dict(DEFAULT_LOCAL_IDS)
    if private:
        ids.pop(UT_PEX, None)
    return ids


def pex_listen_addr(addr: PeerAddr, *, incoming: bool, listen_port: int | None) -> PeerAddr | None:
    """The address to advertise for a connected peer, or None if we do not know one.

    We dialed ``addr`` (outgoing): it listens there. It dialed us (incoming): ``addr`` has an
    ephemeral source port, so only the ``p`` of its extended handshake (``listen_port``) helps.
    """
    if not incoming:
        return addr
    if listen_port is None or not 0 < listen_port < 65536:
        return None
    return PeerAddr(addr.ip, listen_port)


@attrs.frozen
class PexStatistics:
    """A snapshot of a :class:`TorrentPex`."""

    enabled: bool
    connections: int
    messages_sent: int
    added_sent: int
    dropped_sent: int
    messages_received: int
    messages_ignored: int
    peers_received: int
    peers_accepted: int
    ignored_sources: int


@attrs.define
class _Source:
    last: float | None = None
    violations: int = 0
    taken: int = 0


class TorrentPex(Generic[K]):
    """ut_pex policy of one torrent; ``K`` names a connection (see the module docstring)."""

    def __init__(
        self,
        *,
        private: bool = False,
        min_interval: float = PEX_MIN_INTERVAL,
        send_limit: int = PEX_SEND_LIMIT,
        max_advertised: int = DEFAULT_MAX_ADVERTISED,
        max_taken_per_message: int = DEFAULT_MAX_TAKEN_PER_MESSAGE,
        max_per_source: int = DEFAULT_MAX_PER_SOURCE,
        max_violations: int = DEFAULT_MAX_VIOLATIONS,
        own_addresses: Iterable[PeerAddr] = (),
    ) -> None:
        self.private = private
        self.min_interval = min_interval
        self.send_limit = send_limit
        self.max_advertised = max_advertised
        self.max_taken_per_message = max_taken_per_message
        self.max_per_source = max_per_source
        self.max_violations = max_violations
        self.own_addresses = set(own_addresses)
        self._send: dict[K, PexState] = {}
        self._recv: dict[K, _Source] = {}
        self._ignored: set[K] = set()
        self._sent = self._added = self._dropped = 0
        self._received = self._ignored_msgs = self._peers_in = self._accepted = 0

    @property
    def enabled(self) -> bool:
        """False for private torrents: nothing is sent or taken."""
        return not self.private

    # -- connections -------------------------------------------------------------------------

    def connection_opened(self, conn: K) -> None:
        """A connection whose peer advertised ut_pex is up."""
        if self.enabled:
            self._send.setdefault(
                conn, PexState(min_interval=self.min_interval, send_limit=self.send_limit)
            )
            self._recv.setdefault(conn, _Source())

    def connection_closed(self, conn: K) -> None:
        """Forget the connection (its flood record too: a reconnect starts afresh)."""
        self._send.pop(conn, None)
        self._recv.pop(conn, None)
        self._ignored.discard(conn)

    # -- sending -----------------------------------------------------------------------------

    def next_deadline(self, conn: K) -> float | None:
        """When :meth:`build` may next produce a message for ``conn`` (None: not a PEX peer)."""
        st = self._send.get(conn)
        if st is None:
            return None
        d = st.next_deadline()
        return 0.0 if d is None else d

    def build(
        self,
        conn: K,
        connected: Mapping[PeerAddr, PexFlags],
        now: float,
        *,
        recipient: PeerAddr | None = None,
    ) -> UtPex | None:
        """The ut_pex message to send ``conn`` now, or None (too early, nothing new, disabled).

        ``connected`` maps the listen addresses of our current peers to their flags; peers whose
        listen port we do not know should be left out by the caller. ``recipient`` (the peer's own
        listen address) is never listed to it.
        """
        st = self._send.get(conn)
        if st is None:
            return None
        current: dict[PeerAddr, PexFlags] = {}
        for addr, flags in connected.items():
            if addr == recipient or addr.port == 0:
                continue
            current[addr] = flags
            if len(current) >= self.max_advertised:
                break
        msg = st.build(current, now)
        if msg is not None:
            self._sent += 1
            self._added += len(msg.added)
            self._dropped += len(msg.dropped)
        return msg

    # -- receiving ---------------------------------------------------------------------------

    def is_ignored(self, conn: K) -> bool:
        """Has ``conn`` been flooding us (its ut_pex is ignored until it reconnects)?"""
        return conn in self._ignored

    def receive(self, conn: K, message: UtPex, now: float) -> list[PexPeer]:
        """New candidates from ``conn``'s message (possibly none; see the module docstring)."""
        self._received += 1
        if not self.enabled or conn in self._ignored:
            self._ignored_msgs += 1
            return []
        src = self._recv.setdefault(conn, _Source())
        if src.last is not None and now - src.last < self.min_interval * 0.9:
            src.violations += 1
            self._ignored_msgs += 1
            if src.violations >= self.max_violations:
                self._ignored.add(conn)
            return []
        src.last = now
        self._peers_in += len(message.added)
        room = min(self.max_taken_per_message, self.max_per_source - src.taken)
        out: list[PexPeer] = []
        seen: set[PeerAddr] = set()
        seen_ips: set[object] = set()
        for p in message.added:
            if len(out) >= room:
                break
            a = p.addr
            ip = a.ip
            if (
                a.port == 0 or ip.is_unspecified or ip.is_multicast or a in self.own_addresses
                or a in seen or (ip.version == 4 and ip.packed == b"\xff\xff\xff\xff")
            ):  # fmt: skip
                continue
            # BEP 11: one IP listed with many ports is ignored (a DDoS lever), except on
            # loopback and private networks where several peers do share an address
            shared = ip.is_loopback or ip.is_private or ip.is_link_local
            if not shared and ip in seen_ips:
                continue
            seen.add(a)
            seen_ips.add(ip)
            out.append(p)
        src.taken += len(out)
        self._accepted += len(out)
        return out

    def statistics(self) -> PexStatistics:
        """Counters since creation."""
        return PexStatistics(
            enabled=self.enabled,
            connections=len(self._send),
            messages_sent=self._sent,
            added_sent=self._added,
            dropped_sent=self._dropped,
            messages_received=self._received,
            messages_ignored=self._ignored_msgs,
            peers_received=self._peers_in,
            peers_accepted=self._accepted,
            ignored_sources=len(self._ignored),
        )
