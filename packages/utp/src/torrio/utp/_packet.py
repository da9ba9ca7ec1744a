"""The uTP (BEP 29) version 1 packet codec and 16-bit sequence arithmetic.

A packet is a 20-byte header, an optional chain of extensions (selective ACK is extension 1) and a
payload. Every decoder here treats input as hostile: it raises only :class:`PacketError`.
"""

from __future__ import annotations

import enum
import struct
from typing import Final

import attrs

from ._errors import PacketError

VERSION: Final = 1
HEADER_SIZE: Final = 20
SEQ_MASK: Final = 0xFFFF
TS_MASK: Final = 0xFFFFFFFF
EXT_NONE: Final = 0
EXT_SACK: Final = 1
MAX_SACK_BYTES: Final = 252
"""A SACK mask is at most what the one-byte extension length can carry, rounded to 4 bytes."""

_HEADER: Final = struct.Struct(">BBHIIIHH")


class PacketType(enum.IntEnum):
    """The five uTP packet types (the high nibble of the first header byte)."""

    DATA = 0
    FIN = 1
    STATE = 2
    RESET = 3
    SYN = 4


@attrs.frozen(slots=True)
class Packet:
    """One decoded uTP packet.

    ``sack`` is the selective-ACK bitmask (bit *i*, least significant bit of byte 0 first, acks
    ``ack_nr + 2 + i``) or ``None``; ``extensions`` keeps any other extensions, unparsed, in order.
    """

    type: PacketType
    connection_id: int
    timestamp_us: int = 0
    timestamp_diff_us: int = 0
    wnd_size: int = 0
    seq_nr: int = 0
    ack_nr: int = 0
    sack: bytes | None = None
    payload: bytes = b""
    extensions: tuple[tuple[int, bytes], ...] = ()

    def encode(self) -> bytes:
        """The packet's wire form."""
        return encode_packet(
            self.type,
            self.connection_id,
            self.timestamp_us,
            self.timestamp_diff_us,
            self.wnd_size,
            self.seq_nr,
            self.ack_nr,
            self.payload,
            self.sack,
            self.extensions,
        )


def encode_packet(
    ptype: int,
    connection_id: int,
    timestamp_us: int,
    timestamp_diff_us: int,
    wnd_size: int,
    seq_nr: int,
    ack_nr: int,
    payload: bytes | memoryview = b"",
    sack: bytes | None = None,
    extensions: tuple[tuple[int, bytes], ...] = (),
) -> bytes:
    """Encode one packet from its fields (the hot path: no intermediate objects)."""
    if sack is None and not extensions:
        return (
            _HEADER.pack(
                (ptype << 4) | VERSION,
                EXT_NONE,
                connection_id & SEQ_MASK,
                timestamp_us & TS_MASK,
                timestamp_diff_us & TS_MASK,
                wnd_size & TS_MASK,
                seq_nr & SEQ_MASK,
                ack_nr & SEQ_MASK,
            )
            + payload
        )
    chain: list[tuple[int, bytes]] = []
    if sack is not None:
        if not sack or len(sack) % 4 or len(sack) > MAX_SACK_BYTES:
            raise PacketError("a SACK mask is 4..252 bytes, a multiple of 4")
        chain.append((EXT_SACK, sack))
    for ext_type, data in extensions:
        if not 0 < ext_type < 256 or len(data) > 255:
            raise PacketError(f"extension {ext_type} cannot be encoded")
        chain.append((ext_type, data))
    parts = [
        _HEADER.pack(
            (ptype << 4) | VERSION,
            chain[0][0],
            connection_id & SEQ_MASK,
            timestamp_us & TS_MASK,
            timestamp_diff_us & TS_MASK,
            wnd_size & TS_MASK,
            seq_nr & SEQ_MASK,
            ack_nr & SEQ_MASK,
        )
    ]
    for i, (_, data) in enumerate(chain):
        nxt = chain[i + 1][0] if i + 1 < len(chain) else EXT_NONE
        parts.append(bytes((nxt, len(data))))
        parts.append(data)
    parts.append(bytes(payload))
    return b"".join(parts)


def is_utp_datagram(data: bytes | memoryview) -> bool:
    """The routing rule for a shared UDP socket: a uTP v1 header with a type in 0..4."""
    if len(data) < HEADER_SIZE:
        return False
    b0 = data[0]
    return (b0 & 0x0F) == VERSION and (b0 >> 4) <= PacketType.SYN


def decode_packet(data: bytes | memoryview) -> Packet:
    """Decode one datagram; raises :class:`PacketError` for anything malformed."""
    n = len(data)
    if n < HEADER_SIZE:
        raise PacketError(f"datagram of {n} bytes is shorter than a uTP header", offset=n)
    b0, ext, conn_id, ts, ts_diff, wnd, seq, ack = _HEADER.unpack_from(data, 0)
    if b0 & 0x0F != VERSION:
        raise PacketError(f"unsupported uTP version {b0 & 0x0F}", offset=0)
    t = b0 >> 4
    if t > PacketType.SYN:
        raise PacketError(f"unknown packet type {t}", offset=0)
    pos = HEADER_SIZE
    sack: bytes | None = None
    others: list[tuple[int, bytes]] = []
    while ext != EXT_NONE:
        if pos + 2 > n:
            raise PacketError("truncated extension header", offset=pos)
        nxt = data[pos]
        length = data[pos + 1]
        start = pos + 2
        end = start + length
        if end > n:
            raise PacketError(f"extension {ext} runs past the datagram", offset=pos)
        body = bytes(data[start:end])
        if ext == EXT_SACK:
            # BEP 29 asks for a multiple of 4 bytes, but libtorrent sends masks of any length
            # (1, 6, 18 bytes seen): take them all, or its acks are lost and the sender stalls
            if sack is not None:
                raise PacketError("two SACK extensions in one packet", offset=pos)
            sack = body or None
        else:
            others.append((ext, body))
        ext = nxt
        pos = end
    return Packet(
        PacketType(t),
        conn_id,
        ts,
        ts_diff,
        wnd,
        seq,
        ack,
        sack,
        bytes(data[pos:]),
        tuple(others),
    )


def seq_diff(a: int, b: int) -> int:
    """``a - b`` as a signed distance on the 16-bit sequence circle (-32768..32767)."""
    d = (a - b) & SEQ_MASK
    return d - 0x10000 if d >= 0x8000 else d


def seq_lt(a: int, b: int) -> bool:
    """``a`` comes before ``b`` on the 16-bit sequence circle."""
    return seq_diff(a, b) < 0


def ts_diff(a: int, b: int) -> int:
    """``a - b`` of two 32-bit microsecond timestamps, wrapping (the result is 0..2**32-1)."""
    return (a - b) & TS_MASK


def sack_bits(mask: bytes) -> list[int]:
    """Offsets ``i`` (packet ``ack_nr + 2 + i``) whose bit is set in a SACK mask."""
    out: list[int] = []
    for byte_index, byte in enumerate(mask):
        if byte:
            base = byte_index * 8
            out.extend(base + bit for bit in range(8) if byte & (1 << bit))
    return out


def build_sack(offsets: list[int], max_bytes: int = 32) -> bytes | None:
    """A SACK mask for packet offsets (``ack_nr + 2 + i``) that fit in ``max_bytes``; or None."""
    limit = max_bytes * 8
    inside = [i for i in offsets if 0 <= i < limit]
    if not inside:
        return None
    size = (max(inside) // 32 + 1) * 4
    mask = bytearray(size)
    for i in inside:
        mask[i >> 3] |= 1 << (i & 7)
    return bytes(mask)
