"""Local service discovery (BEP 14): BT-SEARCH announces over LAN multicast.

Sans-I/O core (no trio, sockets or clocks; ``now`` is passed in):

* :class:`LsdAnnounce` — the message, with :meth:`~LsdAnnounce.to_bytes` and a strict
  :meth:`~LsdAnnounce.from_bytes` (size, header count and line limits; 40-hex info-hashes; our
  own :class:`LsdError` for anything else);
* :class:`LsdAnnouncer` — which datagram to send when: each torrent at most once per
  ``interval`` (5 minutes), and at most one datagram per ``min_gap`` seconds overall (60: BEP 14
  asks for no more than one announce a minute), up to ``max_per_message`` info-hashes per
  datagram (BEP 14's answer for many torrents; the torrents due longest go first);
* :class:`LsdReceiver` — turns a received datagram into ``(info_hash, PeerAddr)`` pairs for the
  torrents we have, ignoring our own cookie, repeating announces (same source, port and torrent
  within ``repeat_interval``) and sources sending more than ``max_per_minute`` datagrams.

Trio shell: ``async with open_lsd(listen_port) as lsd`` joins 239.192.152.143:6771 (and
[ff15::efc0:988f]:6771 where the host can; or the IPv6 group alone with ``group=None``) and runs
the sender and receiver for the duration of the block; ``lsd.announce(info_hash)`` /
``lsd.remove(info_hash)``; discovered peers come out of ``async for peer in lsd`` (a bounded
channel: when the consumer lags, discoveries are dropped and counted, as LSD is best-effort
anyway). Each datagram names the group it is sent to in its ``Host`` header
(``239.192.152.143:6771`` or ``[ff15::efc0:988f]:6771``), as BEP 14 asks. The group, port and
interface are parameters, so tests run on loopback: IPv4 multicast with
``interface="127.0.0.1"`` (IP_MULTICAST_IF + IP_MULTICAST_LOOP) works on Linux's ``lo``. IPv6
multicast on ``lo`` fails with ENETUNREACH unless the host routes ff00::/8 to ``lo`` as a *local*
route (``ip -6 route add local ff00::/8 dev lo table local``: a plain unicast route through
``lo`` is turned into a reject route by the kernel); the test suite does that inside a fresh
network namespace. When the IPv6 socket cannot be set up alongside IPv4, that is not fatal and
is reported in :meth:`LsdService.statistics`.

The session must not announce private torrents (BEP 27) and honours ``--no-lsd`` by not opening
the service. Info-hashes are 20-byte wire ids (v1, or the truncated v2 for v2-only torrents —
``InfoHash.wire``), as libtorrent announces them.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Container
from typing import TYPE_CHECKING, Any

import attrs

from torrio.core import PeerAddr

from ._errors import ClientError

if TYPE_CHECKING:
    import trio

#: BEP 14 IPv4 group and port.
LSD_GROUP_V4 = ("239.192.152.143", 6771)
#: BEP 14 IPv6 group and port.
LSD_GROUP_V6 = ("ff15::efc0:988f", 6771)
#: Largest datagram we send or parse.
MAX_MESSAGE_SIZE = 1400
#: Most Infohash headers accepted in one message.
MAX_INFOHASHES = 32
#: Seconds between two announces of one torrent (BEP 14: not more than once every 5 minutes).
ANNOUNCE_INTERVAL = 300.0
#: Default seconds between two datagrams, all torrents together (BEP 14: at most one a minute).
DEFAULT_MIN_GAP = 60.0
#: Default info-hashes per datagram (20 keep a message under 1400 bytes with room to spare).
DEFAULT_MAX_PER_MESSAGE = 20

_REQUEST_LINE = "BT-SEARCH * HTTP/1.1"
_HEX40 = re.compile(r"[0-9a-fA-F]{40}")
_COOKIE = re.compile(r"[!-~]{1,64}")


class LsdError(ClientError):
    """A BT-SEARCH message that does not parse (or an LSD socket that cannot be set up)."""


@attrs.frozen
class LsdAnnounce:
    """One BT-SEARCH message: ``port`` is the sender's BitTorrent listen port."""

    host: str
    port: int
    info_hashes: tuple[bytes, ...]
    cookie: str | None = None

    def to_bytes(self) -> bytes:
        """The datagram (LsdError if it would exceed :data:`MAX_MESSAGE_SIZE`)."""
        lines = [_REQUEST_LINE, f"Host: {self.host}", f"Port: {self.port}"]
        lines += [f"Infohash: {ih.hex()}" for ih in self.info_hashes]
        if self.cookie is not None:
            lines.append(f"cookie: {self.cookie}")
        data = ("\r\n".join(lines) + "\r\n\r\n\r\n").encode("ascii")
        if len(data) > MAX_MESSAGE_SIZE:
            raise LsdError(f"BT-SEARCH message of {len(data)} bytes is too large")
        return data

    @classmethod
    def from_bytes(cls, data: bytes) -> LsdAnnounce:
        """Parse a datagram strictly (LsdError on anything unexpected)."""
        if len(data) > MAX_MESSAGE_SIZE:
            raise LsdError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_SIZE}")
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            raise LsdError("message is not ASCII") from None
        head, sep, _rest = text.partition("\r\n\r\n")
        if not sep:
            raise LsdError("message does not end its headers with an empty line")
        lines = head.split("\r\n")
        if lines[0] != _REQUEST_LINE:
            raise LsdError(f"not a BT-SEARCH request: {lines[0][:40]!r}")
        if len(lines) - 1 > MAX_INFOHASHES + 8:
            raise LsdError("too many headers")
        host: str | None = None
        port: int | None = None
        cookie: str | None = None
        hashes: list[bytes] = []
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip():
                raise LsdError(f"malformed header line {line[:40]!r}")
            key = name.lower()
            value = value.strip()
            if key == "host":
                host = value
            elif key == "port":
                if not value.isdigit() or len(value) > 5 or not 0 < int(value) < 65536:
                    raise LsdError(f"bad Port {value[:20]!r}")
                port = int(value)
            elif key == "infohash":
                if not _HEX40.fullmatch(value):
                    raise LsdError(f"bad Infohash {value[:50]!r}")
                if len(hashes) >= MAX_INFOHASHES:
                    raise LsdError("too many Infohash headers")
                hashes.append(bytes.fromhex(value))
            elif key == "cookie":
                if not _COOKIE.fullmatch(value):
                    raise LsdError("bad cookie")
                cookie = value
            # other headers are allowed and ignored (BEP 14 leaves room for extensions)
        if host is None or port is None or not hashes:
            raise LsdError("Host, Port and at least one Infohash are required")
        return cls(host, port, tuple(hashes), cookie)


def _host_header(group: tuple[str, int]) -> str:
    ip, port = group
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@attrs.define
class LsdAnnouncer:
    """When to send which BT-SEARCH datagram (see the module docstring)."""

    listen_port: int
    cookie: str
    host: str = _host_header(LSD_GROUP_V4)
    interval: float = ANNOUNCE_INTERVAL
    min_gap: float = DEFAULT_MIN_GAP
    max_per_message: int = DEFAULT_MAX_PER_MESSAGE
    _due: dict[bytes, float] = attrs.field(factory=dict)
    _last_sent: float | None = None
    _sent: int = 0

    def add(self, info_hash: bytes) -> None:
        """Announce this torrent (first announce as soon as the overall gap allows)."""
        if len(info_hash) != 20:
            raise ValueError("LSD announces 20-byte info-hashes")
        self._due.setdefault(info_hash, -float("inf"))

    def remove(self, info_hash: bytes) -> None:
        """Stop announcing this torrent."""
        self._due.pop(info_hash, None)

    def __contains__(self, info_hash: object) -> bool:
        return info_hash in self._due

    @property
    def info_hashes(self) -> frozenset[bytes]:
        """The torrents being announced."""
        return frozenset(self._due)

    def next_deadline(self) -> float | None:
        """When :meth:`poll` will next have a datagram (None: no torrents)."""
        if not self._due:
            return None
        due = min(self._due.values())
        if self._last_sent is not None:
            due = max(due, self._last_sent + self.min_gap)
        return due

    def poll(self, now: float) -> bytes | None:
        """The datagram to send now (with this announcer's ``host``), or None."""
        msg = self.poll_announce(now)
        return None if msg is None else msg.to_bytes()

    def poll_announce(self, now: float) -> LsdAnnounce | None:
        """The message to send now, or None (the shell sets ``Host`` per group it sends to)."""
        if self._last_sent is not None and now < self._last_sent + self.min_gap:
            return None
        ready = sorted((t, ih) for ih, t in self._due.items() if t <= now)
        if not ready:
            return None
        batch = [ih for _, ih in ready[: self.max_per_message]]
        for ih in batch:
            self._due[ih] = now + self.interval
        self._last_sent = now
        self._sent += 1
        return LsdAnnounce(self.host, self.listen_port, tuple(batch), self.cookie)


@attrs.frozen
class LsdPeer:
    """A peer found by LSD: it has ``info_hash`` (20-byte wire id) and listens at ``addr``."""

    info_hash: bytes
    addr: PeerAddr


@attrs.frozen
class LsdReceiverStatistics:
    """A snapshot of an :class:`LsdReceiver`."""

    received: int
    malformed: int
    own: int
    rate_limited: int
    repeats: int
    uninteresting: int
    delivered: int


@attrs.define
class LsdReceiver:
    """Filters received BT-SEARCH datagrams (see the module docstring)."""

    cookie: str
    repeat_interval: float = 60.0
    max_per_minute: int = 20
    max_sources: int = 1024
    _sources: OrderedDict[str, list[float]] = attrs.field(factory=OrderedDict)
    _recent: OrderedDict[tuple[bytes, PeerAddr], float] = attrs.field(factory=OrderedDict)
    _counts: dict[str, int] = attrs.field(factory=dict)

    def _count(self, what: str) -> None:
        self._counts[what] = self._counts.get(what, 0) + 1

    def handle(
        self, data: bytes, source_ip: str, now: float, interested: Container[bytes]
    ) -> list[LsdPeer]:
        """The peers a datagram from ``source_ip`` announces for torrents in ``interested``."""
        self._count("received")
        try:
            msg = LsdAnnounce.from_bytes(data)
        except LsdError:
            self._count("malformed")
            return []
        if msg.cookie is not None and msg.cookie == self.cookie:
            self._count("own")
            return []
        times = self._sources.pop(source_ip, [])
        times = [t for t in times if now - t < 60.0]
        if len(times) >= self.max_per_minute:
            self._sources[source_ip] = times
            self._count("rate_limited")
            return []
        times.append(now)
        self._sources[source_ip] = times
        while len(self._sources) > self.max_sources:
            self._sources.popitem(last=False)
        try:
            addr = PeerAddr(source_ip.split("%", 1)[0], msg.port)
        except (ValueError, TypeError):
            self._count("malformed")
            return []
        out: list[LsdPeer] = []
        for ih in msg.info_hashes:
            if ih not in interested:
                self._count("uninteresting")
                continue
            key = (ih, addr)
            last = self._recent.pop(key, None)
            self._recent[key] = now if last is None or now - last >= self.repeat_interval else last
            if last is not None and now - last < self.repeat_interval:
                self._count("repeats")
                continue
            out.append(LsdPeer(ih, addr))
        while len(self._recent) > self.max_sources * 4:
            self._recent.popitem(last=False)
        self._counts["delivered"] = self._counts.get("delivered", 0) + len(out)
        return out

    def statistics(self) -> LsdReceiverStatistics:
        """Counters since creation."""
        c = self._counts
        return LsdReceiverStatistics(
            c.get("received", 0), c.get("malformed", 0), c.get("own", 0),
            c.get("rate_limited", 0), c.get("repeats", 0), c.get("uninteresting", 0),
            c.get("delivered", 0),
        )  # fmt: skip


def new_cookie() -> str:
    """A random cookie identifying our own announces."""
    return os.urandom(6).hex()


# -- trio shell ----------------------------------------------------------------------------------


@attrs.frozen
class LsdStatistics:
    """A snapshot of an :class:`LsdService`."""

    announcing: int
    datagrams_sent: int
    send_errors: int
    dropped: int
    ipv6: bool
    ipv6_error: str | None
    receiver: LsdReceiverStatistics


class LsdService:
    """A running LSD service; create with :func:`open_lsd`. Iterate it for :class:`LsdPeer`."""

    def __init__(self, announcer: LsdAnnouncer, receiver: LsdReceiver, buffer: int) -> None:
        import trio

        self.announcer = announcer
        self.receiver = receiver
        self._send, self._recv = trio.open_memory_channel[LsdPeer](buffer)
        self._changed = trio.Event()
        self._sent = 0
        self._errors = 0
        self._dropped = 0
        self._ipv6_error: str | None = None
        self._ipv6 = False

    def announce(self, info_hash: bytes) -> None:
        """Start announcing a (non-private) torrent and accepting its peers."""
        self.announcer.add(info_hash)
        self._changed.set()

    def remove(self, info_hash: bytes) -> None:
        """Stop announcing a torrent and ignore its peers."""
        self.announcer.remove(info_hash)

    def __aiter__(self) -> AsyncIterator[LsdPeer]:
        return self._recv.__aiter__()

    async def receive(self) -> LsdPeer:
        """The next discovered peer."""
        return await self._recv.receive()

    def statistics(self) -> LsdStatistics:
        """Counters and the state of the IPv6 socket."""
        return LsdStatistics(
            announcing=len(self.announcer.info_hashes),
            datagrams_sent=self._sent,
            send_errors=self._errors,
            dropped=self._dropped,
            ipv6=self._ipv6,
            ipv6_error=self._ipv6_error,
            receiver=self.receiver.statistics(),
        )

    async def _sender(self, targets: list[tuple[Any, tuple[Any, ...]]]) -> None:
        import trio

        while True:
            # a fresh event before polling: an announce() during the sends below wakes us
            changed = self._changed = trio.Event()
            msg = self.announcer.poll_announce(trio.current_time())
            if msg is not None:
                self._sent += 1
                for sock, dest in targets:
                    # BEP 14: Host names the group the datagram goes to (v4 or v6)
                    data = attrs.evolve(msg, host=_host_header((dest[0], dest[1]))).to_bytes()
                    try:
                        await sock.sendto(data, dest)
                    except OSError:
                        self._errors += 1
            deadline = self.announcer.next_deadline()
            with trio.move_on_at(float("inf") if deadline is None else deadline):
                await changed.wait()

    async def _receiver(self, sock: Any) -> None:
        import trio

        while True:
            try:
                data, src = await sock.recvfrom(MAX_MESSAGE_SIZE + 1)
            except OSError:  # e.g. an ICMP error surfacing on the socket: not fatal, not a spin
                await trio.sleep(0.1)
                continue
            peers = self.receiver.handle(
                data, src[0], trio.current_time(), self.announcer.info_hashes
            )
            for p in peers:
                try:
                    self._send.send_nowait(p)
                except trio.WouldBlock:
                    self._dropped += 1


def _v4_socket(group: tuple[str, int], interface: str) -> trio.socket.SocketType:
    import socket

    import trio

    s = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        mreq = socket.inet_aton(group[0]) + socket.inet_aton(interface)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    except OSError:
        s.close()
        raise
    return s


def _v6_socket(group: tuple[str, int], if_index: int) -> trio.socket.SocketType:
    import socket
    import struct

    import trio

    s = trio.socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        mreq = socket.inet_pton(socket.AF_INET6, group[0]) + struct.pack("@I", if_index)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, if_index)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
    except OSError:
        s.close()
        raise
    return s


@contextlib.asynccontextmanager
async def open_lsd(
    listen_port: int,
    *,
    group: tuple[str, int] | None = LSD_GROUP_V4,
    interface: str = "0.0.0.0",
    group_v6: tuple[str, int] | None = LSD_GROUP_V6,
    interface_v6: int = 0,
    cookie: str | None = None,
    interval: float = ANNOUNCE_INTERVAL,
    min_gap: float = DEFAULT_MIN_GAP,
    max_per_message: int = DEFAULT_MAX_PER_MESSAGE,
    buffer: int = 64,
) -> AsyncIterator[LsdService]:
    """Run LSD for the duration of the block (see the module docstring).

    ``listen_port`` is our BitTorrent port (the ``Port`` header). ``group``/``interface`` choose
    the IPv4 multicast group, port and the local address whose interface joins it (None: IPv6
    only); ``group_v6``/``interface_v6`` (an interface index; 0 = default) the IPv6 one (None:
    IPv4 only). Raises LsdError if the IPv4 socket cannot be set up, or with ``group=None`` the
    IPv6 one; with both, an IPv6 failure is only reported in :meth:`LsdService.statistics`.
    """
    import trio

    first = group if group is not None else group_v6
    if first is None:
        raise LsdError("LSD needs an IPv4 or an IPv6 group")
    cookie = cookie or new_cookie()
    announcer = LsdAnnouncer(
        listen_port, cookie, _host_header(first), interval, min_gap, max_per_message
    )
    service = LsdService(announcer, LsdReceiver(cookie), buffer)
    socks: list[trio.socket.SocketType] = []
    targets: list[tuple[Any, tuple[Any, ...]]] = []
    if group is not None:
        try:
            s4 = _v4_socket(group, interface)
            await s4.bind(("", group[1]))
        except OSError as exc:
            raise LsdError(f"cannot join LSD group {group[0]}:{group[1]}: {exc}") from None
        socks.append(s4)
        targets.append((s4, group))
    if group_v6 is not None:
        try:
            s6 = _v6_socket(group_v6, interface_v6)
            try:
                await s6.bind(("::", group_v6[1]))
            except OSError:
                s6.close()
                raise
            socks.append(s6)
            targets.append((s6, (group_v6[0], group_v6[1], 0, interface_v6)))
            service._ipv6 = True
        except OSError as exc:
            service._ipv6_error = str(exc)
            if group is None:
                for s_ in socks:
                    s_.close()
                raise LsdError(
                    f"cannot join LSD group [{group_v6[0]}]:{group_v6[1]}: {exc}"
                ) from None
    try:
        async with trio.open_nursery() as nursery:
            for s in socks:
                nursery.start_soon(service._receiver, s)
            nursery.start_soon(service._sender, targets)
            try:
                yield service
            finally:
                nursery.cancel_scope.cancel()
    finally:
        for s in socks:
            s.close()
        service._send.close()
