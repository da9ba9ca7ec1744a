"""How the session reaches peers and lets them reach it: TCP, uTP, or both (``--transport``).

Outgoing (:class:`Transport`): ``tcp`` dials TCP only; ``utp`` dials uTP only; ``both`` tries uTP
first and falls back to TCP when uTP fails or does not answer within ``utp_timeout`` (as libtorrent
does), remembering (bounded) which addresses had no uTP so the next dial goes straight to TCP. The
stream it returns is ready for :class:`torrio.handshake.Handshaker`.

Incoming (:func:`serve_incoming`): one handler for streams from the TCP listeners and from the
:class:`torrio.utp.UtpSocket`.
"""

from __future__ import annotations

import contextlib
import socket as stdsocket
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, Final, Literal

import attrs
import trio

from torrio.core import CoreError, PeerAddr
from torrio.utp import UtpError, UtpSocket, UtpStream

from ._errors import ClientError

Kind = Literal["tcp", "utp"]
"""The transport one stream runs over."""

TRANSPORTS: Final = ("tcp", "utp", "both")
"""The values of ``--transport``."""

UTP_TIMEOUT: Final = 3.0
"""Seconds a ``both``-mode uTP attempt gets before TCP is tried."""

TcpConnect = Callable[[PeerAddr], Awaitable[trio.abc.Stream]]
"""Opens a TCP (or proxied) stream to a peer."""


async def open_tcp(addr: PeerAddr) -> trio.abc.Stream:
    """The default TCP dialer: ``trio.open_tcp_stream`` with TCP_NODELAY set."""
    stream = await trio.open_tcp_stream(str(addr.ip), addr.port)
    with contextlib.suppress(OSError):
        stream.setsockopt(stdsocket.IPPROTO_TCP, stdsocket.TCP_NODELAY, True)
    return stream


@attrs.frozen
class Dialed:
    """A connected stream, the transport it runs over, and the peer's address."""

    stream: trio.abc.Stream
    kind: Kind
    addr: PeerAddr


@attrs.frozen
class TransportStatistics:
    """Counters of a :class:`Transport`."""

    utp_attempts: int
    utp_connected: int
    utp_failed: int
    tcp_attempts: int
    tcp_connected: int
    tcp_failed: int
    fallbacks: int
    """``both`` mode: uTP failed and TCP was tried."""
    no_utp_known: int
    """Addresses remembered as having no uTP (bounded)."""
    tcp_incoming: int = 0
    """Incoming TCP streams (counted by whoever accepts them: :meth:`Transport.note_incoming`)."""
    utp_incoming: int = 0
    """Incoming uTP streams."""


class Transport:
    """The outgoing connect strategy for ``--transport tcp|utp|both``.

    ``utp`` is the session's :class:`~torrio.utp.UtpSocket` (required for ``utp`` and ``both``).
    ``connect_timeout`` bounds each TCP attempt and a uTP-only attempt; ``utp_timeout`` bounds the
    uTP attempt in ``both`` mode before TCP is tried. ``tcp_connect`` replaces the TCP dialer
    (e.g. with a proxied one). ``utp_families`` (4 and/or 6: the families the uTP socket's UDP
    port serves; None: any) sends peers of another family straight to TCP in ``both`` mode and
    fails them at once in ``utp`` mode, instead of waiting out a SYN that cannot be sent.
    """

    def __init__(
        self,
        mode: str,
        *,
        utp: UtpSocket | None = None,
        connect_timeout: float = 10.0,
        utp_timeout: float = UTP_TIMEOUT,
        tcp_connect: TcpConnect | None = None,
        remember: int = 4096,
        utp_families: Collection[int] | None = None,
    ) -> None:
        if mode not in TRANSPORTS:
            raise ClientError(f"transport must be one of {', '.join(TRANSPORTS)}, not {mode!r}")
        if mode != "tcp" and utp is None:
            raise ClientError(f"transport {mode!r} needs a uTP socket")
        self.mode = mode
        self.utp = utp
        self.connect_timeout = connect_timeout
        self.utp_timeout = utp_timeout
        self._tcp_connect = tcp_connect or open_tcp
        self._remember = remember
        self.utp_families = None if utp_families is None else frozenset(utp_families)
        self._no_utp: OrderedDict[PeerAddr, None] = OrderedDict()
        self._utp_attempts = self._utp_connected = self._utp_failed = 0
        self._tcp_attempts = self._tcp_connected = self._tcp_failed = 0
        self._fallbacks = 0
        self._incoming = {"tcp": 0, "utp": 0}

    @property
    def accepts_utp(self) -> bool:
        """Whether incoming uTP is served in this mode (``utp`` and ``both``)."""
        return self.mode != "tcp"

    async def connect(self, addr: PeerAddr) -> Dialed:
        """Connect to ``addr`` by this transport's rule. Raises ``OSError`` (TCP refused or
        unreachable), :class:`torrio.utp.UtpError` (uTP only) or ``trio.TooSlowError``."""
        if self.mode == "tcp":
            return Dialed(await self._tcp(addr), "tcp", addr)
        reachable = self.utp_families is None or addr.family in self.utp_families
        if self.mode == "utp":
            if not reachable:
                self._utp_failed += 1
                raise UtpError(f"no IPv{addr.family} UDP port for uTP", addr=addr.as_tuple())
            return Dialed(await self._utp(addr, self.connect_timeout), "utp", addr)
        if reachable and addr not in self._no_utp:
            try:
                return Dialed(await self._utp(addr, self.utp_timeout), "utp", addr)
            except (UtpError, OSError, trio.TooSlowError):
                self._forget_utp(addr)
                self._fallbacks += 1
        return Dialed(await self._tcp(addr), "tcp", addr)

    async def redial(self, dialed: Dialed) -> trio.abc.Stream:
        """A new stream to the same peer over the same transport (the handshaker's
        ``reconnect``, used when an encrypted attempt is dropped and plaintext is retried)."""
        if dialed.kind == "utp":
            return await self._utp(dialed.addr, self.connect_timeout)
        return await self._tcp(dialed.addr)

    def note_incoming(self, kind: Kind) -> None:
        """Count one accepted incoming stream (shown in :meth:`statistics`)."""
        self._incoming[kind] += 1

    def statistics(self) -> TransportStatistics:
        """A snapshot of the counters."""
        return TransportStatistics(
            self._utp_attempts,
            self._utp_connected,
            self._utp_failed,
            self._tcp_attempts,
            self._tcp_connected,
            self._tcp_failed,
            self._fallbacks,
            len(self._no_utp),
            self._incoming["tcp"],
            self._incoming["utp"],
        )

    def _forget_utp(self, addr: PeerAddr) -> None:
        self._no_utp[addr] = None
        self._no_utp.move_to_end(addr)
        while len(self._no_utp) > self._remember:
            self._no_utp.popitem(last=False)

    async def _utp(self, addr: PeerAddr, seconds: float) -> trio.abc.Stream:
        assert self.utp is not None
        self._utp_attempts += 1
        try:
            with trio.fail_after(seconds):
                stream: UtpStream = await self.utp.connect(addr.as_tuple())
        except BaseException:
            self._utp_failed += 1
            raise
        self._utp_connected += 1
        self._no_utp.pop(addr, None)
        return stream

    async def _tcp(self, addr: PeerAddr) -> trio.abc.Stream:
        self._tcp_attempts += 1
        try:
            with trio.fail_after(self.connect_timeout):
                stream = await self._tcp_connect(addr)
        except BaseException:
            self._tcp_failed += 1
            raise
        self._tcp_connected += 1
        return stream


def peer_address(stream: trio.abc.Stream) -> PeerAddr | None:
    """The remote address of an accepted TCP or uTP stream (None if it cannot be told)."""
    try:
        if isinstance(stream, trio.SocketStream):
            host, port = stream.socket.getpeername()[:2]
        elif isinstance(stream, UtpStream):
            host, port = stream.remote_address
        else:
            return None
        return PeerAddr.from_tuple((str(host), int(port)))
    except (OSError, ValueError, CoreError):
        return None


def stream_kind(stream: trio.abc.Stream) -> Kind:
    """``"utp"`` for a :class:`~torrio.utp.UtpStream` (also under an MSE ``PeerStream``), else
    ``"tcp"``."""
    for _ in range(4):  # wrappers expose what they wrap as ``transport_stream``
        if isinstance(stream, UtpStream):
            return "utp"
        inner = getattr(stream, "transport_stream", None)
        if not isinstance(inner, trio.abc.Stream):
            break
        stream = inner
    return "tcp"


async def serve_incoming(
    handler: Callable[[trio.abc.Stream], Awaitable[Any]],
    tcp_listeners: Sequence[trio.abc.Listener[Any]],
    utp: UtpSocket | None = None,
    *,
    handler_nursery: trio.Nursery | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``handler(stream)`` in a new task for every stream accepted by the TCP listeners and
    (when given) the uTP socket, until cancelled. ``handler_nursery`` is where handlers run
    (default: a nursery of this call)."""
    async with trio.open_nursery() as nursery:
        target = handler_nursery or nursery
        if tcp_listeners:

            async def serve_tcp() -> None:
                await trio.serve_listeners(handler, list(tcp_listeners), handler_nursery=target)

            nursery.start_soon(serve_tcp)
        if utp is not None:

            async def serve_utp() -> None:
                async for stream in utp.accept():
                    target.start_soon(handler, stream)

            nursery.start_soon(serve_utp)
        task_status.started()
