"""UDP through a SOCKS5 proxy (RFC 1928 §7 UDP ASSOCIATE, RFC 1929 username/password).

A :class:`Socks5UdpAssociation` keeps a TCP control connection to the proxy open, asks it for a
UDP relay, and from then on every datagram goes to that relay with a SOCKS5 header naming its
real destination (:func:`wrap`); what the relay sends back carries a header naming its real
source (:func:`unwrap`). The association lives exactly as long as the control connection: when
the proxy closes it the relay is gone, the loss is reported (an :class:`AssociationLost` event
and :meth:`~Socks5UdpAssociation.statistics`), datagrams are dropped rather than sent directly,
and a new association is negotiated after a backoff (1 s, doubling up to 60 s).

Two ways to use it:

* **a shared socket** (the session's :class:`~torrio.client._udp_mux.UdpMux`): the socket's owner
  calls :meth:`~Socks5UdpAssociation.wrap_outgoing` on each outgoing datagram and sends the
  result to the relay, and :meth:`~Socks5UdpAssociation.unwrap_incoming` on each incoming one
  before routing it by shape. Both are plain synchronous calls (the :class:`UdpProxy` protocol);
  ``None`` from either means "drop it", so nothing ever leaks out around the proxy.
* **a socket of its own**: :func:`open_socks5_udp_endpoint` binds one and is a
  :class:`torrio.core.DatagramEndpoint` for a DHT node or a UDP tracker client, handing what
  arrives to one :class:`torrio.core.DatagramHandler`.

Only datagrams from the relay's address are accepted while proxied; everything else (a
spoofer's, or stale ones from a previous relay) is dropped and counted. Fragments are dropped.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import socket as stdsocket
from collections.abc import AsyncIterator
from typing import Final, Protocol

import attrs
import trio

from torrio.core import DatagramEndpoint, DatagramHandler, SocketAddress

from ._proxy import DEFAULT_CONNECT_TIMEOUT, ProxyConfig, ProxyError
from ._socks5 import (
    NEED_DATA,
    Socks5Fragment,
    Socks5Negotiation,
    encode_address,
    unwrap,
    wrap,
)

__all__ = [
    "AssociationEvent",
    "AssociationLost",
    "Associated",
    "Socks5UdpAssociation",
    "Socks5UdpAssociationStatistics",
    "Socks5UdpEndpoint",
    "UdpProxy",
    "open_socks5_udp_association",
    "open_socks5_udp_endpoint",
    "unwrap",
    "wrap",
]

RETRY_INITIAL: Final = 1.0
"""Seconds before the first attempt to re-associate after a loss (doubling on each failure)."""
RETRY_MAX: Final = 60.0
"""The longest wait between attempts; an association that held this long resets the backoff."""
_MAX_DATAGRAM: Final = 65536


class UdpProxy(Protocol):
    """What a shared UDP socket needs from a proxy: two synchronous routing calls."""

    def wrap_outgoing(
        self, data: bytes | memoryview, addr: SocketAddress
    ) -> tuple[bytes, SocketAddress] | None:
        """The datagram to send instead and where to (the relay); None: drop it."""
        ...

    def unwrap_incoming(
        self, data: bytes | memoryview, src: SocketAddress
    ) -> tuple[bytes | memoryview, SocketAddress] | None:
        """The payload and real source of a datagram from ``src`` (a ``memoryview`` in gives a
        ``memoryview`` of the same buffer out); None: drop it."""
        ...


@attrs.frozen
class Associated:
    """The proxy granted a UDP relay at ``relay`` (the first time, or again after a loss)."""

    relay: SocketAddress


@attrs.frozen
class AssociationLost:
    """The association failed or ended; UDP is dropped until a new one is made in ``retry_in`` s."""

    error: ProxyError
    retry_in: float


AssociationEvent = Associated | AssociationLost


@attrs.frozen
class Socks5UdpAssociationStatistics:
    """A snapshot of a :class:`Socks5UdpAssociation`'s state and counters."""

    relay: SocketAddress | None
    """The relay's address while associated, else None."""
    associations: int
    """Associations made (the first one and every re-association)."""
    failures: int
    """Associations lost and attempts that failed."""
    last_error: str | None
    """The message of the latest failure."""
    sent: int
    """Datagrams wrapped for the relay."""
    received: int
    """Datagrams from the relay unwrapped and passed on."""
    dropped_unassociated: int
    """Outgoing datagrams dropped because there was no relay at the time."""
    dropped_unsendable: int
    """Outgoing datagrams whose address cannot be written in a SOCKS5 header."""
    dropped_foreign: int
    """Incoming datagrams not from the relay (or while there was none)."""
    dropped_malformed: int
    """Datagrams from the relay with a bad header."""
    dropped_fragments: int
    """Datagrams from the relay with FRAG != 0."""
    dropped_events: int
    """Events not queued because nobody read :attr:`Socks5UdpAssociation.events`."""


@functools.lru_cache(maxsize=1024)
def _canonical(host: str) -> str:
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return ip.compressed


class Socks5UdpAssociation:
    """A SOCKS5 UDP association, renewed when it is lost. Run it with :meth:`run` (or
    :func:`open_socks5_udp_association`).

    ``endpoint`` (optional) is the raw socket :meth:`sendto` sends wrapped datagrams from; a shared
    socket that calls :meth:`wrap_outgoing` itself does not need it. ``client_addr`` is the
    DST.ADDR/DST.PORT of the UDP ASSOCIATE request (where we will send from; zeros: unknown).
    """

    def __init__(
        self,
        proxy: ProxyConfig,
        *,
        endpoint: DatagramEndpoint | None = None,
        client_addr: SocketAddress = ("0.0.0.0", 0),
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        retry_initial: float = RETRY_INITIAL,
        retry_max: float = RETRY_MAX,
        event_buffer: int = 16,
    ) -> None:
        if not proxy.supports_udp:
            raise ProxyError(
                f"a {proxy.scheme} proxy cannot carry UDP (only SOCKS5 can)",
                proxy=proxy.redacted(),
            )
        encode_address(*client_addr)  # ProxyError now rather than at the first association
        self.proxy = proxy
        self.endpoint = endpoint
        self.client_addr = client_addr
        self.connect_timeout = connect_timeout
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self._events_send, self.events = trio.open_memory_channel[AssociationEvent](event_buffer)
        """Associations made and lost, for whoever wants to report them (bounded; excess is
        dropped and counted)."""
        self._relay: SocketAddress | None = None
        self._associated = trio.Event()
        self._control: trio.SocketStream | None = None
        self._associations = self._failures = 0
        self._last_error: str | None = None
        self._sent = self._received = 0
        self._dropped_unassociated = self._dropped_unsendable = self._dropped_foreign = 0
        self._dropped_malformed = self._dropped_fragments = self._dropped_events = 0

    # -- routing (synchronous: called by whoever owns the socket) --------------------------------

    @property
    def relay(self) -> SocketAddress | None:
        """The relay's ``(host, port)`` while associated, else None."""
        return self._relay

    def wrap_outgoing(
        self, data: bytes | memoryview, addr: SocketAddress
    ) -> tuple[bytes, SocketAddress] | None:
        """``(datagram for the relay, relay address)``; None (counted) while not associated or
        when ``addr`` cannot be written in a SOCKS5 header."""
        relay = self._relay
        if relay is None:
            self._dropped_unassociated += 1
            return None
        try:
            packet = wrap(data, addr)
        except ProxyError:
            self._dropped_unsendable += 1
            return None
        self._sent += 1
        return packet, relay

    def unwrap_incoming(
        self, data: bytes | memoryview, src: SocketAddress
    ) -> tuple[bytes | memoryview, SocketAddress] | None:
        """``(payload, real source)`` of a datagram the relay sent; None (counted) for datagrams
        from anyone else, fragments and malformed headers."""
        relay = self._relay
        if relay is None or (src != relay and (_canonical(src[0]), src[1]) != relay):
            self._dropped_foreign += 1
            return None
        try:
            payload, addr = unwrap(data)
        except Socks5Fragment:
            self._dropped_fragments += 1
            return None
        except ProxyError:
            self._dropped_malformed += 1
            return None
        self._received += 1
        return payload, addr

    async def sendto(self, data: bytes, addr: SocketAddress) -> None:
        """Send ``data`` to ``addr`` through the relay from :attr:`endpoint`
        (:class:`~torrio.core.DatagramEndpoint`); dropped while not associated."""
        if self.endpoint is None:
            raise ProxyError("this association has no endpoint to send from")
        routed = self.wrap_outgoing(data, addr)
        if routed is None:
            await trio.lowlevel.checkpoint()
            return
        await self.endpoint.sendto(*routed)

    # -- the control connection ------------------------------------------------------------------

    async def wait_associated(self) -> SocketAddress:
        """Wait until there is a relay, and return its address."""
        while True:
            relay = self._relay
            if relay is not None:
                await trio.lowlevel.checkpoint()
                return relay
            await self._associated.wait()

    async def run(
        self, *, task_status: trio.TaskStatus[SocketAddress] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Associate, hold the association, and re-associate after losses, until cancelled.

        Starts (for ``nursery.start``) with the first relay's address; a first attempt that
        fails raises ProxyError (a wrong password or an unreachable proxy is the caller's to
        report), later failures are events and retries.
        """
        started = False
        delay = self.retry_initial
        while True:
            try:
                stream, relay = await self._associate()
            except ProxyError as exc:
                if not started:
                    raise
                self._lost(exc, delay)
                await trio.sleep(delay)
                delay = min(delay * 2, self.retry_max)
                continue
            since = trio.current_time()
            self._relay = relay
            self._control = stream
            self._associations += 1
            self._associated.set()
            self._emit(Associated(relay))
            if not started:
                started = True
                task_status.started(relay)
            try:
                error = await self._hold(stream)
            finally:
                self._relay = None
                self._control = None
                self._associated = trio.Event()
                with trio.CancelScope(shield=True):
                    await stream.aclose()
            if trio.current_time() - since >= self.retry_max:
                delay = self.retry_initial
            self._lost(error, delay)
            await trio.sleep(delay)
            delay = min(delay * 2, self.retry_max)

    async def _associate(self) -> tuple[trio.SocketStream, SocketAddress]:
        proxy = self.proxy
        redacted = proxy.redacted()
        try:
            with trio.fail_after(self.connect_timeout):
                stream = await trio.open_tcp_stream(proxy.host, proxy.port)
        except trio.TooSlowError:
            raise ProxyError(
                f"connecting timed out after {self.connect_timeout}s", proxy=redacted
            ) from None
        except OSError as exc:
            raise ProxyError(f"cannot reach the proxy: {exc}", proxy=redacted) from None
        try:
            with trio.fail_after(self.connect_timeout):
                relay = await self._negotiate(stream)
        except BaseException as exc:
            with trio.CancelScope(shield=True):
                await stream.aclose()
            if isinstance(exc, trio.TooSlowError):
                raise ProxyError(
                    f"the UDP ASSOCIATE negotiation timed out after {self.connect_timeout}s",
                    proxy=redacted,
                ) from None
            if isinstance(exc, ProxyError) and exc.proxy is None:
                raise ProxyError(str(exc), proxy=redacted, code=exc.code) from None
            if isinstance(exc, (OSError, trio.BrokenResourceError)):
                raise ProxyError(f"the proxy connection failed: {exc}", proxy=redacted) from None
            raise
        with contextlib.suppress(OSError):  # a dead proxy is noticed, not waited on forever
            stream.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_KEEPALIVE, 1)
        return stream, relay

    async def _negotiate(self, stream: trio.SocketStream) -> SocketAddress:
        proxy = self.proxy
        neg = Socks5Negotiation(
            target=self.client_addr, username=proxy.username, password=proxy.password
        )
        await stream.send_all(neg.data_to_send())
        while True:
            event = neg.next_event()
            if out := neg.data_to_send():
                await stream.send_all(out)
            if event is not NEED_DATA:
                break
            data = await stream.receive_some(4096)
            if not data:
                raise ProxyError("the proxy closed the connection during the SOCKS5 negotiation")
            neg.receive_data(data)
        host, port = event.bound
        if port == 0:
            raise ProxyError("the proxy gave a UDP relay with port 0")
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:  # a name: resolve it as we would the proxy's own
            infos = await trio.socket.getaddrinfo(host, port, type=stdsocket.SOCK_DGRAM)
            if not infos:
                raise ProxyError(f"cannot resolve the UDP relay {host!r}") from None
            return (_canonical(str(infos[0][4][0])), port)
        if ip.is_unspecified:
            # RFC 1928 leaves it open; in practice 0.0.0.0 means "where you reached me"
            return (_canonical(str(stream.socket.getpeername()[0])), port)
        return (_canonical(host), port)

    async def _hold(self, stream: trio.SocketStream) -> ProxyError:
        # nothing is expected on the control connection: read (and ignore) until it ends
        try:
            while await stream.receive_some(4096):
                pass
        except trio.ClosedResourceError:  # drop() closed it
            return ProxyError(
                "the UDP association was dropped on request", proxy=self.proxy.redacted()
            )
        except (OSError, trio.BrokenResourceError) as exc:
            return ProxyError(
                f"the UDP association's control connection failed: {exc}",
                proxy=self.proxy.redacted(),
            )
        return ProxyError(
            "the proxy closed the UDP association's control connection",
            proxy=self.proxy.redacted(),
        )

    def _lost(self, error: ProxyError, retry_in: float) -> None:
        self._failures += 1
        self._last_error = str(error)
        self._emit(AssociationLost(error, retry_in))

    def _emit(self, event: AssociationEvent) -> None:
        try:
            self._events_send.send_nowait(event)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self._dropped_events += 1

    async def drop(self) -> None:
        """Close the control connection now (what the proxy dropping it does): the relay is
        forgotten and, if :meth:`run` is running, a new association follows after the backoff."""
        if self._control is not None:
            await self._control.aclose()
        else:
            await trio.lowlevel.checkpoint()

    def statistics(self) -> Socks5UdpAssociationStatistics:
        """A snapshot of the state and counters."""
        return Socks5UdpAssociationStatistics(
            relay=self._relay,
            associations=self._associations,
            failures=self._failures,
            last_error=self._last_error,
            sent=self._sent,
            received=self._received,
            dropped_unassociated=self._dropped_unassociated,
            dropped_unsendable=self._dropped_unsendable,
            dropped_foreign=self._dropped_foreign,
            dropped_malformed=self._dropped_malformed,
            dropped_fragments=self._dropped_fragments,
            dropped_events=self._dropped_events,
        )


@contextlib.asynccontextmanager
async def open_socks5_udp_association(
    proxy: ProxyConfig,
    *,
    endpoint: DatagramEndpoint | None = None,
    client_addr: SocketAddress = ("0.0.0.0", 0),
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    retry_initial: float = RETRY_INITIAL,
    retry_max: float = RETRY_MAX,
) -> AsyncIterator[Socks5UdpAssociation]:
    """A running :class:`Socks5UdpAssociation`, associated when the block starts (ProxyError if
    the first attempt fails), kept associated until the block ends."""
    assoc = Socks5UdpAssociation(
        proxy,
        endpoint=endpoint,
        client_addr=client_addr,
        connect_timeout=connect_timeout,
        retry_initial=retry_initial,
        retry_max=retry_max,
    )
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(assoc.run)
            try:
                yield assoc
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # run() ends only by cancellation or its first failure: hand a lone error back as itself
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


class Socks5UdpEndpoint:
    """A UDP socket of its own whose every datagram goes through a SOCKS5 association.

    A :class:`~torrio.core.DatagramEndpoint` (``await ep.sendto(data, addr)``); what the relay
    sends back goes to the handler given to :meth:`set_handler` with its real source address.
    Make one with :func:`open_socks5_udp_endpoint`.
    """

    def __init__(self, sock: trio.socket.SocketType, association: Socks5UdpAssociation) -> None:
        self.socket = sock
        self.association = association
        self._handler: DatagramHandler | None = None
        self.handler_errors = 0
        """Exceptions raised by the handler (counted, not propagated)."""

    @property
    def local_address(self) -> SocketAddress:
        """The bound ``(host, port)`` of our socket (not what others see: that is the relay)."""
        name = self.socket.getsockname()
        return (str(name[0]), int(name[1]))

    def set_handler(self, handler: DatagramHandler | None) -> None:
        """Hand incoming datagrams to ``handler`` (None: drop them)."""
        self._handler = handler

    async def sendto(self, data: bytes, addr: SocketAddress) -> None:
        """Send ``data`` to ``addr`` through the relay; dropped while there is no association."""
        await self.association.sendto(data, addr)

    async def _receive_loop(self) -> None:
        buf = bytearray(_MAX_DATAGRAM)
        view = memoryview(buf)
        unwrap_incoming = self.association.unwrap_incoming
        while True:
            try:
                n, src = await self.socket.recvfrom_into(buf)
            except OSError:
                continue  # ICMP errors surfacing on a UDP socket
            routed = unwrap_incoming(view[:n], (str(src[0]), int(src[1])))
            if routed is None or self._handler is None:
                continue
            payload, addr = routed
            try:
                self._handler.datagram_received(bytes(payload), addr)
            except Exception:  # the handler's bug must not stop the socket
                self.handler_errors += 1


class _RawSocket:
    def __init__(self, sock: trio.socket.SocketType) -> None:
        self.sock = sock

    async def sendto(self, data: bytes, addr: SocketAddress) -> None:
        await self.sock.sendto(data, addr)


@contextlib.asynccontextmanager
async def open_socks5_udp_endpoint(
    proxy: ProxyConfig,
    *,
    host: str | None = None,
    port: int = 0,
    handler: DatagramHandler | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    retry_initial: float = RETRY_INITIAL,
    retry_max: float = RETRY_MAX,
) -> AsyncIterator[Socks5UdpEndpoint]:
    """A :class:`Socks5UdpEndpoint` on a socket bound to ``host:port``, associated when the block
    starts (ProxyError otherwise). ``host`` defaults to the wildcard address of the relay's family
    (known once the proxy has answered)."""
    assoc = Socks5UdpAssociation(
        proxy, connect_timeout=connect_timeout, retry_initial=retry_initial, retry_max=retry_max
    )
    try:
        async with trio.open_nursery() as nursery:
            relay = await nursery.start(assoc.run)
            if host is None:
                host = "::" if ":" in relay[0] else "0.0.0.0"
            family = stdsocket.AF_INET6 if ":" in host else stdsocket.AF_INET
            with trio.socket.socket(family, stdsocket.SOCK_DGRAM) as sock:
                try:
                    await sock.bind((host, port))
                except OSError as exc:
                    raise ProxyError(f"cannot bind a UDP socket on {host}:{port}: {exc}") from None
                assoc.endpoint = _RawSocket(sock)
                ep = Socks5UdpEndpoint(sock, assoc)
                ep.set_handler(handler)
                nursery.start_soon(ep._receive_loop)
                try:
                    yield ep
                finally:
                    nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # the tasks end only by cancellation or the first association's failure
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
