"""BEP 42: node ids tied to the node's external IP (CRC32C of the masked address)."""

from __future__ import annotations

import ipaddress
import os

from torrio.core import IPAddress, NodeId

_V4_MASK = 0x030F3FFF
_V6_MASK = 0x0103070F1F3F7FFF


def _make_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _make_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _ip(value: str | IPAddress) -> IPAddress:
    return value if not isinstance(value, str) else ipaddress.ip_address(value)


def _prefix_crc(ip: IPAddress, r: int) -> int:
    r &= 7
    if ip.version == 4:
        masked = (int(ip) & _V4_MASK) | (r << 29)
        return crc32c(masked.to_bytes(4, "big"))
    masked = ((int(ip) >> 64) & _V6_MASK) | (r << 61)
    return crc32c(masked.to_bytes(8, "big"))


def node_id_for_ip(
    ip: str | IPAddress, rand: int | None = None, tail: bytes | None = None
) -> NodeId:
    """A BEP 42-conformant node id for our external ``ip``.

    ``rand`` (0-255) is the last byte (its low 3 bits choose ``r``); ``tail`` gives the 17 bytes
    after the 21-bit prefix (random if omitted). Both exist so tests can reproduce the BEP's vectors.
    """
    addr = _ip(ip)
    if rand is None:
        rand = os.urandom(1)[0]
    rand &= 0xFF
    crc = _prefix_crc(addr, rand & 7)
    body = bytearray(tail if tail is not None else os.urandom(17))
    if len(body) != 17:
        raise ValueError("tail must be 17 bytes")
    out = bytearray(20)
    out[0] = (crc >> 24) & 0xFF
    out[1] = (crc >> 16) & 0xFF
    out[2] = ((crc >> 8) & 0xF8) | (body[0] & 0x07)
    out[3:19] = body[1:17]
    out[19] = rand
    return NodeId(bytes(out))


_EXEMPT_V4 = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "127.0.0.0/8")
)


def is_exempt(ip: str | IPAddress) -> bool:
    """True for local-network addresses, which BEP 42 exempts from id checks."""
    addr = _ip(ip)
    if addr.version == 4:
        return any(addr in net for net in _EXEMPT_V4)
    return addr.is_loopback or addr.is_link_local or addr.is_private


def is_valid_node_id(node_id: NodeId | bytes, ip: str | IPAddress) -> bool:
    """True if ``node_id`` matches ``ip`` under BEP 42 (always True for exempt local addresses)."""
    addr = _ip(ip)
    if is_exempt(addr):
        return True
    raw = node_id.value if isinstance(node_id, NodeId) else bytes(node_id)
    crc = _prefix_crc(addr, raw[19] & 7)
    want = crc >> 11  # top 21 bits
    have = int.from_bytes(raw[:3], "big") >> 3
    return want == have
