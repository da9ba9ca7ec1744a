"""The 68-byte BitTorrent handshake (BEP 3): pstrlen, pstr, reserved, info-hash, peer id."""

from __future__ import annotations

import attrs

from torrio.core import PeerId

from ._errors import HandshakeError
from ._reserved import Reserved

PROTOCOL = b"BitTorrent protocol"
#: The first 20 bytes of every plaintext handshake: length byte 19 then the protocol string.
PROTOCOL_PREFIX = bytes([len(PROTOCOL)]) + PROTOCOL
#: Length of the part before the peer id (prefix + reserved + info-hash).
HANDSHAKE_PREFIX_LEN = 48
HANDSHAKE_LEN = 68


def _info_hash(value: bytes) -> bytes:
    value = bytes(value)
    if len(value) != 20:
        raise HandshakeError(
            f"handshake info-hash must be 20 bytes, got {len(value)}", "bad-info-hash"
        )
    return value


def _reserved(value: Reserved | int | bytes) -> Reserved:
    if isinstance(value, bytes | bytearray | memoryview):
        return Reserved.from_bytes(value)
    return Reserved(int(value))


@attrs.frozen
class Handshake:
    """One side's handshake. ``info_hash`` is the 20-byte wire id (v1, or truncated v2)."""

    info_hash: bytes = attrs.field(converter=_info_hash)
    peer_id: PeerId
    reserved: Reserved = attrs.field(default=Reserved.NONE, converter=_reserved)

    def to_bytes(self) -> bytes:
        """The 68 wire bytes."""
        return PROTOCOL_PREFIX + self.reserved.to_bytes() + self.info_hash + self.peer_id.value

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Handshake:
        """Parse exactly 68 bytes; anything else raises :class:`HandshakeError`."""
        if len(data) != HANDSHAKE_LEN:
            raise HandshakeError(
                f"handshake must be {HANDSHAKE_LEN} bytes, got {len(data)}", "bad-length"
            )
        reserved, info_hash = parse_prefix(data[:HANDSHAKE_PREFIX_LEN])
        return cls(info_hash, PeerId(bytes(data[HANDSHAKE_PREFIX_LEN:HANDSHAKE_LEN])), reserved)


def parse_prefix(data: bytes | bytearray | memoryview) -> tuple[Reserved, bytes]:
    """Parse the first 48 bytes (protocol, reserved, info-hash): what a listener needs to route.

    Returns ``(reserved, info_hash)``.
    """
    if len(data) != HANDSHAKE_PREFIX_LEN:
        raise HandshakeError("handshake prefix must be 48 bytes", "bad-length")
    if bytes(data[:20]) != PROTOCOL_PREFIX:
        raise HandshakeError("not a BitTorrent handshake (bad protocol string)", "bad-protocol")
    return Reserved.from_bytes(data[20:28]), bytes(data[28:48])


def is_plaintext_start(data: bytes | bytearray | memoryview) -> bool | None:
    """Does a stream starting with ``data`` look like a plaintext handshake?

    True/False once it can tell, None if more bytes are needed (at most 20 are looked at).
    """
    n = min(len(data), len(PROTOCOL_PREFIX))
    if bytes(data[:n]) != PROTOCOL_PREFIX[:n]:
        return False
    return True if n == len(PROTOCOL_PREFIX) else None
