"""One UDP port, many protocols: the session's shared UDP socket and its datagram router.

A session binds one UDP socket (IPv4, and an IPv6 one on the same port when asked) beside its
TCP listener, with the same port number. Every consumer sends through the mux (it satisfies
:class:`torrio.core.DatagramEndpoint`), and one receive loop per socket reads datagrams into a
preallocated buffer and routes each by its shape:

* a bencoded dict (first byte ``d``) goes to the ``"dht"`` handler of the datagram's family;
* a uTP header (version 1, type 0-4, :func:`torrio.utp.is_utp_datagram`) goes to ``"utp"``;
* a UDP-tracker reply goes to ``"tracker"`` when the handler's matcher (by default its
  ``is_reply(data, addr)``, which checks the transaction ids it awaits) accepts it, or, for a
  handler without one, when it has the BEP 15 reply shape (action 0-3, at least 8 bytes);
* anything else is dropped and counted.

The three shapes are disjoint: a tracker reply starts with a zero byte (its action is a big-endian
32-bit integer below 4), which is neither ``d`` nor a uTP version-1 byte.

The ``"utp"`` handler is called with a ``memoryview`` into the receive buffer, valid only during
the call (a :class:`torrio.utp.UtpSocket` decodes it at once); the other routes get ``bytes``.

uTP carries the bulk of the traffic, so the receive loop hands uTP DATA/STATE/FIN datagrams to a
registered :class:`~torrio.utp.UtpSocket` directly (no per-datagram routing), reads up to
``_RECV_BATCH`` datagrams per wakeup, and yields early when the uTP socket has an acknowledgement
due (:attr:`torrio.utp.UtpSocket.ack_due`), as the uTP socket's own receive loop does. The uTP
socket sends through :meth:`UdpMux.sendto_nowait` (no await per datagram) while the kernel's send
buffer has room.

A uTP SYN that arrives while no uTP handler is registered for its family (a session with
``transport="tcp"``) is answered with ST_RESET (BEP 29), so a peer dialing uTP first falls back to
TCP at once instead of waiting out its SYN timeout; at most ``RESET_RATE`` such answers go out per
second (the rest are dropped, counted in ``resets_limited``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket as stdsocket
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Final, Literal, cast

import attrs
import trio

from torrio.core import CoreError, DatagramHandler, PeerAddr, SocketAddress
from torrio.utp import (
    PacketType,
    UtpConfig,
    UtpSocket,
    encode_packet,
    is_utp_datagram,
    open_utp_socket,
    window_for_socket_buffer,
)

from ._errors import ClientError

if (
    TYPE_CHECKING
):  # torrio.dht is imported when a stack runs the DHT (sessions without it start faster)
    from torrio.dht import Node

    from ._proxy_udp import UdpProxy

Route = Literal["dht", "utp", "tracker"]
"""The name of a consumer of the shared socket."""

ROUTES: Final[tuple[Route, ...]] = ("dht", "utp", "tracker")

DEFAULT_UDP_BUFFER: Final = 4 << 20
"""Requested SO_RCVBUF/SO_SNDBUF (the kernel caps it at ``net.core.rmem_max``/``wmem_max``)."""

MAX_DATAGRAM: Final = 65536
_RECV_BATCH: Final = 256
RESET_RATE: Final = 50
"""ST_RESET answers to uTP SYNs (when no uTP runs) sent per second at most, whoever asks."""
_UTP_HEADER: Final = 20
_UTP_SYN_B0: Final = (int(PacketType.SYN) << 4) | 1
# uTP version 1 DATA, FIN and STATE: the receive loop's fast path to the uTP socket
_UTP_BULK: Final = frozenset(
    (int(t) << 4) | 1 for t in (PacketType.DATA, PacketType.FIN, PacketType.STATE)
)
_QUIET_ERRNOS: Final = frozenset({errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH})

Matcher = Callable[[bytes, SocketAddress], bool]


@attrs.frozen
class UdpMuxStatistics:
    """A snapshot of a :class:`UdpMux`'s counters."""

    received: int
    """Datagrams read from the socket(s)."""
    sent: int
    """Datagrams sent."""
    dht: int
    """Datagrams handed to a DHT handler."""
    utp: int
    """Datagrams handed to the uTP handler."""
    tracker: int
    """Datagrams handed to the tracker handler."""
    no_handler: int
    """Datagrams of a known shape with no handler registered for it (dropped)."""
    dropped: int
    """Datagrams of no known shape, or tracker-shaped but unmatched (dropped)."""
    handler_errors: int
    """Exceptions raised by a handler (counted, not propagated)."""
    send_errors: int
    """Sends that failed with an error (other than ICMP-reported unreachability)."""
    recv_errors: int
    """Receive errors (ICMP errors a UDP socket reports are counted here)."""
    recv_buffer: int
    """SO_RCVBUF of the IPv4 (or only) socket, as the kernel reports it."""
    send_buffer: int
    """SO_SNDBUF of that socket."""
    resets_sent: int = 0
    """ST_RESET answers to uTP SYNs that arrived with no uTP handler registered."""
    resets_limited: int = 0
    """Such SYNs left unanswered because :data:`RESET_RATE` was reached."""


@attrs.define(eq=False)
class _Registration:
    handler: DatagramHandler
    match: Matcher | None


def _bep15_shape(data: bytes, _addr: SocketAddress) -> bool:
    return len(data) >= 8 and data[0] == 0 and data[1] == 0 and data[2] == 0 and data[3] <= 3


def _family_of(host: str) -> int:
    return 6 if ":" in host else 4


class UdpMux:
    """The session's shared UDP socket(s). Open with :func:`open_udp_mux`.

    ``await mux.sendto(data, addr)`` sends from the socket of ``addr``'s family;
    ``mux.register(route, handler)`` attaches a consumer.
    """

    def __init__(self, sockets: dict[int, stdsocket.socket]) -> None:
        if not sockets:
            raise ClientError("a UDP mux needs at least one socket")
        self._socks = sockets
        self._send_locks = {fam: trio.Lock() for fam in sockets}
        self._routes: dict[tuple[Route, int], _Registration] = {}
        self._proxy: UdpProxy | None = None
        self._received = self._sent = self._dht = self._utp = self._tracker = 0
        self._no_handler = self._dropped = self._handler_errors = 0
        self._send_errors = self._recv_errors = 0
        self._resets_sent = self._resets_limited = 0
        self._reset_window = float("-inf")
        self._reset_budget = RESET_RATE
        # sizes as the kernel granted them (fixed after bind; readable after close too)
        self._rcvbuf = self._buffer(stdsocket.SO_RCVBUF)
        self._sndbuf = self._buffer(stdsocket.SO_SNDBUF)

    # -- addresses ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound UDP port (the same on every socket)."""
        return self.local_address()[1]

    @property
    def families(self) -> tuple[int, ...]:
        """The address families served (4 and/or 6)."""
        return tuple(sorted(self._socks))

    def local_address(self, family: int | None = None) -> SocketAddress:
        """The bound ``(host, port)`` of the socket for ``family`` (default: the first one)."""
        if family is None:
            family = 4 if 4 in self._socks else 6
        sock = self._socks.get(family)
        if sock is None:
            raise ClientError(f"the UDP mux has no IPv{family} socket")
        host, port = sock.getsockname()[:2]
        return (str(host), int(port))

    def utp_config(self, base: UtpConfig | None = None) -> UtpConfig:
        """A :class:`torrio.utp.UtpConfig` whose receive window fits this socket's receive buffer,
        so a fast uTP sender cannot overrun it (what ``open_utp_socket`` does for its own socket)."""
        cfg = base or UtpConfig()
        cap = window_for_socket_buffer(self._rcvbuf, cfg.payload_size)
        if cap < cfg.recv_buffer_size:
            cfg = attrs.evolve(cfg, recv_buffer_size=cap)
        return cfg

    def _buffer(self, opt: int) -> int:
        sock = self._socks.get(4) or self._socks[6]
        return int(sock.getsockopt(stdsocket.SOL_SOCKET, opt))

    # -- routing --------------------------------------------------------------------------------

    def set_proxy(self, proxy: UdpProxy | None) -> None:
        """Send and receive everything through ``proxy`` (a SOCKS5 UDP association,
        :class:`~torrio.client._proxy_udp.Socks5UdpAssociation`), or directly again with None.

        Outgoing datagrams are wrapped for its relay, incoming ones unwrapped (and routed by their
        real source's family) before routing; what it refuses (no relay at the moment, a datagram
        not from the relay) is dropped, never sent or routed directly. Set it before consumers
        send (:func:`open_udp_stack` takes ``proxy=``).
        """
        self._proxy = proxy

    def register(
        self,
        route: Route,
        handler: DatagramHandler,
        *,
        family: int | None = None,
        match: Matcher | None = None,
    ) -> None:
        """Route datagrams of ``route``'s shape to ``handler`` (replacing an earlier one).

        ``family`` (4 or 6) limits it to one socket, as a DHT node serves one family; None: all.
        ``match`` (tracker route only) picks the replies the handler awaits; by default the
        handler's own ``is_reply(data, addr)`` if it has one, else the BEP 15 reply shape.
        """
        if route not in ROUTES:
            raise ClientError(f"unknown UDP route {route!r}; expected one of {', '.join(ROUTES)}")
        if match is not None and route != "tracker":
            raise ClientError("only the tracker route takes a matcher")
        if route == "tracker" and match is None:
            is_reply = getattr(handler, "is_reply", None)
            match = is_reply if callable(is_reply) else _bep15_shape
        families = (4, 6) if family is None else (family,)
        for fam in families:
            if fam not in (4, 6):
                raise ClientError(f"family must be 4 or 6, not {fam!r}")
            self._routes[(route, fam)] = _Registration(handler, match)

    def unregister(self, route: Route, *, family: int | None = None) -> None:
        """Stop routing ``route`` (for ``family``, or for both); its datagrams are then dropped."""
        for fam in (4, 6) if family is None else (family,):
            self._routes.pop((route, fam), None)

    def handler(self, route: Route, family: int = 4) -> DatagramHandler | None:
        """The handler registered for ``route`` on ``family``, if any."""
        reg = self._routes.get((route, family))
        return None if reg is None else reg.handler

    def dispatch(self, data: bytes | memoryview, addr: SocketAddress, family: int = 4) -> None:
        """Route one datagram (what the receive loop calls; tests and fakes may call it too)."""
        self._received += 1
        if self._proxy is not None:
            routed = self._proxy.unwrap_incoming(data, addr)
            if routed is None:
                self._dropped += 1
                return
            data, addr = routed
            family = _family_of(addr[0])
        if not data:
            self._dropped += 1
            return
        routes = self._routes
        first = data[0]
        try:
            if first == 0x64:  # b"d": a bencoded dict, KRPC
                reg = routes.get(("dht", family))
                if reg is None:
                    self._no_handler += 1
                    return
                self._dht += 1
                reg.handler.datagram_received(bytes(data), addr)
            elif is_utp_datagram(data):
                reg = routes.get(("utp", family))
                if reg is None:
                    self._no_handler += 1
                    if first == _UTP_SYN_B0 and len(data) >= _UTP_HEADER:
                        self._refuse_syn(data, addr, family)
                    return
                self._utp += 1
                # the uTP socket decodes at once: it may read the receive buffer in place
                reg.handler.datagram_received(cast(bytes, data), addr)
            elif first == 0:
                reg = routes.get(("tracker", family))
                if reg is None:
                    self._no_handler += 1
                    return
                payload = bytes(data)
                assert reg.match is not None
                if not reg.match(payload, addr):
                    self._dropped += 1
                    return
                self._tracker += 1
                reg.handler.datagram_received(payload, addr)
            else:
                self._dropped += 1
        except Exception:  # a consumer's bug must not take the session's UDP port down with it
            self._handler_errors += 1

    def _refuse_syn(self, syn: bytes | memoryview, addr: SocketAddress, family: int) -> None:
        """Answer a SYN nobody will accept with ST_RESET (rate-limited, never blocks)."""
        now = trio.current_time()
        if now - self._reset_window >= 1.0 or now < self._reset_window:
            self._reset_window = now
            self._reset_budget = RESET_RATE
        if self._reset_budget <= 0:
            self._resets_limited += 1
            return
        self._reset_budget -= 1
        sock = self._socks.get(family)
        if sock is None:  # pragma: no cover - dispatch is called per socket family
            return
        # the SYN's connection id is the one its sender receives on; ack its sequence number
        conn_id = (syn[2] << 8) | syn[3]
        seq = (syn[16] << 8) | syn[17]
        reset = encode_packet(PacketType.RESET, conn_id, int(now * 1e6) & 0xFFFFFFFF, 0, 0, 0, seq)
        if self._proxy is not None:
            routed = self._proxy.wrap_outgoing(reset, addr)
            if routed is None:
                return
            reset, addr = routed
            sock = self._socks.get(_family_of(addr[0]))
            if sock is None:
                return
        try:
            sock.sendto(reset, (addr[0], addr[1]))
        except OSError:
            self._resets_limited += 1  # buffer full or unreachable: the dialer times out instead
            return
        self._resets_sent += 1

    # -- I/O ------------------------------------------------------------------------------------

    def sendto_nowait(self, data: bytes, addr: SocketAddress) -> bool:
        """Send one datagram now if the socket takes it: True when sent (or dropped for an
        ICMP-reported unreachability), False when the send buffer is full (nothing was sent;
        ``await sendto`` waits for room). Raises ``OSError`` like :meth:`sendto`.

        :class:`torrio.utp.UtpSocket` uses it to send bursts without an await per datagram.
        """
        if self._proxy is not None:
            routed = self._proxy.wrap_outgoing(data, addr)
            if routed is None:
                return True  # dropped (no relay): like a datagram lost on the way
            data, addr = routed
        host = addr[0]
        fam = 6 if ":" in host else 4
        sock = self._socks.get(fam)
        if sock is None:
            self._send_errors += 1
            raise OSError(errno.EAFNOSUPPORT, f"the UDP mux has no IPv{fam} socket")
        if self._send_locks[fam].locked():
            return False  # others wait for room: keep the order
        try:
            sock.sendto(data, addr if len(addr) == 2 else (host, addr[1]))
        except BlockingIOError:
            return False
        except OSError as exc:
            self._send_failed(exc)
            return True
        self._sent += 1
        return True

    async def sendto(self, data: bytes, addr: SocketAddress) -> None:
        """Send one datagram from the socket of ``addr``'s family (:class:`DatagramEndpoint`).

        Raises ``OSError`` when the mux has no socket of that family or the send fails; an ICMP
        error reported by the kernel for an earlier datagram is ignored.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._proxy is not None:
            routed = self._proxy.wrap_outgoing(data, addr)
            if routed is None:
                return  # dropped (no relay): never sent around the proxy
            data, addr = routed
        host = addr[0]
        fam = _family_of(host)
        sock = self._socks.get(fam)
        if sock is None:
            self._send_errors += 1
            raise OSError(errno.EAFNOSUPPORT, f"the UDP mux has no IPv{fam} socket")
        target = (host, addr[1])
        try:
            sock.sendto(data, target)
        except BlockingIOError:
            # the socket buffer is full: queue behind other senders of this socket
            async with self._send_locks[fam]:
                while True:
                    try:
                        sock.sendto(data, target)
                        break
                    except BlockingIOError:
                        await trio.lowlevel.wait_writable(sock)
                    except OSError as exc:
                        self._send_failed(exc)
                        return
        except OSError as exc:
            self._send_failed(exc)
            return
        self._sent += 1

    def _send_failed(self, exc: OSError) -> None:
        if exc.errno in _QUIET_ERRNOS:
            return
        self._send_errors += 1
        raise exc

    async def _recv_loop(
        self, family: int, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        sock = self._socks[family]
        buf = bytearray(MAX_DATAGRAM)
        view = memoryview(buf)
        recv = sock.recvfrom_into
        dispatch = self.dispatch
        routes = self._routes
        bulk = _UTP_BULK
        task_status.started()
        while True:
            await trio.lowlevel.wait_readable(sock)
            # handlers change only between batches (no other task runs during one)
            reg = routes.get(("utp", family))
            utp = reg.handler if reg is not None and isinstance(reg.handler, UtpSocket) else None
            if self._proxy is not None:
                utp = None  # relayed datagrams must be unwrapped (and checked) first
            taken = 0
            # a bounded batch, then a checkpoint, so consumers' tasks (acks, replies) run
            for _ in range(_RECV_BATCH):
                try:
                    n, src = recv(buf)
                except BlockingIOError:
                    break
                except OSError:
                    self._recv_errors += 1  # ICMP errors surfaced on a UDP socket
                    continue
                if utp is not None and n >= _UTP_HEADER and buf[0] in bulk and buf[1] == 0:
                    # the uTP bulk path: straight to the socket, which decodes in place
                    taken += 1
                    try:
                        utp.datagram_received(view[:n], src if len(src) == 2 else src[:2])
                    except Exception:
                        self._handler_errors += 1
                    if utp.ack_due:
                        break  # let the uTP service task send that ack before reading on
                    continue
                dispatch(view[:n], (str(src[0]), int(src[1])), family)
            if taken:
                self._received += taken
                self._utp += taken
            await trio.lowlevel.checkpoint()

    def statistics(self) -> UdpMuxStatistics:
        """A snapshot of the counters."""
        return UdpMuxStatistics(
            received=self._received,
            sent=self._sent,
            dht=self._dht,
            utp=self._utp,
            tracker=self._tracker,
            no_handler=self._no_handler,
            dropped=self._dropped,
            handler_errors=self._handler_errors,
            send_errors=self._send_errors,
            recv_errors=self._recv_errors,
            recv_buffer=self._rcvbuf,
            send_buffer=self._sndbuf,
            resets_sent=self._resets_sent,
            resets_limited=self._resets_limited,
        )


def _bind(host: str, port: int, buffer_size: int | None) -> stdsocket.socket:
    family = stdsocket.AF_INET6 if ":" in host else stdsocket.AF_INET
    sock = stdsocket.socket(family, stdsocket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        if family == stdsocket.AF_INET6:
            # the IPv4 socket holds the same port: this one serves IPv6 only
            with contextlib.suppress(OSError):
                sock.setsockopt(stdsocket.IPPROTO_IPV6, stdsocket.IPV6_V6ONLY, 1)
        if buffer_size:
            for opt in (stdsocket.SO_RCVBUF, stdsocket.SO_SNDBUF):
                with contextlib.suppress(OSError):
                    sock.setsockopt(stdsocket.SOL_SOCKET, opt, buffer_size)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


@contextlib.asynccontextmanager
async def open_udp_mux(
    host: str = "0.0.0.0",
    port: int = 0,
    *,
    host6: str | None = None,
    buffer_size: int | None = DEFAULT_UDP_BUFFER,
) -> AsyncIterator[UdpMux]:
    """A running :class:`UdpMux` bound on ``host:port`` (and ``host6`` on the same port).

    ``port`` is the session's TCP listen port (0 picks one; read it back from ``mux.port``).
    ``host`` may itself be an IPv6 literal, for an IPv6-only mux. SO_RCVBUF/SO_SNDBUF are raised
    to ``buffer_size`` (None: the OS default). Raises :class:`ClientError` if binding fails.
    """
    socks: dict[int, stdsocket.socket] = {}
    try:
        try:
            first = _bind(host, port, buffer_size)
            socks[_family_of(host)] = first
            if host6 is not None:
                if _family_of(host6) != 6 or 6 in socks:
                    raise ClientError(
                        f"host6 must be an IPv6 address beside an IPv4 host: {host6!r}"
                    )
                socks[6] = _bind(host6, first.getsockname()[1], buffer_size)
        except OSError as exc:
            raise ClientError(f"cannot bind UDP port {port}: {exc.strerror or exc}") from exc
        mux = UdpMux(socks)
        try:
            async with trio.open_nursery() as nursery:
                for fam in socks:
                    await nursery.start(mux._recv_loop, fam)
                try:
                    yield mux
                finally:
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # the receive loops end only by cancellation: a lone error is the caller's own
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise  # pragma: no cover
    finally:
        for s in socks.values():
            s.close()


@attrs.define
class UdpStack:
    """What a session runs on its UDP port: the mux, and the consumers it opened on it."""

    mux: UdpMux
    utp: UtpSocket | None
    """The uTP socket (None when the transport is ``tcp``)."""
    dht: Node | None
    """The IPv4 DHT node (None with ``--no-dht``, or for an IPv6-only mux)."""
    dht6: Node | None
    """The IPv6 DHT node (when the mux has an IPv6 socket and the DHT is on)."""


BOOTSTRAP_RETRY: Final = 30.0
"""Seconds before a DHT node that found nobody tries its bootstrap nodes again (doubling)."""
BOOTSTRAP_RETRY_MAX: Final = 600.0


async def resolve_bootstrap(
    entries: Sequence[tuple[str, int] | str], family: int
) -> list[PeerAddr]:
    """The addresses of ``entries`` (``(host, port)`` or ``"HOST:PORT"``/``"[v6]:PORT"``) in
    ``family``; names that do not resolve are skipped."""
    out: list[PeerAddr] = []
    for entry in entries:
        if isinstance(entry, str):
            host, sep, port_s = entry.rpartition(":")
            if not sep or not port_s.isdigit():
                continue
            host, port = host.strip("[]"), int(port_s)
        else:
            host, port = entry[0], int(entry[1])
        try:
            addr = PeerAddr(host, port)
        except CoreError:
            pass
        else:
            if addr.family == family:
                out.append(addr)
            continue
        fam = stdsocket.AF_INET if family == 4 else stdsocket.AF_INET6
        try:
            infos = await trio.socket.getaddrinfo(host, port, fam, stdsocket.SOCK_DGRAM)
        except OSError:
            continue
        for info in infos[:2]:
            with contextlib.suppress(CoreError):
                out.append(PeerAddr.from_tuple((str(info[4][0]), int(info[4][1]))))
    return out


async def _join(node: Node, entries: Sequence[tuple[str, int] | str], family: int) -> None:
    """Resolve and bootstrap in the background; retry (backing off) while the table is empty."""
    delay = BOOTSTRAP_RETRY
    while True:
        boot = await resolve_bootstrap(entries, family)
        await node.bootstrap(boot)
        if node.statistics().routing_table.nodes > 0 or not entries:
            return
        await trio.sleep(delay)
        delay = min(delay * 2, BOOTSTRAP_RETRY_MAX)


@contextlib.asynccontextmanager
async def open_udp_stack(
    host: str = "0.0.0.0",
    port: int = 0,
    *,
    host6: str | None = None,
    utp: bool = True,
    utp_config: UtpConfig | None = None,
    dht: bool = True,
    dht_bootstrap: Sequence[tuple[str, int] | str] = (),
    dht_state: str | os.PathLike[str] | None = None,
    buffer_size: int | None = DEFAULT_UDP_BUFFER,
    proxy: UdpProxy | None = None,
) -> AsyncIterator[UdpStack]:
    """Open the mux on ``host:port`` (and ``host6``), a uTP socket (``utp``) and DHT nodes
    (``dht``, one per family), each registered on the mux.

    The nodes join in the background (the block starts at once): ``dht_bootstrap`` entries,
    ``(host, port)`` pairs or ``"HOST:PORT"`` strings, are resolved and queried, and again after
    30 s, 60 s, ... (up to 10 min) while the routing table stays empty. The routing table is saved
    to and restored from ``dht_state`` (IPv4) and ``dht_state + ".6"`` (IPv6).

    The UDP tracker client is the caller's to register: ``stack.mux.register("tracker", udp)``.
    ``proxy`` (a running SOCKS5 UDP association) carries every datagram from the first one on.
    """
    async with contextlib.AsyncExitStack() as stack:
        mux = await stack.enter_async_context(
            open_udp_mux(host, port, host6=host6, buffer_size=buffer_size)
        )
        if proxy is not None:
            mux.set_proxy(proxy)  # before the DHT's first query
        sock: UtpSocket | None = None
        if utp:
            sock = await stack.enter_async_context(
                open_utp_socket(endpoint=mux, config=mux.utp_config(utp_config))
            )
            mux.register("utp", sock)
        nodes: dict[int, Node] = {}
        if dht:
            from torrio.dht import open_node

            nursery = await stack.enter_async_context(trio.open_nursery())
            for fam in mux.families:
                state = dht_state
                if state is not None and fam == 6:
                    state = os.fspath(state) + ".6"
                node = await stack.enter_async_context(
                    open_node(
                        endpoint=mux,
                        local_addr=mux.local_address(fam),
                        state=state,
                        wait_joined=False,
                    )
                )
                # registered before any checkpoint: no reply to a query can be missed
                mux.register("dht", node, family=fam)
                nodes[fam] = node
                nursery.start_soon(_join, node, list(dht_bootstrap), fam)
            stack.callback(nursery.cancel_scope.cancel)  # first on exit: joins stop, then nodes
        yield UdpStack(mux, sock, nodes.get(4), nodes.get(6))
