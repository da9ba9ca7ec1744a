"""Peer and node addresses for IPv4 and IPv6 and their compact encodings (BEP 5, 7, 23, 32)."""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable

import attrs

from ._errors import CoreError
from ._ids import NodeId

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

COMPACT_PEER_V4_LEN = 6
COMPACT_PEER_V6_LEN = 18
COMPACT_NODE_V4_LEN = 26
COMPACT_NODE_V6_LEN = 38

_PORT = struct.Struct("!H")


def _to_ip(value: str | bytes | IPAddress) -> IPAddress:
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    try:
        return ipaddress.ip_address(value)
    except ValueError as exc:
        raise CoreError(f"not an IP address: {value!r}") from exc


def _check_port(_inst: object, _attr: object, port: int) -> None:
    if not 0 <= port <= 0xFFFF:
        raise CoreError(f"port out of range: {port}")


@attrs.frozen(order=True)
class PeerAddr:
    """An IP address and port. ``str()`` gives ``1.2.3.4:6881`` or ``[::1]:6881``."""

    ip: IPAddress = attrs.field(converter=_to_ip)
    port: int = attrs.field(validator=_check_port)

    @classmethod
    def parse(cls, text: str) -> PeerAddr:
        """Parse ``HOST:PORT`` or ``[V6]:PORT`` (HOST must be an IP literal)."""
        text = text.strip()
        try:
            if text.startswith("["):
                host, _, rest = text[1:].partition("]")
                if not rest.startswith(":"):
                    raise ValueError
                port = int(rest[1:])
            else:
                host, sep, port_s = text.rpartition(":")
                if not sep or ":" in host:
                    raise ValueError
                port = int(port_s)
        except ValueError as exc:
            raise CoreError(f"not an address of the form HOST:PORT: {text!r}") from exc
        return cls(host, port)

    @classmethod
    def from_tuple(cls, addr: tuple[str, int] | tuple[str, int, int, int]) -> PeerAddr:
        """From a socket address tuple (IPv6 scope/flow fields are dropped)."""
        host = addr[0].split("%", 1)[0]
        return cls(host, addr[1])

    @property
    def family(self) -> int:
        """4 or 6."""
        return self.ip.version

    def as_tuple(self) -> tuple[str, int]:
        """``(host, port)`` for socket calls."""
        return (str(self.ip), self.port)

    @classmethod
    def from_compact(cls, data: bytes | memoryview) -> PeerAddr:
        """Decode a 6-byte (v4) or 18-byte (v6) compact peer; any other length raises."""
        n = len(data)
        if n == COMPACT_PEER_V4_LEN:
            return cls(ipaddress.IPv4Address(bytes(data[:4])), _PORT.unpack_from(data, 4)[0])
        if n == COMPACT_PEER_V6_LEN:
            return cls(ipaddress.IPv6Address(bytes(data[:16])), _PORT.unpack_from(data, 16)[0])
        raise CoreError(f"compact peer must be 6 or 18 bytes, got {n}")

    def to_compact(self) -> bytes:
        """The 6- or 18-byte compact form."""
        return self.ip.packed + _PORT.pack(self.port)

    def __str__(self) -> str:
        if self.ip.version == 6:
            return f"[{self.ip}]:{self.port}"
        return f"{self.ip}:{self.port}"


@attrs.frozen
class NodeInfo:
    """A DHT contact: node id plus address; compact form is 26 (v4) or 38 (v6) bytes."""

    id: NodeId
    addr: PeerAddr

    @classmethod
    def from_compact(cls, data: bytes | memoryview) -> NodeInfo:
        """Decode a 26- or 38-byte compact node; any other length raises."""
        if len(data) not in (COMPACT_NODE_V4_LEN, COMPACT_NODE_V6_LEN):
            raise CoreError(f"compact node must be 26 or 38 bytes, got {len(data)}")
        return cls(NodeId(bytes(data[:20])), PeerAddr.from_compact(data[20:]))

    def to_compact(self) -> bytes:
        """The 26- or 38-byte compact form."""
        return self.id.value + self.addr.to_compact()


def decode_peers(data: bytes, family: int = 4) -> list[PeerAddr]:
    """Decode a concatenation of compact peers (BEP 23 ``peers``/``peers6``, BEP 5 ``values``).

    The length must be an exact multiple of 6 (v4) or 18 (v6).
    """
    if family not in (4, 6):
        raise CoreError(f"address family must be 4 or 6, got {family}")
    size = COMPACT_PEER_V4_LEN if family == 4 else COMPACT_PEER_V6_LEN
    if len(data) % size:
        raise CoreError(f"compact peer list length {len(data)} is not a multiple of {size}")
    mv = memoryview(data)
    return [PeerAddr.from_compact(mv[i : i + size]) for i in range(0, len(data), size)]


def encode_peers(peers: Iterable[PeerAddr]) -> bytes:
    """Concatenate the compact forms of ``peers`` (callers keep v4 and v6 apart)."""
    return b"".join(p.to_compact() for p in peers)


def decode_nodes(data: bytes, family: int = 4) -> list[NodeInfo]:
    """Decode a concatenation of compact nodes (``nodes`` 26 bytes each, ``nodes6`` 38 each)."""
    if family not in (4, 6):
        raise CoreError(f"address family must be 4 or 6, got {family}")
    size = COMPACT_NODE_V4_LEN if family == 4 else COMPACT_NODE_V6_LEN
    if len(data) % size:
        raise CoreError(f"compact node list length {len(data)} is not a multiple of {size}")
    mv = memoryview(data)
    return [NodeInfo.from_compact(mv[i : i + size]) for i in range(0, len(data), size)]


def encode_nodes(nodes: Iterable[NodeInfo]) -> bytes:
    """Concatenate the compact forms of ``nodes``."""
    return b"".join(n.to_compact() for n in nodes)
