"""The datagram endpoint shape shared by the DHT, uTP and the UDP tracker client.

A session owns one UDP socket and routes each incoming datagram by its shape to one consumer's
``datagram_received``; consumers reply through the endpoint's ``sendto``. Used alone, each package
opens its own socket that satisfies the same protocol.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

SocketAddress = tuple[str, int]
"""``(host, port)`` as trio/socket calls take it (IPv6 scope ids are dropped)."""


@runtime_checkable
class DatagramEndpoint(Protocol):
    """Where a protocol sends its datagrams (a UDP socket, shared or its own, or a fake network)."""

    async def sendto(self, data: bytes, addr: SocketAddress) -> None:
        """Send one datagram to ``addr``. May block briefly for socket buffer space."""
        ...


@runtime_checkable
class DatagramHandler(Protocol):
    """A consumer of datagrams routed to it by whoever reads the socket."""

    def datagram_received(self, data: bytes, addr: SocketAddress) -> None:
        """Take one datagram. Must not block: queue it (bounded) or drop it and count the drop."""
        ...
