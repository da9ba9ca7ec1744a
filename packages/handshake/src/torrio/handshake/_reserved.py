"""The eight reserved bytes of the handshake as a typed flag set.

Bit positions follow the BEPs, which name them by byte and mask (``reserved[5] & 0x10`` is the
extension protocol). Here the eight bytes are read as one big-endian 64-bit integer, so byte 7
mask 0x01 is the integer bit 0 and byte 0 mask 0x80 is bit 63. Because the flag set is an
``enum.IntFlag`` with ``KEEP`` boundary, unknown bits survive a round trip and ``|``/``&``/``~``
are plain bit operations on all 64 bits (union really is union, intersection really is
intersection).
"""

from __future__ import annotations

import enum

RESERVED_LEN = 8
_ALL = (1 << 64) - 1


def _bit(byte: int, mask: int) -> int:
    return mask << (8 * (RESERVED_LEN - 1 - byte))


class Reserved(enum.IntFlag, boundary=enum.KEEP):
    """Reserved handshake bits. ``Reserved.DHT | Reserved.FAST`` is a set of two features."""

    NONE = 0
    #: BEP 5: the peer runs a DHT node and accepts the ``port`` message (reserved[7] & 0x01).
    DHT = _bit(7, 0x01)
    #: Extension negotiation bits (XBT-era, reserved[7] & 0x02); kept for completeness.
    XBT_PEER_EXCHANGE = _bit(7, 0x02)
    #: BEP 6 Fast extension (reserved[7] & 0x04).
    FAST = _bit(7, 0x04)
    #: BEP 55 NAT traversal / holepunch capable (reserved[7] & 0x08).
    NAT_TRAVERSAL = _bit(7, 0x08)
    #: BEP 52: the peer would upgrade this hybrid torrent to v2 (reserved[7] & 0x10).
    V2_UPGRADE = _bit(7, 0x10)
    #: BEP 10 extension protocol (reserved[5] & 0x10).
    EXTENSION_PROTOCOL = _bit(5, 0x10)
    #: BitComet/Azureus-era location-aware protocol (reserved[2] & 0x08).
    LOCATION_AWARE = _bit(2, 0x08)
    #: Azureus messaging protocol (reserved[0] & 0x80).
    AZUREUS_MESSAGING = _bit(0, 0x80)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Reserved:  # type: ignore[override]
        """Read the eight wire bytes (unknown bits are kept)."""
        if len(data) != RESERVED_LEN:
            from ._errors import HandshakeError

            raise HandshakeError(f"reserved field must be 8 bytes, got {len(data)}", "bad-reserved")
        return cls(int.from_bytes(data, "big"))

    def to_bytes(self) -> bytes:  # type: ignore[override]
        """The eight wire bytes."""
        return int(self).to_bytes(RESERVED_LEN, "big")

    def supports(self, flags: Reserved) -> bool:
        """True if every bit of ``flags`` is set here."""
        return (self & flags) == flags

    def __invert__(self) -> Reserved:
        return Reserved(~int(self) & _ALL)


#: What a modern torrio peer advertises by default.
DEFAULT_RESERVED = Reserved.EXTENSION_PROTOCOL | Reserved.FAST | Reserved.DHT
