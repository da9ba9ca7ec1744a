"""The UDP tracker client (BEP 15): a trio shell over :mod:`._udp_codec`.

It sends through any :class:`torrio.core.DatagramEndpoint` and takes replies through
:meth:`UdpTrackerClient.datagram_received`, so a session can share one UDP socket among the DHT,
uTP and trackers; :func:`open_udp_tracker_client` binds a socket of its own instead.
Connection ids are cached per tracker address for 60 s; a request unanswered after
``retransmit_base * 2**n`` seconds is sent again (n = 0, 1, ... ``max_retransmits``); replies are
matched by transaction id *and* source address.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import secrets
import socket
import urllib.parse
from collections.abc import AsyncIterator, Callable, Sequence

import attrs
import trio

from torrio.core import DatagramEndpoint, SocketAddress

from ._errors import (
    TrackerBlocked,
    TrackerError,
    TrackerFailure,
    TrackerProtocolError,
    TrackerTimeout,
)
from ._types import AnnounceRequest, AnnounceResponse, ScrapeResponse
from ._udp_codec import (
    MAX_SCRAPE_HASHES,
    ConnectRequest,
    ConnectResponse,
    UdpAnnounce,
    UdpAnnounceReply,
    UdpError,
    UdpResponse,
    UdpScrape,
    UdpScrapeReply,
    decode_response,
    encode_request,
    response_transaction_id,
)

CONNECTION_ID_TTL = 60.0


@attrs.frozen
class UdpTrackerStatistics:
    """Counters of a :class:`UdpTrackerClient`."""

    sent: int
    received: int
    retransmits: int
    unmatched: int
    malformed: int
    pending: int
    cached_connection_ids: int


@attrs.define
class _Pending:
    addr: tuple[str, int]
    event: trio.Event = attrs.Factory(trio.Event)
    reply: bytes | None = None


def _norm_host(host: str) -> str:
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


async def resolve_udp_url(url: str) -> tuple[SocketAddress, bytes]:
    """Resolve ``udp://host:port/path?query`` to an address and the BEP 41 URL data."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "udp" or not parts.hostname:
        raise TrackerBlocked("not a udp:// tracker URL", url=url)
    try:
        port = parts.port
    except ValueError:
        raise TrackerBlocked("bad port in tracker URL", url=url) from None
    if not port:
        raise TrackerBlocked("udp:// tracker URL without a port", url=url)
    try:
        infos = await trio.socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise TrackerError(f"cannot resolve {parts.hostname}: {exc}", url=url) from exc
    if not infos:
        raise TrackerError(f"cannot resolve {parts.hostname}", url=url)
    host = _norm_host(str(infos[0][4][0]))
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return (host, port), path.encode()


class UdpTrackerClient:
    """Announce and scrape over UDP through a datagram endpoint.

    Feed every datagram from a tracker to :meth:`datagram_received` (non-blocking). Up to
    ``max_pending`` requests may be outstanding; more wait their turn.
    """

    def __init__(
        self,
        endpoint: DatagramEndpoint,
        *,
        retransmit_base: float = 15.0,
        max_retransmits: int = 8,
        connection_id_ttl: float = CONNECTION_ID_TTL,
        max_pending: int = 1024,
        max_cached_connections: int = 1024,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self._endpoint = endpoint
        self.retransmit_base = retransmit_base
        self.max_retransmits = max_retransmits
        self.connection_id_ttl = connection_id_ttl
        self._clock = clock
        self._slots = trio.Semaphore(max_pending)
        self._pending: dict[int, _Pending] = {}
        self._conn_ids: dict[tuple[str, int], tuple[int, float]] = {}
        self._max_cached = max_cached_connections
        self._sent = self._received = self._retransmits = self._unmatched = self._malformed = 0

    def statistics(self) -> UdpTrackerStatistics:
        """A snapshot of the counters."""
        return UdpTrackerStatistics(
            self._sent,
            self._received,
            self._retransmits,
            self._unmatched,
            self._malformed,
            len(self._pending),
            len(self._conn_ids),
        )

    def datagram_received(self, data: bytes, addr: SocketAddress) -> None:
        """Take one datagram from the socket (replies not awaited by anyone are counted, dropped)."""
        tid = response_transaction_id(data)
        if tid is None:
            self._malformed += 1
            return
        pending = self._pending.get(tid)
        if (
            pending is None
            or pending.reply is not None
            or pending.addr != (_norm_host(addr[0]), addr[1])
        ):
            self._unmatched += 1
            return
        self._received += 1
        pending.reply = bytes(data)
        pending.event.set()

    def is_reply(self, data: bytes, addr: SocketAddress) -> bool:
        """True if ``data`` from ``addr`` answers one of our outstanding requests (for routing)."""
        tid = response_transaction_id(data)
        pending = None if tid is None else self._pending.get(tid)
        return pending is not None and pending.addr == (_norm_host(addr[0]), addr[1])

    def _new_tid(self) -> int:
        while True:
            tid = secrets.randbits(32)
            if tid not in self._pending:
                return tid

    async def _exchange(
        self, addr: SocketAddress, build: Callable[[int], bytes], n: int, url: str
    ) -> UdpResponse | None:
        """Send one request and wait ``retransmit_base * 2**n``; None on timeout."""
        tid = self._new_tid()
        pending = _Pending((_norm_host(addr[0]), addr[1]))
        self._pending[tid] = pending
        try:
            await self._endpoint.sendto(build(tid), addr)
            self._sent += 1
            with trio.move_on_after(self.retransmit_base * 2**n):
                await pending.event.wait()
            if pending.reply is None:
                return None
            family = 6 if ":" in pending.addr[0] else 4
            if len(pending.reply) == 8 and pending.reply[:4] == b"\x00\x00\x00\x01":
                # opentracker's answer to a torrent it does not track: a bare announce header
                raise TrackerFailure("tracker refused the announce (empty reply)", url=url)
            try:
                reply = decode_response(pending.reply, family)
            except TrackerError as exc:
                self._malformed += 1
                raise TrackerProtocolError(exc.message, url=url) from exc
            if isinstance(reply, UdpError):
                self._conn_ids.pop(pending.addr, None)
                raise TrackerFailure(reply.message, url=url)
            return reply
        finally:
            del self._pending[tid]

    async def _request(
        self, url: str, addr: SocketAddress, build: Callable[[int, int], bytes]
    ) -> UdpResponse:
        key = (_norm_host(addr[0]), addr[1])
        async with self._slots:
            for n in range(self.max_retransmits + 1):
                if n:
                    self._retransmits += 1
                cached = self._conn_ids.get(key)
                now = self._clock()
                if cached is None or cached[1] <= now:
                    reply = await self._exchange(
                        addr, lambda tid: encode_request(ConnectRequest(tid)), n, url
                    )
                    if reply is None:
                        continue
                    if not isinstance(reply, ConnectResponse):
                        raise TrackerProtocolError("expected a connect response", url=url)
                    if len(self._conn_ids) >= self._max_cached:
                        self._conn_ids.pop(next(iter(self._conn_ids)))
                    cached = (reply.connection_id, self._clock() + self.connection_id_ttl)
                    self._conn_ids[key] = cached
                reply = await self._exchange(addr, functools.partial(build, cached[0]), n, url)
                if reply is not None:
                    return reply
            raise TrackerTimeout(f"no reply after {self.max_retransmits + 1} attempts", url=url)

    async def announce(self, url: str, request: AnnounceRequest) -> AnnounceResponse:
        """Announce to the UDP tracker at ``url``; raises a :class:`TrackerError` on failure."""
        addr, url_data = await resolve_udp_url(url)
        reply = await self._request(
            url, addr, lambda conn, tid: encode_request(UdpAnnounce(conn, tid, request, url_data))
        )
        if not isinstance(reply, UdpAnnounceReply):
            raise TrackerProtocolError("expected an announce response", url=url)
        return AnnounceResponse(
            interval=reply.interval,
            peers=reply.peers,
            complete=reply.seeders,
            incomplete=reply.leechers,
        )

    async def scrape(self, url: str, info_hashes: Sequence[bytes]) -> ScrapeResponse:
        """Scrape up to 74 info-hashes at the UDP tracker ``url``."""
        hashes = tuple(info_hashes)
        if not hashes or len(hashes) > MAX_SCRAPE_HASHES:
            raise TrackerBlocked(
                f"a UDP scrape takes 1 to {MAX_SCRAPE_HASHES} info-hashes", url=url
            )
        addr, _ = await resolve_udp_url(url)
        reply = await self._request(
            url, addr, lambda conn, tid: encode_request(UdpScrape(conn, tid, hashes))
        )
        if not isinstance(reply, UdpScrapeReply) or len(reply.entries) != len(hashes):
            raise TrackerProtocolError(
                "expected a scrape response with one entry per info-hash", url=url
            )
        return ScrapeResponse(dict(zip(hashes, reply.entries, strict=True)))


class SocketEndpoint:
    """A :class:`DatagramEndpoint` over a trio UDP socket (dual-stack when bound to ``::``)."""

    def __init__(self, sock: trio.socket.SocketType) -> None:
        self.socket = sock
        self._v6 = sock.family == socket.AF_INET6

    async def sendto(self, data: bytes, addr: SocketAddress) -> None:
        """Send one datagram (IPv4 targets are mapped when the socket is IPv6)."""
        host = addr[0]
        if self._v6 and ":" not in host:
            host = f"::ffff:{host}"
        await self.socket.sendto(data, (host, addr[1]))

    @property
    def local_address(self) -> SocketAddress:
        """The bound ``(host, port)``."""
        name = self.socket.getsockname()
        return (str(name[0]), int(name[1]))


async def bind_udp_socket(host: str, port: int = 0) -> trio.socket.SocketType:
    """A trio UDP socket bound to ``host:port`` (``::`` is dual-stack where the OS allows)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = trio.socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        await sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


async def pump_datagrams(
    sock: trio.socket.SocketType, handler: Callable[[bytes, SocketAddress], None]
) -> None:
    """Read datagrams from ``sock`` for ever, handing each to ``handler(data, (host, port))``."""
    while True:
        try:
            data, addr = await sock.recvfrom(65536)
        except ConnectionResetError:  # ICMP port unreachable on some platforms
            continue
        handler(data, (_norm_host(str(addr[0])), int(addr[1])))


@contextlib.asynccontextmanager
async def open_udp_tracker_client(
    host: str = "0.0.0.0", port: int = 0, **options: float | int
) -> AsyncIterator[UdpTrackerClient]:
    """A :class:`UdpTrackerClient` on a socket of its own, bound to ``host:port``.

    ``options`` are :class:`UdpTrackerClient`'s keyword arguments (``retransmit_base`` ...).
    """
    sock = await bind_udp_socket(host, port)
    with sock:
        client = UdpTrackerClient(SocketEndpoint(sock), **options)  # type: ignore[arg-type]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pump_datagrams, sock, client.datagram_received)
            try:
                yield client
            finally:
                nursery.cancel_scope.cancel()
