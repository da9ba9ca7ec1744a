"""BEP 33 scrape bloom filters: 256 bytes, two bit positions from the SHA-1 of an IP address.

A DHT node answers ``get_peers`` with ``scrape=1`` with one filter of its seeds (``BFsd``) and one
of the other peers (``BFpe``). Filters from several nodes are merged by OR-ing them, and the
number of distinct IPs in the union is estimated from the count of zero bits.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math

from torrio.core import IPAddress

BLOOM_SIZE = 256
"""Bytes in a BEP 33 filter."""
_M = BLOOM_SIZE * 8
_K = 2
_LOG_EMPTY = math.log(1.0 - 1.0 / _M)
_POPCOUNT = bytes(bin(i).count("1") for i in range(256))


def _positions(ip: IPAddress) -> tuple[int, int]:
    h = hashlib.sha1(ip.packed).digest()
    return (h[0] | h[1] << 8) % _M, (h[2] | h[3] << 8) % _M


class BloomFilter:
    """A BEP 33 bloom filter over IP addresses (v4 or v6; ports are never inserted).

    ``BloomFilter()`` is empty; ``BloomFilter(data)`` wraps 256 bytes received from a node.
    """

    __slots__ = ("_bits",)

    def __init__(self, data: bytes | bytearray | memoryview | None = None) -> None:
        if data is None:
            self._bits = bytearray(BLOOM_SIZE)
        else:
            if len(data) != BLOOM_SIZE:
                raise ValueError(f"a BEP 33 bloom filter is {BLOOM_SIZE} bytes, not {len(data)}")
            self._bits = bytearray(data)

    def add(self, ip: IPAddress | str) -> None:
        """Insert ``ip``."""
        for i in _positions(_ip(ip)):
            self._bits[i >> 3] |= 1 << (i & 7)

    def __contains__(self, ip: object) -> bool:
        if not isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address | str):
            return False
        return all(self._bits[i >> 3] & (1 << (i & 7)) for i in _positions(_ip(ip)))

    def __or__(self, other: BloomFilter) -> BloomFilter:
        return BloomFilter(bytes(a | b for a, b in zip(self._bits, other._bits, strict=True)))

    def __ior__(self, other: BloomFilter) -> BloomFilter:
        bits = self._bits
        for i, b in enumerate(other._bits):
            bits[i] |= b
        return self

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BloomFilter) and self._bits == other._bits

    def __hash__(self) -> int:
        return hash(bytes(self._bits))

    def __repr__(self) -> str:
        return f"BloomFilter(~{self.estimate():.1f} addresses)"

    def __bytes__(self) -> bytes:
        return bytes(self._bits)

    def to_bytes(self) -> bytes:
        """The 256 bytes sent as ``BFsd``/``BFpe``."""
        return bytes(self._bits)

    def zero_bits(self) -> int:
        """How many bits are still clear."""
        return _M - sum(_POPCOUNT[b] for b in self._bits)

    def estimate(self) -> float:
        """BEP 33's estimate of how many distinct addresses were inserted (about 8000 at most:
        beyond that the filter is saturated and the estimate is meaningless)."""
        zeros = self.zero_bits()
        if zeros == _M:
            return 0.0  # the formula caps zeros at m - 1 and would say 0.5 for an empty filter
        c = max(1, min(_M - 1, zeros))  # a full filter (a hostile one) must not reach log(0)
        return math.log(c / _M) / (_K * _LOG_EMPTY)

    @property
    def empty(self) -> bool:
        """True when nothing was inserted."""
        return not any(self._bits)


def _ip(ip: IPAddress | str) -> IPAddress:
    return ipaddress.ip_address(ip) if isinstance(ip, str) else ip
