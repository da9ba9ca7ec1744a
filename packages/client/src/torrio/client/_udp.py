"""The session's one UDP socket, shared by the DHT, uTP and the UDP tracker client.

It listens on the TCP listener's port number. Each datagram is routed by shape (ARCHITECTURE.md,
"One UDP port, many protocols"): a reply to one of our UDP-tracker requests (matched by transaction
id and source) goes to the tracker client; a bencoded dict (``d...``) to the DHT; a uTP header to
uTP; anything else is counted and dropped. Consumers reply through :meth:`sendto`.
"""

from __future__ import annotations

import contextlib
import socket as stdsocket

import attrs
import trio

from torrio.core import DatagramHandler, SocketAddress

MAX_DATAGRAM = 65536
SOCKET_BUFFER = 4 * 1024 * 1024
"""UDP receive/send buffer asked of the kernel (uTP on loopback drops packets with less)."""


@attrs.frozen
class UdpStatistics:
    """Counters of the shared socket."""

    received: int
    sent: int
    to_tracker: int
    to_dht: int
    to_utp: int
    dropped: int
    send_errors: int


class SharedUdpSocket:
    """A :class:`torrio.core.DatagramEndpoint` that also reads and routes (see the module doc)."""

    def __init__(self, sock: trio.socket.SocketType) -> None:
        self.sock = sock
        self.tracker: object | None = None
        """The UDP tracker client (``is_reply`` + ``datagram_received``), once attached."""
        self.dht: DatagramHandler | None = None
        self.utp: DatagramHandler | None = None
        self._received = self._sent = self._tracker_n = self._dht_n = self._utp_n = 0
        self._dropped = self._send_errors = 0

    @classmethod
    async def bind(cls, host: str, port: int) -> SharedUdpSocket:
        """A UDP socket bound to ``host:port`` with large buffers."""
        family = stdsocket.AF_INET6 if ":" in host else stdsocket.AF_INET
        sock = trio.socket.socket(family, stdsocket.SOCK_DGRAM)
        for opt in (stdsocket.SO_RCVBUF, stdsocket.SO_SNDBUF):
            with contextlib.suppress(OSError):
                sock.setsockopt(stdsocket.SOL_SOCKET, opt, SOCKET_BUFFER)
        try:
            await sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        return cls(sock)

    @property
    def local_address(self) -> SocketAddress:
        """``(host, port)`` the socket is bound to."""
        host, port = self.sock.getsockname()[:2]
        return (host, port)

    async def sendto(self, data: bytes, addr: SocketAddress) -> None:
        """Send one datagram (errors such as an unreachable host are counted, not raised)."""
        try:
            await self.sock.sendto(data, addr)
            self._sent += 1
        except OSError:
            self._send_errors += 1

    def route(self, data: bytes, addr: SocketAddress) -> None:
        """Hand one datagram to its consumer."""
        self._received += 1
        tracker = self.tracker
        if tracker is not None and tracker.is_reply(data, addr):  # type: ignore[attr-defined]
            self._tracker_n += 1
            tracker.datagram_received(data, addr)  # type: ignore[attr-defined]
        elif data[:1] == b"d" and self.dht is not None:
            self._dht_n += 1
            self.dht.datagram_received(data, addr)
        elif self.utp is not None:
            from torrio.utp import is_utp_datagram

            if is_utp_datagram(data):
                self._utp_n += 1
                self.utp.datagram_received(data, addr)
            else:
                self._dropped += 1
        else:
            self._dropped += 1

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Read and route datagrams until cancelled."""
        task_status.started()
        while True:
            try:
                data, addr = await self.sock.recvfrom(MAX_DATAGRAM)
            except OSError:
                # ICMP errors (port unreachable) surface here on some systems: keep reading
                continue
            self.route(data, (addr[0], addr[1]))

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

    def statistics(self) -> UdpStatistics:
        """A snapshot of the counters."""
        return UdpStatistics(
            self._received,
            self._sent,
            self._tracker_n,
            self._dht_n,
            self._utp_n,
            self._dropped,
            self._send_errors,
        )
