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
import socket
import urllib.parse
from collections.abc import AsyncIterator, Callable, Sequence

import trio

from torrio.core import DatagramEndpoint, SocketAddress

from ._errors import TrackerBlocked, TrackerError, TrackerProtocolError
from ._types import AnnounceRequest, AnnounceResponse, ScrapeResponse
from ._udp_codec import (
    MAX_SCRAPE_HASHES,
    UdpAnnounce,
    UdpAnnounceReply,
    UdpResponse,
    UdpScrape,
    UdpScrapeReply,
    encode_request,
)
from ._udp_transactions import (
    RequestBuilder,
    UdpTrackerProtocol,
    UdpTrackerStatistics,
    UdpTransaction,
    normalize_address,
)

CONNECTION_ID_TTL = 60.0


def _norm_host(host: str) -> str:
    return normalize_address((host, 0))[0]


async def resolve_udp_url(url: str) -> tuple[SocketAddress, bytes]:
    """Resolve ``udp://host:port/path?query`` to an address and the BEP 41 URL data."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        raise TrackerBlocked("malformed tracker URL", url=url) from None
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
    except (OSError, UnicodeError) as exc:  # UnicodeError: a host name IDNA cannot encode
        raise TrackerError(f"cannot resolve {parts.hostname}: {exc}", url=url) from exc
    if not infos:
        raise TrackerError(f"cannot resolve {parts.hostname}", url=url)
    host = _norm_host(str(infos[0][4][0]))
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return (host, port), path.encode()


class UdpTrackerClient:
    """Announce and scrape over UDP through a datagram endpoint.

    Feed every datagram from a tracker to :meth:`datagram_received` (non-blocking). Up to
    ``max_pending`` requests may be outstanding; more wait their turn. The protocol state lives
    in a pure :class:`UdpTrackerProtocol`; this shell sends its packets and sleeps to its deadlines.
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
    ) -> None:
        self._endpoint = endpoint
        self.protocol = UdpTrackerProtocol(
            retransmit_base=retransmit_base,
            max_retransmits=max_retransmits,
            connection_id_ttl=connection_id_ttl,
            max_cached_connections=max_cached_connections,
        )
        self._slots = trio.Semaphore(max_pending)
        self._wake: dict[UdpTransaction, trio.Event] = {}

    def statistics(self) -> UdpTrackerStatistics:
        """A snapshot of the counters."""
        return self.protocol.statistics()

    def datagram_received(self, data: bytes, addr: SocketAddress) -> None:
        """Take one datagram from the socket (replies not awaited by anyone are counted, dropped)."""
        tx = self.protocol.receive(bytes(data), addr, trio.current_time())
        if tx is not None:
            event = self._wake.get(tx)
            if event is not None:
                event.set()

    def is_reply(self, data: bytes, addr: SocketAddress) -> bool:
        """True if ``data`` from ``addr`` answers one of our outstanding requests (for routing)."""
        return self.protocol.is_reply(data, addr)

    async def _request(self, url: str, addr: SocketAddress, build: RequestBuilder) -> UdpResponse:
        async with self._slots:
            tx = self.protocol.start(addr, url, build, trio.current_time())
            try:
                while not tx.done:
                    event = self._wake[tx] = trio.Event()
                    packet = tx.take_outgoing()
                    if packet is not None:
                        try:
                            await self._endpoint.sendto(packet, addr)
                        except OSError as exc:  # unreachable network, wrong family ...
                            raise TrackerError(f"cannot send: {exc}", url=url) from exc
                    if not event.is_set():
                        with trio.move_on_at(tx.deadline):
                            await event.wait()
                    if not event.is_set():
                        self.protocol.timeout(tx, trio.current_time())
            finally:
                self._wake.pop(tx, None)
                self.protocol.abandon(tx)
            if tx.error is not None:
                raise tx.error
            assert tx.result is not None
            return tx.result

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
